"""Who may read and write what: référent, provider contributor, manager, admin — and guessed
ids (IDOR) answer 404 like nonexistent ones."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from spie.agents.models import Agent, Role
from spie.parcours.alerts import raise_alert
from spie.parcours.models import AppointmentTheme, EpOrigin, OfferTheme, StepStatus
from spie.parcours.services import (
    create_appointment,
    create_assessment,
    create_contract,
    create_step,
    open_ep_case,
    transition_step,
)
from spie.referent.services import assign_referent
from tests.factories import AgentFactory, PersonFactory
from tests.parcours.api import api_as, if_match
from tests.parcours.factories import (
    Clock,
    admin,
    decide,
    manager,
    offer,
    paris,
    problem,
    referent,
    structure,
)

D = dt.date
T2 = "CTM-VILLEURBANNE"


@dataclass
class Ids:
    person: int
    fle_step: int
    health_step: int
    contract: int
    appointment: int
    alert: int
    ep_case: int


@dataclass
class World:
    agents: dict[str, Agent]
    a: Ids  # followed by referent1 (structure s1, Lyon)
    b: Ids  # followed by referent2 (structure s2, Villeurbanne)
    s1: int
    s2: int


def _file(person: Any, main: Agent, clock: Clock) -> Ids:
    clock.set(D(2025, 3, 20))
    contract = create_contract(
        person,
        {
            "kind": "contrat_engagement",
            "signed_on": D(2025, 3, 20),
            "starts_on": D(2025, 3, 20),
            "ends_on": D(2025, 9, 19),
            "weekly_hours": 12,
            "reduction_reason": "health",
            "objectives": "Soins puis formation",
        },
        main,
    )
    fle = create_step(person, {"offer_id": offer("FLE-ASL").id, "notes": "Note du référent"}, main)
    health = create_step(
        person, {"offer_id": offer("SANTE-BILAN").id, "notes": "Suivi médical"}, main
    )
    transition_step(health, StepStatus.EN_COURS, {}, main)
    appointment = create_appointment(
        person,
        {
            "scheduled_at": paris(2025, 3, 25),
            "theme": AppointmentTheme.SUIVI,
            "notes": "Entretien difficile",
        },
        main,
    )
    create_assessment(
        person,
        {"scores": {i["code"]: 1 for i in _grid_items()}, "comment": "Freins santé importants"},
        main,
    )
    alert = raise_alert(person, "ft_radiation", due_on=D(2025, 3, 20), details={"motif": "52"})
    case = open_ep_case(person, {"origin": EpOrigin.OTHER, "referral_reason": "Absences"}, main)
    return Ids(person.id, fle.id, health.id, contract.id, appointment.id, alert.id, case.id)


def _grid_items() -> list[dict[str, Any]]:
    from spie.parcours.seeds import grid_items

    return grid_items()


@pytest.fixture
def world(rules, clock) -> World:
    s1, s2 = structure("LYON"), structure(T2)
    agents = {
        "referent1": referent(s1, "LYON"),
        "colleague1": referent(s1, "LYON"),
        "manager1": manager(s1, "LYON"),
        "referent2": referent(s2, T2),
        "manager2": manager(s2, T2),
        "charge": AgentFactory(
            structure=s1, roles=[Role.CHARGE_ORIENTATION], territory_codes=["LYON"]
        ),
        "admin": admin(s1),
        "provider": referent(offer("FLE-ASL").provider_structure),
        "other_provider": referent(offer("MOBILITE-PERMIS").provider_structure),
    }
    ids = []
    for code, home, main in (("LYON", s1, "referent1"), (T2, s2, "referent2")):
        person = PersonFactory(territory_code=code)
        clock.set(D(2025, 3, 4))
        decide(person, home, decided_on=D(2025, 3, 3), notified_on=D(2025, 3, 4))
        clock.set(D(2025, 3, 5))
        assign_referent(
            person, agents[main], reason="Affectation", handover_note=None, by=agents["admin"]
        )
        ids.append(_file(person, agents[main], clock))
    clock.set(D(2025, 3, 24))
    return World(agents, ids[0], ids[1], s1.id, s2.id)


def reads(ids: Ids) -> list[str]:
    return [
        f"/api/v1/persons/{ids.person}",
        f"/api/v1/persons/{ids.person}/parcours",
        f"/api/v1/persons/{ids.person}/timeline",
        f"/api/v1/persons/{ids.person}/referent",
        f"/api/v1/persons/{ids.person}/assessments",
        f"/api/v1/steps/{ids.fle_step}",
        f"/api/v1/steps/{ids.health_step}",
        f"/api/v1/contracts/{ids.contract}",
        f"/api/v1/appointments/{ids.appointment}",
        f"/api/v1/ep-cases/{ids.ep_case}",
    ]


def writes(ids: Ids) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("PATCH", f"/api/v1/persons/{ids.person}/parcours", {"typology": "PLIE"}),
        ("POST", "/api/v1/steps", {"person_id": ids.person, "title": "x", "theme": "other"}),
        ("PATCH", f"/api/v1/steps/{ids.fle_step}", {"notes": "x"}),
        (
            "POST",
            f"/api/v1/steps/{ids.fle_step}/transitions",
            {"to": "abandonnee", "abandon_reason": "x"},
        ),
        (
            "POST",
            "/api/v1/contracts",
            {
                "person_id": ids.person,
                "kind": "contrat_engagement",
                "signed_on": "2025-03-24",
                "starts_on": "2025-10-01",
                "ends_on": "2026-03-01",
                "weekly_hours": 15,
                "objectives": "x",
            },
        ),
        ("PATCH", f"/api/v1/contracts/{ids.contract}", {"objectives": "x"}),
        (
            "POST",
            "/api/v1/appointments",
            {
                "person_id": ids.person,
                "theme": "suivi",
                "scheduled_at": paris(2025, 4, 2).isoformat(),
            },
        ),
        ("PATCH", f"/api/v1/appointments/{ids.appointment}", {"notes": "x"}),
        (
            "POST",
            f"/api/v1/persons/{ids.person}/assessments",
            {"scores": {i["code"]: 0 for i in _grid_items()}},
        ),
        ("POST", f"/api/v1/alerts/{ids.alert}/resolve", {"resolution": "vu"}),
        ("PATCH", f"/api/v1/ep-cases/{ids.ep_case}", {"close_reason": "sans suite"}),
    ]


def call(
    client: Any,
    agent: Agent,
    method: str,
    url: str,
    body: dict[str, Any] | None = None,
    version: int | str = "*",
) -> Any:
    api = api_as(client, agent)
    if method == "GET":
        return api.get(url)
    headers = {"If-Match": "*"} if version == "*" else if_match(version)
    return api._call(method, url, json=body, headers=headers)


def test_referent_reads_and_writes_their_caseload(client, world):
    main = world.agents["referent1"]
    for url in reads(world.a):
        assert call(client, main, "GET", url).status_code == 200, url
    parcours = call(client, main, "GET", f"/api/v1/persons/{world.a.person}/parcours").json
    health = next(s for s in parcours["steps"] if s["id"] == world.a.health_step)
    assert (health["title"], health["masked"], health["notes"]) == (
        "Bilan de santé et accès aux soins",
        False,
        "Suivi médical",
    )
    assert parcours["contracts"][0]["reduction_reason"] == "health"
    for method, url, body in writes(world.a):
        response = call(client, main, method, url, body)
        assert response.status_code < 400, (url, response.json)


@pytest.mark.parametrize("who", ["referent2", "manager2", "colleague1", "provider"])
def test_guessing_ids_answers_404(client, world, who):
    """IDOR: every read and write of another structure's person answers 404."""
    agent = world.agents[who]
    target = world.a  # followed by referent1 (structure s1, Lyon)
    for url in reads(target):
        if who == "provider" and url.endswith(f"/steps/{target.fle_step}"):
            continue  # the provider runs that step: contributor view (tested below)
        response = call(client, agent, "GET", url)
        problem(response, 404, "not_found")
    for method, url, body in writes(target):
        response = call(client, agent, method, url, body)
        if who == "provider" and f"/steps/{target.fle_step}" in url:
            continue
        if who == "referent2" or who == "colleague1" or who == "provider":
            allowed = {404}
        else:  # managers are refused by their role on writes meant for référents
            allowed = {403, 404}
        assert response.status_code in allowed, (who, url, response.json)


