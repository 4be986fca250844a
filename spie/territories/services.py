"""Loading the territories and communes reference data (idempotent)."""

from __future__ import annotations

from sqlalchemy import select

from spie.db import db
from spie.territories.models import Commune, Territory, TerritoryKind
from spie.territories.reference import COMMUNES, TERRITORIES


def load_reference_data() -> dict[str, int]:
    existing = {t.code: t for t in db.session.scalars(select(Territory))}
    for ref in TERRITORIES:
        territory = existing.get(ref.code)
        if territory is None:
            territory = Territory(code=ref.code)
            db.session.add(territory)
            existing[ref.code] = territory
        territory.name = ref.name
        territory.kind = TerritoryKind(ref.kind)
    db.session.flush()
    communes = {c.insee_code: c for c in db.session.scalars(select(Commune))}
    for cref in COMMUNES:
        commune = communes.get(cref.insee)
        if commune is None:
            commune = Commune(insee_code=cref.insee)
            db.session.add(commune)
        commune.name = cref.name
        commune.postal_code = cref.postal_code
        commune.territory_id = existing[cref.territory_code].id
        commune.priority_neighbourhood = cref.qpv
    db.session.flush()
    return {"territories": len(TERRITORIES), "communes": len(COMMUNES)}


def territories_by_ids(ids: list[int]) -> list[Territory]:
    """The territories with these ids; a precise 422 naming the unknown ones otherwise."""
    from spie.errors import ValidationFailed

    found = list(db.session.scalars(select(Territory).where(Territory.id.in_(ids))))
    missing = sorted(set(ids) - {t.id for t in found})
    if missing:
        raise ValidationFailed(
            "Territoire inconnu.", errors={"territory_ids": [f"Inconnus : {missing}"]}
        )
    return found
