"""Orientation test data: seeded rules, agents, structures, cases, RIO sessions."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import factory

from spie.agents.models import Agent, Role
from spie.clocks.services import seed_delay_policies
from spie.orientation.models import ClockStartBasis, OrientationCase, RioSession
from spie.orientation.referentiel_admin import seed_referentiel
from spie.orientation.services import open_case
from spie.persons.models import Person
from spie.structures.models import Structure, StructureType
from tests.factories import AgentFactory, Base, PersonFactory, StructureFactory, territory

PARIS = ZoneInfo("Europe/Paris")


def seed_orientation() -> None:
    seed_delay_policies()
    seed_referentiel()


def paris(year: int, month: int, day: int, hour: int = 9, minute: int = 30) -> dt.datetime:
    """A Europe/Paris wall-clock time as an aware datetime."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=PARIS)


def charge(*territory_codes: str, **kw: Any) -> Agent:
    return AgentFactory(
        roles=[Role.CHARGE_ORIENTATION], territory_codes=list(territory_codes or ["LYON"]), **kw
    )


def open_case_for(
    person: Person | None = None,
    started_on: dt.date = dt.date(2025, 3, 3),
    basis: ClockStartBasis = ClockStartBasis.DDSOUDRODEV,
    **person_kwargs: Any,
) -> OrientationCase:
    person = person or PersonFactory(**person_kwargs)
    return open_case(person, started_on, basis)


def structure_in(
    territory_code: str = "LYON", type: StructureType = StructureType.MDM, **kw: Any
) -> Structure:
    structure = StructureFactory(type=type, **kw)
    structure.territories = [territory(territory_code)]
    return structure


class RioSessionFactory(Base):
    class Meta:
        model = RioSession

    class Params:
        territory_code = "LYON"

    starts_at = factory.LazyFunction(lambda: paris(2025, 3, 13))
    place = "Maison de la Métropole, 12 rue de la République, 69002 Lyon"
    territory_id = factory.LazyAttribute(lambda s: territory(s.territory_code).id)
    animator_structure = factory.SubFactory(StructureFactory)
    capacity = 10


DIFFICULTIES = (
    "sante",
    "logement",
    "mobilite",
    "garde_enfant",
    "numerique",
    "francais",
    "administrative",
    "financiere",
)


def criteria(**overrides: object) -> dict[str, object]:
    """Diagnostic criteria of référentiel version 1: a 40-year-old out of work for more
    than a year, no difficulty (falls to the default rule: socio-professionnel)."""
    base: dict[str, object] = {
        "situation_emploi": "sans_emploi_plus_1an",
        "qualification": "infra_bac",
        "capacite_projet": "oui",
        "age": 40,
        **dict.fromkeys(DIFFICULTIES, "sans_impact"),
    }
    base.update(overrides)
    return base