def test_provider_contributor_sees_only_their_step(client, world):
    staff = world.agents["provider"]
    listing = call(client, staff, "GET", "/api/v1/steps").json
    # The provider runs the FLE step of both people, and nothing else.
    assert sorted(s["id"] for s in listing["items"]) == [world.a.fle_step, world.b.fle_step]
    step = next(s for s in listing["items"] if s["id"] == world.a.fle_step)
    assert step["contributor_view"] is True
    assert step["notes"] is None
    assert set(step["person"]) == {"id", "last_name", "first_name", "birth_date"}
    one = call(client, staff, "GET", f"/api/v1/steps/{world.a.fle_step}")
    assert one.status_code == 200
    refused = call(
        client,
        staff,
        "PATCH",
        f"/api/v1/steps/{world.a.fle_step}",
        {"notes": "x"},
        version=one.json["version"],
    )
    body = problem(refused, 422, "contributor_field")
    assert body["errors"] == {"notes": ["Réservé au référent."]}
    started = call(
        client,
        staff,
        "POST",
        f"/api/v1/steps/{world.a.fle_step}/transitions",
        {"to": "en_cours"},
        version=one.json["version"],
    )
    assert started.status_code == 200, started.json
    assert started.json["status"] == "en_cours"
    # The person's file and the rest of the pathway stay out of reach.
    for url in (
        f"/api/v1/persons/{world.a.person}",
        f"/api/v1/persons/{world.a.person}/parcours",
        f"/api/v1/persons/{world.a.person}/timeline",
        f"/api/v1/steps/{world.a.health_step}",
    ):
        problem(call(client, staff, "GET", url), 404, "not_found")
    assert call(client, world.agents["other_provider"], "GET", "/api/v1/steps").json["total"] == 0


