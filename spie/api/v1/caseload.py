"""The adviser's caseload (référents: their own; managers and admins: any référent's,
limited to the people they may see)."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask_smorest import Blueprint

from spie.agents.models import Agent, Role
from spie.auth.access import current_agent, roles_required
from spie.db import db
from spie.errors import Forbidden, NotFound, ValidationFailed
from spie.parcours.caseload import caseload
from spie.parcours.schemas import CaseloadArgs, CaseloadSchema

blp = Blueprint("caseload", __name__, url_prefix="/caseload", description="Portefeuille")


@blp.route("", methods=["GET"])
@roles_required(Role.REFERENT, Role.MANAGER, Role.ADMIN)
@blp.arguments(CaseloadArgs, location="query")
@blp.response(200, CaseloadSchema)
def get_caseload(args: dict[str, Any]) -> Any:
    """The référent's people with their next deadline, overdue items, last contact, contract
    status, current step and open alerts; filters, sorting, counts over the whole caseload.
    Two SQL statements whatever the page size."""
    me = current_agent()
    page, per_page = args.pop("page"), args.pop("per_page")
    agent_id = args.pop("agent_id", None)
    if agent_id is None or agent_id == me.id:
        if not me.has_role(Role.REFERENT):
            raise ValidationFailed(
                "Indiquez le référent dont vous voulez voir le portefeuille.",
                errors={"agent_id": ["Obligatoire pour un manager ou un administrateur."]},
            )
        referent = me
    else:
        if not me.has_role(Role.MANAGER, Role.ADMIN):
            raise Forbidden(
                "Un référent ne consulte que son propre portefeuille.", code="other_caseload"
            )
        found = db.session.get(Agent, agent_id)
        if found is None:
            raise NotFound(f"Agent {agent_id} introuvable.")
        referent = found
    # Serialised by hand (values already JSON-ready): dumping 50 nested rows through
    # marshmallow costs more than the SQL. CaseloadSchema documents the shape and a test
    # checks the answer against it.
    return jsonify(caseload(me, referent, args, page, per_page))
