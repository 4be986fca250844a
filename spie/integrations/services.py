"""Admin use cases of the import machinery: upload, resume, replay of rejects, probable matches.

Services flush; the request (or the job) commits. Imports themselves run in jobs
(``spie.integrations.jobs``), enqueued here and pushed after the commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select

from spie.audit.models import AuditAction
from spie.audit.service import record
from spie.common.nir import nir_key, normalize_name
from spie.db import commit, db, utcnow
from spie.errors import Conflict, NotFound, ValidationFailed
from spie.integrations.france_travail.files import expected_columns
from spie.integrations.locks import is_locked
from spie.integrations.models import (
    UNFINISHED_STATUSES,
    ImportReject,
    ImportRun,
    ImportSource,
    ImportStatus,
    ImportTrigger,
    ProbableMatch,
    ProbableMatchStatus,
    RejectSeverity,
    RejectStatus,
)
from spie.integrations.runs import (
    CAF_KIND,
    create_or_resume_run,
    execute_run,
    stale_runs,
)
from spie.integrations.storage import store_path, store_stream
from spie.persons.models import CafRole, Household, Person, Public, Sex

FT_KINDS = ("inscriptions", "cessations", "radiations", "stock")


# ------------------------------------------------------------------------- runs


def upload(
    stream: BinaryIO,
    file_name: str,
    source: ImportSource,
    kind: str | None,
    agent_id: int,
    *,
    force: bool = False,
    max_bytes: int | None = None,
) -> ImportRun:
    """Store an uploaded file and enqueue its import (pushed after the request commits)."""
    from spie.integrations.france_travail.files import kind_from_filename
    from spie.integrations.jobs import import_run

    if source == ImportSource.CAF:
        kind = CAF_KIND
    else:
        kind = kind or kind_from_filename(file_name)
        if kind not in FT_KINDS:
            raise ValidationFailed(
                "Type de fichier France Travail inconnu.",
                errors={"kind": [f"Indiquez le type : {', '.join(FT_KINDS)}."]},
            )
    try:
        stored = store_stream(stream, file_name, max_bytes=max_bytes)
    except ValueError as exc:
        raise ValidationFailed("Fichier trop volumineux.", errors={"file": [str(exc)]}) from None
    if stored.size_bytes == 0:
        raise ValidationFailed("Fichier vide.", errors={"file": ["Le fichier est vide."]})
    run = create_or_resume_run(
        source=source,
        kind=kind,
        file_name=stored.file_name,
        checksum=stored.checksum,
        size_bytes=stored.size_bytes,
        trigger=ImportTrigger.UPLOAD,
        file_id=stored.id,
        force=force,
        requested_by_id=agent_id,
    )
    if run.status == ImportStatus.QUEUED or run.status == ImportStatus.FAILED:
        run.job_run_id = import_run.delay(run.id)
    record(
        AuditAction.CREATE,
        "import_run",
        run.id,
        reason="import_upload",
        details={"source": source.value, "kind": kind, "size": stored.size_bytes},
    )
    return run


def resume(run: ImportRun, agent_id: int | None) -> ImportRun:
    """Enqueue an unfinished run again (it restarts after its last committed batch)."""
    from spie.integrations.jobs import import_run

    if run.status not in UNFINISHED_STATUSES:
        raise Conflict(
            f"L'import {run.id} est terminé ({run.status.value}) : rien à reprendre.",
            code="run_finished",
        )
    if run.file_id is None:
        _store_local_file(run)
    run.job_run_id = import_run.delay(run.id)
    record(AuditAction.UPDATE, "import_run", run.id, reason="import_resume", details={})
    return run


def _store_local_file(run: ImportRun) -> None:
    """A CLI run (file on the CLI's disk) moves to the database so any worker can resume it."""
    path = Path(run.local_path or "")
    if not run.local_path or not path.is_file():
        raise Conflict(
            f"Le fichier de l'import {run.id} n'est plus lisible ici : relancez la commande "
            "qui l'a importé (elle reprend où elle s'est arrêtée).",
            code="file_unavailable",
        )
    stored = store_path(path)
    if stored.checksum != run.checksum:
        raise Conflict(
            f"Le fichier de l'import {run.id} a changé depuis : importez-le à nouveau.",
            code="file_changed",
        )
    run.file_id = stored.id
    run.local_path = None


def requeue_stale_runs() -> list[int]:
    """Runs marked running whose worker died (no heartbeat, lock free): enqueue them again."""
    from spie.integrations.jobs import import_run

    requeued: list[int] = []
    for run in stale_runs():
        if is_locked(f"import:{run.source.value}:{run.kind}:{run.checksum}"):
            continue  # alive, just slow
        if run.file_id is None:
            try:
                _store_local_file(run)
            except Conflict:
                continue
        run.status = ImportStatus.FAILED
        run.error_code = "worker_lost"
        run.error_message = f"worker lost; resumed from position {run.last_committed_position}"
        run.job_run_id = import_run.delay(run.id)
        requeued.append(run.id)
    db.session.flush()
    return requeued


# ------------------------------------------------------------------------- rejects


def correct_reject(reject: ImportReject, raw_fragment: str, agent_id: int) -> ImportReject:
    """An admin fixes the raw record before replaying it."""
    if reject.status != RejectStatus.OPEN or reject.raw_fragment is None:
        raise Conflict("Ce rejet n'est pas rejouable.", code="reject_not_replayable")
    reject.raw_fragment = raw_fragment
    db.session.flush()
    record(
        AuditAction.UPDATE,
        "import_reject",
        reject.id,
        reason="reject_corrected",
        details={"fields": ["raw_fragment"]},
    )
    return reject


def ignore_reject(reject: ImportReject, agent_id: int) -> ImportReject:
    if reject.status != RejectStatus.OPEN:
        raise Conflict("Ce rejet est déjà traité.", code="reject_closed")
    reject.status = RejectStatus.IGNORED
    reject.replayed_by_id = agent_id
    reject.replayed_at = utcnow()
    db.session.flush()
    record(AuditAction.UPDATE, "import_reject", reject.id, reason="reject_ignored", details={})
    return reject


def replayable(run_id: int, reject_ids: list[int] | None = None) -> list[ImportReject]:
    query = (
        select(ImportReject)
        .where(
            ImportReject.run_id == run_id,
            ImportReject.status == RejectStatus.OPEN,
            ImportReject.severity == RejectSeverity.ERROR,
            ImportReject.raw_fragment.is_not(None),
        )
        .order_by(ImportReject.position, ImportReject.id)
    )
    if reject_ids is not None:
        query = query.where(ImportReject.id.in_(reject_ids))
    return list(db.session.scalars(query))


def _caf_replay_document(run: ImportRun, fragments: list[str]) -> bytes:
    schema = run.flow_schema or "vrsb0801"
    dtref = (run.flow_dtref or dt.date.today()).isoformat()  # noqa: DTZ011 - a file date
    header = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Racine xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:noNamespaceSchemaLocation="{schema}.xsd">\n'
        "<IdentificationFlux>\n<APPLIEME>SPIE</APPLIEME>\n"
        f"<TYPEFLUX>{run.flow_type or 'I'}</TYPEFLUX>\n<NATFLUX>D</NATFLUX>\n"
        f"<DTCREAFLUX>{dtref}</DTCREAFLUX>\n<DTREF>{dtref}</DTREF>\n</IdentificationFlux>\n"
    )
    trailer = (
        f"<TransmissionFlux>\n<NBTOTDOSRSATRANSM>{len(fragments)}</NBTOTDOSRSATRANSM>\n"
        "</TransmissionFlux>\n</Racine>\n"
    )
    return (header + "\n".join(fragments) + "\n" + trailer).encode("utf-8")


