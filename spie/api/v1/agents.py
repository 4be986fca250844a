"""Agents — admins manage them; other agents see the agents of their own structure."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from sqlalchemy import Select, or_, select

from spie.agents.models import Agent, AgentRole, Role
from spie.agents.schemas import AgentArgs, AgentListArgs, AgentSchema, AgentUpdateArgs
from spie.agents.services import save_agent
from spie.api.common import etag, page_schema, paginate, require_if_match
from spie.auth.access import current_agent, roles_required
from spie.clocks.today import paris_today
from spie.db import db
from spie.errors import NotFound

blp = Blueprint("agents", __name__, url_prefix="/agents", description="Agents")
AgentPage = page_schema(AgentSchema, "AgentPage")


def _visible_agents() -> Select[Agent]:
    me = current_agent()
    query = select(Agent)
    if not me.has_role(Role.ADMIN):
        query = query.where(Agent.structure_id == me.structure_id)
    return query


def _get(agent_id: int) -> Agent:
    agent = db.session.scalar(_visible_agents().where(Agent.id == agent_id))
    if agent is None:
        raise NotFound(f"Agent {agent_id} introuvable.")
    return agent


@blp.route("", methods=["GET"])
@roles_required(*Role)
@blp.arguments(AgentListArgs, location="query")
@blp.response(200, AgentPage)
def list_agents(args: dict[str, Any]) -> dict[str, Any]:
    query = _visible_agents().order_by(Agent.last_name, Agent.first_name, Agent.id)
    if "structure_id" in args:
        query = query.where(Agent.structure_id == args["structure_id"])
    if "role" in args:
        query = query.where(
            Agent.id.in_(select(AgentRole.agent_id).where(AgentRole.role == args["role"]))
        )
    if "active" in args:
        today = paris_today()
        active = (Agent.active_from <= today) & or_(
            Agent.active_until.is_(None), Agent.active_until >= today
        )
        query = query.where(active if args["active"] else ~active)
    return paginate(query, args["page"], args["per_page"])


@blp.route("/<int:agent_id>", methods=["GET"])
@roles_required(*Role)
@blp.response(200, AgentSchema)
def get_agent(agent_id: int) -> Any:
    agent = _get(agent_id)
    return agent, 200, etag(agent.version)


@blp.route("", methods=["POST"])
@roles_required(Role.ADMIN)
@blp.arguments(AgentArgs)
@blp.response(201, AgentSchema)
def create_agent(args: dict[str, Any]) -> Any:
    agent = save_agent(None, args)
    return agent, 201, etag(agent.version)


@blp.route("/<int:agent_id>", methods=["PATCH"])
@roles_required(Role.ADMIN)
@blp.arguments(AgentUpdateArgs)
@blp.response(200, AgentSchema)
def update_agent(args: dict[str, Any], agent_id: int) -> Any:
    agent = _get(agent_id)
    require_if_match(agent.version)
    save_agent(agent, args)
    return agent, 200, etag(agent.version)