def test_manager_reads_without_notes_nor_health(client, world):
    boss = world.agents["manager1"]
    parcours = call(client, boss, "GET", f"/api/v1/persons/{world.a.person}/parcours").json
    health = next(s for s in parcours["steps"] if s["id"] == world.a.health_step)
    assert (health["title"], health["theme"], health["masked"], health["notes"]) == (
        "Étape confidentielle",
        None,
        True,
        None,
    )
    fle = next(s for s in parcours["steps"] if s["id"] == world.a.fle_step)
    assert fle["title"] == "Atelier sociolinguistique (français langue étrangère, A1-A2)"
    assert fle["notes"] is None
    contract = parcours["contracts"][0]
    assert (contract["objectives"], contract["reduction_reason"], contract["reduced"]) == (
        None,
        None,
        True,
    )
    assert all(a["notes"] is None for a in parcours["appointments"])
    timeline = call(client, boss, "GET", f"/api/v1/persons/{world.a.person}/timeline").json
    assert all(e["note"] is None for e in timeline["items"])
    assert "Bilan de santé et accès aux soins" not in str(timeline)
    assessments = call(client, boss, "GET", f"/api/v1/persons/{world.a.person}/assessments").json
    assert "sante" not in assessments["items"][0]["scores"]
    assert assessments["items"][0]["comment"] is None
    caseload = call(
        client, boss, "GET", f"/api/v1/caseload?agent_id={world.agents['referent1'].id}"
    ).json
    assert caseload["items"][0]["current_step"]["masked"] in (True, False)
    assert "Bilan de santé" not in str(caseload)
    for method, url, body in writes(world.a):
        if "/resolve" in url or "ep-cases" in url:
            continue
        response = call(client, boss, method, url, body)
        assert response.status_code == 403, (url, response.json)


def test_chargé_d_orientation_reads_but_does_not_write(client, world):
    charge = world.agents["charge"]
    assert (
        call(client, charge, "GET", f"/api/v1/persons/{world.a.person}/parcours").status_code == 200
    )
    response = call(
        client,
        charge,
        "POST",
        "/api/v1/steps",
        {"person_id": world.a.person, "title": "x", "theme": "other"},
    )
    problem(response, 403, "forbidden")