def _ft_replay_document(run: ImportRun, lines: list[str]) -> bytes:
    header = ";".join(expected_columns(run.kind))
    return ("\n".join([header, *lines]) + "\n").encode("utf-8")


def replay_open_rejects(
    run_id: int, agent_id: int | None, reject_ids: list[int] | None = None
) -> dict[str, Any]:
    """Replay the open error rejects of a run (all, or ``reject_ids``) as a new run built from
    their raw fragments and the original file's header; a reject whose record now imports is
    marked ``replayed``. Runs the import here (commits)."""
    original = db.session.get(ImportRun, run_id)
    if original is None:
        raise NotFound(f"Import {run_id} introuvable.")
    rejects = replayable(run_id, reject_ids)
    if not rejects:
        return {"run_id": run_id, "replayed": 0, "still_rejected": 0, "replay_run_id": None}
    fragments = [reject.raw_fragment or "" for reject in rejects]
    if original.source == ImportSource.CAF:
        content = _caf_replay_document(original, fragments)
    else:
        content = _ft_replay_document(original, fragments)
    stored = store_stream(io.BytesIO(content), f"replay-{run_id}-{original.file_name}")
    replay = create_or_resume_run(
        source=original.source,
        kind=original.kind,
        file_name=stored.file_name,
        checksum=hashlib.sha256(content).hexdigest(),
        size_bytes=len(content),
        trigger=ImportTrigger.REPLAY,
        file_id=stored.id,
        force=True,
        batch_size=max(1, len(rejects)),
        requested_by_id=agent_id,
        replay_of_run_id=original.id,
    )
    replay.initial_stock = original.initial_stock
    replay_id = replay.id
    commit()
    execute_run(replay_id)
    still = {
        reject.position
        for reject in db.session.scalars(
            select(ImportReject).where(
                ImportReject.run_id == replay_id,
                ImportReject.severity == RejectSeverity.ERROR,
            )
        )
    }
    replayed = 0
    for index, reject in enumerate(rejects, start=1):
        # CAF: household ordinal in the replay file; France Travail: line (header is line 1).
        position = index if original.source == ImportSource.CAF else index + 1
        if position in still:
            continue
        reject.status = RejectStatus.REPLAYED
        reject.replayed_at = utcnow()
        reject.replayed_by_id = agent_id
        reject.replay_run_id = replay_id
        replayed += 1
    record(
        AuditAction.UPDATE,
        "import_run",
        original.id,
        reason="rejects_replayed",
        details={"replay_run_id": replay_id, "replayed": replayed},
    )
    commit()
    return {
        "run_id": run_id,
        "replay_run_id": replay_id,
        "replayed": replayed,
        "still_rejected": len(rejects) - replayed,
    }


