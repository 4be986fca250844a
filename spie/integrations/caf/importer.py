"""Apply a CAF bénéficiaires flow to the domain (FLOWS.md §1), batch by batch.

For each batch of households (``ImportRun.batch_size``, 1,000 by default) the importer loads
what it needs in a few queries (households and their fingerprints, members of known
households, persons by NIR, open SDD periods, name + birth date candidates), computes the
differences in Python and writes them in bulk (COPY on PostgreSQL), then commits the batch
together with its rejects, its domain effects, the run counters and the checkpoint.

Rules:

- **newer wins**: a household whose ``last_flow_on`` is after the flow's DTREF is left alone;
  a household whose bytes are the same as the last applied version (fingerprint) is skipped
  (before parsing, see :mod:`spie.integrations.caf.scanner`);
- **matching** (in order): NIR (13 characters, key not contradicted) + birth date; CAF
  household (organisme + matricule) + ``ROLEPERS`` (DEM and CJT; other roles also need the same
  birth date and first name) provided no verified NIR contradicts it; normalised last name +
  first name + birth date → a :class:`ProbableMatch` for a human, the record is held;
- **SDD history**: per person, dated intervals of (ETATDOSRSA, TOPPERSDRODEVORSA) — opened at
  the DTREF of the first flow showing a state, closed by the first showing another;
  ``Person.bound_by_duties`` is the effective state: the flag (TOPPERSDRODEVORSA,
  TOPPERSENTDRODEVORSA or an ``ENTDED`` event) for a DEM/CJT, the right not refused or
  closed (ETATDOSRSA 1, 5, 6) and the household not leaving by transfer;
- **clock**: entering SDD opens the orientation case (``sdd_entered``) at DDSOUDRODEV when
  given, else at the DTREF (``flow_entry``), or — in the very first monthly stock — at
  DTDEMRSA, flagged estimated; brand-new persons get their case in bulk with the same policy
  lookup and deadlines (``policy_in_force`` / ``due_dates``); leaving SDD pauses it
  (``sdd_left``: ``right_closed``, ``moved_away`` for a transfer, else ``left_sdd``);
- **address**: the current address (RGADR 01) gives commune and territory; a person moving to
  another territory while followed is flagged for review (``flag_for_review``);
- a known member missing from their household's new flow is detached from it (and leaves
  SDD if they were).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, select, update

from spie.audit.models import AuditAction, AuditEvent
from spie.clocks.models import ClockKind, DelayPolicy
from spie.clocks.services import due_dates, policy_in_force
from spie.common.nir import normalize_name
from spie.db import commit, db, rollback, utcnow
from spie.errors import SpieError
from spie.integrations import bulk
from spie.integrations.caf.parser import CafHousehold, CafPerson
from spie.integrations.caf.scanner import ScanMismatchError, fingerprint
from spie.integrations.caf.sources import (
    Broken,
    Decider,
    Item,
    LocalSource,
    PipedSource,
    SourceRefusedError,
)
from spie.integrations.caf.values import HOUSEHOLD_COLUMNS, ValueBuilder
from spie.integrations.models import (
    IMPORTED_STATUSES,
    CafHouseholdEvent,
    ImportReject,
    ImportRun,
    ImportSource,
    ImportStatus,
    ProbableMatch,
    ProbableMatchStatus,
    RejectSeverity,
    RejectStatus,
)
from spie.integrations.runs import refuse
from spie.integrations.storage import open_run_source, run_file_path
from spie.orientation.models import CaseStatus, ClockStartBasis, OrientationCase
from spie.persons.models import Household, Person, Public, SddPeriod
from spie.territories.models import Commune

log = logging.getLogger(__name__)

#: ETATDOSRSA values where nobody is bound by duties (refused, closed).
CLOSED_STATES = frozenset({"1", "5", "6"})
SDD_ROLES = frozenset({"DEM", "CJT"})
_LINE_SUFFIX = " (line "

H = cast(Table, Household.__table__)
P = cast(Table, Person.__table__)
S = cast(Table, SddPeriod.__table__)
EVENTS = cast(Table, CafHouseholdEvent.__table__)
CASES = cast(Table, OrientationCase.__table__)
AUDIT = cast(Table, AuditEvent.__table__)
REJECTS = cast(Table, ImportReject.__table__)

PERSON_COLUMNS = (
    "id",
    "household_id",
    "caf_role",
    "civility",
    "last_name",
    "birth_name",
    "first_name",
    "other_first_names",
    "search_name",
    "birth_date",
    "birth_place",
    "sex",
    "nir",
    "nir_key",
    "nir_verified",
    "france_travail_id",
    "address_line",
    "address_complement",
    "postal_code",
    "commune_insee",
    "territory_id",
    "bound_by_duties",
    "public",
    "current_structure_id",
    "deceased_on",
)
_PERSON_SELECT = [P.c[name] for name in PERSON_COLUMNS]
# Fields a flow sets; compared to decide whether a person changed.
_COMPARED = (
    "household_id",
    "caf_role",
    "civility",
    "last_name",
    "birth_name",
    "first_name",
    "other_first_names",
    "search_name",
    "birth_date",
    "birth_place",
    "sex",
    "nir",
    "nir_key",
    "nir_verified",
    "france_travail_id",
    "address_line",
    "address_complement",
    "postal_code",
    "commune_insee",
    "territory_id",
    "bound_by_duties",
    "public",
)


@dataclass(slots=True)
class _PersonPlan:
    caf: CafPerson
    values: dict[str, Any]
    sdd_flag: bool
    effective: bool
    existing: dict[str, Any] | None = None
    person_id: int | None = None
    changed: list[str] = field(default_factory=list)
    held: tuple[int, str] | None = None  # (candidate id, reason) of a probable match


@dataclass(slots=True)
class _HouseholdPlan:
    item: Item
    household: CafHousehold
    existing: dict[str, Any] | None
    values: dict[str, Any]
    persons: list[_PersonPlan] = field(default_factory=list)
    household_id: int | None = None
    changed: list[str] = field(default_factory=list)
    detached: list[dict[str, Any]] = field(default_factory=list)


class CafImporter:
    """Imports one CAF run (see the module docstring)."""

    def __init__(self, run: ImportRun) -> None:
        self.run = run
        self.run_id = run.id
        self.actor = f"import:caf:{run.id}"
        self._source: LocalSource | PipedSource | None = None
        self._decider: Decider | None = None
        # Each batch's COMMIT runs in PostgreSQL while the next batch is read and prepared.
        self._commit = bulk.BatchCommit(overlap=_enabled("SPIE_IMPORT_OVERLAP_COMMITS"))
        self._communes: dict[str, int] = {
            insee: territory_id
            for insee, territory_id in db.session.execute(
                select(Commune.insee_code, Commune.territory_id)
            )
        }
        self._policies: dict[dt.date, Any] = {}
        self._all_policies: list[DelayPolicy] | None = None
        self._due: dict[tuple[int, dt.date], tuple[dt.date | None, dt.date | None]] = {}
        self._values = ValueBuilder(self._communes)
        self.dtref: dt.date = dt.date.min
        self.initial_stock = False
        self.source_label = "caf"
        self._details: Counter[str] = Counter((run.details or {}).get("caf", {}))

    # ------------------------------------------------------------------ driving the flow

    def execute(self) -> None:
        use_scan = not (self.run.details or {}).get("no_scan")
        try:
            self._execute(use_scan)
        except ScanMismatchError:
            # The reader's cut did not match the parser's households: redo from the last
            # checkpoint without filtering (every household parsed).
            rollback()
            self._reload_run()
            details = dict(self.run.details or {})
            details["no_scan"] = True
            self.run.details = details
            commit()
            self._execute(False)

    def _reload_run(self) -> None:
        run = db.session.execute(
            select(ImportRun)
            .where(ImportRun.id == self.run_id)
            .execution_options(populate_existing=True)
        ).scalar_one()
        self.run = run
        self._details = Counter((run.details or {}).get("caf", {}))

    def _execute(self, use_scan: bool) -> None:
        try:
            self._execute_batches(use_scan)
        except BaseException:
            # Leave the connection usable for the caller's rollback; the error in flight wins.
            with suppress(Exception):
                self._commit.settle()
            raise

    def _execute_batches(self, use_scan: bool) -> None:
        run = self.run
        with self._open_source(use_scan) as source:
            if source is None:
                return  # refused
            self._source = source
            self._start(source.header)
            batch: list[Item] = []
            keys: set[tuple[str | None, str]] = set()
            nirs: set[str] = set()
            for item in source:
                item_keys, item_nirs = _keys_of(item)
                if batch and (item_keys & keys or item_nirs & nirs):
                    self._apply(batch)  # the same household or person twice: in order
                    batch, keys, nirs = [], set(), set()
                batch.append(item)
                keys |= item_keys
                nirs |= item_nirs
                if len(batch) >= run.batch_size:
                    self._apply(batch)
                    batch, keys, nirs = [], set(), set()
            broken = source.broken
            if broken is None:
                self._apply(batch, upto=source.total)
                self._finish(source.expected_count, source.total)
            else:
                self._apply(batch, upto=broken.position - 1)
                self._finish_broken(broken)

    @contextmanager
    def _open_source(self, use_scan: bool) -> Iterator[LocalSource | PipedSource | None]:
        """The households of the run's file, parsed here or by a child process."""
        run = self.run
        resume = run.last_committed_position
        try:
            if _parse_in_child():
                with run_file_path(self.run) as path:
                    piped = PipedSource(path, _database_url(), resume, use_scan, self._apply_bumps)
                    try:
                        yield piped
                    finally:
                        piped.close()
                return
            with open_run_source(run) as raw:
                decider = (
                    Decider(self._settled_session, resume, self._apply_bumps) if use_scan else None
                )
                self._decider = decider
                local = LocalSource(raw, decider, resume)
                try:
                    yield local
                finally:
                    local.close()
        except SourceRefusedError as exc:
            refuse(run, exc.code, exc.message)
            commit()
            yield None

    def _settled_session(self) -> Any:
        """The session, once the COMMIT in flight is answered (the connection is free)."""
        self._commit.settle()
        return db.session

    def _apply_bumps(self, household_ids: list[int], dtref: dt.date) -> None:
        """Unchanged households seen in a newer flow: remember that date (an older flow
        arriving later must not overwrite them)."""
        self._commit.settle()
        db.session.execute(
            update(H)
            .where(
                bulk.in_values(H.c.id, household_ids),
                (H.c.last_flow_on.is_(None)) | (H.c.last_flow_on < dtref),
            )
            .values(last_flow_on=dtref, version=H.c.version + 1, updated_at=utcnow())
        )

    def _start(self, header: Any) -> None:
        run = self.run
        if run.flow_dtref is None:
            run.flow_type = header.type_flux
            run.flow_schema = header.schema
            run.flow_dtref = header.dtref
            earlier = db.session.scalar(
                select(ImportRun.id)
                .where(
                    ImportRun.source == ImportSource.CAF,
                    ImportRun.status.in_(IMPORTED_STATUSES),
                    ImportRun.id != run.id,
                )
                .limit(1)
            )
            if run.replay_of_run_id is None:
                run.initial_stock = header.type_flux == "M" and earlier is None
        self.dtref = header.dtref
        self.initial_stock = run.initial_stock
        self.source_label = f"caf:{header.type_flux}:{header.dtref.isoformat()}"

    # ------------------------------------------------------------------ batches

    def _apply(self, items: list[Item], *, upto: int | None = None) -> None:
        run = self.run
        counts: Counter[str] = Counter()
        # What needs no database first: the previous batch's COMMIT runs meanwhile.
        prepared = self._prepare_items(items, counts)
        self._commit.defer_checks()
        self._apply_items(*prepared, counts)
        position = upto if upto is not None else items[-1].position
        position = max(position, run.last_committed_position)
        if self._source is not None:
            counts["unchanged"] += self._source.skipped_upto(position)
        run.created_count += counts["created"]
        run.updated_count += counts["updated"]
        run.unchanged_count += counts["unchanged"]
        run.rejected_count += counts["rejected"]
        run.warning_count += counts["warnings"]
        for name in (
            "persons_created",
            "persons_updated",
            "persons_detached",
            "probable_matches",
            "cases_opened",
            "clocks_entered",
            "clocks_paused",
            "pathway_clocks_paused",
            "pathway_clocks_resumed",
            "reviews_flagged",
            "events",
        ):
            if counts[name]:
                self._details[name] += counts[name]
        details = dict(run.details or {})
        details["caf"] = dict(self._details)
        run.details = details
        run.last_committed_position = position
        run.read_count = position
        run.heartbeat_at = utcnow()
        bulk.commit_without_waiting_for_disk()
        self._commit.start()
        if self._decider is not None:
            self._decider.forget_upto(position)

    def _finish(self, expected: int | None, total: int) -> None:
        self._commit.settle()
        run = self.run
        run.expected_count = expected
        if expected is None or expected != total:
            run.count_mismatch = True
            if expected is None:
                message = (
                    "TransmissionFlux/NBTOTDOSRSATRANSM is missing or not a number: "
                    f"{total} households read"
                )
            else:
                message = (
                    f"TransmissionFlux/NBTOTDOSRSATRANSM announces {expected} households, "
                    f"{total} read"
                )
            db.session.add(
                ImportReject(
                    run_id=run.id,
                    position=None,
                    severity=RejectSeverity.WARNING,
                    code="count_mismatch",
                    message=message,
                )
            )
            run.warning_count += 1
        run.status = ImportStatus.DONE
        run.finished_at = utcnow()
        commit()

    def _finish_broken(self, broken: Broken) -> None:
        self._commit.settle()
        run = self.run
        db.session.add(
            ImportReject(
                run_id=run.id,
                position=broken.position,
                severity=RejectSeverity.ERROR,
                code=broken.code[:40],
                message=(
                    f"{broken.message}; the file cannot be read from household "
                    f"#{broken.position} on: the households before it are imported"
                ),
            )
        )
        run.rejected_count += 1
        run.status = ImportStatus.PARTIAL
        run.error_code = broken.code[:40]
        run.error_message = broken.message
        run.finished_at = utcnow()
        commit()

    # ------------------------------------------------------------------ applying a batch

    def _prepare_items(
        self, items: list[Item], counts: Counter[str]
    ) -> tuple[list[_HouseholdPlan], list[dict[str, Any]], dt.datetime]:
        """Rejects and household plans (column values, persons) of a batch: no database."""
        now = utcnow()
        rejects: list[dict[str, Any]] = []
        plans: list[_HouseholdPlan] = []
        for item in items:
            if item.error is not None:
                error = item.error
                rejects.append(
                    self._reject_row(
                        item.position,
                        RejectSeverity.ERROR,
                        error.code,
                        error.message,
                        error.keys,
                        error.raw_fragment,
                        now,
                    )
                )
                counts["rejected"] += 1
                continue
            household = item.household
            if household is None:  # pragma: no cover - an item is a household or an error
                continue
            if not household.numorg:
                rejects.append(
                    self._reject_row(
                        item.position,
                        RejectSeverity.ERROR,
                        "missing_tag",
                        "IdentificationRSA/Organisme/NUMORG is missing or empty",
                        household.keys,
                        household.raw_fragment,
                        now,
                    )
                )
                counts["rejected"] += 1
                continue
            plans.append(self._household_plan(item))
        return plans, rejects, now

    def _apply_items(
        self,
        candidates: list[_HouseholdPlan],
        rejects: list[dict[str, Any]],
        now: dt.datetime,
        counts: Counter[str],
    ) -> None:
        dtref = self.dtref
        existing = self._load_households(candidates)
        plans: list[_HouseholdPlan] = []
        for plan in candidates:
            item, household = plan.item, plan.household
            key = (household.numorg or "", household.matricule)
            found = existing.get(key)
            digest = item.digest or fingerprint(b"raw:" + household.raw_fragment.encode())
            if found is not None:
                if found["last_flow_on"] is not None and found["last_flow_on"] > dtref:
                    counts["unchanged"] += 1  # an older flow never overwrites a newer one
                    continue
                if (
                    found["caf_content_hash"] is not None
                    and bytes(found["caf_content_hash"]) == digest
                    and found["last_flow_on"] is not None
                    and found["last_flow_on"] >= dtref
                ):
                    counts["unchanged"] += 1
                    continue
                plan.existing = found
                plan.household_id = found["id"]
                plan.changed = [name for name, value in plan.values.items() if found[name] != value]
            item.digest = digest
            for warning in household.warnings:
                rejects.append(
                    self._reject_row(
                        item.position,
                        RejectSeverity.WARNING,
                        warning.code,
                        warning.message,
                        household.keys,
                        None,
                        now,
                    )
                )
                counts["warnings"] += 1
            plans.append(plan)

        if plans:
            self._match_persons(plans)
            self._write(plans, counts, rejects, now)
        bulk.insert_rows(REJECTS, rejects)

    def _reject_row(
        self,
        position: int,
        severity: RejectSeverity,
        code: str,
        message: str,
        keys: dict[str, str] | None,
        raw: str | None,
        now: dt.datetime,
    ) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "position": position,
            "severity": severity,
            "code": code[:40],
            "message": message,
            "keys": dict(keys) if keys else None,
            "raw_fragment": raw,
            "status": RejectStatus.OPEN,
            "created_at": now,
            "replayed_at": None,
            "replayed_by_id": None,
            "replay_run_id": None,
        }

    def _load_households(
        self, plans: list[_HouseholdPlan]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        keys = {(plan.household.numorg or "", plan.household.matricule) for plan in plans}
        if not keys:
            return {}
        matricules = {matricule for _numorg, matricule in keys}
        # Filter on the matricule (first column of the unique key), the organisme here.
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for row in db.session.execute(
            select(
                H.c.id,
                H.c.version,
                *[H.c[name] for name in HOUSEHOLD_COLUMNS],
                H.c.last_flow_on,
                H.c.caf_content_hash,
            ).where(bulk.in_values(H.c.caf_matricule, matricules))
        ).mappings():
            key = (row["caf_numorg"], row["caf_matricule"])
            if key in keys:
                found[key] = dict(row)
        return found

    def _household_plan(self, item: Item) -> _HouseholdPlan:
        """The plan of a household as if it were new (the caller adds what the database
        knows of it)."""
        household = item.household
        if household is None:  # pragma: no cover - filtered by the caller
            raise ValueError("a household item is expected")
        values, person_values = self._values.prepare(household)
        plan = _HouseholdPlan(item=item, household=household, existing=None, values=values)
        closed = household.etat_dossier in CLOSED_STATES or household.transfer_out is not None
        entded = "ENTDED" in household.event_codes
        for caf, caf_values in zip(household.persons, person_values, strict=True):
            eligible = caf.role in SDD_ROLES
            flag = eligible and bool(
                caf.sdd or caf.entering_sdd or (entded and caf.sdd is not False)
            )
            plan.persons.append(
                _PersonPlan(
                    caf=caf,
                    values=caf_values,
                    sdd_flag=flag,
                    effective=flag and not closed,
                )
            )
        return plan

    # ------------------------------------------------------------------ matching

    def _match_persons(self, plans: list[_HouseholdPlan]) -> None:
        household_ids = [plan.household_id for plan in plans if plan.household_id is not None]
        members: dict[int, list[dict[str, Any]]] = {}
        if household_ids:
            for row in db.session.execute(
                select(*_PERSON_SELECT).where(bulk.in_values(P.c.household_id, household_ids))
            ).mappings():
                members.setdefault(row["household_id"], []).append(dict(row))
        nirs = {
            person.caf.nir13
            for plan in plans
            for person in plan.persons
            if person.caf.nir13 is not None and person.caf.nir_key_valid
        }
        by_nir: dict[str, list[dict[str, Any]]] = {}
        if nirs:
            for row in db.session.execute(
                select(*_PERSON_SELECT).where(
                    bulk.in_values(P.c.nir, nirs), P.c.nir_verified.is_(True)
                )
            ).mappings():
                by_nir.setdefault(row["nir"], []).append(dict(row))
        claimed: set[int] = set()
        unmatched: list[tuple[_HouseholdPlan, _PersonPlan]] = []
        for plan in plans:
            own = members.get(plan.household_id or -1, [])
            for person in plan.persons:
                found = self._match_one(person, own, by_nir, claimed)
                if found is not None:
                    person.existing = found
                    person.person_id = found["id"]
                    claimed.add(found["id"])
                else:
                    unmatched.append((plan, person))
        for plan in plans:
            for member in members.get(plan.household_id or -1, []):
                if member["id"] not in claimed:
                    plan.detached.append(member)
                    claimed.add(member["id"])
        if unmatched:
            self._probable_matches(unmatched, claimed)

    @staticmethod
    def _match_one(
        person: _PersonPlan,
        members: list[dict[str, Any]],
        by_nir: dict[str, list[dict[str, Any]]],
        claimed: set[int],
    ) -> dict[str, Any] | None:
        caf = person.caf
        usable_nir = caf.nir13 if caf.nir13 is not None and caf.nir_key_valid else None
        if usable_nir is not None:
            for row in by_nir.get(usable_nir, ()):
                if row["birth_date"] == caf.birth_date and row["id"] not in claimed:
                    return row
        role = person.values["caf_role"]
        if role is None:
            return None
        for row in members:
            if row["id"] in claimed or row["caf_role"] != role:
                continue
            if row["nir_verified"] and usable_nir is not None and row["nir"] != usable_nir:
                continue  # a verified NIR says it is someone else
            if role.value in SDD_ROLES:
                return row
            if row["birth_date"] == caf.birth_date and normalize_name(
                row["first_name"]
            ) == normalize_name(caf.first_name):
                return row
        return None

    def _probable_matches(
        self, unmatched: list[tuple[_HouseholdPlan, _PersonPlan]], claimed: set[int]
    ) -> None:
        wanted = {
            (person.values["search_name"], person.values["birth_date"])
            for _plan, person in unmatched
        }
        candidates: dict[tuple[str, dt.date], list[dict[str, Any]]] = {}
        for row in db.session.execute(
            bulk.select_matching_pairs(
                select(*_PERSON_SELECT), P.c.search_name, P.c.birth_date, wanted
            )
        ).mappings():
            if (row["search_name"], row["birth_date"]) in wanted:
                candidates.setdefault((row["search_name"], row["birth_date"]), []).append(dict(row))
        for _plan, person in unmatched:
            caf = person.caf
            usable_nir = caf.nir13 if caf.nir13 is not None and caf.nir_key_valid else None
            found = [
                row
                for row in candidates.get(
                    (person.values["search_name"], person.values["birth_date"]), ()
                )
                if row["id"] not in claimed
                and not (
                    usable_nir is not None and row["nir_verified"] and row["nir"] != usable_nir
                )
            ]
            if not found:
                continue
            found.sort(key=lambda row: row["id"])
            if usable_nir is None:
                reason = "no_nir" if caf.nir13 is None else "nir_unverified"
            else:
                reason = "candidate_without_nir"
            if len(found) > 1:
                reason += "_several"
            person.held = (found[0]["id"], reason)

    # ------------------------------------------------------------------ writes

    def _write(
        self,
        plans: list[_HouseholdPlan],
        counts: Counter[str],
        rejects: list[dict[str, Any]],
        now: dt.datetime,
    ) -> None:
        dtref = self.dtref
        audit: list[dict[str, Any]] = []
        # Households
        new_households = [plan for plan in plans if plan.existing is None]
        rows = [
            {
                **plan.values,
                "last_flow_on": dtref,
                "caf_content_hash": plan.item.digest,
                "caf_run_id": self.run_id,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
            for plan in new_households
        ]
        for plan, new_id in zip(new_households, bulk.insert_returning_ids(H, rows), strict=True):
            plan.household_id = new_id
        updates = []
        for plan in plans:
            if plan.existing is None:
                continue
            row = {
                "id": plan.household_id,
                **plan.values,
                "last_flow_on": dtref,
                "caf_content_hash": plan.item.digest,
                "caf_run_id": self.run_id,
                "updated_at": now,
            }
            updates.append(row)
            if plan.changed:
                audit.append(
                    bulk.audit_row(
                        AuditAction.UPDATE,
                        "household",
                        plan.household_id,
                        person_id=None,
                        reason="caf_import",
                        details={"run": self.run_id, "fields": sorted(plan.changed)},
                        actor_label=self.actor,
                        at=now,
                    )
                )
        bulk.update_rows(H, updates, versioned=True)

        # Persons
        new_rows: list[dict[str, Any]] = []
        new_plans: list[_PersonPlan] = []
        person_updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        held: list[tuple[_HouseholdPlan, _PersonPlan]] = []
        entered: list[tuple[int, dt.date, ClockStartBasis, bool]] = []
        left: list[tuple[int, dt.date, str]] = []
        moved: list[int] = []
        observations: list[tuple[int, str | None, bool]] = []
        new_sdd: list[tuple[_PersonPlan, _HouseholdPlan]] = []
        for plan in plans:
            household_changed = bool(plan.changed) or plan.existing is None
            for person in plan.persons:
                if person.held is not None and person.existing is None:
                    held.append((plan, person))
                    household_changed = True
                    continue
                values = person.values
                values["household_id"] = plan.household_id
                values["bound_by_duties"] = person.effective
                existing = person.existing
                if existing is None:
                    values.setdefault("france_travail_id", None)
                    for name in (
                        "address_line",
                        "address_complement",
                        "postal_code",
                        "commune_insee",
                        "territory_id",
                    ):
                        values.setdefault(name, None)
                    values.setdefault("nir", None)
                    values.setdefault("nir_key", None)
                    values.setdefault("nir_verified", False)
                    new_rows.append(
                        {
                            **values,
                            "email": None,
                            "phone": None,
                            "current_structure_id": None,
                            "referral_source": None,
                            "deceased_on": None,
                            "version": 1,
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
                    new_plans.append(person)
                    if person.effective:
                        new_sdd.append((person, plan))
                    household_changed = True
                    continue
                self._keep_better(values, existing)
                person.changed = [
                    name for name in _COMPARED if name in values and existing[name] != values[name]
                ]
                if person.changed:
                    household_changed = True
                    change = {"id": existing["id"]}
                    change.update({name: values[name] for name in person.changed})
                    change["updated_at"] = now
                    person_updates.setdefault(tuple(sorted(change)), []).append(change)
                    audit.append(
                        bulk.audit_row(
                            AuditAction.UPDATE,
                            "person",
                            existing["id"],
                            person_id=existing["id"],
                            reason="caf_import",
                            details={"run": self.run_id, "fields": sorted(person.changed)},
                            actor_label=self.actor,
                            at=now,
                        )
                    )
                    counts["persons_updated"] += 1
                pid = existing["id"]
                observations.append((pid, plan.household.etat_dossier, person.sdd_flag))
                was = bool(existing["bound_by_duties"])
                if person.effective and not was:
                    start, basis, estimated = self._clock_start(plan.household, person.caf)
                    entered.append((pid, start, basis, estimated))
                elif was and not person.effective:
                    left.append((pid, *self._leave(plan.household)))
                if (
                    existing["territory_id"] is not None
                    and "territory_id" in values
                    and values["territory_id"] != existing["territory_id"]
                ):
                    moved.append(pid)
            for member in plan.detached:
                change = {
                    "id": member["id"],
                    "household_id": None,
                    "caf_role": None,
                    "bound_by_duties": False,
                    "updated_at": now,
                }
                person_updates.setdefault(tuple(sorted(change)), []).append(change)
                audit.append(
                    bulk.audit_row(
                        AuditAction.UPDATE,
                        "person",
                        member["id"],
                        person_id=member["id"],
                        reason="caf_import",
                        details={
                            "run": self.run_id,
                            "fields": ["bound_by_duties", "caf_role", "household_id"],
                        },
                        actor_label=self.actor,
                        at=now,
                    )
                )
                observations.append((member["id"], None, False))
                if member["bound_by_duties"]:
                    left.append((member["id"], dtref, "left_sdd"))
                counts["persons_detached"] += 1
                household_changed = True
            if plan.existing is None:
                counts["created"] += 1
            elif household_changed:
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1

        new_ids = bulk.insert_returning_ids(P, new_rows)
        for person, new_id in zip(new_plans, new_ids, strict=True):
            person.person_id = new_id
        if new_ids:
            audit.append(
                bulk.audit_batch_row(
                    AuditAction.CREATE,
                    "person",
                    new_ids,
                    reason="caf_import",
                    details={"run": self.run_id, "public": Public.BRSA.value},
                    actor_label=self.actor,
                    at=now,
                )
            )
        counts["persons_created"] += len(new_rows)
        for changes in person_updates.values():
            bulk.update_rows(P, changes, versioned=True)

        # SDD history
        period_rows = self._sdd_history(observations, now)
        for plan in plans:
            for person in plan.persons:
                if person.existing is None and person.person_id is not None:
                    period_rows.append(
                        {
                            "person_id": person.person_id,
                            "rsa_state": plan.household.etat_dossier,
                            "bound_by_duties": person.sdd_flag,
                            "started_on": dtref,
                            "ended_on": None,
                            "source": self.source_label[:40],
                        }
                    )
        bulk.insert_rows(S, period_rows)

        # Domain effects
        self._open_cases_in_bulk(new_sdd, counts, rejects, audit, now)
        self._clock_events(entered, left, moved, counts, rejects, plans, now)
        self._held(held, counts)
        self._events(plans, counts)
        bulk.insert_rows(AUDIT, audit)

    @staticmethod
    def _keep_better(values: dict[str, Any], existing: dict[str, Any]) -> None:
        """What a flow must not undo: a verified NIR by an unverified or missing one, a France
        Travail id by the CAF's (France Travail's own files are authoritative), an address
        by no address."""
        if "nir" not in values or (existing["nir_verified"] and not values["nir_verified"]):
            for name in ("nir", "nir_key", "nir_verified"):
                values.pop(name, None)
        if existing["france_travail_id"] is not None:
            values.pop("france_travail_id", None)

    def _clock_start(
        self, household: CafHousehold, caf: CafPerson
    ) -> tuple[dt.date, ClockStartBasis, bool]:
        if caf.sdd_start is not None:
            return caf.sdd_start, ClockStartBasis.DDSOUDRODEV, False
        if self.initial_stock:
            return household.dtdemrsa or self.dtref, ClockStartBasis.RSA_REQUEST, True
        return self.dtref, ClockStartBasis.FLOW_ENTRY, False

    def _leave(self, household: CafHousehold) -> tuple[dt.date, str]:
        dtref = self.dtref
        if household.transfer_out is not None or household.closure_reason == "MUT":
            on = household.transfer_out.departed_on if household.transfer_out else None
            return (on if on is not None and on <= dtref else dtref), "moved_away"
        if household.etat_dossier in CLOSED_STATES:
            on = household.closed_on
            return (on if on is not None and on <= dtref else dtref), "right_closed"
        return dtref, "left_sdd"

    def _sdd_history(
        self, observations: list[tuple[int, str | None, bool]], now: dt.datetime
    ) -> list[dict[str, Any]]:
        """Close the open periods that another state ends; the new periods to insert."""
        if not observations:
            return []
        dtref = self.dtref
        ids = [pid for pid, _state, _flag in observations]
        current = {
            row.person_id: row
            for row in db.session.execute(
                select(
                    S.c.id, S.c.person_id, S.c.rsa_state, S.c.bound_by_duties, S.c.started_on
                ).where(bulk.in_values(S.c.person_id, ids), S.c.ended_on.is_(None))
            )
        }
        closes: list[dict[str, Any]] = []
        inserts: list[dict[str, Any]] = []
        for pid, state, flag in observations:
            row = current.get(pid)
            if row is not None:
                if dtref < row.started_on:
                    continue  # older than the history: never rewritten
                if row.rsa_state == state and row.bound_by_duties == flag:
                    continue
                closes.append({"id": row.id, "ended_on": dtref})
            inserts.append(
                {
                    "person_id": pid,
                    "rsa_state": state,
                    "bound_by_duties": flag,
                    "started_on": dtref,
                    "ended_on": None,
                    "source": self.source_label[:40],
                }
            )
        bulk.update_rows(S, closes)
        return inserts

    def _policy(self, on: dt.date) -> Any:
        """``policy_in_force(ORIENTATION, on)``, from the few policies loaded once per run
        (same choice: valid on that day, latest ``valid_from``, then highest id)."""
        policy = self._policies.get(on)
        if policy is not None:
            return policy
        if self._all_policies is None:
            self._all_policies = list(
                db.session.scalars(
                    select(DelayPolicy).where(DelayPolicy.clock == ClockKind.ORIENTATION)
                )
            )
        valid = [
            candidate
            for candidate in self._all_policies
            if candidate.valid_from <= on
            and (candidate.valid_until is None or candidate.valid_until > on)
        ]
        if not valid:
            return policy_in_force(ClockKind.ORIENTATION, on)  # raises its precise NotFound
        policy = max(valid, key=lambda candidate: (candidate.valid_from, candidate.id))
        self._policies[on] = policy
        return policy

    def _open_cases_in_bulk(
        self,
        new_sdd: list[tuple[_PersonPlan, _HouseholdPlan]],
        counts: Counter[str],
        rejects: list[dict[str, Any]],
        audit: list[dict[str, Any]],
        now: dt.datetime,
    ) -> None:
        """Persons created by this batch and SDD: they have no case, no decision, no pause,
        so ``sdd_entered`` would open a case with the policy in force on the start date —
        done here for the whole batch at once, with the same policy and deadlines."""
        rows: list[dict[str, Any]] = []
        person_ids: list[int] = []
        for person, plan in new_sdd:
            start, basis, estimated = self._clock_start(plan.household, person.caf)
            try:
                policy = self._policy(start)
            except SpieError as exc:
                rejects.append(
                    self._reject_row(
                        plan.item.position,
                        RejectSeverity.WARNING,
                        exc.code,
                        f"no orientation case opened: {exc.detail}",
                        plan.household.keys,
                        None,
                        now,
                    )
                )
                counts["warnings"] += 1
                continue
            key = (policy.id, start)
            due = self._due.get(key)
            if due is None:
                due = due_dates(policy, start, [])
                self._due[key] = due
            if person.person_id is None:  # pragma: no cover - set by the insert above
                continue
            rows.append(
                {
                    "person_id": person.person_id,
                    "status": CaseStatus.A_ORIENTER,
                    "clock_started_on": start,
                    "start_basis": basis,
                    "clock_estimated": estimated,
                    "policy_id": policy.id,
                    "legal_deadline": due[0],
                    "target_date": due[1],
                    "paused_since": None,
                    "paused_days": 0,
                    "territory_id": person.values.get("territory_id"),
                    "public": Public.BRSA,
                    "rio_absences": 0,
                    "flagged_for_ep": False,
                    "decided_on": None,
                    "notified_on": None,
                    "closed_on": None,
                    "close_reason": None,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            person_ids.append(person.person_id)
        ids = bulk.insert_returning_ids(CASES, rows)
        if ids:
            # The clock start, its basis and the policy are in each case row.
            audit.append(
                bulk.audit_batch_row(
                    AuditAction.CREATE,
                    "orientation_case",
                    ids,
                    reason="orientation",
                    details={"run": self.run_id, "person_ids": person_ids},
                    actor_label=self.actor,
                    at=now,
                )
            )
        counts["cases_opened"] += len(ids)

    def _clock_events(
        self,
        entered: list[tuple[int, dt.date, ClockStartBasis, bool]],
        left: list[tuple[int, dt.date, str]],
        moved: list[int],
        counts: Counter[str],
        rejects: list[dict[str, Any]],
        plans: list[_HouseholdPlan],
        now: dt.datetime,
    ) -> None:
        """Known persons whose SDD state changed: the orientation package's clock events, one
        person at a time (few per batch)."""
        ids = {pid for pid, *_ in entered} | {pid for pid, *_ in left} | set(moved)
        if not ids:
            return
        from spie.orientation.clock_events import sdd_entered, sdd_left
        from spie.parcours.clocks import pause_clocks, resume_clocks

        persons = {
            person.id: person
            for person in db.session.execute(
                select(Person).where(Person.id.in_(ids)).execution_options(populate_existing=True)
            ).scalars()
        }
        position_of = {
            person.person_id: plan.item.position
            for plan in plans
            for person in plan.persons
            if person.person_id is not None
        }
        for pid, on, reason in left:
            sdd_left(persons[pid], on, reason)
            counts["clocks_paused"] += 1
            counts["pathway_clocks_paused"] += pause_clocks(pid, on, reason)
        for pid, start, basis, estimated in entered:
            counts["pathway_clocks_resumed"] += resume_clocks(pid, start)
            try:
                if sdd_entered(persons[pid], start, basis, estimated) is not None:
                    counts["clocks_entered"] += 1
            except SpieError as exc:
                rejects.append(
                    self._reject_row(
                        position_of.get(pid, 0),
                        RejectSeverity.WARNING,
                        exc.code,
                        f"no orientation case opened: {exc.detail}",
                        None,
                        None,
                        now,
                    )
                )
                counts["warnings"] += 1
        if moved:
            self._flag_moves(moved, persons, counts)
        db.session.flush()

    def _flag_moves(
        self, moved: list[int], persons: dict[int, Person], counts: Counter[str]
    ) -> None:
        """A followed person (référent or organisme référent) whose address moved to another
        territory: their référent assignment is reviewed."""
        from spie.referent.models import ReferentAssignment

        followed = set(
            db.session.scalars(
                select(ReferentAssignment.person_id).where(
                    ReferentAssignment.person_id.in_(moved), ReferentAssignment.ended_at.is_(None)
                )
            )
        )
        try:
            from spie.parcours.alerts import flag_for_review
        except ImportError:  # pragma: no cover - the parcours package provides it
            log.warning("flag_for_review unavailable: %d moves not flagged", len(moved))
            return
        for pid in moved:
            person = persons[pid]
            if pid in followed or person.current_structure_id is not None:
                flag_for_review(person, "moved_to_other_ctm", on=self.dtref)
                counts["reviews_flagged"] += 1

    def _held(self, held: list[tuple[_HouseholdPlan, _PersonPlan]], counts: Counter[str]) -> None:
        """Probable matches: one pending review per candidate and incoming identity."""
        if not held:
            return
        for plan, person in held:
            if person.held is None:  # pragma: no cover - only held persons are listed
                continue
            candidate_id, reason = person.held
            role = person.values["caf_role"]
            role_value = role.value if role is not None else None
            pending = db.session.scalar(
                select(ProbableMatch).where(
                    ProbableMatch.candidate_person_id == candidate_id,
                    ProbableMatch.caf_numorg == plan.household.numorg,
                    ProbableMatch.caf_matricule == plan.household.matricule,
                    ProbableMatch.caf_role.is_(None)
                    if role_value is None
                    else ProbableMatch.caf_role == role_value,
                    ProbableMatch.status == ProbableMatchStatus.PENDING,
                )
            )
            payload = probable_payload(
                plan.household, person.caf, person.sdd_flag, person.effective
            )
            # The clock of a held person starts at the first flow showing them SDD.
            payload["sdd_since"] = self.dtref.isoformat() if person.effective else None
            if pending is not None:
                if pending.flow_dtref <= self.dtref:
                    before = pending.payload or {}
                    if person.effective and before.get("effective"):
                        payload["sdd_since"] = before.get("sdd_since") or payload["sdd_since"]
                    pending.payload = payload
                    pending.flow_dtref = self.dtref
                    pending.run_id = self.run_id
                    pending.position = plan.item.position
                    pending.reason = reason
                continue
            db.session.add(
                ProbableMatch(
                    status=ProbableMatchStatus.PENDING,
                    candidate_person_id=candidate_id,
                    run_id=self.run_id,
                    position=plan.item.position,
                    caf_numorg=plan.household.numorg,
                    caf_matricule=plan.household.matricule,
                    caf_role=role_value,
                    flow_dtref=self.dtref,
                    initial_stock=self.initial_stock,
                    reason=reason,
                    payload=payload,
                )
            )
            counts["probable_matches"] += 1
        db.session.flush()

    def _events(self, plans: list[_HouseholdPlan], counts: Counter[str]) -> None:
        events: list[dict[str, Any]] = []
        for plan in plans:
            for event in plan.household.events:
                if not event.motifs:
                    continue
                events.append(
                    {
                        "household_id": plan.household_id,
                        "liquidated_on": event.liquidated_on,
                        "motifs": " ".join(event.motifs)[:200],
                        "flow_dtref": self.dtref,
                        "run_id": self.run_id,
                    }
                )
        if events:
            bulk.insert_ignoring_conflicts(EVENTS, events)
            counts["events"] += len(events)


def _enabled(name: str) -> bool:
    """A switch of the app config or the environment, on unless ``0``/``false``/``no``/``off``."""
    from flask import current_app

    setting = current_app.config.get(name)
    if setting is None:
        setting = os.environ.get(name, "1")
    return str(setting).strip().lower() not in ("0", "false", "no", "off")


def _parse_in_child() -> bool:
    """Parse in a child process (PostgreSQL, fork available, not disabled by
    ``SPIE_IMPORT_PARSE_PROCESS=0``): parsing and database work then use two cores."""
    return (
        _enabled("SPIE_IMPORT_PARSE_PROCESS")
        and hasattr(os, "fork")
        and db.engine is not None
        and db.engine.dialect.name == "postgresql"
    )


def _database_url() -> str:
    if db.engine is None:  # pragma: no cover - the app binds it
        raise RuntimeError("no database engine")
    return db.engine.url.render_as_string(hide_password=False)


def _keys_of(item: Item) -> tuple[set[tuple[str | None, str]], set[str]]:
    household = item.household
    if household is None:
        matricule = item.error.keys.get("matricule") if item.error is not None else None
        return ({(None, matricule)} if matricule else set()), set()
    return {(household.numorg, household.matricule), (None, household.matricule)}, {
        person.nir13 for person in household.persons if person.nir13 is not None
    }


def probable_payload(
    household: CafHousehold, caf: CafPerson, sdd_flag: bool, effective: bool
) -> dict[str, Any]:
    """What a held person needs to be applied later (JSON: dates as ISO strings)."""

    def iso(value: dt.date | None) -> str | None:
        return value.isoformat() if value is not None else None

    address = household.current_address
    return {
        "person": {
            "qual": caf.qual,
            "last_name": caf.last_name,
            "birth_name": caf.birth_name,
            "first_name": caf.first_name,
            "other_first_names": list(caf.other_first_names),
            "birth_place": caf.birth_place,
            "birth_date": iso(caf.birth_date),
            "nir13": caf.nir13,
            "nir_key": caf.nir_key,
            "nir_key_valid": caf.nir_key_valid,
            "sex": caf.sex,
            "role": caf.role or caf.pfa_role,
            "france_travail_id": caf.france_travail_id,
            "sdd_start": iso(caf.sdd_start),
        },
        "household": {
            "numorg": household.numorg,
            "matricule": household.matricule,
            "dtdemrsa": iso(household.dtdemrsa),
            "etat": household.etat_dossier,
            "address": None
            if address is None
            else {
                "street_number": address.street_number,
                "street_type": address.street_type,
                "street_name": address.street_name,
                "complement": address.complement,
                "complement_identity": address.complement_identity,
                "locality": address.locality,
                "insee_code": address.insee_code,
                "postal_code": address.postal_code,
            },
        },
        "sdd_flag": sdd_flag,
        "effective": effective,
    }
