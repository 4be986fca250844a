"""Pathway indicators compared with values computed by hand on a small fixture.

As of 30 April 2025, cohort March 2025 (clocks started 1-31 March):

========  =========  ==========  ==========================  ===========================
person    territory  notified    entry (honoured appt.)      contract signed
========  =========  ==========  ==========================  ===========================
A         Lyon       3 March     8 March (5 days)            23 March (20 days)
B         Lyon       5 March     25 March (20 days)          10 April (36 days)
C         Villeurb.  1 March     —                           —           (no référent)
D         Lyon       10 Feb.     (outside the cohort)        20 Feb., not SDD
E         Lyon       10 March, reoriented on 20 March (first clocks stopped), then waiting
========  =========  ==========  ==========================  ===========================
"""

from __future__ import annotations

import datetime as dt

import pytest

from spie.orientation.models import Parcours
from spie.parcours.models import (
    AppointmentStatus,
    AppointmentTheme,
    ContractKind,
    OfferTheme,
    StepOutcome,
    StepStatus,
)
from spie.parcours.services import (
    create_appointment,
    create_contract,
    create_step,
    transition_step,
)
from spie.referent.services import assign_referent
from tests.factories import PersonFactory, territory
from tests.parcours.api import api_as
from tests.parcours.factories import admin, decide, manager, offer, paris, referent, structure

D = dt.date
T2 = "CTM-VILLEURBANNE"


def _contract(person, main, signed: D, ends: D) -> None:
    create_contract(
        person,
        {
            "kind": ContractKind.ENGAGEMENT,
            "signed_on": signed,
            "starts_on": signed,
            "ends_on": ends,
            "weekly_hours": 15,
            "objectives": "Plan",
        },
        main,
    )


def _honoured(person, main, clock, day: D) -> None:
    clock.set(day, 12)
    create_appointment(
        person,
        {
            "scheduled_at": paris(day.year, day.month, day.day, 10),
            "theme": AppointmentTheme.PREMIER_ENTRETIEN,
            "status": AppointmentStatus.HONOURED,
        },
        main,
    )


