"""What each agent may see: the one place that turns roles into SQL filters on persons.

- admin: every person;
- chargé d'orientation, manager: persons living in one of the agent's territories;
- référent: their caseload (active assignment) and their structure's queue (people whose
  organisme référent is the agent's structure and who have no active référent yet).

An agent with several roles sees the union. Provider contributors (a step run by the agent's
structure) are added by the parcours package through :data:`EXTRA_SCOPES`.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true

from spie.agents.models import Agent, Role, agent_territories
from spie.persons.models import Person
from spie.referent.models import ReferentAssignment

# Other packages register extra visibility rules here (e.g. step contributors).
EXTRA_SCOPES: list[Callable[[Agent], ColumnElement[bool]]] = []


def _active_assignment(**conditions: object) -> ColumnElement[bool]:
    query = select(ReferentAssignment.id).where(
        ReferentAssignment.person_id == Person.id, ReferentAssignment.ended_at.is_(None)
    )
    for name, value in conditions.items():
        query = query.where(getattr(ReferentAssignment, name) == value)
    return exists(query)


def persons_visible_to(agent: Agent) -> ColumnElement[bool]:
    """A WHERE clause on :class:`Person` limiting rows to what ``agent`` may see."""
    roles = agent.roles
    if Role.ADMIN in roles:
        return true()
    clauses: list[ColumnElement[bool]] = []
    if roles & {Role.CHARGE_ORIENTATION, Role.MANAGER}:
        clauses.append(
            Person.territory_id.in_(
                select(agent_territories.c.territory_id).where(
                    agent_territories.c.agent_id == agent.id
                )
            )
        )
    if Role.REFERENT in roles:
        clauses.append(_active_assignment(agent_id=agent.id))
        clauses.append(
            and_(
                Person.current_structure_id == agent.structure_id,
                ~_active_assignment(),
            )
        )
    clauses.extend(rule(agent) for rule in EXTRA_SCOPES)
    if not clauses:
        return false()
    return or_(*clauses)


def territory_ids_of(agent: Agent) -> set[int] | None:
    """Territories an agent steers; ``None`` means all (admin)."""
    if agent.has_role(Role.ADMIN):
        return None
    return {t.id for t in agent.territories}
