"""Write-side operations on persons. Services flush; the caller commits."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from spie.audit.models import AuditAction
from spie.audit.service import changed_fields, record
from spie.common.nir import normalize_name, parse_nir
from spie.db import db
from spie.errors import ValidationFailed
from spie.persons.models import Person, Public, SddPeriod
from spie.territories.models import Commune

CONTACT_FIELDS = (
    "email",
    "phone",
    "address_line",
    "address_complement",
    "postal_code",
    "commune_insee",
)

# Called with the new person after a manual referral (the orientation package opens the case).
REFERRAL_HOOKS: list[Any] = []


def search_name_of(last_name: str, first_name: str) -> str:
    return normalize_name(f"{last_name} {first_name}")


def _commune(insee_code: str) -> Commune:
    commune = db.session.get(Commune, insee_code)
    if commune is None:
        raise ValidationFailed(
            "Commune inconnue.",
            errors={"commune_insee": [f"Aucune commune de la Métropole n'a le code {insee_code}."]},
        )
    return commune


def set_address(person: Person, commune_insee: str | None) -> None:
    """Set the commune and derive the steering territory from it."""
    if commune_insee is None:
        person.commune_insee = None
        person.territory_id = None
        return
    commune = _commune(commune_insee)
    person.commune_insee = commune.insee_code
    person.territory_id = commune.territory_id


def refer_person(data: dict[str, Any], referred_on: dt.date) -> Person:
    """Manual referral of a person outside the RSA: creates the person and runs the hooks."""
    data = dict(data)
    data.pop("referred_on", None)
    nir_value = data.pop("nir", None)
    commune_insee = data.pop("commune_insee")
    person = Person(**data)
    person.search_name = search_name_of(person.last_name, person.first_name)
    if nir_value:
        parsed = parse_nir(nir_value)
        if not parsed.key_valid:
            raise ValidationFailed(
                "NIR invalide.", errors={"nir": ["La clé du NIR ne correspond pas."]}
            )
        person.nir, person.nir_key, person.nir_verified = parsed.nir13, int(parsed.key), True
    set_address(person, commune_insee)
    if person.public == Public.BRSA:  # pragma: no cover - the schema refuses it first
        raise ValidationFailed("Un BRSA arrive par le flux CAF.")
    db.session.add(person)
    db.session.flush()
    record(
        AuditAction.CREATE,
        "person",
        person.id,
        person_id=person.id,
        reason="manual_referral",
        details={"public": person.public.value},
    )
    for hook in REFERRAL_HOOKS:
        hook(person, referred_on)
    return person


def update_contacts(person: Person, changes: dict[str, Any]) -> list[str]:
    before = {field: getattr(person, field) for field in CONTACT_FIELDS}
    for field, value in changes.items():
        if field == "commune_insee":
            set_address(person, value)
        else:
            setattr(person, field, value)
    after = {field: getattr(person, field) for field in CONTACT_FIELDS}
    fields = changed_fields(before, after)
    if fields:
        db.session.flush()
        record(
            AuditAction.UPDATE,
            "person",
            person.id,
            person_id=person.id,
            reason="contacts",
            details={"fields": fields},
        )
    return fields


def record_sdd_state(
    person: Person, rsa_state: str | None, bound: bool, on: dt.date, source: str
) -> bool:
    """Apply a dated (ETATDOSRSA, SDD) observation to the person's history.

    Opens a period at the first observation of a state and closes the open one when another
    state is observed. Observations older than the open period's start are ignored (an older
    flow never rewrites newer history). Returns True if the history changed.
    """
    current = db.session.scalar(
        select(SddPeriod).where(SddPeriod.person_id == person.id, SddPeriod.ended_on.is_(None))
    )
    if current is not None:
        if on < current.started_on:
            return False
        if current.rsa_state == rsa_state and current.bound_by_duties == bound:
            return False
        current.ended_on = on
    db.session.add(
        SddPeriod(
            person_id=person.id,
            rsa_state=rsa_state,
            bound_by_duties=bound,
            started_on=on,
            source=source,
        )
    )
    person.bound_by_duties = bound
    db.session.flush()
    return True
