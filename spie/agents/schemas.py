"""Schemas of the agents API."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from spie.agents.models import Role
from spie.api.common import PaginationArgs
from spie.auth.passwords import MIN_PASSWORD_LENGTH


class AgentArgs(ma.Schema):
    email = ma.fields.Email(required=True)
    first_name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    last_name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    structure_id = ma.fields.Integer(required=True)
    roles = ma.fields.List(
        ma.fields.Enum(Role, by_value=True), required=True, validate=ma.validate.Length(min=1)
    )
    territory_ids = ma.fields.List(ma.fields.Integer(), load_default=list)
    caseload_capacity = ma.fields.Integer(
        load_default=0, validate=ma.validate.Range(min=0, max=10_000)
    )
    active_from = ma.fields.Date(load_default=None)
    active_until = ma.fields.Date(load_default=None, allow_none=True)
    password = ma.fields.String(
        load_only=True, validate=ma.validate.Length(min=MIN_PASSWORD_LENGTH, max=200)
    )

    @ma.validates_schema
    def _period(self, data: dict[str, Any], **_: Any) -> None:
        start, end = data.get("active_from"), data.get("active_until")
        if start and end and end < start:
            raise ma.ValidationError("La fin d'activité précède son début.", "active_until")


class AgentUpdateArgs(AgentArgs):
    """PATCH: every field optional; a field not sent keeps its value (no ``load_default``).

    marshmallow has no ``Meta.partial`` option: ``partial`` is an argument of the schema.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("partial", True)
        super().__init__(**kwargs)


class AgentListArgs(PaginationArgs):
    structure_id = ma.fields.Integer()
    role = ma.fields.Enum(Role, by_value=True)
    active = ma.fields.Boolean()


class AgentSchema(ma.Schema):
    id = ma.fields.Integer()
    version = ma.fields.Integer()
    email = ma.fields.String()
    first_name = ma.fields.String()
    last_name = ma.fields.String()
    structure_id = ma.fields.Integer()
    roles = ma.fields.Function(lambda a: sorted(r.value for r in a.roles))
    territory_ids = ma.fields.Function(lambda a: sorted(t.id for t in a.territories))
    caseload_capacity = ma.fields.Integer()
    active_from = ma.fields.Date()
    active_until = ma.fields.Date(allow_none=True)
    last_login_at = ma.fields.AwareDateTime(allow_none=True)
