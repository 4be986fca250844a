"""Persons — for agents (référents, chargés d'orientation, managers, admins), scoped."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint

from spie.agents.models import Role
from spie.api.common import etag, page_schema, paginate, require_if_match
from spie.audit.service import record_person_read
from spie.auth.access import current_agent, roles_required
from spie.clocks.today import paris_today
from spie.persons import queries, services
from spie.persons.schemas import (
    ContactArgs,
    PersonListArgs,
    PersonSchema,
    PersonSearchArgs,
    PersonSummarySchema,
    ReferralArgs,
)

blp = Blueprint("persons", __name__, url_prefix="/persons", description="Personnes suivies")

PersonPage = page_schema(PersonSummarySchema, "PersonPage")
ALL = tuple(Role)


class ReadArgs(ma.Schema):
    reason = ma.fields.String(
        load_default="consultation",
        validate=ma.validate.OneOf(
            ["consultation", "caseload", "search", "alert", "orientation", "work_queue"]
        ),
    )


@blp.route("", methods=["GET"])
@roles_required(*ALL)
@blp.arguments(PersonListArgs, location="query")
@blp.response(200, PersonPage)
def list_persons(args: dict[str, Any]) -> dict[str, Any]:
    """Persons the caller may see, filtered and paginated (no NIR, no contacts)."""
    page, per_page = args.pop("page"), args.pop("per_page")
    return paginate(queries.list_persons(current_agent(), args), page, per_page)


@blp.route("/search", methods=["POST"])
@roles_required(*ALL)
@blp.arguments(PersonSearchArgs)
@blp.response(200, PersonPage)
def search_persons(args: dict[str, Any]) -> dict[str, Any]:
    """Search by name (prefix, accents ignored), NIR, CAF matricule or France Travail id.

    Criteria go in the JSON body so that they never appear in URLs or access logs.
    """
    page, per_page = args.pop("page"), args.pop("per_page")
    return paginate(queries.search_persons(current_agent(), args), page, per_page)


@blp.route("", methods=["POST"])
@roles_required(Role.CHARGE_ORIENTATION, Role.REFERENT, Role.ADMIN)
@blp.arguments(ReferralArgs)
@blp.response(201, PersonSchema)
def refer_person(args: dict[str, Any]) -> Any:
    """Manual referral of a person outside the RSA (RSJ, FSE+, partner referral)."""
    referred_on = args.get("referred_on") or paris_today()
    person = services.refer_person(args, referred_on)
    return person, 201, etag(person.version)


@blp.route("/<int:person_id>", methods=["GET"])
@roles_required(*ALL)
@blp.arguments(ReadArgs, location="query")
@blp.response(200, PersonSchema)
def get_person(args: dict[str, Any], person_id: int) -> Any:
    """The person's file. Every read is recorded in the audit trail with its reason."""
    person = queries.get_visible_person(current_agent(), person_id)
    record_person_read(person.id, args["reason"])
    return person, 200, etag(person.version)


@blp.route("/<int:person_id>/contacts", methods=["PATCH"])
@roles_required(Role.REFERENT, Role.CHARGE_ORIENTATION, Role.ADMIN)
@blp.arguments(ContactArgs)
@blp.response(200, PersonSchema)
@blp.doc(
    parameters=[
        {"in": "header", "name": "If-Match", "required": True, "schema": {"type": "string"}}
    ]
)
def update_contacts(args: dict[str, Any], person_id: int) -> Any:
    """Update contacts and address (optimistic locking with ``If-Match``)."""
    person = queries.get_visible_person(current_agent(), person_id)
    require_if_match(person.version)
    services.update_contacts(person, args)
    return person, 200, etag(person.version)