def test_manager_of_the_structure_confirms_referents(client, world, clock):
    url = f"/api/v1/persons/{world.a.person}/referent"
    etag = call(client, world.agents["manager1"], "GET", url).headers["ETag"]
    body = {
        "agent_id": world.agents["colleague1"].id,
        "reason": "Rééquilibrage",
        "handover_note": "Suivi",
    }
    # A référent cannot confirm; a manager of another structure does not even see the person.
    problem(
        api_as(client, world.agents["referent1"]).post(url, json=body, headers={"If-Match": etag}),
        403,
        "forbidden",
    )
    problem(
        api_as(client, world.agents["manager2"]).post(url, json=body, headers={"If-Match": etag}),
        404,
        "not_found",
    )
    outsider = AgentFactory(
        structure=structure("LYON"), roles=[Role.MANAGER], territory_codes=["LYON"]
    )
    problem(
        api_as(client, outsider).post(url, json=body, headers={"If-Match": etag}),
        403,
        "not_structure_manager",
    )
    ok = api_as(client, world.agents["manager1"]).post(url, json=body, headers={"If-Match": etag})
    assert ok.status_code == 201, ok.json
    admin_etag = ok.headers["ETag"]
    back = api_as(client, world.agents["admin"]).post(
        url,
        json={**body, "agent_id": world.agents["referent1"].id},
        headers={"If-Match": admin_etag},
    )
    assert back.status_code == 201, back.json


def test_queues_caseloads_and_departures_stay_in_the_structure(client, world):
    r1, r2 = world.agents["referent1"], world.agents["referent2"]
    problem(
        call(client, r1, "GET", f"/api/v1/structures/{world.s2}/referent-queue"),
        403,
        "other_structure",
    )
    assert (
        call(client, r1, "GET", f"/api/v1/structures/{world.s1}/referent-queue").status_code == 200
    )
    problem(call(client, r1, "GET", f"/api/v1/caseload?agent_id={r2.id}"), 403, "other_caseload")
    own = call(client, r1, "GET", "/api/v1/caseload").json
    assert [i["person"]["id"] for i in own["items"]] == [world.a.person]
    # A manager sees another référent's caseload limited to the people they see.
    seen = call(client, world.agents["manager1"], "GET", f"/api/v1/caseload?agent_id={r2.id}")
    assert seen.json["items"] == []
    problem(
        call(
            client,
            world.agents["manager2"],
            "POST",
            f"/api/v1/agents/{r1.id}/departure",
            {"left_on": "2025-06-30", "reason": "Départ"},
        ),
        404,
        "not_found",
    )
    problem(
        call(
            client,
            r1,
            "POST",
            "/api/v1/referent-reassignments",
            {"from_agent_id": r1.id, "reason": "x1", "handover_note": "x1"},
        ),
        403,
        "forbidden",
    )


def test_indicators_are_for_steering_roles(client, world):
    problem(
        call(client, world.agents["referent1"], "GET", "/api/v1/indicators/parcours"),
        403,
        "forbidden",
    )
    for who in ("manager1", "charge", "admin"):
        response = call(client, world.agents[who], "GET", "/api/v1/indicators/parcours")
        assert response.status_code == 200, (who, response.json)
    problem(
        call(
            client,
            world.agents["manager1"],
            "GET",
            f"/api/v1/indicators/parcours?territory_id={_territory_id(T2)}",
        ),
        403,
        "territory_out_of_scope",
    )


def _territory_id(code: str) -> int:
    from tests.factories import territory

    return territory(code).id


def test_offers_are_managed_by_admins(client, world):
    body = {
        "code": "MOB-VELO",
        "title": "Atelier vélo",
        "theme": "mobility",
        "provider_structure_id": world.s1,
        "starts_on": "2025-01-01",
    }
    problem(
        call(client, world.agents["manager1"], "POST", "/api/v1/offers", body), 403, "forbidden"
    )
    created = call(client, world.agents["admin"], "POST", "/api/v1/offers", body)
    assert created.status_code == 201, created.json
    health = call(
        client,
        world.agents["admin"],
        "PATCH",
        f"/api/v1/offers/{created.json['id']}",
        {"theme": "health"},
        version=created.json["version"],
    )
    assert health.status_code == 200, health.json["errors"]
    assert health.json["sensitive"] is True
    listing = call(client, world.agents["referent1"], "GET", "/api/v1/offers?theme=health").json
    assert {o["code"] for o in listing["items"]} == {"SANTE-BILAN", "SANTE-ECOUTE", "MOB-VELO"}
    assert OfferTheme.HEALTH.value == "health"
