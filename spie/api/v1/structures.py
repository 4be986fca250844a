"""Structures — readable by every agent, managed by admins."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from spie.agents.models import Role
from spie.api.common import etag, page_schema, paginate, require_if_match
from spie.auth.access import roles_required
from spie.db import db
from spie.errors import NotFound
from spie.structures.models import Structure, structure_territories
from spie.structures.schemas import (
    StructureArgs,
    StructureListArgs,
    StructureSchema,
    StructureUpdateArgs,
)
from spie.structures.services import save_structure

blp = Blueprint("structures", __name__, url_prefix="/structures", description="Structures")
StructurePage = page_schema(StructureSchema, "StructurePage")


def _get(structure_id: int) -> Structure:
    structure = db.session.get(Structure, structure_id)
    if structure is None:
        raise NotFound(f"Structure {structure_id} introuvable.")
    return structure


@blp.route("", methods=["GET"])
@roles_required(*Role)
@blp.arguments(StructureListArgs, location="query")
@blp.response(200, StructurePage)
def list_structures(args: dict[str, Any]) -> dict[str, Any]:
    query = select(Structure).options(selectinload(Structure.territories)).order_by(Structure.name)
    if "type" in args:
        query = query.where(Structure.type == args["type"])
    if "active" in args:
        query = query.where(Structure.active.is_(args["active"]))
    if "territory_id" in args:
        query = query.where(
            Structure.id.in_(
                select(structure_territories.c.structure_id).where(
                    structure_territories.c.territory_id == args["territory_id"]
                )
            )
        )
    return paginate(query, args["page"], args["per_page"])


@blp.route("/<int:structure_id>", methods=["GET"])
@roles_required(*Role)
@blp.response(200, StructureSchema)
def get_structure(structure_id: int) -> Any:
    structure = _get(structure_id)
    return structure, 200, etag(structure.version)


@blp.route("", methods=["POST"])
@roles_required(Role.ADMIN)
@blp.arguments(StructureArgs)
@blp.response(201, StructureSchema)
def create_structure(args: dict[str, Any]) -> Any:
    structure = save_structure(None, args)
    return structure, 201, etag(structure.version)


@blp.route("/<int:structure_id>", methods=["PATCH"])
@roles_required(Role.ADMIN)
@blp.arguments(StructureUpdateArgs)
@blp.response(200, StructureSchema)
def update_structure(args: dict[str, Any], structure_id: int) -> Any:
    structure = _get(structure_id)
    require_if_match(structure.version)
    save_structure(structure, args)
    return structure, 200, etag(structure.version)
