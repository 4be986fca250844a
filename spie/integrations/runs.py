"""Import runs: creation (or reuse of an interrupted one), execution under a per-file lock,
checkpoints, final status and the run report.

A run is executed by :func:`execute_run` (from the rq job ``spie.integrations.jobs.import_run``
or synchronously by the CLI):

1. a final run (done, partial, refused, duplicate) is left alone: executing twice is a no-op;
2. a PostgreSQL advisory lock on the file checksum is taken for the whole run, so two workers
   never import the same file at once (:class:`ImportBusyError` otherwise: rq retries later);
3. a file already imported (same source, kind and checksum; ``force`` unset) makes the run a
   ``duplicate``: nothing changes;
4. the importer commits batch by batch with ``last_committed_position``; a run killed at any
   point restarts after its last committed batch (same run, found again by checksum), and a
   batch is all or nothing (its records, rejects, domain effects and counters together).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from sqlalchemy import func, select

from spie.common.gc_tuning import bulk_gc
from spie.db import commit, db, rollback, utcnow
from spie.integrations.locks import advisory_lock
from spie.integrations.models import (
    FINAL_STATUSES,
    IMPORTED_STATUSES,
    UNFINISHED_STATUSES,
    ImportReject,
    ImportRun,
    ImportSource,
    ImportStatus,
    ImportTrigger,
    RejectSeverity,
)

log = logging.getLogger(__name__)

CAF_KIND = "beneficiaires"
DEFAULT_BATCH_SIZE = 1000
#: A running run whose heartbeat is older than this is considered dead (its worker died).
STALE_AFTER = dt.timedelta(minutes=15)


class ImportBusyError(Exception):
    """Another process is importing the same file right now."""


def find_unfinished(source: ImportSource, kind: str, checksum: str) -> ImportRun | None:
    return db.session.scalar(
        select(ImportRun)
        .where(
            ImportRun.source == source,
            ImportRun.kind == kind,
            ImportRun.checksum == checksum,
            ImportRun.status.in_(UNFINISHED_STATUSES),
        )
        .order_by(ImportRun.id.desc())
        .limit(1)
    )


def create_or_resume_run(
    *,
    source: ImportSource,
    kind: str,
    file_name: str,
    checksum: str,
    size_bytes: int,
    trigger: ImportTrigger,
    file_id: int | None = None,
    local_path: str | None = None,
    force: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    requested_by_id: int | None = None,
    replay_of_run_id: int | None = None,
) -> ImportRun:
    """A new queued run, or the interrupted run of the same file (to resume it). Flushes."""
    if replay_of_run_id is None:
        unfinished = find_unfinished(source, kind, checksum)
        if unfinished is not None:
            # Same bytes: wherever they are now (a path, the database) the checkpoint holds.
            if file_id is not None:
                unfinished.file_id = file_id
                unfinished.local_path = None
            elif local_path is not None and unfinished.file_id is None:
                unfinished.local_path = local_path
            unfinished.force = unfinished.force or force
            db.session.flush()
            return unfinished
    run = ImportRun(
        source=source,
        kind=kind,
        file_name=file_name[:255],
        checksum=checksum,
        size_bytes=size_bytes,
        trigger=trigger,
        file_id=file_id,
        local_path=local_path,
        force=force,
        batch_size=max(1, batch_size),
        requested_by_id=requested_by_id,
        replay_of_run_id=replay_of_run_id,
        status=ImportStatus.QUEUED,
        last_committed_position=0,
        read_count=0,
        created_count=0,
        updated_count=0,
        unchanged_count=0,
        rejected_count=0,
        warning_count=0,
        attempts=0,
        initial_stock=False,
        count_mismatch=False,
    )
    db.session.add(run)
    db.session.flush()
    return run


def _already_imported(run: ImportRun) -> ImportRun | None:
    return db.session.scalar(
        select(ImportRun)
        .where(
            ImportRun.source == run.source,
            ImportRun.kind == run.kind,
            ImportRun.checksum == run.checksum,
            ImportRun.status.in_(IMPORTED_STATUSES),
            ImportRun.id != run.id,
        )
        .order_by(ImportRun.id)
        .limit(1)
    )


def _reload(run_id: int) -> ImportRun:
    run = db.session.execute(
        select(ImportRun).where(ImportRun.id == run_id).execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if run is None:
        raise LookupError(f"import run {run_id} not found")
    return run


def execute_run(run_id: int) -> dict[str, Any]:
    """Run (or resume) the import ``run_id``; returns its report. Commits."""
    run = _reload(run_id)
    if run.status in FINAL_STATUSES:
        return run_report(run)
    with advisory_lock(f"import:{run.source.value}:{run.kind}:{run.checksum}") as taken:
        if not taken:
            raise ImportBusyError(
                f"run {run.id}: the same file is being imported by another process"
            )
        run = _reload(run_id)
        if run.status in FINAL_STATUSES:
            return run_report(run)
        if not run.force and run.replay_of_run_id is None:
            previous = _already_imported(run)
            if previous is not None:
                run.status = ImportStatus.DUPLICATE
                run.duplicate_of_id = previous.id
                run.started_at = run.started_at or utcnow()
                run.finished_at = utcnow()
                run.error_code = "duplicate"
                run.error_message = (
                    f"file already imported by run {previous.id} (same SHA-256): nothing changed"
                )
                commit()
                return run_report(run)
        run.status = ImportStatus.RUNNING
        run.started_at = run.started_at or utcnow()
        run.heartbeat_at = utcnow()
        run.attempts += 1
        run.error_code = None
        run.error_message = None
        commit()
        try:
            with bulk_gc():
                _importer_for(run).execute()
        except Exception as exc:
            rollback()
            run = _reload(run_id)
            run.status = ImportStatus.FAILED
            run.error_code = "internal_error"
            # The exception type only: messages of unexpected errors may quote data.
            run.error_message = (
                f"{type(exc).__name__}; resumable from position {run.last_committed_position}"
            )
            run.heartbeat_at = utcnow()
            commit()
            log.warning("import run %s failed (%s)", run_id, type(exc).__name__)
            raise
        run = _reload(run_id)
        return run_report(run)


def _importer_for(run: ImportRun) -> Any:
    if run.source == ImportSource.CAF:
        from spie.integrations.caf.importer import CafImporter

        return CafImporter(run)
    from spie.integrations.france_travail.importer import FtImporter

    return FtImporter(run)


def refuse(run: ImportRun, code: str, message: str) -> None:
    """The whole file is refused: nothing imported (a run-level reject explains why)."""
    run.status = ImportStatus.REFUSED
    run.error_code = code[:40]
    run.error_message = message
    run.finished_at = utcnow()
    db.session.add(
        ImportReject(
            run_id=run.id,
            position=None,
            severity=RejectSeverity.ERROR,
            code=code[:40],
            message=message,
        )
    )


def stale_after() -> dt.timedelta:
    """``SPIE_IMPORT_STALE_SECONDS`` (app config or environment), default 15 minutes: a batch
    never takes that long, so a heartbeat that old means the worker died."""
    from flask import current_app

    value = current_app.config.get("SPIE_IMPORT_STALE_SECONDS") or os.environ.get(
        "SPIE_IMPORT_STALE_SECONDS"
    )
    return dt.timedelta(seconds=float(value)) if value else STALE_AFTER


def stale_runs(now: dt.datetime | None = None) -> list[ImportRun]:
    """Runs marked running whose heartbeat stopped (their worker died)."""
    now = now or utcnow()
    return list(
        db.session.scalars(
            select(ImportRun)
            .where(
                ImportRun.status == ImportStatus.RUNNING,
                func.coalesce(ImportRun.heartbeat_at, ImportRun.started_at) < now - stale_after(),
            )
            .order_by(ImportRun.id)
        )
    )


def run_summary(run: ImportRun) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "source": run.source.value,
        "kind": run.kind,
        "file_name": run.file_name,
        "checksum": run.checksum,
        "trigger": run.trigger.value,
        "status": run.status.value,
        "counts": {
            "read": run.read_count,
            "created": run.created_count,
            "updated": run.updated_count,
            "unchanged": run.unchanged_count,
            "rejected": run.rejected_count,
            "warnings": run.warning_count,
        },
        "details": run.details or {},
        "flow": {
            "type": run.flow_type,
            "schema": run.flow_schema,
            "dtref": run.flow_dtref.isoformat() if run.flow_dtref else None,
            "initial_stock": run.initial_stock,
            "expected_count": run.expected_count,
            "count_mismatch": run.count_mismatch,
        },
        "last_committed_position": run.last_committed_position,
        "duplicate_of": run.duplicate_of_id,
        "error": {"code": run.error_code, "message": run.error_message} if run.error_code else None,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def run_report(run: ImportRun, *, rejects_limit: int | None = None) -> dict[str, Any]:
    """The run report: summary and the rejects (position, severity, code, message, keys)."""
    report = run_summary(run)
    query = (
        select(ImportReject)
        .where(ImportReject.run_id == run.id)
        .order_by(ImportReject.position.is_(None).desc(), ImportReject.position, ImportReject.id)
    )
    if rejects_limit is not None:
        query = query.limit(rejects_limit)
    report["rejects"] = [
        {
            "id": reject.id,
            "position": reject.position,
            "severity": reject.severity.value,
            "code": reject.code,
            "message": reject.message,
            "keys": reject.keys or {},
            "status": reject.status.value,
        }
        for reject in db.session.scalars(query)
    ]
    return report
