"""Read side of orientation, always scoped to what the calling agent may see.

- persons: ``spie.auth.scope.persons_visible_to`` (a person outside the scope is a 404);
- RIO sessions: sessions of the agent's territories (admins: all); others are a 404.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, and_, case, func, select
from sqlalchemy.orm import selectinload

from spie.agents.models import Agent
from spie.auth.scope import persons_visible_to, territory_ids_of
from spie.db import db
from spie.errors import NotFound
from spie.orientation.models import (
    Attendance,
    CaseStatus,
    Convocation,
    Diagnostic,
    OrientationCase,
    OrientationDecision,
    RioSession,
)
from spie.orientation.rio import pending_convocation_exists
from spie.persons.models import Person

# --------------------------------------------------------------------------- cases


@dataclass
class OrientationView:
    person_id: int
    current_case: OrientationCase | None
    cases: list[OrientationCase]
    decisions: list[OrientationDecision]
    convocations: list[Convocation] = field(default_factory=list)


def orientation_of(person: Person) -> OrientationView:
    """Every case of the person (newest first) with pauses and policy, every decision
    (ranked) and the current case's convocations: four queries whatever the history."""
    cases = list(
        db.session.scalars(
            select(OrientationCase)
            .where(OrientationCase.person_id == person.id)
            .options(selectinload(OrientationCase.pauses), selectinload(OrientationCase.policy))
            .order_by(OrientationCase.clock_started_on.desc(), OrientationCase.id.desc())
        )
    )
    decisions = list(
        db.session.scalars(
            select(OrientationDecision)
            .where(OrientationDecision.person_id == person.id)
            .options(selectinload(OrientationDecision.structure))
            .order_by(OrientationDecision.rank)
        )
    )
    current = cases[0] if cases else None
    convocations: list[Convocation] = []
    if current is not None:
        convocations = list(
            db.session.scalars(
                select(Convocation)
                .where(Convocation.case_id == current.id)
                .options(selectinload(Convocation.session))
                .order_by(Convocation.convened_at, Convocation.id)
            )
        )
    return OrientationView(person.id, current, cases, decisions, convocations)


def visible_case(agent: Agent, case_id: int) -> OrientationCase:
    found = db.session.scalar(
        select(OrientationCase)
        .join(Person, Person.id == OrientationCase.person_id)
        .where(OrientationCase.id == case_id, persons_visible_to(agent))
        .options(selectinload(OrientationCase.pauses), selectinload(OrientationCase.policy))
    )
    if found is None:
        raise NotFound(f"Dossier d'orientation {case_id} introuvable.")
    return found


def diagnostics_of(person: Person) -> list[Diagnostic]:
    return list(
        db.session.scalars(
            select(Diagnostic)
            .where(Diagnostic.person_id == person.id)
            .options(selectinload(Diagnostic.referentiel_version))
            .order_by(Diagnostic.recorded_at.desc(), Diagnostic.id.desc())
        )
    )


# --------------------------------------------------------------------------- decisions


def visible_decision(agent: Agent, decision_id: int) -> OrientationDecision:
    found = db.session.scalar(
        select(OrientationDecision)
        .join(Person, Person.id == OrientationDecision.person_id)
        .where(OrientationDecision.id == decision_id, persons_visible_to(agent))
        .options(selectinload(OrientationDecision.structure))
    )
    if found is None:
        raise NotFound(f"Décision d'orientation {decision_id} introuvable.")
    return found


