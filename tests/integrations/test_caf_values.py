"""Column values the CAF import writes for a parsed household."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from spie.db import db
from spie.integrations.caf.values import HOUSEHOLD_COLUMNS, ValueBuilder
from spie.persons.models import CafRole, Public
from spie.territories.models import Commune
from tests.integrations.import_helpers import MONTHLY


@pytest.fixture
def communes(app) -> dict[str, int]:
    return {
        insee: territory
        for insee, territory in db.session.execute(select(Commune.insee_code, Commune.territory_id))
    }


def test_values_of_a_person(communes):
    from spie.integrations.caf.parser import iter_caf_flow

    with iter_caf_flow(MONTHLY) as flow:
        household = next(h for h in flow if getattr(h, "persons", None))
    values, persons = ValueBuilder(communes).prepare(household)
    assert tuple(values) == HOUSEHOLD_COLUMNS  # what the importer reads back to compare
    assert values["caf_matricule"] == household.matricule
    assert len(persons) == len(household.persons)
    first, caf = persons[0], household.persons[0]
    assert first["caf_role"] in set(CafRole)
    assert first["public"] is Public.BRSA
    assert first["birth_date"] == caf.birth_date
    assert first["search_name"] == first["search_name"].upper()
    if caf.nir13 is not None and caf.nir_key_valid:
        assert (first["nir"], first["nir_verified"]) == (caf.nir13, True)
    insee = household.current_address.insee_code if household.current_address else None
    assert first.get("territory_id") == communes.get(insee or "")
