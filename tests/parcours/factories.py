"""Pathway test data: seeded rules, a time seam, decisions, offers, structures and agents."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, select

from spie.agents.models import Agent, Role
from spie.clocks.services import seed_delay_policies
from spie.db import db
from spie.orientation.models import (
    CaseStatus,
    ClockStartBasis,
    CloseReason,
    OrientationCase,
    OrientationDecision,
    Parcours,
)
from spie.orientation.services import open_case
from spie.parcours import clock
from spie.parcours.models import Offer, Pathway, PathwayClock
from spie.parcours.seeds import seed_all
from spie.parcours.services import open_parcours_for_decision, record_notification
from spie.persons.models import Person
from spie.referent.queue import hand_over_to_structure
from spie.structures.models import Structure, StructureType
from tests.factories import AgentFactory, StructureFactory, territory

PARIS = ZoneInfo("Europe/Paris")


def paris(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=PARIS)


def seed_rules() -> None:
    """Delay policies (orientation package) and pathway reference data."""
    seed_delay_policies()
    seed_all()


@dataclass
class Clock:
    """Moves ``spie.parcours.clock`` (today in Paris, now in UTC) for a scenario."""

    monkeypatch: pytest.MonkeyPatch

    def set(self, day: dt.date, hour: int = 12, minute: int = 0) -> None:
        moment = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=PARIS)
        self.monkeypatch.setattr(clock, "today", lambda: day)
        self.monkeypatch.setattr(clock, "now", lambda: moment.astimezone(dt.UTC))


def structure(code: str = "LYON", type: StructureType = StructureType.MDM, **kw: Any) -> Structure:
    found = StructureFactory(type=type, **kw)
    found.territories = [territory(code)]
    db.session.flush()
    return found


def referent(structure: Structure, *codes: str, capacity: int = 150, **kw: Any) -> Agent:
    return AgentFactory(
        structure=structure,
        roles=[Role.REFERENT],
        territory_codes=list(codes) or None,
        caseload_capacity=capacity,
        **kw,
    )


def manager(structure: Structure, *codes: str) -> Agent:
    return AgentFactory(
        structure=structure, roles=[Role.MANAGER], territory_codes=list(codes or ("LYON",))
    )


def admin(structure: Structure) -> Agent:
    return AgentFactory(structure=structure, roles=[Role.ADMIN])


def decide(
    person: Person,
    to: Structure,
    *,
    parcours: Parcours = Parcours.SOCIO_PROFESSIONNEL,
    decided_on: dt.date,
    notified_on: dt.date | None = None,
    sdd_since: dt.date | None = None,
) -> Pathway:
    """An orientation decision as the orientation service records it (case, ranked
    decision, hand-over to the structure), then the pathway hook."""
    case = db.session.scalar(
        select(OrientationCase).where(
            OrientationCase.person_id == person.id, OrientationCase.closed_on.is_(None)
        )
    ) or open_case(
        person, sdd_since or decided_on - dt.timedelta(days=20), ClockStartBasis.DDSOUDRODEV
    )
    rank = (
        db.session.scalar(
            select(OrientationDecision.rank)
            .where(OrientationDecision.person_id == person.id)
            .order_by(OrientationDecision.rank.desc())
            .limit(1)
        )
        or 0
    ) + 1
    decision = OrientationDecision(
        case_id=case.id,
        person_id=person.id,
        rank=rank,
        decided_on=decided_on,
        parcours=parcours,
        structure_id=to.id,
        follows_proposal=True,
        reorientation_reason=None if rank == 1 else "réorientation de test",
        notified_on=notified_on,
        notification_channel="letter" if notified_on else None,
    )
    db.session.add(decision)
    case.status = CaseStatus.NOTIFIEE if notified_on else CaseStatus.DECIDEE
    case.decided_on = decided_on
    if notified_on:
        case.notified_on = notified_on
        case.closed_on = notified_on
        case.close_reason = CloseReason.ORIENTED
    db.session.flush()
    hand_over_to_structure(person, to, decided_on, "orientation")
    pathway = open_parcours_for_decision(decision)
    if notified_on:
        record_notification(decision)
    return pathway


def offer(code: str) -> Offer:
    found = db.session.scalar(select(Offer).where(Offer.code == code))
    assert found is not None, code
    return found


def clocks_of(person_id: int) -> dict[str, tuple[Any, ...]]:
    """``{kind: (started_on, due_on, met_on, stopped_on)}`` (last clock of each kind)."""
    rows = db.session.scalars(
        select(PathwayClock).where(PathwayClock.person_id == person_id).order_by(PathwayClock.id)
    )
    return {c.kind.value: (c.started_on, c.due_on, c.met_on, c.stopped_on) for c in rows}


class StatementCounter:
    """Counts the SQL statements sent to the database while active."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def _listener(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.statements.append(statement)

    def __enter__(self) -> StatementCounter:
        assert db.engine is not None
        event.listen(db.engine, "before_cursor_execute", self._listener)
        return self

    def __exit__(self, *_exc: Any) -> None:
        assert db.engine is not None
        event.remove(db.engine, "before_cursor_execute", self._listener)

    @property
    def count(self) -> int:
        return len(self.statements)


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """Assert a problem+json answer and return its body."""
    assert response.status_code == status, response.json
    assert response.mimetype == "application/problem+json"
    body = response.json
    assert body["code"] == code, body
    return body


@dataclass
class Followed:
    """A person in a socio-professional pathway of ``mdm`` followed by ``referent`` since
    5 March 2025 (decided 3 March, notified 4 March)."""

    mdm: Structure
    manager: Agent
    referent: Agent
    colleague: Agent
    admin: Agent
    person: Person
    pathway: Pathway


def followed(
    clock: Clock, parcours: Parcours = Parcours.SOCIO_PROFESSIONNEL, code: str = "LYON"
) -> Followed:
    from spie.referent.services import assign_referent
    from tests.factories import PersonFactory

    mdm = structure(code)
    boss = manager(mdm, code)
    main = referent(mdm, code)
    other = referent(mdm, code)
    root = admin(mdm)
    person = PersonFactory(territory_code=code)
    clock.set(dt.date(2025, 3, 4))
    pathway = decide(
        person,
        mdm,
        parcours=parcours,
        decided_on=dt.date(2025, 3, 3),
        notified_on=dt.date(2025, 3, 4),
    )
    clock.set(dt.date(2025, 3, 5))
    assign_referent(person, main, reason="Affectation initiale", handover_note=None, by=boss)
    return Followed(mdm, boss, main, other, root, person, pathway)
