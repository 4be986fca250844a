"""Admin operations on structures."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from spie.audit.models import AuditAction
from spie.audit.service import record
from spie.db import db, utcnow
from spie.errors import ValidationFailed
from spie.structures.models import Structure
from spie.territories.models import Commune, Territory


def _territories(ids: list[int]) -> list[Territory]:
    found = list(db.session.scalars(select(Territory).where(Territory.id.in_(ids))))
    missing = sorted(set(ids) - {t.id for t in found})
    if missing:
        raise ValidationFailed(
            "Territoire inconnu.", errors={"territory_ids": [f"Inconnus : {missing}"]}
        )
    return found


def _check_commune(code: str | None) -> None:
    if code is not None and db.session.get(Commune, code) is None:
        raise ValidationFailed(
            "Commune inconnue.", errors={"commune_insee": [f"Aucune commune {code}."]}
        )


def save_structure(structure: Structure | None, data: dict[str, Any]) -> Structure:
    data = dict(data)
    territory_ids = data.pop("territory_ids", None)
    if "commune_insee" in data:
        _check_commune(data["commune_insee"])
    creating = structure is None
    structure = structure or Structure()
    for field, value in data.items():
        setattr(structure, field, value)
    if territory_ids is not None:
        structure.territories = _territories(territory_ids)
    if not creating:
        structure.updated_at = utcnow()  # territories live in another table: bump the version
    db.session.add(structure)
    db.session.flush()
    record(
        AuditAction.CREATE if creating else AuditAction.UPDATE,
        "structure",
        structure.id,
        details={"fields": sorted(data) + (["territory_ids"] if territory_ids is not None else [])},
    )
    return structure
