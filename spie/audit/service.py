"""Writing the audit trail, in the same transaction as the work it describes."""

from __future__ import annotations

from typing import Any

from flask import g, has_request_context, request

from spie.audit.models import ActorKind, AuditAction, AuditEvent
from spie.db import db


def _actor() -> dict[str, Any]:
    if has_request_context():
        from spie.auth.access import current_agent_or_none

        agent = current_agent_or_none()
        if agent is not None:
            return {
                "actor_kind": ActorKind.AGENT,
                "actor_agent_id": agent.id,
                "actor_structure_id": agent.structure_id,
            }
        beneficiary = getattr(g, "beneficiary_person_id", None)
        if beneficiary is not None:
            return {"actor_kind": ActorKind.BENEFICIARY, "actor_label": f"person:{beneficiary}"}
        partner = getattr(g, "partner_client", None)
        if partner is not None:
            return {"actor_kind": ActorKind.PARTNER, "actor_label": str(partner)}
    return {"actor_kind": ActorKind.SYSTEM, "actor_label": getattr(g, "job_name", None)}


def record(
    action: AuditAction,
    resource_type: str,
    resource_id: object | None = None,
    *,
    person_id: int | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        action=action,
        resource_type=resource_type,
        resource_id=None if resource_id is None else str(resource_id),
        person_id=person_id,
        reason=reason,
        details=details,
        **_actor(),
    )
    if has_request_context():
        event.ip = request.remote_addr
        event.request_id = getattr(g, "request_id", None)
    db.session.add(event)
    return event


def record_person_read(person_id: int, reason: str, resource_type: str = "person") -> None:
    record(AuditAction.READ, resource_type, person_id, person_id=person_id, reason=reason)


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Names of the fields that changed (values are not kept: they may be personal data)."""
    return sorted(k for k in after if before.get(k) != after[k])
