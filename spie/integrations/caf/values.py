"""Column values of a parsed CAF household and its persons, as the importer writes them.

Pure: a function of the household and of the communes of the Métropole (INSEE code →
territory), nothing read from the database per household.
"""

from __future__ import annotations

from typing import Any

from spie.common.nir import nir_key, normalize_name
from spie.integrations.caf.parser import CafHousehold, CafPerson
from spie.persons.models import CafRole, Public, Sex

# Members by value: a dict lookup per person instead of an Enum call.
_ROLES = {role.value: role for role in CafRole}
_SEXES = {sex.value: sex for sex in Sex}
_SEARCH_NAMES_MAX = 50_000

#: The household columns a flow sets (the keys of :meth:`ValueBuilder.household_values`).
HOUSEHOLD_COLUMNS = (
    "caf_fonorg",
    "caf_numorg",
    "caf_matricule",
    "rsa_request_number",
    "rsa_requested_on",
    "rsa_state",
    "family_situation",
)

#: (household values, one dict of values per person in the household's order)
Prepared = tuple[dict[str, Any], list[dict[str, Any]]]


def clip(value: str | None, size: int) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value[:size] if value else None


class ValueBuilder:
    def __init__(self, communes: dict[str, int]) -> None:
        self._communes = communes  # INSEE code -> territory id
        self._search_names: dict[tuple[str, str], str] = {}

    def prepare(self, household: CafHousehold) -> Prepared:
        address = self.address_values(household)
        return self.household_values(household), [
            self.person_values(person, address) for person in household.persons
        ]

    @staticmethod
    def household_values(household: CafHousehold) -> dict[str, Any]:
        return {
            "caf_fonorg": (household.fonorg or "CAF")[:3],
            "caf_numorg": household.numorg,
            "caf_matricule": household.matricule,
            "rsa_request_number": household.numdemrsa,
            "rsa_requested_on": household.dtdemrsa,
            "rsa_state": household.etat_dossier,
            "family_situation": household.family_situation,
        }

    def address_values(self, household: CafHousehold) -> dict[str, Any] | None:
        address = household.current_address
        if address is None:
            return None
        line = " ".join(
            part
            for part in (address.street_number, address.street_type, address.street_name)
            if part
        )
        complement = " ".join(
            part
            for part in (address.complement_identity, address.complement, address.locality)
            if part
        )
        insee = address.insee_code
        territory_id = self._communes.get(insee) if insee else None
        postal = (
            address.postal_code if address.postal_code and len(address.postal_code) == 5 else None
        )
        return {
            "address_line": clip(line, 300),
            "address_complement": clip(complement, 300),
            "postal_code": postal,
            "commune_insee": insee if territory_id is not None else None,
            "territory_id": territory_id,
        }

    def search_name(self, last_name: str, first_name: str) -> str:
        key = (last_name, first_name)
        found = self._search_names.get(key)
        if found is None:
            found = normalize_name(f"{last_name} {first_name}")[:220]
            if len(self._search_names) > _SEARCH_NAMES_MAX:
                self._search_names.clear()
            self._search_names[key] = found
        return found

    def person_values(self, caf: CafPerson, address: dict[str, Any] | None) -> dict[str, Any]:
        role = _ROLES.get(caf.role) or _ROLES.get(caf.pfa_role)  # type: ignore[arg-type]
        last_name = clip(caf.last_name, 100) or caf.last_name
        first_name = clip(caf.first_name, 100) or caf.first_name
        values: dict[str, Any] = {
            "caf_role": role,
            "civility": clip(caf.qual, 3),
            "last_name": last_name,
            "birth_name": clip(caf.birth_name, 100),
            "first_name": first_name,
            "other_first_names": clip(" ".join(caf.other_first_names), 200),
            "search_name": self.search_name(last_name, first_name),
            "birth_date": caf.birth_date,
            "birth_place": clip(caf.birth_place, 100),
            "sex": _SEXES.get(caf.sex),  # type: ignore[arg-type]
            "public": Public.BRSA,
        }
        if caf.nir13 is not None:
            if caf.nir_key_valid:
                # A valid key given is the computed one; computed when none is given.
                key = int(caf.nir_key) if caf.nir_key else nir_key(caf.nir13)
                values.update(nir=caf.nir13, nir_key=key, nir_verified=True)
            else:
                given = int(caf.nir_key) if caf.nir_key and caf.nir_key.isdigit() else 0
                values.update(
                    nir=caf.nir13, nir_key=given if 1 <= given <= 97 else None, nir_verified=False
                )
        ft_id = caf.france_travail_id
        if ft_id is not None and 8 <= len(ft_id) <= 11:
            values["france_travail_id"] = ft_id
        if address is not None:
            values.update(address)
        return values
