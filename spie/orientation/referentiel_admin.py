"""Publishing versions of the orientation référentiel (criteria and rules as data).

A version is immutable once published: a new set of criteria is a new version with the next
number, used for every *new* diagnostic; diagnostics already recorded keep the version they
were evaluated with (``Diagnostic.referentiel_version_id``).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from spie.audit.models import AuditAction
from spie.audit.service import record
from spie.db import db
from spie.errors import NotFound, ValidationFailed
from spie.orientation.models import ReferentielVersion
from spie.orientation.referentiel import SEED_VERSION_1, ReferentielError, validate_version

SEED_LABEL = "Version 1 — critères nationaux"


def current_version() -> ReferentielVersion:
    """The newest published version (highest number)."""
    version = db.session.scalar(
        select(ReferentielVersion).order_by(ReferentielVersion.number.desc()).limit(1)
    )
    if version is None:
        raise NotFound(
            "Aucune version du référentiel d'orientation n'est publiée : un administrateur "
            "doit en publier une (ou lancer « flask spie orientation seed »).",
            code="no_referentiel_version",
        )
    return version


def publish_version(
    label: str, data: dict[str, Any], published_by_id: int | None
) -> ReferentielVersion:
    """Validate ``data`` with the référentiel engine and publish it as the next version.

    A malformed version raises :class:`ValidationFailed` naming the problem and where it is
    (``errors = {"data": {"rules[2].condition.criterion": ["critère inconnu ..."]}}``).
    """
    try:
        validate_version(data)
    except ReferentielError as exc:
        raise ValidationFailed(
            f"Version du référentiel invalide : {exc.message} ({exc.path or 'racine'}).",
            errors={"data": {exc.path or "_schema": [exc.message]}},
            extra={"referentiel_error": exc.as_dict()},
        ) from exc
    number = (db.session.scalar(select(func.max(ReferentielVersion.number))) or 0) + 1
    version = ReferentielVersion(
        number=number,
        label=label,
        # A deep, JSON-normalised copy: the stored version never aliases the caller's dict.
        data=json.loads(json.dumps(data)),
        published_by_id=published_by_id,
    )
    db.session.add(version)
    db.session.flush()
    record(
        AuditAction.CREATE,
        "referentiel_version",
        version.id,
        reason="referentiel",
        details={"number": number},
    )
    return version


def seed_referentiel() -> dict[str, int]:
    """Publish version 1 from ``SEED_VERSION_1`` if no version exists (idempotent)."""
    if db.session.scalar(select(ReferentielVersion.id).limit(1)) is not None:
        return {"created": 0}
    publish_version(SEED_LABEL, SEED_VERSION_1, None)
    return {"created": 1}
