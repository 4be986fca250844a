"""Creating and updating agents (admin API, CLI, demo data)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from spie.agents.models import Agent, Role
from spie.audit.models import AuditAction
from spie.audit.service import record
from spie.auth.passwords import hash_password
from spie.clocks.today import paris_today
from spie.db import db, utcnow
from spie.errors import Conflict, ValidationFailed
from spie.structures.models import Structure
from spie.territories.services import territories_by_ids


def _structure(structure_id: int) -> Structure:
    structure = db.session.get(Structure, structure_id)
    if structure is None:
        raise ValidationFailed(
            "Structure inconnue.", errors={"structure_id": [f"Aucune structure {structure_id}."]}
        )
    return structure


def save_agent(agent: Agent | None, data: dict[str, Any]) -> Agent:
    data = dict(data)
    creating = agent is None
    if "email" in data:
        data["email"] = data["email"].strip().lower()
        clash = db.session.scalar(select(Agent.id).where(Agent.email == data["email"]))
        if clash is not None and (agent is None or clash != agent.id):
            raise Conflict(
                "Un agent utilise déjà cette adresse.",
                code="email_taken",
                errors={"email": ["Adresse déjà utilisée."]},
            )
    agent = agent or Agent()
    roles = data.pop("roles", None)
    territory_ids = data.pop("territory_ids", None)
    password = data.pop("password", None)
    if "structure_id" in data:
        agent.structure = _structure(data.pop("structure_id"))
    if data.get("active_from") is None and creating:
        data["active_from"] = paris_today()
    elif "active_from" in data and data["active_from"] is None:
        data.pop("active_from")
    for field, value in data.items():
        setattr(agent, field, value)
    if agent.active_until is not None and agent.active_until < agent.active_from:
        raise ValidationFailed(
            "Période d'activité invalide.",
            errors={"active_until": ["La fin d'activité précède son début."]},
        )
    if roles is not None:
        agent.set_roles(set(roles))
    if territory_ids is not None:
        agent.territories = territories_by_ids(territory_ids)
    if password:
        agent.password_hash = hash_password(password)
        if not creating:
            from spie.auth.services import rotate_session_nonce

            rotate_session_nonce(agent)  # a new password ends every open session
    if not creating:
        agent.updated_at = utcnow()  # role or territory changes live in other tables: bump version
    db.session.add(agent)
    db.session.flush()
    changed = sorted(data) + [
        name
        for name, value in (
            ("roles", roles),
            ("territory_ids", territory_ids),
            ("password", password),
        )
        if value is not None
    ]
    record(
        AuditAction.CREATE if creating else AuditAction.UPDATE,
        "agent",
        agent.id,
        details={"fields": changed},
    )
    return agent


def create_admin(
    email: str, password: str, structure: Structure, first_name: str, last_name: str
) -> Agent:
    return save_agent(
        None,
        {
            "email": email,
            "password": password,
            "first_name": first_name,
            "last_name": last_name,
            "structure_id": structure.id,
            "roles": [Role.ADMIN],
            "active_from": dt.date(2020, 1, 1),
        },
    )
