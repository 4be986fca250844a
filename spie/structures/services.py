"""Admin operations on structures."""

from __future__ import annotations

from typing import Any

from spie.audit.models import AuditAction
from spie.audit.service import record
from spie.db import db, utcnow
from spie.errors import ValidationFailed
from spie.structures.models import Structure
from spie.territories.models import Commune
from spie.territories.services import territories_by_ids


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
        structure.territories = territories_by_ids(territory_ids)
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
