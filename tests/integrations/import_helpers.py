"""Helpers for the import tests: run an import of bytes or a path, snapshot the tables."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from spie.db import db
from spie.integrations.models import ImportRun, ImportSource, ImportTrigger
from spie.integrations.runs import CAF_KIND, create_or_resume_run, execute_run
from spie.integrations.storage import file_checksum

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
CAF_SAMPLES = SHARED / "caf"
FT_SAMPLES = SHARED / "france-travail"
MONTHLY = CAF_SAMPLES / "RSABEM_vrsb0801_2026-10-31.xml"
DAILY_B = CAF_SAMPLES / "RSABEI_vrsb0801_2026-11-16.xml"
DAILY_D = CAF_SAMPLES / "RSABEI_vrsd0301_2026-11-17.xml"

_counter = itertools.count(1)


def nir13(n: int, sex: str = "1") -> str:
    """A well-formed 13-character NIR, distinct for each ``n``."""
    return f"{sex}800169{n:06d}"


def write(tmp_path: Path, data: bytes, name: str | None = None) -> Path:
    path = tmp_path / (name or f"flow-{next(_counter)}.xml")
    path.write_bytes(data)
    return path


def start(
    path: Path,
    *,
    source: ImportSource = ImportSource.CAF,
    kind: str = CAF_KIND,
    batch_size: int = 1000,
    force: bool = False,
) -> ImportRun:
    checksum, size = file_checksum(path)
    return create_or_resume_run(
        source=source,
        kind=kind,
        file_name=path.name,
        checksum=checksum,
        size_bytes=size,
        trigger=ImportTrigger.CLI,
        local_path=str(path),
        force=force,
        batch_size=batch_size,
    )


def run_import(
    tmp_path: Path,
    data: bytes | Path,
    *,
    source: ImportSource = ImportSource.CAF,
    kind: str = CAF_KIND,
    batch_size: int = 1000,
    force: bool = False,
    name: str | None = None,
) -> dict[str, Any]:
    """Import ``data`` (bytes or a path) like the CLI does; returns the run report."""
    path = data if isinstance(data, Path) else write(tmp_path, data, name)
    run = start(path, source=source, kind=kind, batch_size=batch_size, force=force)
    return execute_run(run.id)


def codes(report: dict[str, Any], severity: str | None = None) -> list[tuple[int | None, str]]:
    return [
        (reject["position"], reject["code"])
        for reject in report["rejects"]
        if severity is None or reject["severity"] == severity
    ]


SNAPSHOT_QUERIES = {
    "households": "SELECT caf_numorg, caf_matricule, rsa_request_number, rsa_requested_on, "
    "rsa_state, family_situation, last_flow_on, version FROM households",
    "persons": "SELECT p.nir, p.nir_key, p.nir_verified, p.last_name, p.first_name, "
    "p.birth_date, p.caf_role, h.caf_matricule, p.commune_insee, p.territory_id, "
    "p.bound_by_duties, p.france_travail_id, p.address_line, p.postal_code, p.public, p.version "
    "FROM persons p LEFT JOIN households h ON h.id = p.household_id",
    "sdd_periods": "SELECT p.nir, p.last_name, s.rsa_state, s.bound_by_duties, s.started_on, "
    "s.ended_on, s.source FROM sdd_periods s JOIN persons p ON p.id = s.person_id",
    "orientation_cases": "SELECT p.nir, p.last_name, c.status, c.clock_started_on, "
    "c.start_basis, c.clock_estimated, c.legal_deadline, c.target_date, c.paused_since, "
    "c.paused_days, c.closed_on, c.version FROM orientation_cases c "
    "JOIN persons p ON p.id = c.person_id",
    "fingerprints": "SELECT caf_numorg, caf_matricule, caf_content_hash, last_flow_on "
    "FROM households WHERE caf_content_hash IS NOT NULL",
    "audit": "SELECT resource_type, action, reason, count(*) FROM audit_events "
    "GROUP BY resource_type, action, reason",
}


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """The imported tables, by natural keys (surrogate ids and timestamps left out)."""
    db.session.flush()
    result = {}
    for name, sql in SNAPSHOT_QUERIES.items():
        rows = db.session.execute(text(sql)).all()
        result[name] = sorted((tuple(row) for row in rows), key=repr)
    return result


def count(model: Any) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)
