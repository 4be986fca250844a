"""Administration — job runs and the audit trail (admins only)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint
from sqlalchemy import select

from spie.agents.models import Role
from spie.api.common import PaginationArgs, page_schema, paginate
from spie.audit.models import ActorKind, AuditAction, AuditEvent
from spie.auth.access import roles_required
from spie.db import db
from spie.errors import NotFound
from spie.jobs.models import JobRun, JobStatus

blp = Blueprint("admin", __name__, url_prefix="/admin", description="Administration")


class JobRunSchema(ma.Schema):
    id = ma.fields.String()
    name = ma.fields.String()
    queue = ma.fields.String()
    status = ma.fields.Enum(JobStatus, by_value=True)
    arguments = ma.fields.Dict(allow_none=True)
    enqueued_at = ma.fields.AwareDateTime()
    started_at = ma.fields.AwareDateTime(allow_none=True)
    ended_at = ma.fields.AwareDateTime(allow_none=True)
    attempts = ma.fields.Integer()
    max_attempts = ma.fields.Integer()
    error = ma.fields.String(allow_none=True)
    result = ma.fields.Dict(allow_none=True)


class JobListArgs(PaginationArgs):
    status = ma.fields.Enum(JobStatus, by_value=True)
    name = ma.fields.String(validate=ma.validate.Length(max=120))


class AuditEventSchema(ma.Schema):
    id = ma.fields.Integer()
    at = ma.fields.AwareDateTime()
    actor_kind = ma.fields.Enum(ActorKind, by_value=True)
    actor_agent_id = ma.fields.Integer(allow_none=True)
    actor_structure_id = ma.fields.Integer(allow_none=True)
    actor_label = ma.fields.String(allow_none=True)
    action = ma.fields.Enum(AuditAction, by_value=True)
    resource_type = ma.fields.String()
    resource_id = ma.fields.String(allow_none=True)
    person_id = ma.fields.Integer(allow_none=True)
    reason = ma.fields.String(allow_none=True)
    ip = ma.fields.String(allow_none=True)
    details = ma.fields.Dict(allow_none=True)


class AuditListArgs(PaginationArgs):
    person_id = ma.fields.Integer()
    actor_agent_id = ma.fields.Integer()
    action = ma.fields.Enum(AuditAction, by_value=True)
    resource_type = ma.fields.String(validate=ma.validate.Length(max=60))


JobPage = page_schema(JobRunSchema, "JobRunPage")
AuditPage = page_schema(AuditEventSchema, "AuditEventPage")


@blp.route("/jobs", methods=["GET"])
@roles_required(Role.ADMIN)
@blp.arguments(JobListArgs, location="query")
@blp.response(200, JobPage)
def list_jobs(args: dict[str, Any]) -> dict[str, Any]:
    """Background job runs, newest first, with their status, attempts and error."""
    query = select(JobRun).order_by(JobRun.enqueued_at.desc(), JobRun.id)
    if "status" in args:
        query = query.where(JobRun.status == args["status"])
    if "name" in args:
        query = query.where(JobRun.name.contains(args["name"], autoescape=True))
    return paginate(query, args["page"], args["per_page"])


@blp.route("/jobs/<string:job_id>", methods=["GET"])
@roles_required(Role.ADMIN)
@blp.response(200, JobRunSchema)
def get_job(job_id: str) -> JobRun:
    run = db.session.get(JobRun, job_id)
    if run is None:
        raise NotFound(f"Tâche {job_id} introuvable.")
    return run


@blp.route("/audit", methods=["GET"])
@roles_required(Role.ADMIN)
@blp.arguments(AuditListArgs, location="query")
@blp.response(200, AuditPage)
def list_audit(args: dict[str, Any]) -> dict[str, Any]:
    """The audit trail, newest first (append-only)."""
    query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    for field in ("person_id", "actor_agent_id", "action", "resource_type"):
        if field in args:
            query = query.where(getattr(AuditEvent, field) == args[field])
    return paginate(query, args["page"], args["per_page"])