# ------------------------------------------------------------------------- probable matches


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _apply_payload(person: Person, match: ProbableMatch, created: bool) -> None:
    """Link ``person`` to the CAF household of the match and apply the held record: NIR (if
    usable), address, SDD observation and clock (same rules as the importer)."""
    from spie.orientation.clock_events import sdd_entered, sdd_left
    from spie.orientation.models import ClockStartBasis
    from spie.parcours.clocks import pause_clocks, resume_clocks
    from spie.persons.services import record_sdd_state, set_address

    payload = match.payload
    data = payload["person"]
    house = payload["household"]
    household = db.session.scalar(
        select(Household).where(
            Household.caf_numorg == match.caf_numorg, Household.caf_matricule == match.caf_matricule
        )
    )
    if household is None:
        raise Conflict("Le foyer CAF de ce rapprochement n'existe plus.", code="household_missing")
    was_sdd = person.bound_by_duties and not created
    person.household_id = household.id
    role = data.get("role")
    person.caf_role = CafRole(role) if role in {r.value for r in CafRole} else None
    person.public = Public.BRSA
    nir13 = data.get("nir13")
    if nir13 and data.get("nir_key_valid") and not person.nir_verified:
        person.nir, person.nir_key, person.nir_verified = nir13, nir_key(nir13), True
    if person.france_travail_id is None and data.get("france_travail_id"):
        ft_id = data["france_travail_id"]
        if 8 <= len(ft_id) <= 11:
            person.france_travail_id = ft_id
    address = house.get("address")
    if address:
        line = " ".join(
            part
            for part in (
                address.get("street_number"),
                address.get("street_type"),
                address.get("street_name"),
            )
            if part
        )
        person.address_line = line[:300] or None
        postal = address.get("postal_code")
        person.postal_code = postal if postal and len(postal) == 5 else None
        from spie.territories.models import Commune

        insee = address.get("insee_code")
        set_address(person, insee if insee and db.session.get(Commune, insee) else None)
    db.session.flush()
    effective = bool(payload.get("effective"))
    record_sdd_state(
        person,
        house.get("etat"),
        bool(payload.get("sdd_flag")),
        match.flow_dtref,
        f"caf:review:{match.flow_dtref.isoformat()}",
    )
    person.bound_by_duties = effective
    db.session.flush()
    if effective and not was_sdd:
        start = _date(data.get("sdd_start"))
        if start is not None:
            basis, estimated = ClockStartBasis.DDSOUDRODEV, False
        elif match.initial_stock:
            start = _date(house.get("dtdemrsa")) or match.flow_dtref
            basis, estimated = ClockStartBasis.RSA_REQUEST, True
        else:
            start = _date(payload.get("sdd_since")) or match.flow_dtref
            basis, estimated = ClockStartBasis.FLOW_ENTRY, False
        resume_clocks(person.id, start)
        sdd_entered(person, start, basis, estimated)
    elif was_sdd and not effective:
        sdd_left(person, match.flow_dtref, "left_sdd")
        pause_clocks(person.id, match.flow_dtref, "left_sdd")


