"""Apply France Travail monthly files (FLOWS.md §2): registration state and history per NIR.

One :class:`FtRegistration` per NIR (linked to the spie person with the same verified NIR and
birth date, else the same France Travail id) holds the current state — ``inscrit`` (with the
category), ``cessation`` or ``radiation`` (with the reason) — and one
:class:`FtRegistrationEvent` per event (kind, date, code): ``inscriptions`` and ``stock`` lines
are inscription events, ``cessations`` and ``radiations`` theirs. Re-reading a line adds
nothing (the event is known); the state follows the newest event — an older one never
overwrites it; on the same day a radiation outranks a cessation, which outranks an inscription
(the result does not depend on the order the files arrive in).

A new radiation of a person bound by duties raises an alert for their référent
(``raise_alert(..., FT_RADIATION)``); :func:`review_long_radiations` flags for review those
still radiated after ``SPIE_FT_RADIATION_REVIEW_AFTER`` (default ``2m``) without a new
inscription.

Lines are processed in batches (``ImportRun.batch_size``, at least 5,000 here) with a few
queries per batch and bulk writes; the checkpoint is the file's line number.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, select

from spie.audit.models import AuditAction, AuditEvent
from spie.clocks.calendar import add_duration, parse_duration
from spie.clocks.today import paris_today
from spie.db import commit, db, utcnow
from spie.integrations import bulk
from spie.integrations.france_travail.files import (
    FtFileError,
    FtRecord,
    FtRecordError,
    iter_ft_file,
)
from spie.integrations.models import (
    FtEventKind,
    FtRegistration,
    FtRegistrationEvent,
    FtRegistrationState,
    ImportReject,
    ImportRun,
    ImportStatus,
    RejectSeverity,
    RejectStatus,
)
from spie.integrations.readahead import read_ahead
from spie.integrations.runs import refuse
from spie.integrations.storage import run_file_path
from spie.persons.models import Person

REG = cast(Table, FtRegistration.__table__)
EVT = cast(Table, FtRegistrationEvent.__table__)
P = cast(Table, Person.__table__)
AUDIT = cast(Table, AuditEvent.__table__)
REJECTS = cast(Table, ImportReject.__table__)

MIN_BATCH = 5000
EVENT_OF_KIND = {
    "inscriptions": FtEventKind.INSCRIPTION,
    "stock": FtEventKind.INSCRIPTION,
    "cessations": FtEventKind.CESSATION,
    "radiations": FtEventKind.RADIATION,
}
STATE_OF_EVENT = {
    FtEventKind.INSCRIPTION: FtRegistrationState.INSCRIT,
    FtEventKind.CESSATION: FtRegistrationState.CESSATION,
    FtEventKind.RADIATION: FtRegistrationState.RADIATION,
}
_RANK = {
    FtRegistrationState.INSCRIT: 1,
    FtRegistrationState.CESSATION: 2,
    FtRegistrationState.RADIATION: 3,
}
_REG_FIELDS = (
    "france_travail_id",
    "state",
    "state_since",
    "category",
    "reason_code",
    "reason_label",
    "agency",
    "commune_insee",
    "person_id",
)


def _clip(value: str | None, size: int) -> str | None:
    return value[:size] if value else None


class FtImporter:
    def __init__(self, run: ImportRun) -> None:
        self.run = run
        self.run_id = run.id
        self.kind = run.kind
        self.event_kind = EVENT_OF_KIND[run.kind]
        self.actor = f"import:france_travail:{run.id}"
        self.batch_size = max(run.batch_size, MIN_BATCH)
        self._details: Counter[str] = Counter((run.details or {}).get("france_travail", {}))

    def execute(self) -> None:
        run = self.run
        with run_file_path(run) as path, Path(path).open("rb") as raw:
            try:
                records = iter_ft_file(raw, self.kind)
            except FtFileError as exc:
                refuse(run, exc.code, exc.message)
                commit()
                return
            run.flow_schema = self.kind[:10]
            batch: list[FtRecord | FtRecordError] = []
            last_line = run.last_committed_position
            # The next lines are parsed by a thread while this one waits for PostgreSQL.
            with closing(read_ahead(records)) as ahead:
                for record in ahead:
                    line = record.line_no
                    last_line = max(last_line, line)
                    if line <= run.last_committed_position:
                        continue  # committed by an interrupted attempt
                    batch.append(record)
                    if len(batch) >= self.batch_size:
                        self._apply(batch, line)
                        batch = []
            self._apply(batch, last_line)
        run.status = ImportStatus.DONE
        run.finished_at = utcnow()
        commit()

    # ------------------------------------------------------------------ a batch

    def _apply(self, batch: list[FtRecord | FtRecordError], position: int) -> None:
        run = self.run
        counts: Counter[str] = Counter()
        if batch:
            self._apply_records(batch, counts)
        run.created_count += counts["created"]
        run.updated_count += counts["updated"]
        run.unchanged_count += counts["unchanged"]
        run.rejected_count += counts["rejected"]
        run.warning_count += counts["warnings"]
        for name in ("events", "persons_linked", "persons_updated", "alerts", "unknown_persons"):
            if counts[name]:
                self._details[name] += counts[name]
        details = dict(run.details or {})
        details["france_travail"] = dict(self._details)
        run.details = details
        run.read_count += len(batch)
        run.last_committed_position = max(position, run.last_committed_position)
        run.heartbeat_at = utcnow()
        bulk.commit_without_waiting_for_disk()
        commit()

    def _reject(
        self, line: int, code: str, message: str, raw: str | None, now: dt.datetime
    ) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "position": line,
            "severity": RejectSeverity.ERROR,
            "code": code[:40],
            "message": message,
            "keys": {"line": line},
            "raw_fragment": raw,
            "status": RejectStatus.OPEN,
            "created_at": now,
            "replayed_at": None,
            "replayed_by_id": None,
            "replay_run_id": None,
        }

    def _apply_records(self, batch: list[FtRecord | FtRecordError], counts: Counter[str]) -> None:
        now = utcnow()
        rejects: list[dict[str, Any]] = []
        records: list[FtRecord] = []
        for record in batch:
            if isinstance(record, FtRecordError):
                message = record.message
                if record.column and record.column not in message:
                    message = f"{record.column}: {message}"
                rejects.append(self._reject(record.line_no, record.code, message, record.raw, now))
                counts["rejected"] += 1
            elif not record.nir_key_valid:
                rejects.append(
                    self._reject(
                        record.line_no,
                        "bad_nir_key",
                        "nir: the 2-digit key given does not match the 13 characters "
                        "(a NIR with a wrong key is never used to identify a person)",
                        None,
                        now,
                    )
                )
                counts["rejected"] += 1
            else:
                records.append(record)
        if records:
            self._apply_valid(records, counts, now)
        bulk.insert_rows(REJECTS, rejects)

    def _apply_valid(self, records: list[FtRecord], counts: Counter[str], now: dt.datetime) -> None:
        nirs = {record.nir13 for record in records}
        registrations: dict[str, dict[str, Any]] = {
            row["nir"]: dict(row)
            for row in db.session.execute(
                select(REG).where(bulk.in_values(REG.c.nir, nirs))
            ).mappings()
        }
        known_events: set[tuple[str, FtEventKind, dt.date, str]] = {
            (row[0], row[1], row[2], row[3])
            for row in db.session.execute(
                select(EVT.c.nir, EVT.c.kind, EVT.c.event_on, EVT.c.code).where(
                    bulk.in_values(EVT.c.nir, nirs), EVT.c.kind == self.event_kind
                )
            )
        }
        persons_by_nir: dict[tuple[str, dt.date], dict[str, Any]] = {}
        for row in db.session.execute(
            select(
                P.c.id, P.c.nir, P.c.birth_date, P.c.france_travail_id, P.c.bound_by_duties
            ).where(bulk.in_values(P.c.nir, nirs), P.c.nir_verified.is_(True))
        ).mappings():
            persons_by_nir.setdefault((row["nir"], row["birth_date"]), dict(row))
        missing_ids = {
            record.france_travail_id
            for record in records
            if (record.nir13, record.birth_date) not in persons_by_nir
        }
        persons_by_ftid: dict[str, dict[str, Any]] = {}
        if missing_ids:
            for row in db.session.execute(
                select(
                    P.c.id, P.c.nir, P.c.birth_date, P.c.france_travail_id, P.c.bound_by_duties
                ).where(bulk.in_values(P.c.france_travail_id, missing_ids))
            ).mappings():
                persons_by_ftid.setdefault(row["france_travail_id"], dict(row))

        kind = self.event_kind
        # Decided once: an enum member looked up on its class costs a descriptor call per line.
        inscription = kind == FtEventKind.INSCRIPTION
        radiation = kind == FtEventKind.RADIATION
        state_of_line = STATE_OF_EVENT[kind]
        new_regs: list[dict[str, Any]] = []
        dirty: dict[str, dict[str, Any]] = {}
        events: list[dict[str, Any]] = []
        person_ft_ids: dict[int, str] = {}
        alerts: list[tuple[int, dt.date, str]] = []
        for record in records:
            person = persons_by_nir.get((record.nir13, record.birth_date)) or persons_by_ftid.get(
                record.france_travail_id
            )
            reg = registrations.get(record.nir13)
            values = {
                "france_travail_id": record.france_travail_id,
                "state": state_of_line,
                "state_since": record.event_date,
                "category": record.code[:2] if inscription else None,
                "reason_code": None if inscription else record.code[:10],
                "reason_label": _clip(record.reason, 200),
                "agency": _clip(record.agency, 120),
                "commune_insee": record.insee_code
                if record.insee_code and len(record.insee_code) == 5
                else None,
            }
            created = False
            if reg is None:
                reg = {  # no "id": a new registration (its row as inserted)
                    "nir": record.nir13,
                    "birth_date": record.birth_date,
                    "person_id": person["id"] if person else None,
                    **values,
                    "updated_run_id": self.run_id,
                    "updated_at": now,
                }
                registrations[record.nir13] = reg
                new_regs.append(reg)
                created = True
                counts["created"] += 1
                if person is not None:
                    counts["persons_linked"] += 1
            event_key = (record.nir13, kind, record.event_date, record.code[:10])
            if event_key in known_events:
                counts["unchanged"] += 1
            else:
                known_events.add(event_key)
                events.append(
                    {
                        "nir": record.nir13,
                        "kind": kind,
                        "event_on": record.event_date,
                        "code": record.code[:10],
                        "reason_label": _clip(record.reason, 200),
                        "agency": _clip(record.agency, 120),
                        "run_id": self.run_id,
                        "line_no": record.line_no,
                    }
                )
                counts["events"] += 1
                if not created:
                    newer = (record.event_date, _RANK[state_of_line]) > (
                        reg["state_since"],
                        _RANK[reg["state"]],  # StrEnum: the stored value finds its member
                    )
                    if newer:
                        reg.update(values)
                        reg["updated_run_id"] = self.run_id
                        reg["updated_at"] = now
                        if "id" in reg:
                            dirty[record.nir13] = reg
                    counts["updated"] += 1
                if radiation and person is not None and person["bound_by_duties"]:
                    alerts.append((person["id"], record.event_date, record.code[:10]))
            if person is not None:
                if reg["person_id"] != person["id"]:
                    reg["person_id"] = person["id"]
                    if "id" in reg:
                        dirty[record.nir13] = reg
                    counts["persons_linked"] += 1
                if person["france_travail_id"] != record.france_travail_id:
                    person_ft_ids[person["id"]] = record.france_travail_id
                    person["france_travail_id"] = record.france_travail_id
            else:
                counts["unknown_persons"] += 1

        bulk.insert_rows(REG, new_regs)
        bulk.update_rows(
            REG,
            [
                {"id": reg["id"], **{name: reg[name] for name in _REG_FIELDS}, "updated_at": now}
                for reg in dirty.values()
            ],
        )
        bulk.insert_rows(EVT, events)
        if person_ft_ids:
            bulk.update_rows(
                P,
                [
                    {"id": pid, "france_travail_id": ft_id, "updated_at": now}
                    for pid, ft_id in person_ft_ids.items()
                ],
                versioned=True,
            )
            bulk.insert_rows(
                AUDIT,
                [
                    bulk.audit_row(
                        AuditAction.UPDATE,
                        "person",
                        pid,
                        person_id=pid,
                        reason="france_travail_import",
                        details={"run": self.run_id, "fields": ["france_travail_id"]},
                        actor_label=self.actor,
                        at=now,
                    )
                    for pid in person_ft_ids
                ],
            )
            counts["persons_updated"] += len(person_ft_ids)
        if alerts:
            self._alerts(alerts, counts)

    def _alerts(self, alerts: list[tuple[int, dt.date, str]], counts: Counter[str]) -> None:
        from spie.parcours.alerts import AlertKind, raise_alert

        persons = {
            person.id: person
            for person in db.session.execute(
                select(Person)
                .where(Person.id.in_({pid for pid, _on, _code in alerts}))
                .execution_options(populate_existing=True)
            ).scalars()
        }
        for pid, on, code in alerts:
            raise_alert(
                persons[pid],
                AlertKind.FT_RADIATION,
                due_on=on,
                details={"motif": code},
                source_type="ft_registration",
            )
            counts["alerts"] += 1


def review_after() -> str:
    from flask import current_app

    return str(
        current_app.config.get("SPIE_FT_RADIATION_REVIEW_AFTER")
        or os.environ.get("SPIE_FT_RADIATION_REVIEW_AFTER")
        or "2m"
    )


def review_long_radiations(today: dt.date | None = None) -> int:
    """Flag for review the persons bound by duties radiated for longer than the configured
    delay without a new inscription (idempotent: one review per radiation). Flushes."""
    from spie.parcours.alerts import flag_for_review

    today = today or paris_today()
    delay = parse_duration(review_after())
    rows = db.session.execute(
        select(Person, FtRegistration.state_since)
        .join(FtRegistration, FtRegistration.person_id == Person.id)
        .where(
            FtRegistration.state == FtRegistrationState.RADIATION,
            Person.bound_by_duties.is_(True),
        )
        .order_by(FtRegistration.id)
    ).all()
    flagged = 0
    for person, since in rows:
        due = add_duration(since, delay)
        if due <= today:
            flag_for_review(person, "ft_radiation_no_reregistration", on=due)
            flagged += 1
    return flagged
