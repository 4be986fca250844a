"""The offer catalogue (offre d'insertion): read by every agent, managed by admins."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from sqlalchemy.orm import selectinload

from spie.agents.models import Role
from spie.api.common import etag, page_schema, paginate, require_if_match
from spie.auth.access import roles_required
from spie.parcours import queries
from spie.parcours.models import Offer
from spie.parcours.schemas import OfferArgs, OfferListArgs, OfferSchema, OfferUpdateArgs
from spie.parcours.services import save_offer

blp = Blueprint("offers", __name__, url_prefix="/offers", description="Catalogue des offres")
OfferPage = page_schema(OfferSchema, "OfferPage")


@blp.route("", methods=["GET"])
@roles_required(*Role)
@blp.arguments(OfferListArgs, location="query")
@blp.response(200, OfferPage)
def list_offers(args: dict[str, Any]) -> dict[str, Any]:
    """Offers by theme, provider, territory (offers without territory serve them all) and
    availability on a date."""
    page, per_page = args.pop("page"), args.pop("per_page")
    query = queries.list_offers(args).options(selectinload(Offer.territories))
    return paginate(query, page, per_page)


@blp.route("/<int:offer_id>", methods=["GET"])
@roles_required(*Role)
@blp.response(200, OfferSchema)
def get_offer(offer_id: int) -> Any:
    offer = queries.get_offer(offer_id)
    return offer, 200, etag(offer.version)


@blp.route("", methods=["POST"])
@roles_required(Role.ADMIN)
@blp.arguments(OfferArgs)
@blp.response(201, OfferSchema)
def create_offer(args: dict[str, Any]) -> Any:
    """Add an offer (health offers are always sensitive)."""
    offer = save_offer(None, args)
    return offer, 201, etag(offer.version)


@blp.route("/<int:offer_id>", methods=["PATCH"])
@roles_required(Role.ADMIN)
@blp.arguments(OfferUpdateArgs)
@blp.response(200, OfferSchema)
@blp.doc(
    parameters=[
        {"in": "header", "name": "If-Match", "required": True, "schema": {"type": "string"}}
    ]
)
def update_offer(args: dict[str, Any], offer_id: int) -> Any:
    offer = queries.get_offer(offer_id)
    require_if_match(offer.version)
    save_offer(offer, args)
    return offer, 200, etag(offer.version)