@pytest.fixture
def fixture(rules, clock):
    s1, s2 = structure("LYON", name="MDM Lyon 8e"), structure(T2, name="MDM Villeurbanne")
    root = admin(s1)
    r1 = referent(s1, "LYON", capacity=150)
    r2 = referent(s1, "LYON", capacity=0)
    referent(s2, T2, capacity=10)
    a, b, e = (PersonFactory(last_name=n) for n in ("A", "B", "E"))
    c = PersonFactory(last_name="C", territory_code=T2)
    d = PersonFactory(last_name="D", bound_by_duties=False)

    def at(day: D) -> None:
        clock.set(day)

    at(D(2025, 2, 10))
    decide(d, s1, decided_on=D(2025, 2, 10), notified_on=D(2025, 2, 10))
    assign_referent(d, r2, reason="x", handover_note=None, by=root, allow_over_capacity=True)
    at(D(2025, 2, 20))
    _contract(d, r2, D(2025, 2, 20), D(2025, 8, 19))
    at(D(2025, 3, 1))
    decide(c, s2, decided_on=D(2025, 3, 1), notified_on=D(2025, 3, 1))
    at(D(2025, 3, 3))
    decide(a, s1, decided_on=D(2025, 3, 3), notified_on=D(2025, 3, 3))
    at(D(2025, 3, 4))
    assign_referent(a, r1, reason="x", handover_note=None, by=root)
    at(D(2025, 3, 5))
    decide(b, s1, decided_on=D(2025, 3, 5), notified_on=D(2025, 3, 5))
    at(D(2025, 3, 6))
    assign_referent(b, r1, reason="x", handover_note=None, by=root)
    _honoured(a, r1, clock, D(2025, 3, 8))
    at(D(2025, 3, 10))
    decide(e, s1, parcours=Parcours.EMPLOI, decided_on=D(2025, 3, 10), notified_on=D(2025, 3, 10))
    fle_a = create_step(a, {"offer_id": offer("FLE-ASL").id}, r1)
    at(D(2025, 3, 12))
    assign_referent(e, r1, reason="x", handover_note=None, by=root)
    transition_step(fle_a, StepStatus.EN_COURS, {}, r1)
    at(D(2025, 3, 15))
    fle_b = create_step(b, {"offer_id": offer("FLE-ASL").id}, r1)
    transition_step(fle_b, StepStatus.PLANIFIEE, {"planned_start_on": D(2025, 4, 1)}, r1)
    at(D(2025, 3, 20))
    decide(
        e,
        s1,
        parcours=Parcours.SOCIO_PROFESSIONNEL,
        decided_on=D(2025, 3, 20),
        notified_on=D(2025, 3, 20),
    )
    free_a = create_step(a, {"title": "Stage", "theme": OfferTheme.JOB_SEARCH}, r1)
    at(D(2025, 3, 23))
    _contract(a, r1, D(2025, 3, 23), D(2025, 9, 22))
    _honoured(b, r1, clock, D(2025, 3, 25))
    transition_step(free_a, StepStatus.ABANDONNEE, {"abandon_reason": "Déménagement"}, r1)
    at(D(2025, 4, 1))
    transition_step(fle_b, StepStatus.EN_COURS, {}, r1)
    at(D(2025, 4, 2))
    create_step(e, {"offer_id": offer("FLE-ASL").id}, r1)  # outside the March cohort
    at(D(2025, 4, 10))
    _contract(b, r1, D(2025, 4, 10), D(2025, 10, 9))
    at(D(2025, 4, 20))
    transition_step(
        fle_a,
        StepStatus.TERMINEE,
        {"outcome": StepOutcome.ACHIEVED, "bilan": "Objectif atteint"},
        r1,
    )
    at(D(2025, 5, 10))
    transition_step(
        fle_b,
        StepStatus.TERMINEE,
        {"outcome": StepOutcome.ACHIEVED, "bilan": "Après le 30 avril"},
        r1,
    )
    return {"admin": root, "s1": s1, "s2": s2, "r1": r1, "r2": r2}


QUERY = "as_of=2025-04-30&cohort_from=2025-03-01&cohort_to=2025-03-31"


def test_indicators_match_the_hand_computed_values(client, fixture):
    report = api_as(client, fixture["admin"]).get(f"/api/v1/indicators/parcours?{QUERY}").json
    (entry,) = report["entry"]
    assert entry == {
        "key": None,
        "label": "Ensemble",
        "clocks": 5,
        "met": 2,
        "waiting": 2,
        "closed_other": 1,
        "mature": 4,
        "within_limit": 1,
        "share_within_limit": 0.25,
        "delay": {"count": 2, "mean": 12.5, "median": 12.5, "p75": 16.25, "p90": 18.5},
    }
    (contract_delay,) = report["contract_delay"]
    assert contract_delay == {
        "key": None,
        "label": "Ensemble",
        "clocks": 5,
        "met": 2,
        "waiting": 2,
        "closed_other": 1,
        "mature": 4,
        "within_limit": 1,
        "share_within_limit": 0.25,
        "mature_1m": 4,
        "within_1m": 1,
        "share_within_1m": 0.25,
        "delay": {"count": 2, "mean": 28.0, "median": 28.0, "p75": 32.0, "p90": 34.4},
    }
    # Oriented SDD on 30 April: A, B, C, E (D is not SDD); contracts in force: A, B.
    assert report["contract_rate"] == [
        {
            "key": None,
            "label": "Ensemble",
            "oriented_sdd": 4,
            "with_contract": 2,
            "contract_rate": 0.5,
        }
    ]
    # Active pathways on 30 April: A, B, C, D, E (second); C has no référent since 1 March,
    # past the 15-day limit.
    assert report["without_referent"] == [
        {
            "key": None,
            "label": "Ensemble",
            "active_pathways": 5,
            "without_referent": 1,
            "share_without_referent": 0.2,
            "beyond_limit": 1,
        }
    ]
    r1, r2 = fixture["r1"], fixture["r2"]
    loads = {
        r["agent_id"]: (r["load"], r["capacity"], r["over_capacity"])
        for r in report["caseload"]["referents"]
    }
    assert loads[r1.id] == (3, 150, False)
    assert loads[r2.id] == (1, 0, True)
    structures = {s["structure_id"]: s for s in report["caseload"]["structures"]}
    assert (
        structures[fixture["s1"].id]["referents"],
        structures[fixture["s1"].id]["load"],
        structures[fixture["s1"].id]["capacity"],
        structures[fixture["s1"].id]["referents_over_capacity"],
    ) == (2, 4, 150, 1)
    assert (structures[fixture["s2"].id]["load"], structures[fixture["s2"].id]["capacity"]) == (
        0,
        10,
    )
    steps = {s["offer_code"]: s for s in report["steps"]}
    fle = steps["FLE-ASL"]
    assert fle["steps"] == 2
    assert fle["by_status"] == {
        "proposee": 0,
        "planifiee": 0,
        "en_cours": 1,
        "terminee": 1,
        "abandonnee": 0,
    }
    assert fle["by_outcome"]["achieved"] == 1
    assert sum(fle["by_outcome"].values()) == 1
    free = steps[None]
    assert (free["label"], free["steps"], free["by_status"]["abandonnee"]) == (
        "Étape hors catalogue — Recherche d'emploi",
        1,
        1,
    )


