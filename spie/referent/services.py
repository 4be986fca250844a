"""Référent "fil rouge": assignment, change, departure and bulk reassignment (services flush).

Rules (docs/parcours.md):

- exactly one active référent per person: the partial unique index
  ``uq_referent_assignments_active_per_person`` guarantees it, the services check first to
  answer a precise error;
- the référent belongs to the structure the person was oriented to
  (``Person.current_structure_id``), holds the référent role and is active (no departure
  date set);
- every change is dated (``started_at``/``ended_at``) with a reason, and a change of
  référent carries a handover note (shown in the timeline, never to managers);
- the caseload capacity (``Agent.caseload_capacity``) is a bound: assigning beyond it needs
  an explicit ``allow_over_capacity``;
- a person without an active référent runs a ``referent_gap`` clock (policy
  ``referent_gap``); the daily scan alerts the structure's managers once it is overdue.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select

from spie.agents.models import Agent, AgentRole, Role, agent_territories
from spie.audit.models import AuditAction
from spie.audit.service import record
from spie.clocks.calendar import paris_date
from spie.clocks.models import ClockKind
from spie.db import db
from spie.errors import Conflict, ValidationFailed
from spie.parcours import clock
from spie.parcours.alerts import raise_alert, resolve_open_alerts
from spie.parcours.clocks import meet_clocks, start_clock
from spie.parcours.models import AlertKind, Pathway
from spie.persons.models import Person
from spie.referent.models import ReferentAssignment

REASON_MAX = 200


def active_assignment(person_id: int) -> ReferentAssignment | None:
    return db.session.scalar(
        select(ReferentAssignment).where(
            ReferentAssignment.person_id == person_id, ReferentAssignment.ended_at.is_(None)
        )
    )


def referent_version(person_id: int) -> int:
    """The optimistic-locking version of a person's référent: the id of the active
    assignment, 0 when there is none (every change creates a new assignment id)."""
    found = db.session.scalar(
        select(ReferentAssignment.id).where(
            ReferentAssignment.person_id == person_id, ReferentAssignment.ended_at.is_(None)
        )
    )
    return found or 0


def is_available_referent(agent: Agent, on: dt.date) -> bool:
    """Holds the référent role, is active on ``on`` and is not leaving."""
    return (
        agent.has_role(Role.REFERENT)
        and agent.is_active_on(on)
        and (agent.active_until is None or agent.active_until > on)
    )


def active_loads(agent_ids: list[int]) -> dict[int, int]:
    """Number of people each agent is the active référent of (one grouped query)."""
    if not agent_ids:
        return {}
    rows = db.session.execute(
        select(ReferentAssignment.agent_id, func.count())
        .where(ReferentAssignment.agent_id.in_(agent_ids), ReferentAssignment.ended_at.is_(None))
        .group_by(ReferentAssignment.agent_id)
    ).all()
    loads = dict.fromkeys(agent_ids, 0)
    loads.update({agent_id: count for agent_id, count in rows})
    return loads


def _active_pathway(person_id: int) -> Pathway | None:
    return db.session.scalar(
        select(Pathway).where(Pathway.person_id == person_id, Pathway.closed_on.is_(None))
    )


def start_referent_gap(person: Person, since: dt.date) -> None:
    """The person has no active référent since ``since``: start the gap clock."""
    if person.current_structure_id is None:
        return
    pathway = _active_pathway(person.id)
    start_clock(
        ClockKind.REFERENT_GAP,
        person.id,
        since,
        pathway_id=pathway.id if pathway else None,
    )


def _check_referent(person: Person, agent: Agent, on: dt.date) -> None:
    if person.current_structure_id is None:
        raise Conflict(
            "La personne n'est orientée vers aucune structure : aucun référent ne peut lui "
            "être désigné.",
            code="person_not_oriented",
        )
    if agent.structure_id != person.current_structure_id:
        raise ValidationFailed(
            "Le référent doit appartenir à la structure d'orientation de la personne.",
            code="referent_wrong_structure",
            errors={
                "agent_id": [
                    f"L'agent {agent.id} n'appartient pas à la structure "
                    f"{person.current_structure_id}."
                ]
            },
        )
    if not is_available_referent(agent, on):
        raise ValidationFailed(
            "Cet agent ne peut pas être référent.",
            code="referent_unavailable",
            errors={
                "agent_id": [
                    f"L'agent {agent.id} n'a pas le rôle référent, n'est pas actif ou quitte "
                    "la structure."
                ]
            },
        )


def assign_referent(
    person: Person,
    agent: Agent,
    *,
    reason: str,
    handover_note: str | None,
    by: Agent | None,
    allow_over_capacity: bool = False,
    at: dt.datetime | None = None,
) -> ReferentAssignment:
    """Make ``agent`` the active référent of ``person`` (ending the current one if any)."""
    at = at or clock.now()
    on = paris_date(at)
    _check_referent(person, agent, on)
    current = active_assignment(person.id)
    if current is not None and current.agent_id == agent.id:
        raise Conflict(
            f"L'agent {agent.id} est déjà le référent actif de la personne.",
            code="referent_unchanged",
        )
    if current is not None and not (handover_note and handover_note.strip()):
        raise ValidationFailed(
            "Un changement de référent demande une note de passation.",
            errors={"handover_note": ["Obligatoire lors d'un changement de référent."]},
        )
    load = active_loads([agent.id])[agent.id]
    if load >= agent.caseload_capacity and not allow_over_capacity:
        raise Conflict(
            f"Le portefeuille de l'agent {agent.id} est plein ({load} / "
            f"{agent.caseload_capacity}) : choisissez un autre référent ou confirmez le "
            "dépassement (allow_over_capacity).",
            code="caseload_full",
            errors={"agent_id": ["Capacité du portefeuille atteinte."]},
            extra={"load": load, "capacity": agent.caseload_capacity},
        )
    if current is not None:
        current.ended_at = at
        current.end_reason = reason[:REASON_MAX]
        db.session.flush()  # the active row ends before the new one starts (unique index)
    assignment = ReferentAssignment(
        person_id=person.id,
        agent_id=agent.id,
        structure_id=agent.structure_id,
        started_at=at,
        reason=reason[:REASON_MAX],
        handover_note=handover_note,
        assigned_by_id=by.id if by else None,
    )
    db.session.add(assignment)
    db.session.flush()
    meet_clocks(person.id, {ClockKind.REFERENT_GAP}, on)
    resolve_open_alerts(
        person.id,
        {AlertKind.REFERENT_GAP, AlertKind.REFERENT_DEPARTURE},
        "référent désigné",
    )
    record(
        AuditAction.CREATE,
        "referent_assignment",
        assignment.id,
        person_id=person.id,
        reason="referent_change" if current else "referent_assigned",
        details={
            "agent_id": agent.id,
            "previous_agent_id": current.agent_id if current else None,
            "fields": ["reason"] + (["handover_note"] if handover_note else []),
        },
    )
    return assignment


def end_assignment(
    assignment: ReferentAssignment, reason: str, at: dt.datetime | None = None
) -> None:
    """End an assignment without successor: the person joins the gap clock."""
    at = at or clock.now()
    assignment.ended_at = max(at, assignment.started_at)
    assignment.end_reason = reason[:REASON_MAX]
    db.session.flush()
    person = db.session.get(Person, assignment.person_id)
    if person is None:
        return
    start_referent_gap(person, paris_date(assignment.ended_at))
    record(
        AuditAction.UPDATE,
        "referent_assignment",
        assignment.id,
        person_id=assignment.person_id,
        reason="referent_ended",
        details={"agent_id": assignment.agent_id},
    )


# --------------------------------------------------------------------------------------------
# Proposals (queue) and bulk reassignment
# --------------------------------------------------------------------------------------------


@dataclass
class Candidate:
    agent_id: int
    name: str
    load: int
    capacity: int
    territory_ids: set[int] = field(default_factory=set)

    def covers(self, territory_id: int | None) -> bool:
        # An agent without territories covers the whole area of their structure.
        return not self.territory_ids or territory_id in self.territory_ids

    @property
    def free(self) -> int:
        return self.capacity - self.load


def candidates(structure_id: int, on: dt.date, exclude: set[int] | None = None) -> list[Candidate]:
    """Available référents of a structure with their load (three queries whatever the size)."""
    agents = db.session.execute(
        select(Agent.id, Agent.first_name, Agent.last_name, Agent.caseload_capacity)
        .join(AgentRole, AgentRole.agent_id == Agent.id)
        .where(
            Agent.structure_id == structure_id,
            AgentRole.role == Role.REFERENT,
            Agent.active_from <= on,
            or_(Agent.active_until.is_(None), Agent.active_until > on),
        )
        .order_by(Agent.id)
    ).all()
    found = [
        Candidate(row.id, f"{row.first_name} {row.last_name}", 0, row.caseload_capacity)
        for row in agents
        if row.id not in (exclude or set())
    ]
    if not found:
        return []
    loads = active_loads([c.agent_id for c in found])
    territories: dict[int, set[int]] = {}
    for agent_id, territory_id in db.session.execute(
        select(agent_territories.c.agent_id, agent_territories.c.territory_id).where(
            agent_territories.c.agent_id.in_([c.agent_id for c in found])
        )
    ):
        territories.setdefault(agent_id, set()).add(territory_id)
    for candidate in found:
        candidate.load = loads[candidate.agent_id]
        candidate.territory_ids = territories.get(candidate.agent_id, set())
    return found


def pick(pool: list[Candidate], territory_id: int | None) -> Candidate | None:
    """The best référent for a person of ``territory_id``: covering the territory first,
    then the lowest load relative to capacity, then the lowest load; never a full one."""
    open_pool = [c for c in pool if c.free > 0]
    if not open_pool:
        return None
    return min(
        open_pool,
        key=lambda c: (
            not c.covers(territory_id),
            c.load / c.capacity if c.capacity else 1.0,
            c.load,
            c.agent_id,
        ),
    )


def propose(
    pool: list[Candidate], territory_ids: list[int | None]
) -> list[tuple[Candidate, int] | None]:
    """Greedy proposals for people in order: each proposal counts in the next ones' load.
    Returns (candidate, their load before this proposal) or None when every référent is
    full."""
    proposals: list[tuple[Candidate, int] | None] = []
    for territory_id in territory_ids:
        chosen = pick(pool, territory_id)
        if chosen is None:
            proposals.append(None)
            continue
        proposals.append((chosen, chosen.load))
        chosen.load += 1
    return proposals


def record_departure(
    agent: Agent, left_on: dt.date, reason: str, by: Agent | None
) -> dict[str, Any]:
    """The référent leaves on ``left_on`` (last active day): each of their people is flagged
    (alert ``referent_departure`` for the structure's managers); the assignments end the day
    after (daily scan) unless they are reassigned before."""
    if left_on < agent.active_from:
        raise ValidationFailed(
            "Date de départ invalide.",
            errors={"left_on": ["La date de départ précède l'arrivée de l'agent."]},
        )
    agent.active_until = left_on
    db.session.flush()
    assignments = db.session.scalars(
        select(ReferentAssignment).where(
            ReferentAssignment.agent_id == agent.id, ReferentAssignment.ended_at.is_(None)
        )
    ).all()
    persons = {
        p.id: p
        for p in db.session.scalars(
            select(Person).where(Person.id.in_([a.person_id for a in assignments]))
        )
    }
    for assignment in assignments:
        raise_alert(
            persons[assignment.person_id],
            AlertKind.REFERENT_DEPARTURE,
            due_on=left_on,
            notify_referent=False,
            structure_id=assignment.structure_id,
            source_type="agent",
            source_id=agent.id,
        )
    if left_on < clock.today():
        end_assignments_of_departed(clock.today())
    record(
        AuditAction.UPDATE,
        "agent",
        agent.id,
        reason="referent_departure",
        details={"left_on": left_on.isoformat(), "flagged": len(assignments), "why": reason},
    )
    return {"flagged": len(assignments), "left_on": left_on}


def end_assignments_of_departed(today: dt.date) -> int:
    """End the assignments of agents no longer active (left or deactivated): their people
    start the gap clock. Idempotent."""
    rows = db.session.scalars(
        select(ReferentAssignment)
        .join(Agent, Agent.id == ReferentAssignment.agent_id)
        .where(
            ReferentAssignment.ended_at.is_(None),
            or_(Agent.active_until < today, Agent.active_from > today),
        )
    ).all()
    for assignment in rows:
        agent = db.session.get(Agent, assignment.agent_id)
        if agent is None:
            continue
        ended = (
            dt.datetime.combine(agent.active_until + dt.timedelta(days=1), dt.time(), dt.UTC)
            if agent.active_until
            else clock.now()
        )
        end_assignment(assignment, "départ ou désactivation du référent", ended)
    return len(rows)


def plan_reassignment(
    from_agent: Agent,
    *,
    person_ids: list[int] | None,
    to_agent_ids: list[int] | None,
    on: dt.date,
) -> tuple[list[tuple[ReferentAssignment, Candidate]], list[int]]:
    """Spread ``from_agent``'s people over the structure's other available référents (or
    ``to_agent_ids``), territory first then load. Returns (plan, people left unassigned)."""
    query = select(ReferentAssignment).where(
        ReferentAssignment.agent_id == from_agent.id, ReferentAssignment.ended_at.is_(None)
    )
    if person_ids is not None:
        query = query.where(ReferentAssignment.person_id.in_(person_ids))
    assignments = list(db.session.scalars(query.order_by(ReferentAssignment.person_id)))
    if person_ids is not None:
        missing = sorted(set(person_ids) - {a.person_id for a in assignments})
        if missing:
            raise ValidationFailed(
                "Certaines personnes ne sont pas suivies par ce référent.",
                errors={"person_ids": [f"Pas dans le portefeuille de l'agent : {missing}"]},
            )
    pool = candidates(from_agent.structure_id, on, exclude={from_agent.id})
    if to_agent_ids is not None:
        unknown = sorted(set(to_agent_ids) - {c.agent_id for c in pool})
        if unknown:
            raise ValidationFailed(
                "Référents de destination indisponibles.",
                errors={
                    "to_agent_ids": [f"Pas référents disponibles de la même structure : {unknown}"]
                },
            )
        pool = [c for c in pool if c.agent_id in set(to_agent_ids)]
    territories = dict(
        db.session.execute(
            select(Person.id, Person.territory_id).where(
                Person.id.in_([a.person_id for a in assignments])
            )
        ).all()
    )
    chosen = propose(pool, [territories.get(a.person_id) for a in assignments])
    plan = [(a, c[0]) for a, c in zip(assignments, chosen, strict=True) if c is not None]
    left = [a.person_id for a, c in zip(assignments, chosen, strict=True) if c is None]
    return plan, left


def reassign(
    from_agent: Agent,
    *,
    person_ids: list[int] | None,
    to_agent_ids: list[int] | None,
    reason: str,
    handover_note: str,
    by: Agent | None,
    dry_run: bool,
) -> dict[str, Any]:
    """The bulk reassignment tool (dry run = the plan only)."""
    on = clock.today()
    plan, left = plan_reassignment(
        from_agent, person_ids=person_ids, to_agent_ids=to_agent_ids, on=on
    )
    moves = [
        {"person_id": a.person_id, "from_agent_id": from_agent.id, "to_agent_id": c.agent_id}
        for a, c in plan
    ]
    if not dry_run:
        agents = {
            a.id: a
            for a in db.session.scalars(
                select(Agent).where(Agent.id.in_({c.agent_id for _, c in plan}))
            )
        }
        persons = {
            p.id: p
            for p in db.session.scalars(
                select(Person).where(Person.id.in_([a.person_id for a, _ in plan]))
            )
        }
        for assignment, candidate in plan:
            assign_referent(
                persons[assignment.person_id],
                agents[candidate.agent_id],
                reason=reason,
                handover_note=handover_note,
                by=by,
                # the plan already respected capacities, counting its own moves
                allow_over_capacity=True,
            )
    return {"dry_run": dry_run, "moves": moves, "unassigned_person_ids": left}
