"""Input (``...Args``) and output (``...Schema``) schemas of the persons API."""

from __future__ import annotations

import datetime as dt
from typing import Any

import marshmallow as ma

from spie.api.common import PaginationArgs
from spie.common.nir import NirError, split_nir
from spie.persons.models import CafRole, Public, Sex


def _validate_nir(value: str) -> None:
    try:
        split_nir(value)
    except NirError as exc:
        raise ma.ValidationError(str(exc)) from exc


def _not_future(value: dt.date) -> None:
    if value > dt.date.today():  # noqa: DTZ011 - a birth date in the future is wrong anywhere
        raise ma.ValidationError("La date de naissance ne peut pas être dans le futur.")


class ContactArgs(ma.Schema):
    email = ma.fields.Email(allow_none=True, validate=ma.validate.Length(max=254))
    phone = ma.fields.String(
        allow_none=True,
        validate=ma.validate.Regexp(
            r"^\+?[0-9 .\-()]{6,30}$", error="Numéro de téléphone invalide."
        ),
    )
    address_line = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=300))
    address_complement = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=300))
    postal_code = ma.fields.String(
        allow_none=True, validate=ma.validate.Regexp(r"^[0-9]{5}$", error="5 chiffres attendus.")
    )
    commune_insee = ma.fields.String(
        allow_none=True,
        validate=ma.validate.Regexp(r"^[0-9][0-9AB][0-9]{3}$", error="Code INSEE invalide."),
    )


class ReferralArgs(ContactArgs):
    """Manual referral of a person outside the RSA (RSJ, FSE+, partner referral)."""

    public = ma.fields.Enum(Public, by_value=True, required=True)
    civility = ma.fields.String(validate=ma.validate.OneOf(["MR", "MME"]), allow_none=True)
    last_name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    birth_name = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=100))
    first_name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    birth_date = ma.fields.Date(required=True, validate=_not_future)
    birth_place = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=100))
    sex = ma.fields.Enum(Sex, by_value=True, allow_none=True)
    nir = ma.fields.String(allow_none=True, validate=_validate_nir)
    france_travail_id = ma.fields.String(
        allow_none=True,
        validate=ma.validate.Regexp(r"^[0-9]{7}[0-9A-Z][0-9]{3}$", error="11 caractères attendus."),
    )
    commune_insee = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(r"^[0-9][0-9AB][0-9]{3}$", error="Code INSEE invalide."),
    )
    referral_source = ma.fields.String(required=True, validate=ma.validate.Length(min=2, max=200))
    referred_on = ma.fields.Date(load_default=None)

    @ma.validates("public")
    def _not_brsa(self, value: Public, **_: Any) -> None:
        if value == Public.BRSA:
            raise ma.ValidationError(
                "Les bénéficiaires du RSA arrivent par le flux CAF, pas par orientation manuelle."
            )


class PersonListArgs(PaginationArgs):
    public = ma.fields.Enum(Public, by_value=True)
    territory_id = ma.fields.Integer()
    bound_by_duties = ma.fields.Boolean()
    sort = ma.fields.String(
        load_default="name", validate=ma.validate.OneOf(["name", "-created_at", "birth_date"])
    )


class PersonSearchArgs(PaginationArgs):
    """Search criteria travel in the body (POST): names and NIRs stay out of URLs and logs."""

    name = ma.fields.String(validate=ma.validate.Length(min=2, max=200))
    birth_date = ma.fields.Date()
    nir = ma.fields.String(validate=_validate_nir)
    caf_matricule = ma.fields.String(validate=ma.validate.Length(min=1, max=15))
    france_travail_id = ma.fields.String(validate=ma.validate.Length(min=8, max=11))

    @ma.validates_schema
    def _one_criterion(self, data: dict[str, Any], **_: Any) -> None:
        if not {"name", "nir", "caf_matricule", "france_travail_id"} & data.keys():
            raise ma.ValidationError(
                "Indiquez au moins un critère : name, nir, caf_matricule ou france_travail_id.",
                "_schema",
            )


class TerritoryRefSchema(ma.Schema):
    id = ma.fields.Integer()
    code = ma.fields.String()
    name = ma.fields.String()


class PersonSummarySchema(ma.Schema):
    """What lists show: no NIR, no address, no contacts."""

    id = ma.fields.Integer()
    last_name = ma.fields.String()
    first_name = ma.fields.String()
    birth_date = ma.fields.Date()
    public = ma.fields.Enum(Public, by_value=True)
    bound_by_duties = ma.fields.Boolean()
    territory = ma.fields.Nested(TerritoryRefSchema, allow_none=True)
    commune_insee = ma.fields.String(allow_none=True)
    current_structure_id = ma.fields.Integer(allow_none=True)


class SddPeriodSchema(ma.Schema):
    rsa_state = ma.fields.String(allow_none=True)
    bound_by_duties = ma.fields.Boolean()
    started_on = ma.fields.Date()
    ended_on = ma.fields.Date(allow_none=True)
    source = ma.fields.String()


class HouseholdSchema(ma.Schema):
    id = ma.fields.Integer()
    caf_numorg = ma.fields.String()
    caf_matricule = ma.fields.String()
    rsa_request_number = ma.fields.String(allow_none=True)
    rsa_requested_on = ma.fields.Date(allow_none=True)
    rsa_state = ma.fields.String(allow_none=True)
    family_situation = ma.fields.String(allow_none=True)


class PersonSchema(PersonSummarySchema):
    """The person's file (read is audited)."""

    version = ma.fields.Integer()
    civility = ma.fields.String(allow_none=True)
    birth_name = ma.fields.String(allow_none=True)
    other_first_names = ma.fields.String(allow_none=True)
    birth_place = ma.fields.String(allow_none=True)
    sex = ma.fields.Enum(Sex, by_value=True, allow_none=True)
    nir = ma.fields.Method("_nir", allow_none=True)
    nir_verified = ma.fields.Boolean()
    caf_role = ma.fields.Enum(CafRole, by_value=True, allow_none=True)
    france_travail_id = ma.fields.String(allow_none=True)
    email = ma.fields.String(allow_none=True)
    phone = ma.fields.String(allow_none=True)
    address_line = ma.fields.String(allow_none=True)
    address_complement = ma.fields.String(allow_none=True)
    postal_code = ma.fields.String(allow_none=True)
    commune_name = ma.fields.Function(lambda p: p.commune.name if p.commune else None)
    referral_source = ma.fields.String(allow_none=True)
    household = ma.fields.Nested(HouseholdSchema, allow_none=True)
    sdd_periods = ma.fields.List(ma.fields.Nested(SddPeriodSchema))
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()

    def _nir(self, person: Any) -> str | None:
        if not person.nir:
            return None
        return f"{person.nir}{person.nir_key:02d}" if person.nir_key else person.nir