def test_grouping_and_scope(client, fixture):
    api = api_as(client, fixture["admin"])
    by_structure = api.get(
        f"/api/v1/indicators/parcours?{QUERY}&group_by=structure&indicator=entry"
    ).json
    assert [(g["label"], g["clocks"], g["met"]) for g in by_structure["entry"]] == [
        ("MDM Lyon 8e", 4, 2),
        ("MDM Villeurbanne", 1, 0),
    ]
    assert set(by_structure) >= {"entry"}
    assert "steps" not in by_structure
    by_ctm = api.get(
        f"/api/v1/indicators/parcours?{QUERY}&group_by=ctm&indicator=contract_rate"
    ).json
    assert [(g["key"], g["oriented_sdd"], g["with_contract"]) for g in by_ctm["contract_rate"]] == [
        (str(territory("LYON").id), 3, 2),
        (str(territory(T2).id), 1, 0),
    ]
    by_month = api.get(
        f"/api/v1/indicators/parcours?{QUERY}&group_by=month&indicator=contract_delay"
    ).json
    assert [(g["key"], g["label"], g["clocks"]) for g in by_month["contract_delay"]] == [
        ("2025-03", "mars 2025", 5)
    ]
    by_parcours = api.get(
        f"/api/v1/indicators/parcours?{QUERY}&group_by=parcours&indicator=entry"
    ).json
    assert {g["key"]: g["clocks"] for g in by_parcours["entry"]} == {
        "emploi": 1,
        "socio_professionnel": 4,
    }
    # A manager of Lyon sees Lyon only (C, in Villeurbanne, is out).
    boss = manager(fixture["s1"], "LYON")
    scoped = api_as(client, boss).get(f"/api/v1/indicators/parcours?{QUERY}&indicator=entry")
    assert scoped.json["entry"][0]["clocks"] == 4
    # As of an earlier date, later events do not count.
    early = api.get(
        "/api/v1/indicators/parcours?as_of=2025-03-20&cohort_from=2025-03-01"
        "&cohort_to=2025-03-31&indicator=entry&indicator=contract_rate"
    ).json
    (entry,) = early["entry"]
    # A entered on 8 March; E's first clocks stopped on 20 March; B, C, E (second) wait.
    assert (entry["clocks"], entry["met"], entry["closed_other"], entry["waiting"]) == (
        5,
        1,
        1,
        3,
    )
    assert early["contract_rate"][0]["with_contract"] == 0
