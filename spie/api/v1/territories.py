"""Territories and communes — reference data readable by every agent."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from spie.agents.models import Role
from spie.auth.access import roles_required
from spie.db import db
from spie.errors import NotFound
from spie.territories.models import Commune, Territory, TerritoryKind

blp = Blueprint("territories", __name__, url_prefix="", description="Territoires et communes")


class CommuneSchema(ma.Schema):
    insee_code = ma.fields.String()
    name = ma.fields.String()
    postal_code = ma.fields.String()
    territory_id = ma.fields.Integer()
    priority_neighbourhood = ma.fields.Boolean()


class TerritorySchema(ma.Schema):
    id = ma.fields.Integer()
    code = ma.fields.String()
    name = ma.fields.String()
    kind = ma.fields.Enum(TerritoryKind, by_value=True)
    commune_count = ma.fields.Integer()


class TerritoryDetailSchema(TerritorySchema):
    communes = ma.fields.List(ma.fields.Nested(CommuneSchema))


class CommuneArgs(ma.Schema):
    territory_id = ma.fields.Integer()


@blp.route("/territories", methods=["GET"])
@roles_required(*Role)
@blp.response(200, TerritorySchema(many=True))
def list_territories() -> list[dict[str, Any]]:
    counts = dict(
        db.session.execute(
            select(Commune.territory_id, func.count()).group_by(Commune.territory_id)
        ).all()
    )
    territories = db.session.scalars(select(Territory).order_by(Territory.kind, Territory.name))
    return [
        {
            "id": t.id,
            "code": t.code,
            "name": t.name,
            "kind": t.kind,
            "commune_count": counts.get(t.id, 0),
        }
        for t in territories
    ]


@blp.route("/territories/<int:territory_id>", methods=["GET"])
@roles_required(*Role)
@blp.response(200, TerritoryDetailSchema)
def get_territory(territory_id: int) -> dict[str, Any]:
    territory = db.session.scalar(
        select(Territory)
        .where(Territory.id == territory_id)
        .options(selectinload(Territory.communes))
    )
    if territory is None:
        raise NotFound(f"Territoire {territory_id} introuvable.")
    return {
        "id": territory.id,
        "code": territory.code,
        "name": territory.name,
        "kind": territory.kind,
        "commune_count": len(territory.communes),
        "communes": territory.communes,
    }


@blp.route("/communes", methods=["GET"])
@roles_required(*Role)
@blp.arguments(CommuneArgs, location="query")
@blp.response(200, CommuneSchema(many=True))
def list_communes(args: dict[str, Any]) -> Any:
    query = select(Commune).order_by(Commune.name)
    if "territory_id" in args:
        query = query.where(Commune.territory_id == args["territory_id"])
    return db.session.scalars(query).all()
