"""Shared pieces of the JSON API: pagination, paged envelopes, optimistic-locking headers."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import current_app, request
from sqlalchemy import Select, func, select
from werkzeug.routing import IntegerConverter

from spie.api import SQL_INTEGER_MAX
from spie.db import db
from spie.errors import Conflict, PreconditionRequired

MAX_PER_PAGE = 100
# Primary keys are SQL INTEGER columns (signed 32 bits on PostgreSQL).
MAX_ID = SQL_INTEGER_MAX


class IdConverter(IntegerConverter):
    """``<int:...>`` in our URLs is always a row id: a number beyond the column's range names
    no row, so the URL does not match (404) instead of reaching the database, which cannot
    even compare it (SQLite: OverflowError; PostgreSQL: out of range for type integer).
    The bound is published in the OpenAPI document (``maximum``)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


class PaginationArgs(ma.Schema):
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100_000))
    per_page = ma.fields.Integer(
        load_default=25, validate=ma.validate.Range(min=1, max=MAX_PER_PAGE)
    )


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    """An envelope ``{items, page, per_page, total}`` around ``item_schema``."""
    return ma.Schema.from_dict(
        {
            "items": ma.fields.List(ma.fields.Nested(item_schema)),
            "page": ma.fields.Integer(),
            "per_page": ma.fields.Integer(),
            "total": ma.fields.Integer(),
        },
        name=name,
    )


def paginate(query: Select[Any], page: int, per_page: int) -> dict[str, Any]:
    """Run ``query`` for one page plus a COUNT over the same filters (two queries)."""
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)).all()
    return {"items": rows, "page": page, "per_page": per_page, "total": total or 0}


def etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


def require_if_match(current_version: int) -> None:
    """Optimistic locking at the edge: the client must send the version it read."""
    header = request.headers.get("If-Match")
    if not header:
        raise PreconditionRequired(
            "Envoyez l'en-tête If-Match avec l'ETag lu (version de la ressource).",
            extra={"current_version": current_version},
        )
    sent = {tag.strip().removeprefix("W/").strip('"') for tag in header.split(",")}
    if "*" in sent:
        return
    if str(current_version) not in sent:
        raise Conflict(
            "La ressource a été modifiée depuis votre lecture ; rechargez-la puis recommencez.",
            code="stale_version",
            extra={"current_version": current_version},
        )


def max_page_size() -> int:
    return int(current_app.config.get("SPIE_MAX_PAGE_SIZE", MAX_PER_PAGE))
