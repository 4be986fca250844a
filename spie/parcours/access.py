"""Who may read and write what in a pathway (on top of ``spie.auth.scope``).

- **Reading** a person's pathway, timeline, contracts, appointments, alerts: whoever sees
  the person (``persons_visible_to``); anyone else gets 404.
- **Writing** (steps, contracts, appointments, diagnostics, EP cases): the person's active
  référent; while the person waits in their structure's queue, any référent of that
  structure; admins. Others who see the person (managers, chargés d'orientation, a référent
  of another structure) get 403.
- **Provider contributors**: référents of the structure that runs a step see that step and
  the person's minimal identity (names, birth date) through the steps endpoints only —
  the person's file and the rest of the pathway stay out of reach (no ``EXTRA_SCOPES``
  rule: it would widen person visibility everywhere). They may move the step along its
  state machine and write its bilan.
- **Free-text notes** (step notes, appointment notes, handover notes, diagnostic comments,
  EP texts) are never shown to managers; **health-related** content (sensitive steps,
  health items of the diagnostic, hours reduction reasons) is shown only to référents of the
  person's structure or of the step's provider, chargés d'orientation and admins.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, false, select

from spie.agents.models import Agent, Role
from spie.db import db
from spie.errors import Forbidden
from spie.parcours.models import Step
from spie.persons.models import Person
from spie.referent.models import ReferentAssignment


def sees_notes(agent: Agent) -> bool:
    """Free-text notes: référents, chargés d'orientation and admins; never managers only."""
    return agent.has_role(Role.ADMIN, Role.REFERENT, Role.CHARGE_ORIENTATION)


def sees_health(agent: Agent, person: Person) -> bool:
    """Health-related content of the person: admins, chargés d'orientation (the orientation
    diagnostic already records health barriers) and référents of the person's structure
    (their référent and the colleagues who may take over). Never managers."""
    if agent.has_role(Role.ADMIN, Role.CHARGE_ORIENTATION):
        return True
    return agent.has_role(Role.REFERENT) and agent.structure_id == person.current_structure_id


def sees_step_details(agent: Agent, person: Person, step: Step) -> bool:
    if not step.sensitive:
        return True
    if sees_health(agent, person):
        return True
    return agent.has_role(Role.REFERENT) and agent.structure_id == step.provider_structure_id


def can_write(agent: Agent, person: Person) -> bool:
    if agent.has_role(Role.ADMIN):
        return True
    if not agent.has_role(Role.REFERENT):
        return False
    active = db.session.execute(
        select(ReferentAssignment.agent_id).where(
            ReferentAssignment.person_id == person.id, ReferentAssignment.ended_at.is_(None)
        )
    ).first()
    if active is not None:
        return bool(active[0] == agent.id)
    return person.current_structure_id == agent.structure_id


def require_writer(agent: Agent, person: Person) -> None:
    if not can_write(agent, person):
        raise Forbidden(
            "Seul le référent de la personne (ou un administrateur) peut modifier son parcours.",
            code="not_the_referent",
        )


def is_contributor(agent: Agent, step: Step) -> bool:
    return agent.has_role(Role.REFERENT) and agent.structure_id == step.provider_structure_id


def contributor_clause(agent: Agent) -> ColumnElement[bool]:
    """Steps the agent sees as a provider contributor."""
    if not agent.has_role(Role.REFERENT):
        return false()
    return Step.provider_structure_id == agent.structure_id


def referent_clause(person_id_column: ColumnElement[int], agent_id: int) -> ColumnElement[bool]:
    return exists(
        select(ReferentAssignment.id).where(
            and_(
                ReferentAssignment.person_id == person_id_column,
                ReferentAssignment.ended_at.is_(None),
                ReferentAssignment.agent_id == agent_id,
            )
        )
    )
