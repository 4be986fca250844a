"""Référent "fil rouge": a person's référent and history, structure queues with proposals,
confirmation by a manager of the structure, departures and bulk reassignment.

Who: everyone who sees the person reads their référent; managers of the person's structure
(and admins) confirm or change it; référents and managers of a structure read its queue;
managers of the agent's structure (and admins) record a departure and reassign.
"""

from __future__ import annotations

from typing import Any

from flask import request
from flask_smorest import Blueprint

from spie.agents.models import Agent, Role
from spie.api.common import etag, require_if_match
from spie.audit.service import record_person_read
from spie.auth.access import current_agent, roles_required
from spie.db import db
from spie.errors import Conflict, Forbidden, NotFound, ValidationFailed
from spie.parcours.queries import visible_person
from spie.referent import queries, services
from spie.referent.schemas import (
    AssignArgs,
    DepartureArgs,
    DepartureSchema,
    QueueArgs,
    QueueSchema,
    ReassignArgs,
    ReassignSchema,
    ReferentSchema,
)
from spie.structures.models import Structure

blp = Blueprint(
    "referents",
    __name__,
    url_prefix=None,
    description="Référent fil rouge : désignation, historique, files, départs, réaffectations",
)
IF_MATCH = {
    "parameters": [
        {"in": "header", "name": "If-Match", "required": True, "schema": {"type": "string"}}
    ]
}


def require_structure_manager(agent: Agent, structure_id: int) -> None:
    if agent.has_role(Role.ADMIN):
        return
    if agent.has_role(Role.MANAGER) and agent.structure_id == structure_id:
        return
    raise Forbidden(
        "Seuls les managers de la structure (ou un administrateur) peuvent faire cela.",
        code="not_structure_manager",
    )


@blp.route("/persons/<int:person_id>/referent", methods=["GET"])
@roles_required(*Role)
@blp.response(200, ReferentSchema)
def get_referent(person_id: int) -> Any:
    """The active référent and every past assignment (dates, reasons, handover notes)."""
    agent = current_agent()
    person = visible_person(agent, person_id)
    record_person_read(person.id, "consultation", resource_type="referent")
    result = queries.referent_history(agent, person)
    return result, 200, etag(result["version"])


@blp.route("/persons/<int:person_id>/referent", methods=["POST"])
@roles_required(Role.MANAGER, Role.ADMIN)
@blp.arguments(AssignArgs)
@blp.response(201, ReferentSchema)
@blp.doc(**IF_MATCH)
def assign_referent(args: dict[str, Any], person_id: int) -> Any:
    """Confirm the proposed référent or pick another (``If-Match``: the ETag read on
    ``GET``, ``"0"`` when the person has none). A change needs a handover note."""
    agent = current_agent()
    person = visible_person(agent, person_id)
    if person.current_structure_id is not None:
        require_structure_manager(agent, person.current_structure_id)
    current = services.referent_version(person.id)
    sent = request.headers.get("If-Match", "").strip().strip('"')
    if current and sent == "0":
        raise Conflict(
            "La personne a déjà un référent actif : un second référent actif est impossible ; "
            "pour le remplacer, envoyez l'ETag de l'affectation active et une note de "
            "passation.",
            code="referent_already_active",
            extra={"current_version": current},
        )
    require_if_match(current)
    target = db.session.get(Agent, args["agent_id"])
    if target is None:
        raise ValidationFailed(
            "Agent inconnu.", errors={"agent_id": [f"Aucun agent {args['agent_id']}."]}
        )
    services.assign_referent(
        person,
        target,
        reason=args["reason"],
        handover_note=args.get("handover_note"),
        by=agent,
        allow_over_capacity=args["allow_over_capacity"],
    )
    result = queries.referent_history(agent, person)
    return result, 201, etag(result["version"])


@blp.route("/structures/<int:structure_id>/referent-queue", methods=["GET"])
@roles_required(Role.REFERENT, Role.MANAGER, Role.ADMIN)
@blp.arguments(QueueArgs, location="query")
@blp.response(200, QueueSchema)
def referent_queue(args: dict[str, Any], structure_id: int) -> Any:
    """People oriented to the structure who wait for a référent, longest wait first, with a
    proposal each (territory first, then load against capacity)."""
    agent = current_agent()
    if db.session.get(Structure, structure_id) is None:
        raise NotFound(f"Structure {structure_id} introuvable.")
    if not agent.has_role(Role.ADMIN) and agent.structure_id != structure_id:
        raise Forbidden(
            "Seule la file de votre structure vous est accessible.", code="other_structure"
        )
    return queries.structure_queue(agent, structure_id, args["page"], args["per_page"])


@blp.route("/agents/<int:agent_id>/departure", methods=["POST"])
@roles_required(Role.MANAGER, Role.ADMIN)
@blp.arguments(DepartureArgs)
@blp.response(200, DepartureSchema)
@blp.doc(**IF_MATCH)
def record_departure(args: dict[str, Any], agent_id: int) -> Any:
    """A référent leaves (``left_on`` = last active day): each of their people is flagged
    for reassignment (``If-Match``: the agent's ETag)."""
    me = current_agent()
    target = db.session.get(Agent, agent_id)
    if target is None or (not me.has_role(Role.ADMIN) and target.structure_id != me.structure_id):
        raise NotFound(f"Agent {agent_id} introuvable.")
    require_structure_manager(me, target.structure_id)
    require_if_match(target.version)
    result = services.record_departure(target, args["left_on"], args["reason"], me)
    return {"agent_id": target.id, **result}, 200, etag(target.version)


@blp.route("/referent-reassignments", methods=["POST"])
@roles_required(Role.MANAGER, Role.ADMIN)
@blp.arguments(ReassignArgs)
@blp.response(200, ReassignSchema)
def reassign(args: dict[str, Any]) -> Any:
    """Spread a référent's people (all, or ``person_ids``) over the structure's other
    available référents (or ``to_agent_ids``): territory first, then load against
    capacity. ``dry_run`` returns the plan without changing anything."""
    me = current_agent()
    source = db.session.get(Agent, args["from_agent_id"])
    if source is None or (not me.has_role(Role.ADMIN) and source.structure_id != me.structure_id):
        raise ValidationFailed(
            "Référent d'origine inconnu.",
            errors={
                "from_agent_id": [f"Aucun agent {args['from_agent_id']} dans votre structure."]
            },
        )
    require_structure_manager(me, source.structure_id)
    return services.reassign(
        source,
        person_ids=args.get("person_ids"),
        to_agent_ids=args.get("to_agent_ids"),
        reason=args["reason"],
        handover_note=args["handover_note"],
        by=me,
        dry_run=args["dry_run"],
    )
