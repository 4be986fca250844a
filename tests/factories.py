"""factory_boy factories bound to the test session (flush, never commit)."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import factory
from factory.alchemy import SQLAlchemyModelFactory
from sqlalchemy import select

from spie.agents.models import Agent, Role
from spie.auth.passwords import hash_password
from spie.common.nir import nir_key, normalize_name
from spie.db import db
from spie.persons.models import Household, Person, Public, Sex
from spie.referent.models import ReferentAssignment
from spie.structures.models import Structure, StructureType
from spie.territories.models import Commune, Territory

TEST_PASSWORD = "correct horse battery staple"
_PASSWORD_HASH = hash_password(TEST_PASSWORD)  # argon2 is slow on purpose: hash once


class Base(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "flush"


def territory(code: str) -> Territory:
    found = db.session.scalar(select(Territory).where(Territory.code == code))
    assert found is not None, code
    return found


def commune_of(code: str) -> Commune:
    found = db.session.scalar(
        select(Commune).join(Territory).where(Territory.code == code).order_by(Commune.insee_code)
    )
    assert found is not None, code
    return found


class StructureFactory(Base):
    class Meta:
        model = Structure

    name = factory.Sequence(lambda n: f"Structure de test {n}")
    type = StructureType.MDM
    capacity = 500


class AgentFactory(Base):
    class Meta:
        model = Agent

    email = factory.Sequence(lambda n: f"agent{n}@spie.test")
    first_name = "Camille"
    last_name = factory.Sequence(lambda n: f"Agent{n}")
    structure = factory.SubFactory(StructureFactory)
    password_hash = _PASSWORD_HASH
    caseload_capacity = 150
    active_from = dt.date(2020, 1, 1)

    @factory.post_generation
    def roles(self, create: bool, extracted: Any, **_: Any) -> None:
        self.set_roles(set(extracted or [Role.REFERENT]))

    @factory.post_generation
    def territory_codes(self, create: bool, extracted: Any, **_: Any) -> None:
        if extracted:
            self.territories = [territory(code) for code in extracted]


def fake_nir13(birth_date: dt.date, sex: str, rng: random.Random) -> str:
    return (
        f"{sex}{birth_date:%y}{birth_date:%m}69{rng.randint(1, 399):03d}{rng.randint(1, 999):03d}"
    )


class HouseholdFactory(Base):
    class Meta:
        model = Household

    caf_numorg = "691"
    caf_matricule = factory.Sequence(lambda n: f"{n:07d}00000000")
    rsa_request_number = factory.Sequence(lambda n: f"{n:011d}")
    rsa_state = "2"


class PersonFactory(Base):
    class Meta:
        model = Person

    class Params:
        territory_code = "LYON"

    public = Public.BRSA
    last_name = factory.Sequence(lambda n: f"Dupré{n}")
    first_name = "Hélène"
    birth_date = dt.date(1985, 4, 12)
    sex = Sex.FEMALE
    search_name = factory.LazyAttribute(lambda p: normalize_name(f"{p.last_name} {p.first_name}"))
    nir = factory.Sequence(lambda n: f"2850469{n % 1000:03d}{n // 1000 % 1000:03d}")
    nir_key = factory.LazyAttribute(lambda p: nir_key(p.nir) if p.nir else None)
    nir_verified = True
    bound_by_duties = True
    commune_insee = factory.LazyAttribute(lambda p: commune_of(p.territory_code).insee_code)
    territory_id = factory.LazyAttribute(lambda p: territory(p.territory_code).id)


class AssignmentFactory(Base):
    class Meta:
        model = ReferentAssignment

    person = factory.SubFactory(PersonFactory)
    agent = factory.SubFactory(AgentFactory)
    structure = factory.LazyAttribute(lambda a: a.agent.structure)
    reason = "test"
