"""``flask --app wsgi spie import ...``: partner file imports and France Travail sending.

    spie import caf PATH [--json] [--enqueue] [--force] [--batch-size N]
    spie import france-travail --kind KIND PATH [--json] [--enqueue] [--force]
    spie import ft-sync [--json] [--limit N]
    spie import scan-inbox [--json] [--loop --interval SECONDS]
    spie import resume-stale [--json]
    spie import replay-rejects RUN_ID [--json]
    spie import review-radiations

By default an import runs in this process (the file is read where it is) and ``--json`` prints
the run report; ``--enqueue`` stores the file in the database and puts the job on the rq
``imports`` queue instead (any worker can run it). Running the same command again after an
interruption resumes the interrupted run from its last committed batch.
Exit status: 0 when the run is done or a duplicate, 1 otherwise.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from spie.db import commit, db, unit_of_work

import_group = click.Group("import", help="Partner imports (CAF, France Travail) and sending.")


def _batch_size(option: int | None) -> int:
    if option:
        return option
    value = current_app.config.get("SPIE_IMPORT_BATCH_SIZE") or os.environ.get(
        "SPIE_IMPORT_BATCH_SIZE"
    )
    return int(value) if value else 1000


def _print(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2, default=str))
        return
    counts = report.get("counts", {})
    click.echo(
        f"run {report['run_id']} {report['source']}/{report['kind']} {report['status']}: "
        + ", ".join(f"{name} {value}" for name, value in counts.items())
    )
    error = report.get("error")
    if error:
        click.echo(f"  {error['code']}: {error['message']}")
    for reject in report.get("rejects", [])[:50]:
        where = "file" if reject["position"] is None else f"#{reject['position']}"
        click.echo(f"  {reject['severity']} {where} {reject['code']}: {reject['message']}")
    if len(report.get("rejects", [])) > 50:
        click.echo(f"  ... {len(report['rejects']) - 50} more (see --json)")


def _run_import(
    source: str,
    kind: str,
    path: Path,
    *,
    as_json: bool,
    enqueue: bool,
    force: bool,
    batch_size: int | None,
) -> None:
    from spie.integrations.jobs import import_run
    from spie.integrations.models import ImportSource, ImportTrigger
    from spie.integrations.runs import create_or_resume_run, run_report
    from spie.integrations.storage import file_checksum, store_path
    from spie.jobs.core import execute
    from spie.jobs.models import JobRun, JobStatus

    resolved = path.resolve()
    import_source = ImportSource(source)
    with unit_of_work():
        if enqueue:
            stored = store_path(resolved)
            run = create_or_resume_run(
                source=import_source,
                kind=kind,
                file_name=resolved.name,
                checksum=stored.checksum,
                size_bytes=stored.size_bytes,
                trigger=ImportTrigger.CLI,
                file_id=stored.id,
                force=force,
                batch_size=_batch_size(batch_size),
            )
            run.job_run_id = import_run.delay(run.id)
        else:
            checksum, size = file_checksum(resolved)
            run = create_or_resume_run(
                source=import_source,
                kind=kind,
                file_name=resolved.name,
                checksum=checksum,
                size_bytes=size,
                trigger=ImportTrigger.CLI,
                local_path=str(resolved),
                force=force,
                batch_size=_batch_size(batch_size),
            )
            if batch_size:
                run.batch_size = batch_size
            job_id = str(uuid.uuid4())
            db.session.add(
                JobRun(
                    id=job_id,
                    name=import_run.name,
                    queue=import_run.queue,
                    status=JobStatus.QUEUED,
                    arguments={"args": [run.id], "kwargs": {}},
                    max_attempts=1,
                )
            )
            run.job_run_id = job_id
        run_id = run.id
    if enqueue:
        click.echo(
            json.dumps({"run_id": run_id, "status": "queued"})
            if as_json
            else f"run {run_id} queued on 'imports'"
        )
        return
    failure: Exception | None = None
    try:
        execute(import_run.name, job_id, [run_id], {})
    except Exception as exc:  # recorded on the run and the job; reported below
        failure = exc
    from spie.integrations.models import ImportRun

    db.session.expire_all()
    finished = db.session.get(ImportRun, run_id)
    if finished is None:  # pragma: no cover - the run was committed above
        raise click.ClickException(f"run {run_id} vanished")
    report = run_report(finished)
    if failure is not None and report["error"] is None:
        # The exception's type only: its message may quote data (an integrity error...).
        report["error"] = {"code": type(failure).__name__, "message": type(failure).__name__}
    _print(report, as_json)
    commit()
    if report["status"] not in ("done", "duplicate"):
        sys.exit(1)


@import_group.command("caf")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")
@click.option("--enqueue", is_flag=True, help="Store the file and run the import on a worker.")
@click.option("--force", is_flag=True, help="Import even if this file was already imported.")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=None)
@with_appcontext
def import_caf(
    path: Path, as_json: bool, enqueue: bool, force: bool, batch_size: int | None
) -> None:
    """Import a CAF bénéficiaires flow (XML, vrsb0801 or vrsd0301)."""
    from spie.integrations.runs import CAF_KIND

    _run_import(
        "caf",
        CAF_KIND,
        path,
        as_json=as_json,
        enqueue=enqueue,
        force=force,
        batch_size=batch_size,
    )


@import_group.command("france-travail")
@click.option(
    "--kind",
    type=click.Choice(["inscriptions", "cessations", "radiations", "stock"]),
    default=None,
    help="File kind (default: from the file name).",
)
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")
@click.option("--enqueue", is_flag=True, help="Store the file and run the import on a worker.")
@click.option("--force", is_flag=True, help="Import even if this file was already imported.")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=None)
@with_appcontext
def import_france_travail(
    kind: str | None,
    path: Path,
    as_json: bool,
    enqueue: bool,
    force: bool,
    batch_size: int | None,
) -> None:
    """Import a France Travail monthly file (CSV)."""
    from spie.integrations.france_travail.files import kind_from_filename

    kind = kind or kind_from_filename(path.name)
    if kind is None:
        raise click.UsageError("--kind is required (the file name does not tell the kind)")
    _run_import(
        "france_travail",
        kind,
        path,
        as_json=as_json,
        enqueue=enqueue,
        force=force,
        batch_size=batch_size,
    )


@import_group.command("ft-sync")
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=None)
@with_appcontext
def ft_sync(as_json: bool, limit: int | None) -> None:
    """Send the pending orientation decisions to France Travail (run report)."""
    from spie.integrations.ft_sync import FtNotConfiguredError, sync_pending

    try:
        report = sync_pending(limit=limit)
    except FtNotConfiguredError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        click.echo(", ".join(f"{name} {value}" for name, value in report["counts"].items()))
    if report["counts"].get("failed") or report["counts"].get("retry_later"):
        sys.exit(1)


@import_group.command("scan-inbox")
@click.option("--json", "as_json", is_flag=True)
@click.option("--loop", is_flag=True, help="Scan again every --interval seconds.")
@click.option("--interval", type=click.IntRange(5, 86_400), default=300, show_default=True)
@click.option("--run-now", is_flag=True, help="Run the imports here instead of enqueueing.")
@with_appcontext
def scan_inbox_command(as_json: bool, loop: bool, interval: int, run_now: bool) -> None:
    """Store the new files of SPIE_IMPORT_INBOX in the database and import them."""
    from spie.integrations.inbox import scan_configured_inbox

    while True:
        report = scan_configured_inbox(enqueue=not run_now)
        click.echo(json.dumps(report, ensure_ascii=False) if as_json else _inbox_text(report))
        if not loop:
            return
        time.sleep(interval)


def _inbox_text(report: dict[str, Any]) -> str:
    if report.get("skipped"):
        return f"inbox: {report['skipped']}"
    return f"inbox: {len(report.get('queued', []))} file(s) queued, {report.get('known', 0)} known"


@import_group.command("resume-stale")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def resume_stale(as_json: bool) -> None:
    """Re-enqueue the runs whose worker died (heartbeat stopped, lock free)."""
    from spie.integrations.services import requeue_stale_runs

    with unit_of_work():
        runs = requeue_stale_runs()
    click.echo(json.dumps({"requeued": runs}) if as_json else f"requeued runs: {runs}")


@import_group.command("replay-rejects")
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def replay_rejects(run_id: int, as_json: bool) -> None:
    """Replay the open rejects of RUN_ID (after a fix of the reference data or the code)."""
    from spie.integrations.services import replay_open_rejects

    report = replay_open_rejects(run_id, None)
    click.echo(json.dumps(report, ensure_ascii=False) if as_json else str(report))


@import_group.command("review-radiations")
@with_appcontext
def review_radiations() -> None:
    """Flag for review the SDD people radiated by France Travail for too long (daily)."""
    from spie.integrations.france_travail.importer import review_long_radiations

    with unit_of_work():
        flagged = review_long_radiations()
    click.echo(json.dumps({"flagged": flagged}))
