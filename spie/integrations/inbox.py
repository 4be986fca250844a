"""The watched inbox: partner files dropped in a folder, imported on a schedule.

``SPIE_IMPORT_INBOX`` names a folder (an SFTP landing directory...). A scan — ``flask spie
import scan-inbox`` from cron or a systemd timer every few minutes, or ``--loop`` — takes every
settled file (unchanged for ``SPIE_IMPORT_INBOX_SETTLE_SECONDS``, default 10, so that a file
still being written is left for the next scan), recognises it by name:

- ``*.xml`` (e.g. ``RSABEM_vrsb0801_2026-10-31.xml``): a CAF bénéficiaires flow;
- ``inscriptions*``, ``cessations*``, ``radiations*``, ``stock*`` (``.csv``): France Travail;

copies its bytes into the database (``import_files``), creates (or finds) its run, enqueues
the import on the ``imports`` queue and moves the file to ``<inbox>/done/``. Other files are
left where they are and reported as ignored.

Idempotent and safe with several schedulers: a PostgreSQL advisory lock lets one scan run at a
time, and a file seen again (not moved, or dropped twice) is recognised by its checksum — its
run is a duplicate that changes nothing.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from flask import current_app

from spie.db import unit_of_work
from spie.integrations.france_travail.files import kind_from_filename
from spie.integrations.locks import advisory_lock
from spie.integrations.models import ImportSource, ImportStatus, ImportTrigger
from spie.integrations.runs import CAF_KIND, create_or_resume_run, execute_run
from spie.integrations.storage import store_path

DONE_DIR = "done"


def _setting(name: str) -> str | None:
    value = current_app.config.get(name) or os.environ.get(name)
    return str(value) if value else None


def classify(name: str) -> tuple[ImportSource, str] | None:
    """(source, kind) of an inbox file name, None when it is not a partner file."""
    lowered = name.lower()
    if lowered.endswith(".xml"):
        return ImportSource.CAF, CAF_KIND
    if lowered.endswith((".csv", ".txt")):
        kind = kind_from_filename(name)
        if kind is not None:
            return ImportSource.FRANCE_TRAVAIL, kind
    return None


def scan_configured_inbox(*, enqueue: bool = True) -> dict[str, Any]:
    folder = _setting("SPIE_IMPORT_INBOX")
    if not folder:
        return {"skipped": "SPIE_IMPORT_INBOX is not set"}
    settle = float(_setting("SPIE_IMPORT_INBOX_SETTLE_SECONDS") or 10)
    return scan_inbox(Path(folder), enqueue=enqueue, settle_seconds=settle)


def scan_inbox(
    folder: Path, *, enqueue: bool = True, settle_seconds: float = 10.0
) -> dict[str, Any]:
    """Scan ``folder`` once (see the module docstring). Commits, one file at a time."""
    from spie.integrations.jobs import import_run

    report: dict[str, Any] = {"queued": [], "imported": [], "ignored": [], "waiting": []}
    if not folder.is_dir():
        return {"skipped": f"inbox folder {folder} does not exist"}
    with advisory_lock("import-inbox-scan") as taken:
        if not taken:
            return {"skipped": "another inbox scan is running"}
        now = time.time()
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.name.startswith("."):
                continue
            classified = classify(path.name)
            if classified is None:
                report["ignored"].append(path.name)
                continue
            if now - path.stat().st_mtime < settle_seconds:
                report["waiting"].append(path.name)
                continue
            source, kind = classified
            with unit_of_work():
                stored = store_path(path)
                run = create_or_resume_run(
                    source=source,
                    kind=kind,
                    file_name=path.name,
                    checksum=stored.checksum,
                    size_bytes=stored.size_bytes,
                    trigger=ImportTrigger.INBOX,
                    file_id=stored.id,
                )
                run_id = run.id
                if enqueue and run.status == ImportStatus.QUEUED:
                    run.job_run_id = import_run.delay(run.id)
            if enqueue:
                report["queued"].append({"file": path.name, "run_id": run_id})
            else:
                outcome = execute_run(run_id)
                report["imported"].append(
                    {"file": path.name, "run_id": run_id, "status": outcome["status"]}
                )
            _archive(folder, path, run_id)
    return report


def _archive(folder: Path, path: Path, run_id: int) -> None:
    """Move a stored file out of the way (its bytes are in the database now)."""
    done = folder / DONE_DIR
    try:
        done.mkdir(exist_ok=True)
        target = done / path.name
        if target.exists():
            target = done / f"{path.stem}.run{run_id}{path.suffix}"
        shutil.move(str(path), str(target))
    except OSError:
        pass  # read-only inbox: the checksum recognises the file next time