def list_decisions(agent: Agent, filters: dict[str, Any]) -> Select[OrientationDecision]:
    query = (
        select(OrientationDecision)
        .join(Person, Person.id == OrientationDecision.person_id)
        .where(persons_visible_to(agent))
        .options(selectinload(OrientationDecision.structure))
    )
    if "person_id" in filters:
        query = query.where(OrientationDecision.person_id == filters["person_id"])
    if "ft_sync_status" in filters:
        query = query.where(OrientationDecision.ft_sync_status == filters["ft_sync_status"])
    if "notified" in filters:
        column = OrientationDecision.notified_on
        query = query.where(column.is_not(None) if filters["notified"] else column.is_(None))
    if "territory_id" in filters:
        query = query.where(Person.territory_id == filters["territory_id"])
    return query.order_by(OrientationDecision.decided_at.desc(), OrientationDecision.id.desc())


# --------------------------------------------------------------------------- RIO sessions


def _sessions_of(agent: Agent) -> Select[RioSession]:
    query = select(RioSession).options(selectinload(RioSession.animator_structure))
    allowed = territory_ids_of(agent)
    if allowed is not None:
        query = query.where(RioSession.territory_id.in_(allowed))
    return query


def visible_session(agent: Agent, session_id: int) -> RioSession:
    found = db.session.scalar(_sessions_of(agent).where(RioSession.id == session_id))
    if found is None:
        raise NotFound(f"Session RIO {session_id} introuvable.")
    return found


def list_sessions(agent: Agent, filters: dict[str, Any]) -> Select[RioSession]:
    query = _sessions_of(agent)
    if "territory_id" in filters:
        query = query.where(RioSession.territory_id == filters["territory_id"])
    if "status" in filters:
        query = query.where(RioSession.status == filters["status"])
    if "starts_from" in filters:
        since = dt.datetime.combine(filters["starts_from"], dt.time(), tzinfo=dt.UTC)
        query = query.where(RioSession.starts_at >= since)
    if "starts_until" in filters:
        until = dt.datetime.combine(
            filters["starts_until"] + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC
        )
        query = query.where(RioSession.starts_at < until)
    return query.order_by(RioSession.starts_at, RioSession.id)


def attach_counts(sessions: list[RioSession]) -> None:
    """Set ``counts`` on each session (convened, present, absent, excused, remaining) with
    one aggregate query for the whole page."""
    ids = [s.id for s in sessions]
    rows: dict[int, dict[str, int]] = {}
    if ids:
        active = Convocation.cancelled_at.is_(None)
        for session_id, convened, present, absent, excused in db.session.execute(
            select(
                Convocation.session_id,
                func.count(Convocation.id).filter(active),
                func.count(Convocation.id).filter(
                    active, Convocation.attendance == Attendance.PRESENT
                ),
                func.count(Convocation.id).filter(
                    active, Convocation.attendance == Attendance.ABSENT
                ),
                func.count(Convocation.id).filter(
                    active, Convocation.attendance == Attendance.EXCUSE
                ),
            )
            .where(Convocation.session_id.in_(ids))
            .group_by(Convocation.session_id)
        ):
            rows[session_id] = {
                "convened": convened,
                "present": present,
                "absent": absent,
                "excused": excused,
            }
    for session in sessions:
        counts = rows.get(session.id, {"convened": 0, "present": 0, "absent": 0, "excused": 0})
        counts["remaining"] = max(0, session.capacity - counts["convened"])
        session.counts = counts  # type: ignore[attr-defined]  # transient, for the schema


def session_convocations(agent: Agent, session: RioSession) -> list[Convocation]:
    """Convocations of a session (cancelled ones included, flagged), persons in scope."""
    return list(
        db.session.scalars(
            select(Convocation)
            .join(Person, Person.id == Convocation.person_id)
            .where(Convocation.session_id == session.id, persons_visible_to(agent))
            .options(selectinload(Convocation.person), selectinload(Convocation.case))
            .order_by(Convocation.convened_at, Convocation.id)
        )
    )


def visible_convocation(agent: Agent, session: RioSession, convocation_id: int) -> Convocation:
    found = db.session.scalar(
        select(Convocation)
        .join(Person, Person.id == Convocation.person_id)
        .where(
            Convocation.id == convocation_id,
            Convocation.session_id == session.id,
            persons_visible_to(agent),
        )
    )
    if found is None:
        raise NotFound(f"Convocation {convocation_id} introuvable.")
    return found


