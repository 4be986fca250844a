"""Read side of the référent: a person's référent and history, a structure's queue with the
proposed référent for each person (a fixed number of queries per page)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, exists, func, select

from spie.agents.models import Agent
from spie.auth.scope import persons_visible_to
from spie.clocks.models import ClockKind
from spie.db import db
from spie.parcours import access, clock
from spie.parcours.models import Pathway, PathwayClock
from spie.persons.models import Person
from spie.referent.models import ReferentAssignment
from spie.referent.services import candidates, propose


def referent_history(agent: Agent, person: Person) -> dict[str, Any]:
    rows = db.session.execute(
        select(ReferentAssignment, Agent.first_name, Agent.last_name)
        .join(Agent, Agent.id == ReferentAssignment.agent_id)
        .where(ReferentAssignment.person_id == person.id)
        .order_by(ReferentAssignment.started_at.desc(), ReferentAssignment.id.desc())
    ).all()
    notes = access.sees_notes(agent)
    history = [
        {
            "id": assignment.id,
            "agent_id": assignment.agent_id,
            "agent_name": f"{first} {last}",
            "structure_id": assignment.structure_id,
            "started_at": assignment.started_at,
            "ended_at": assignment.ended_at,
            "reason": assignment.reason,
            "end_reason": assignment.end_reason,
            "handover_note": assignment.handover_note if notes else None,
            "assigned_by_id": assignment.assigned_by_id,
            "active": assignment.ended_at is None,
        }
        for assignment, first, last in rows
    ]
    active = next((h for h in history if h["active"]), None)
    return {
        "person_id": person.id,
        "current_structure_id": person.current_structure_id,
        "active": active,
        "history": history,
        "version": active["id"] if active else 0,
    }


def structure_queue(viewer: Agent, structure_id: int, page: int, per_page: int) -> dict[str, Any]:
    """People oriented to the structure without an active référent, longest wait first,
    each with a proposed référent (territory, then load against capacity)."""
    today = clock.today()
    no_referent = ~exists(
        select(ReferentAssignment.id).where(
            ReferentAssignment.person_id == Person.id, ReferentAssignment.ended_at.is_(None)
        )
    )
    gap = (
        select(PathwayClock.started_on, PathwayClock.due_on)
        .where(
            PathwayClock.person_id == Person.id,
            PathwayClock.kind == ClockKind.REFERENT_GAP,
            PathwayClock.met_on.is_(None),
            PathwayClock.stopped_on.is_(None),
        )
        .order_by(PathwayClock.started_on.desc())
        .limit(1)
    )
    waiting_since = gap.with_only_columns(PathwayClock.started_on).scalar_subquery()
    gap_due = gap.with_only_columns(PathwayClock.due_on).scalar_subquery()
    base = (
        select(
            Person.id,
            Person.last_name,
            Person.first_name,
            Person.birth_date,
            Person.territory_id,
            Pathway.id.label("pathway_id"),
            Pathway.parcours,
            Pathway.opened_on,
            waiting_since.label("waiting_since"),
            gap_due.label("gap_due_on"),
        )
        .outerjoin(Pathway, and_(Pathway.person_id == Person.id, Pathway.closed_on.is_(None)))
        .where(
            Person.current_structure_id == structure_id,
            no_referent,
            persons_visible_to(viewer),
        )
    )
    inner = base.subquery("queue")
    total = db.session.scalar(select(func.count()).select_from(inner))
    since = inner.c.waiting_since
    rows = (
        db.session.execute(
            select(inner)
            .order_by(
                case((since.is_(None), 1), else_=0),
                since,
                inner.c.opened_on,
                inner.c.id,
            )
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
        .mappings()
        .all()
    )
    pool = candidates(structure_id, today)
    proposals = propose(pool, [row["territory_id"] for row in rows])
    items = []
    for row, proposed in zip(rows, proposals, strict=True):
        items.append(
            {
                "person": {
                    "id": row["id"],
                    "last_name": row["last_name"],
                    "first_name": row["first_name"],
                    "birth_date": row["birth_date"],
                },
                "territory_id": row["territory_id"],
                "pathway_id": row["pathway_id"],
                "parcours": row["parcours"],
                "waiting_since": row["waiting_since"] or row["opened_on"],
                "gap_due_on": row["gap_due_on"],
                "overdue": row["gap_due_on"] is not None and row["gap_due_on"] < today,
                "proposal": (
                    {
                        "agent_id": proposed[0].agent_id,
                        "name": proposed[0].name,
                        "load": proposed[1],  # before this proposal
                        "capacity": proposed[0].capacity,
                        "covers_territory": proposed[0].covers(row["territory_id"]),
                    }
                    if proposed is not None
                    else None
                ),
            }
        )
    return {
        "structure_id": structure_id,
        "referents": [
            {
                "agent_id": c.agent_id,
                "name": c.name,
                "capacity": c.capacity,
                "load": c.load - sum(1 for p in proposals if p is not None and p[0] is c),
                "territory_ids": sorted(c.territory_ids),
            }
            for c in pool
        ],
        "items": items,
        "page": page,
        "per_page": per_page,
        "total": total or 0,
    }
