"""Schemas of the structures API."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from spie.api.common import PaginationArgs
from spie.structures.models import StructureType


class StructureArgs(ma.Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=2, max=200))
    type = ma.fields.Enum(StructureType, by_value=True, required=True)
    siret = ma.fields.String(
        allow_none=True, validate=ma.validate.Regexp(r"^[0-9]{14}$", error="14 chiffres attendus.")
    )
    commune_insee = ma.fields.String(allow_none=True, validate=ma.validate.Length(equal=5))
    address = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=300))
    email = ma.fields.Email(allow_none=True)
    phone = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=30))
    capacity = ma.fields.Integer(load_default=0, validate=ma.validate.Range(min=0, max=1_000_000))
    active = ma.fields.Boolean(load_default=True)
    territory_ids = ma.fields.List(ma.fields.Integer(), load_default=list)


class StructureUpdateArgs(StructureArgs):
    """PATCH: every field optional; a field not sent keeps its value (no ``load_default``).

    marshmallow has no ``Meta.partial`` option: ``partial`` is an argument of the schema.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("partial", True)
        super().__init__(**kwargs)


class StructureListArgs(PaginationArgs):
    type = ma.fields.Enum(StructureType, by_value=True)
    territory_id = ma.fields.Integer()
    active = ma.fields.Boolean()


class StructureSchema(ma.Schema):
    id = ma.fields.Integer()
    version = ma.fields.Integer()
    name = ma.fields.String()
    type = ma.fields.Enum(StructureType, by_value=True)
    siret = ma.fields.String(allow_none=True)
    commune_insee = ma.fields.String(allow_none=True)
    address = ma.fields.String(allow_none=True)
    email = ma.fields.String(allow_none=True)
    phone = ma.fields.String(allow_none=True)
    capacity = ma.fields.Integer()
    active = ma.fields.Boolean()
    territory_ids = ma.fields.Function(lambda s: sorted(t.id for t in s.territories))
