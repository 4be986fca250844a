"""A small world with two territories and two structures, shared by the API scope tests.

- ``s1`` works in ``t1`` (Lyon), ``s2`` in ``t2`` (Villeurbanne);
- ``referent1`` (s1), ``referent2`` (s2), ``charge`` and ``manager`` (s1, territory t1),
  ``admin`` (s1);
- persons, each with a household (CAF matricule) and a France Travail id:
  ``caseload``   lives in t2, active référent ``referent1``;
  ``queue``      lives in t1, organisme référent s1, no active référent;
  ``other``      lives in t1, organisme référent s2, no active référent;
  ``colleague``  lives in t1, organisme référent s1 but active référent ``referent2`` (s2);
  ``former``     lives in t2, had ``referent1`` (ended), now ``referent2``;
  ``far``        lives in t2, organisme référent s2, no active référent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from spie.agents.models import Agent, Role
from spie.db import db, utcnow
from spie.persons.models import Person
from spie.structures.models import Structure
from spie.territories.models import Territory
from tests.factories import (
    AgentFactory,
    AssignmentFactory,
    HouseholdFactory,
    PersonFactory,
    StructureFactory,
    territory,
)

T1, T2 = "LYON", "CTM-VILLEURBANNE"
PERSON_KEYS = ("caseload", "queue", "other", "colleague", "former", "far")
ROLE_KEYS = ("referent1", "charge", "manager", "admin")

# Who sees whom (the rule of spie.auth.scope, written out by hand).
VISIBLE = {
    "referent1": {"caseload", "queue"},
    "referent2": {"other", "colleague", "former", "far"},
    "charge": {"queue", "other", "colleague"},
    "manager": {"queue", "other", "colleague"},
    "admin": set(PERSON_KEYS),
}


@dataclass
class World:
    t1: Territory
    t2: Territory
    s1: Structure
    s2: Structure
    agents: dict[str, Agent] = field(default_factory=dict)
    persons: dict[str, Person] = field(default_factory=dict)

    def ids(self, keys: set[str] | tuple[str, ...]) -> set[int]:
        return {self.persons[k].id for k in keys}


def _person(index: int, key: str, territory_code: str, structure: Structure) -> Person:
    return PersonFactory(
        last_name=f"Scopetest{key.capitalize()}",
        first_name="Alix",
        territory_code=territory_code,
        current_structure_id=structure.id,
        household=HouseholdFactory(caf_matricule=f"77{index:05d}"),
        france_travail_id=f"{9100000 + index:07d}X{index:03d}",
    )


def build_world() -> World:
    t1, t2 = territory(T1), territory(T2)
    s1 = StructureFactory(territories=[t1])
    s2 = StructureFactory(territories=[t2])
    world = World(t1=t1, t2=t2, s1=s1, s2=s2)
    world.agents = {
        "referent1": AgentFactory(structure=s1, roles=[Role.REFERENT], last_name="Aref1"),
        "referent2": AgentFactory(structure=s2, roles=[Role.REFERENT], last_name="Aref2"),
        "charge": AgentFactory(
            structure=s1, roles=[Role.CHARGE_ORIENTATION], territory_codes=[T1], last_name="Bco"
        ),
        "manager": AgentFactory(
            structure=s1, roles=[Role.MANAGER], territory_codes=[T1], last_name="Cman"
        ),
        "admin": AgentFactory(structure=s1, roles=[Role.ADMIN], last_name="Dadm"),
    }
    referent1, referent2 = world.agents["referent1"], world.agents["referent2"]
    layout = {
        "caseload": (T2, s1),
        "queue": (T1, s1),
        "other": (T1, s2),
        "colleague": (T1, s1),
        "former": (T2, s2),
        "far": (T2, s2),
    }
    for index, key in enumerate(PERSON_KEYS):
        code, structure = layout[key]
        world.persons[key] = _person(index, key, code, structure)
    p = world.persons
    AssignmentFactory(person=p["caseload"], agent=referent1)
    AssignmentFactory(person=p["colleague"], agent=referent2)
    AssignmentFactory(
        person=p["former"],
        agent=referent1,
        started_at=utcnow() - dt.timedelta(days=60),
        ended_at=utcnow() - dt.timedelta(days=30),
    )
    AssignmentFactory(person=p["former"], agent=referent2)
    db.session.flush()
    return world


def prepare_referrals() -> None:
    """A manual referral opens the person's orientation case (``REFERRAL_HOOKS``), whose clock
    needs the delay policy in force: seed the shipped policies."""
    from spie.clocks.services import seed_delay_policies

    seed_delay_policies()