def _pending(match: ProbableMatch) -> None:
    if match.status != ProbableMatchStatus.PENDING:
        raise Conflict(
            f"Ce rapprochement a déjà été traité ({match.status.value}).", code="match_decided"
        )


def confirm_match(match: ProbableMatch, agent_id: int) -> Person:
    """Same person: the held record is applied to the candidate."""
    _pending(match)
    person = db.session.get(Person, match.candidate_person_id)
    if person is None:
        raise NotFound("La personne candidate n'existe plus.")
    _apply_payload(person, match, created=False)
    match.status = ProbableMatchStatus.CONFIRMED
    match.decided_at = utcnow()
    match.decided_by_id = agent_id
    match.resulting_person_id = person.id
    db.session.flush()
    record(
        AuditAction.UPDATE,
        "person",
        person.id,
        person_id=person.id,
        reason="probable_match_confirmed",
        details={"match_id": match.id, "fields": ["household_id", "caf_role"]},
    )
    return person


def reject_match(match: ProbableMatch, agent_id: int) -> Person:
    """Another person: a new person is created from the held record."""
    _pending(match)
    data = match.payload["person"]
    birth_date = _date(data.get("birth_date"))
    if birth_date is None:  # pragma: no cover - the parser requires it
        raise ValidationFailed("Date de naissance absente du rapprochement.")
    last_name = (data.get("last_name") or "")[:100]
    first_name = (data.get("first_name") or "")[:100]
    person = Person(
        public=Public.BRSA,
        civility=(data.get("qual") or None) and data["qual"][:3],
        last_name=last_name,
        birth_name=(data.get("birth_name") or None),
        first_name=first_name,
        other_first_names=" ".join(data.get("other_first_names") or [])[:200] or None,
        search_name=normalize_name(f"{last_name} {first_name}")[:220],
        birth_date=birth_date,
        birth_place=data.get("birth_place"),
        sex=Sex(data["sex"]) if data.get("sex") in ("1", "2") else None,
        nir_verified=False,
        bound_by_duties=False,
    )
    nir13 = data.get("nir13")
    if nir13 and not data.get("nir_key_valid"):
        person.nir = nir13
        key = data.get("nir_key")
        person.nir_key = int(key) if key and key.isdigit() and 1 <= int(key) <= 97 else None
    db.session.add(person)
    db.session.flush()
    record(
        AuditAction.CREATE,
        "person",
        person.id,
        person_id=person.id,
        reason="probable_match_rejected",
        details={"match_id": match.id, "public": Public.BRSA.value},
    )
    _apply_payload(person, match, created=True)
    match.status = ProbableMatchStatus.REJECTED
    match.decided_at = utcnow()
    match.decided_by_id = agent_id
    match.resulting_person_id = person.id
    db.session.flush()
    return person
