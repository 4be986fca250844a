"""The demo Métropole: consistent, deterministic, and the printed logins work."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections import Counter, defaultdict
from typing import Any

import pytest
from sqlalchemy import func, select

from spie.agents.models import Agent, AgentRole, Role
from spie.auth.services import authenticate
from spie.clocks.today import PARIS, paris_today
from spie.common.nir import is_valid_nir
from spie.demo import generator
from spie.demo.generator import DEMO_PASSWORD, load_demo, plan_population
from spie.orientation.models import CaseStatus, OrientationCase, OrientationDecision
from spie.parcours.models import Pathway
from spie.persons.models import CafRole, Household, Person, Public, SddPeriod, Sex
from spie.referent.models import ReferentAssignment
from spie.structures.models import Structure, StructureType, structure_territories
from spie.territories.models import Commune, Territory
from tests.factories import PersonFactory

PERSONS = 300
SEED = 1


@pytest.fixture
def demo(session: Any) -> dict[str, Any]:
    return load_demo(persons=PERSONS, seed=SEED)


def _count(session: Any, model: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model)))


def test_counts_and_structures(demo: dict[str, Any], session: Any) -> None:
    counts = demo["counts"]
    assert counts == {
        "territories": 10,
        "communes": 67,
        "structures": _count(session, Structure),
        "agents": _count(session, Agent),
        "households": _count(session, Household),
        "persons": PERSONS,
        "sdd_persons": session.scalar(
            select(func.count()).select_from(Person).where(Person.bound_by_duties.is_(True))
        ),
        "assignments": _count(session, ReferentAssignment),
        "orientation_cases": _count(session, OrientationCase),
        "orientation_decisions": _count(session, OrientationDecision),
        "pathways": _count(session, Pathway),
    }
    assert counts["pathways"] == counts["orientation_decisions"]
    assert _count(session, Person) == PERSONS
    # Every SDD person has a case; a notified decision closes exactly the cases of the people
    # already handed to a structure (those whose dates allowed it).
    assert counts["orientation_cases"] == counts["sdd_persons"]
    assert 0 < counts["orientation_decisions"] < counts["orientation_cases"]
    notified = session.scalar(
        select(func.count())
        .select_from(OrientationCase)
        .where(OrientationCase.status == CaseStatus.NOTIFIEE)
    )
    assert notified == counts["orientation_decisions"]
    assert 20 <= counts["structures"] <= 45  # ~25 followers + the offers' providers
    assert 50 <= counts["agents"] <= 70
    assert counts["households"] < PERSONS
    assert counts["sdd_persons"] > PERSONS // 4
    assert counts["assignments"] > 0

    # The structures that follow people (they have agents); offer providers come on top.
    followers = select(Structure).where(Structure.id.in_(select(Agent.structure_id)))
    types = Counter(s.type for s in session.scalars(followers))
    assert sum(types.values()) == 25
    assert types[StructureType.MDM] == 13  # 12 Maisons de la Métropole + the DIE
    assert types[StructureType.FRANCE_TRAVAIL] == 4
    assert types[StructureType.MISSION_LOCALE] == 2
    assert types[StructureType.ASSOCIATION_SIAE] == 3
    assert types[StructureType.PLIE] == types[StructureType.CAP_EMPLOI] == 1
    assert types[StructureType.INDEPENDANTS] == 1
    mdm_territories = set(
        session.scalars(
            select(structure_territories.c.territory_id)
            .join(Structure, Structure.id == structure_territories.c.structure_id)
            .where(
                Structure.type == StructureType.MDM,
                Structure.name != "Direction de l'insertion et de l'emploi",
            )
        )
    )
    assert mdm_territories == set(session.scalars(select(Territory.id)))
    for structure in session.scalars(followers):
        assert structure.commune_insee is not None
        assert structure.address
        assert structure.territories, structure.name


def test_people_nir_addresses_and_households(demo: dict[str, Any], session: Any) -> None:
    """Every NIR key is valid and matches sex and birth; every person lives in the territory
    of their commune; households look like CAF files."""
    persons = list(session.scalars(select(Person).where(Person.nir.is_not(None))))
    assert len(persons) > PERSONS * 0.9
    for person in persons:
        assert is_valid_nir(f"{person.nir}{person.nir_key:02d}")
        assert person.nir[0] == person.sex.value
        assert person.nir[1:5] == f"{person.birth_date:%y%m}"
        assert person.nir[5:7] == "69"
    assert len({p.nir for p in persons}) == len(persons)

    rows = session.execute(
        select(
            Person.territory_id, Commune.territory_id, Person.postal_code, Commune.postal_code
        ).join(Commune, Commune.insee_code == Person.commune_insee)
    ).all()
    assert len(rows) == PERSONS
    assert all(person_t == commune_t for person_t, commune_t, _, _ in rows)
    assert all(person_cp == commune_cp for _, _, person_cp, commune_cp in rows)

    today = paris_today()
    for household in session.scalars(select(Household)):
        assert household.caf_numorg == "691"
        assert len(household.caf_matricule) == 15
        assert household.rsa_request_number is not None
        assert len(household.rsa_request_number) == 11
        assert household.rsa_state in {"2", "3", "4", "5", "6"}
        assert household.rsa_requested_on is not None
        assert today - dt.timedelta(days=3660) <= household.rsa_requested_on <= today
        roles = Counter(p.caf_role for p in household.persons)
        assert roles[CafRole.DEM] == 1
        assert roles[CafRole.CJT] <= 1
        assert 1 <= len(household.persons) <= 5
        assert len({p.address_line for p in household.persons}) == 1
        adults = [p for p in household.persons if p.caf_role != CafRole.ENF]
        for child in (p for p in household.persons if p.caf_role == CafRole.ENF):
            assert (today - child.birth_date).days < 21 * 366
            assert any(child.birth_date.year - a.birth_date.year >= 16 for a in adults)
        for adult in adults:
            assert (household.rsa_requested_on - adult.birth_date).days >= 18 * 365
    referred = list(session.scalars(select(Person).where(Person.household_id.is_(None))))
    assert referred
    assert all(p.public != Public.BRSA and p.caf_role is None for p in referred)
    share = len(referred) / PERSONS
    assert 0.04 <= share <= 0.12
    ft_ids = [p.france_travail_id for p in session.scalars(select(Person))]
    assert all(re.fullmatch(r"[0-9]{7}[A-Z][0-9]{3}", i) for i in ft_ids if i)


def test_sdd_history_is_consistent(demo: dict[str, Any], session: Any) -> None:
    open_counts = session.execute(
        select(SddPeriod.person_id, func.count())
        .where(SddPeriod.ended_on.is_(None))
        .group_by(SddPeriod.person_id)
        .having(func.count() > 1)
    ).all()
    assert open_counts == []
    periods: dict[int, list[SddPeriod]] = defaultdict(list)
    for period in session.scalars(select(SddPeriod).order_by(SddPeriod.started_on)):
        periods[period.person_id].append(period)
    assert any(len(history) >= 3 for history in periods.values())  # left SDD and came back
    for person in session.scalars(select(Person)):
        history = periods.get(person.id, [])
        if person.caf_role in {CafRole.DEM, CafRole.CJT}:
            assert history, "every CAF adult has an SDD history"
            *closed, last = history
            assert last.ended_on is None
            assert person.bound_by_duties == last.bound_by_duties
            assert all(p.ended_on == n.started_on for p, n in itertools.pairwise(history))
            assert all(p.ended_on is not None for p in closed)
            if last.rsa_state in {"5", "6"}:
                assert not person.bound_by_duties
        else:
            assert history == [], "children and manual referrals have no SDD period"
            assert not person.bound_by_duties


def _sdd_run_start(history: list[SddPeriod]) -> dt.date:
    start = history[-1].started_on
    for period in reversed(history):
        if not period.bound_by_duties:
            break
        start = period.started_on
    return start


def test_orientations_and_caseloads(demo: dict[str, Any], session: Any) -> None:
    sdd = list(session.scalars(select(Person).where(Person.bound_by_duties.is_(True))))
    oriented = [p for p in sdd if p.current_structure_id is not None]
    assert 0.4 <= len(oriented) / len(sdd) <= 0.8
    assert len(oriented) < len(sdd), "some people are still to orient"

    active = list(
        session.scalars(select(ReferentAssignment).where(ReferentAssignment.ended_at.is_(None)))
    )
    assert len(active) >= 0.6 * len(oriented)
    assert len({a.person_id for a in active}) == len(active)
    for assignment in active:
        person, agent = assignment.person, assignment.agent
        assert person.current_structure_id == assignment.structure_id == agent.structure_id
        assert agent.has_role(Role.REFERENT)
        assert agent.is_active_on(assignment.started_at.astimezone(PARIS).date())
        assert agent.active_until is None
        if person.public == Public.BRSA:
            assert assignment.started_at.astimezone(PARIS).date() > _sdd_run_start(
                sorted(person.sdd_periods, key=lambda p: p.started_on)
            )
    for person in oriented:
        structure = person.current_structure
        assert structure is not None
        assert person.territory_id in {t.id for t in structure.territories}

    loads = Counter(a.agent_id for a in active)
    for agent in session.scalars(select(Agent).where(Agent.id.in_(loads))):
        assert loads[agent.id] <= agent.caseload_capacity
        assert 100 <= agent.caseload_capacity <= 150

    ended = list(
        session.scalars(select(ReferentAssignment).where(ReferentAssignment.ended_at.is_not(None)))
    )
    for assignment in ended:  # handed over when their référent left
        assert assignment.agent.active_until is not None
        assert assignment.end_reason


def test_short_caseloads_leave_people_in_the_structure_queue(
    session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generator, "REFERENT_CAPACITY", (2, 2))
    load_demo(persons=PERSONS, seed=SEED)
    loads = Counter(
        session.scalars(
            select(ReferentAssignment.agent_id).where(ReferentAssignment.ended_at.is_(None))
        )
    )
    assert loads
    assert max(loads.values()) == 2  # full, never over
    waiting = session.scalar(
        select(func.count())
        .select_from(Person)
        .where(
            Person.current_structure_id.is_not(None),
            ~select(ReferentAssignment.id)
            .where(ReferentAssignment.person_id == Person.id, ReferentAssignment.ended_at.is_(None))
            .exists(),
        )
    )
    # About 13 % wait in a queue with room to spare; short of référents, many more do.
    assert waiting > 0.25 * (waiting + sum(loads.values()))


def test_every_role_has_agents_and_the_printed_logins_work(
    demo: dict[str, Any], session: Any
) -> None:
    roles = Counter(session.scalars(select(AgentRole.role)))
    assert set(roles) == set(Role)
    assert roles[Role.REFERENT] > roles[Role.CHARGE_ORIENTATION] >= 8
    assert roles[Role.MANAGER] == 5
    assert roles[Role.ADMIN] == 2
    agents = list(session.scalars(select(Agent)))
    territory_count = _count(session, Territory)
    assert any(a.has_role(Role.MANAGER) and len(a.territories) == territory_count for a in agents)
    for agent in agents:
        assert re.fullmatch(r"[a-z0-9.-]+@[a-z0-9-]+\.demo", agent.email), agent.email
        if agent.has_role(Role.CHARGE_ORIENTATION, Role.MANAGER):
            assert agent.territories
    assert any(a.active_until is not None and a.active_until < paris_today() for a in agents)
    assert len({a.password_hash for a in agents}) == 1  # hashed once

    logins = demo["logins"]
    labels = [label for label, _ in logins]
    assert len(labels) == len(set(labels)) == 5
    for _label, email in logins:
        agent = authenticate(email, DEMO_PASSWORD)
        assert agent is not None, email
    assert authenticate(logins[0][1], "mauvais-mot-de-passe") is None
    referent_email = logins[-1][1]
    referent = session.scalar(select(Agent).where(Agent.email == referent_email))
    assert referent.has_role(Role.REFERENT)
    caseload = session.scalar(
        select(func.count()).where(
            ReferentAssignment.agent_id == referent.id, ReferentAssignment.ended_at.is_(None)
        )
    )
    assert caseload > 0


def test_same_seed_gives_the_same_people_with_accented_names(
    demo: dict[str, Any], session: Any
) -> None:
    today = paris_today()

    def names(seed: int) -> list[tuple[str, str]]:
        plan = plan_population(PERSONS, seed, today)
        return [(p.last_name, p.first_name) for unit in plan for p in unit.members][:10]

    first = names(SEED)
    assert first == names(SEED)
    assert first != names(SEED + 1)
    loaded = session.execute(
        select(Person.last_name, Person.first_name).order_by(Person.id).limit(10)
    ).all()
    assert [tuple(row) for row in loaded] == first

    names = [
        f"{last} {first}"
        for last, first in session.execute(select(Person.last_name, Person.first_name))
    ]
    accented = [n for n in names if not n.isascii()]
    assert len(accented) > PERSONS // 10
    sexes = Counter(session.scalars(select(Person.sex)))
    assert sexes[Sex.FEMALE] > 0
    assert sexes[Sex.MALE] > 0
    search = session.scalars(select(Person.search_name)).all()
    assert all(s.isascii() and s == s.upper() for s in search)


def test_refuses_a_database_with_persons(session: Any) -> None:
    PersonFactory()
    with pytest.raises(RuntimeError, match="déjà des personnes"):
        load_demo(persons=10, seed=SEED)