# --------------------------------------------------------------------------- work queue

QUEUES = (
    "to_convene",
    "due_soon",
    "overdue",
    "awaiting_decision",
    "awaiting_notification",
    "flagged",
)
DUE_SOON_DAYS = 7

WORK_QUEUE_SORTS = {
    "clock_started_on": (OrientationCase.clock_started_on, OrientationCase.id),
    "-clock_started_on": (OrientationCase.clock_started_on.desc(), OrientationCase.id.desc()),
    "legal_deadline": (OrientationCase.legal_deadline, OrientationCase.id),
    "target_date": (OrientationCase.target_date, OrientationCase.id),
    "name": (Person.search_name, OrientationCase.id),
}

_NOT_NOTIFIED = (
    CaseStatus.A_ORIENTER,
    CaseStatus.CONVOQUE_RIO,
    CaseStatus.PROPOSEE,
    CaseStatus.DECIDEE,
)


def queue_conditions(as_of: dt.date) -> dict[str, Any]:
    """The SQL condition of each work queue (on open, running cases)."""
    soon = as_of + dt.timedelta(days=DUE_SOON_DAYS)
    return {
        "to_convene": and_(
            OrientationCase.status == CaseStatus.A_ORIENTER,
            OrientationCase.flagged_for_ep.is_(False),
            ~pending_convocation_exists(),
        ),
        "due_soon": and_(
            OrientationCase.status.in_(_NOT_NOTIFIED),
            OrientationCase.legal_deadline >= as_of,
            OrientationCase.legal_deadline <= soon,
        ),
        "overdue": and_(
            OrientationCase.status.in_(_NOT_NOTIFIED),
            OrientationCase.legal_deadline < as_of,
        ),
        "awaiting_decision": OrientationCase.status == CaseStatus.PROPOSEE,
        "awaiting_notification": OrientationCase.status == CaseStatus.DECIDEE,
        "flagged": and_(
            OrientationCase.flagged_for_ep.is_(True),
            OrientationCase.status.in_(_NOT_NOTIFIED),
        ),
    }


def _work_base(agent: Agent, filters: dict[str, Any]) -> Select[Any]:
    query = (
        select(OrientationCase)
        .join(Person, Person.id == OrientationCase.person_id)
        .where(
            OrientationCase.closed_on.is_(None),
            OrientationCase.paused_since.is_(None),
            persons_visible_to(agent),
        )
    )
    if "territory_id" in filters:
        query = query.where(Person.territory_id == filters["territory_id"])
    if "public" in filters:
        query = query.where(OrientationCase.public == filters["public"])
    if "status" in filters:
        query = query.where(OrientationCase.status == filters["status"])
    return query


def work_queue(
    agent: Agent, filters: dict[str, Any], as_of: dt.date
) -> tuple[Select[OrientationCase], dict[str, int]]:
    """The page query of one queue (or all open cases) and the count of every queue, for
    the caller's scope and filters (the counts take one query)."""
    conditions = queue_conditions(as_of)
    base = _work_base(agent, filters)
    counts_query = base.with_only_columns(
        *(
            func.coalesce(func.sum(case((condition, 1), else_=0)), 0).label(name)
            for name, condition in conditions.items()
        )
    ).order_by(None)
    row = db.session.execute(counts_query).one()
    counts = {name: int(getattr(row, name)) for name in conditions}
    query = base.options(
        selectinload(OrientationCase.person),
        selectinload(OrientationCase.pauses),
        selectinload(OrientationCase.policy),
    )
    queue = filters.get("queue", "all")
    if queue != "all":
        query = query.where(conditions[queue])
    return query.order_by(*WORK_QUEUE_SORTS[filters.get("sort", "clock_started_on")]), counts
