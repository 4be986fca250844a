"""Orientation through the API: cases and clocks, diagnostics and the référentiel,
decisions and notification, the work queue, delay policies — and who may do what."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from html import unescape
from typing import Any

import pytest
from sqlalchemy import event, func, select

from spie.agents.models import Role
from spie.audit.models import AuditEvent
from spie.clocks.models import ClockKind, DelayPolicy
from spie.clocks.today import paris_today
from spie.db import db
from spie.orientation import decisions as decisions_module
from spie.orientation.clock_events import person_deceased, sdd_entered, sdd_left
from spie.orientation.models import (
    CaseStatus,
    ClockStartBasis,
    Diagnostic,
    FtSyncStatus,
    OrientationCase,
    OrientationDecision,
    ReferentielVersion,
)
from spie.orientation.referentiel import SEED_VERSION_1
from spie.persons.models import Public
from spie.structures.models import StructureType
from tests.factories import AgentFactory, AssignmentFactory, PersonFactory, commune_of
from tests.orientation.api import api_as, fresh, persist
from tests.orientation.factories import charge, criteria, seed_orientation, structure_in

D = dt.date
VILLEURBANNE = "CTM-VILLEURBANNE"


@pytest.fixture(autouse=True)
def _seed(app):
    seed_orientation()


MARCH_3 = D(2025, 3, 3)


def opened(
    started_on: dt.date = MARCH_3, territory_code: str = "LYON", **kw: Any
) -> OrientationCase:
    person = PersonFactory(territory_code=territory_code, **kw)
    case = sdd_entered(person, started_on, ClockStartBasis.DDSOUDRODEV)
    assert case is not None
    return case


@pytest.fixture
def count_queries(app: Any) -> Iterator[list[str]]:
    statements: list[str] = []

    def _count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    assert db.engine is not None
    event.listen(db.engine, "before_cursor_execute", _count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", _count)


# --------------------------------------------------------------------------- cases


def test_manual_referral_through_the_persons_api_opens_the_case(client):
    agent = charge("LYON")
    body = {
        "public": "rsj",
        "last_name": "Martin",
        "first_name": "Léo",
        "birth_date": "2004-02-11",
        "commune_insee": commune_of("LYON").insee_code,
        "referral_source": "Mission locale de Lyon",
        "referred_on": "2025-06-02",
    }
    response = api_as(client, agent).post("/api/v1/persons", json=body)
    assert response.status_code == 201, response.json
    person_id = response.json["id"]
    orientation = api_as(client, agent).get(f"/api/v1/persons/{person_id}/orientation").json
    case = orientation["current_case"]
    assert (case["start_basis"], case["clock_started_on"], case["public"]) == (
        "manual_referral",
        "2025-06-02",
        "rsj",
    )
    assert (case["legal_deadline"], case["target_date"]) == ("2025-07-14", "2025-08-02")
    assert case["policy"]["legal_limit"] == "6w"


def test_a_charge_opens_a_case_by_hand_and_reads_its_clock(client):
    agent = charge("LYON")
    person = PersonFactory(territory_code="LYON")
    url = f"/api/v1/persons/{person.id}/orientation"
    response = api_as(client, agent).post(
        url, json={"started_on": "2024-10-15", "basis": "rsa_request", "estimated": True}
    )
    assert response.status_code == 201, response.json
    case = response.json["current_case"]
    assert case["status"] == "a_orienter"
    assert (case["clock_started_on"], case["legal_deadline"], case["target_date"]) == (
        "2024-10-15",
        "2024-12-15",
        "2024-12-15",
    )
    assert (case["start_basis"], case["clock_estimated"], case["overdue"]) == (
        "rsa_request",
        True,
        True,
    )
    assert response.headers["ETag"] == f'"{case["version"]}"'

    again = api_as(client, agent).post(url, json={"started_on": "2025-01-10"})
    assert again.status_code == 409
    assert again.json["code"] == "case_already_open"
    future = api_as(client, agent).post(url, json={"started_on": "2999-01-01"})
    assert future.status_code == 422
    assert "started_on" in future.json["errors"]
    assert db.session.scalar(select(func.count(OrientationCase.id))) == 1


def test_opening_a_case_before_any_policy_is_a_precise_404(client):
    agent = charge("LYON")
    person = PersonFactory(territory_code="LYON")
    response = api_as(client, agent).post(
        f"/api/v1/persons/{person.id}/orientation", json={"started_on": "2008-05-01"}
    )
    assert response.status_code == 404
    assert response.json["code"] == "no_delay_policy"
    assert "2008-05-01" in response.json["detail"]


def test_the_orientation_view_shows_pauses_and_is_audited(client):
    agent = charge("LYON")
    case = opened()
    person = case.person
    sdd_left(person, D(2025, 3, 20), "left_sdd")
    sdd_entered(person, D(2025, 4, 9), ClockStartBasis.FLOW_ENTRY)
    response = api_as(client, agent).get(f"/api/v1/persons/{person.id}/orientation")
    assert response.status_code == 200
    current = response.json["current_case"]
    assert current["pauses"] == [
        {"paused_on": "2025-03-20", "resumed_on": "2025-04-09", "reason": "left_sdd"}
    ]
    assert (current["paused_days"], current["legal_deadline"], current["target_date"]) == (
        20,
        "2025-05-04",
        "2025-05-23",
    )
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.resource_type == "orientation"))
    assert (audit.action.value, audit.person_id, audit.actor_agent_id) == (
        "read",
        person.id,
        agent.id,
    )


def test_orientation_of_a_person_outside_the_scope_is_404(client):
    case = opened(territory_code="LYON")
    person_id = case.person_id
    outsider = charge(VILLEURBANNE)
    referent = AgentFactory(roles=[Role.REFERENT])
    own_referent = AssignmentFactory(person=case.person).agent
    manager = AgentFactory(roles=[Role.MANAGER], territory_codes=["LYON"])
    persist()
    url = f"/api/v1/persons/{person_id}/orientation"
    assert api_as(client, outsider).get(url).status_code == 404
    assert api_as(client, outsider).post(url, json={"started_on": "2025-01-02"}).status_code == 404
    assert api_as(client, referent).get(url).status_code == 404
    assert api_as(client, own_referent).get(url).status_code == 200
    assert api_as(client, manager).get(url).status_code == 200
    assert api_as(client, manager).post(url, json={"started_on": "2025-01-02"}).status_code == 403
    assert (
        api_as(client, outsider).get(f"/api/v1/persons/{person_id}/diagnostics").status_code == 404
    )
    assert (
        api_as(client, manager).get(f"/api/v1/persons/{person_id}/diagnostics").status_code == 403
    )


# --------------------------------------------------------------------------- diagnostics


def test_a_diagnostic_returns_the_proposal_with_its_explanation(client):
    agent = charge("LYON")
    plie = structure_in("LYON", StructureType.PLIE, capacity=10)
    busy = structure_in("LYON", StructureType.ASSOCIATION_SIAE, capacity=50)
    PersonFactory.create_batch(45, current_structure_id=busy.id, territory_code="LYON")
    case = opened()
    persist()
    response = api_as(client, agent).post(
        f"/api/v1/persons/{case.person_id}/diagnostics",
        json={"criteria": criteria(mobilite="fort")},
    )
    assert response.status_code == 201, response.json
    body = response.json
    proposal = body["proposal"]
    assert (proposal["parcours"], proposal["parcours_label"], proposal["ft_code"]) == (
        "socio_professionnel",
        "Socio-professionnel",
        "PSO",
    )
    assert proposal["rule_id"] == "difficulte_forte"
    assert proposal["direct"] is False
    assert proposal["explanation"] == (
        "Vous êtes orienté(e) vers un parcours Socio-professionnel parce qu'une difficulté a "
        "un impact fort sur votre recherche d'emploi (mobilité) : votre accompagnement "
        "combinera la recherche d'emploi et l'aide pour la lever."
    )
    # PLIE first in the rule's preference order, with room left; SIAE has 5 places left.
    assert body["suggested_structure_id"] == plie.id
    assert body["referentiel_version"]["number"] == 1
    assert body["criteria"]["statut"] == "aucun"  # defaults filled
    assert fresh(case).status == CaseStatus.PROPOSEE


def test_unknown_criteria_are_refused_per_field_and_nothing_is_stored(client):
    agent = charge("LYON")
    case = opened()
    bad = criteria(santee="fort", sante="tres_fort")
    del bad["age"]
    response = api_as(client, agent).post(
        f"/api/v1/persons/{case.person_id}/diagnostics", json={"criteria": bad}
    )
    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json["code"] == "invalid_diagnostic"
    errors = response.json["errors"]["criteria"]
    assert errors["santee"] == ["critère inconnu : 'santee'"]
    assert errors["sante"] == [
        "valeur 'tres_fort' non admise pour 'sante' (fort, moyen, sans_impact)"
    ]
    assert errors["age"] == ["critère obligatoire manquant : 'age' (âge)"]
    assert db.session.scalar(select(func.count(Diagnostic.id))) == 0
    assert fresh(case).status == CaseStatus.A_ORIENTER


def test_a_published_version_is_used_for_new_diagnostics_and_old_ones_keep_theirs(client):
    agent = charge("LYON")
    admin = AgentFactory(roles=[Role.ADMIN])
    first = opened()
    second = opened()
    persist()
    before = api_as(client, agent).post(
        f"/api/v1/persons/{first.person_id}/diagnostics",
        json={"criteria": criteria(sante="fort")},
    )
    assert before.json["proposal"]["parcours"] == "social"

    data = copy.deepcopy(SEED_VERSION_1)
    rule = next(r for r in data["rules"] if r["id"] == "sante_forte")
    rule["outcome"] = {
        "parcours": "socio_professionnel",
        "structure_types": ["plie"],
        "direct": False,
    }
    rule["explanation"] = "Vous êtes orienté(e) vers un parcours {parcours} (santé : {sante})."
    refused = api_as(client, agent).post(
        "/api/v1/referentiel-versions", json={"label": "v2", "data": data}
    )
    assert refused.status_code == 403
    published = api_as(client, admin).post(
        "/api/v1/referentiel-versions", json={"label": "Version 2 — santé", "data": data}
    )
    assert published.status_code == 201, published.json
    assert published.json["number"] == 2

    after = api_as(client, agent).post(
        f"/api/v1/persons/{second.person_id}/diagnostics",
        json={"criteria": criteria(sante="fort")},
    )
    assert after.json["referentiel_version"]["number"] == 2
    assert after.json["proposal"]["parcours"] == "socio_professionnel"
    assert after.json["proposal"]["explanation"] == (
        "Vous êtes orienté(e) vers un parcours Socio-professionnel (santé : impact fort)."
    )
    kept = api_as(client, agent).get(f"/api/v1/persons/{first.person_id}/diagnostics").json
    assert [(d["referentiel_version"]["number"], d["proposal"]["parcours"]) for d in kept] == [
        (1, "social")
    ]
    versions = api_as(client, agent).get("/api/v1/referentiel-versions").json
    assert [v["number"] for v in versions] == [2, 1]


def test_a_malformed_version_is_refused_with_the_path_of_the_problem(client):
    admin = AgentFactory(roles=[Role.ADMIN])
    data = copy.deepcopy(SEED_VERSION_1)
    data["rules"][2]["condition"] = {"criterion": "santee", "in": ["fort"]}
    response = api_as(client, admin).post(
        "/api/v1/referentiel-versions", json={"label": "cassée", "data": data}
    )
    assert response.status_code == 422
    assert response.json["referentiel_error"]["path"] == "rules[2].condition.criterion"
    assert list(response.json["errors"]["data"]) == ["rules[2].condition.criterion"]
    assert db.session.scalar(select(func.count(ReferentielVersion.id))) == 1


# --------------------------------------------------------------------------- decisions


def _diagnosed(client: Any, agent: Any, case: OrientationCase, **values: Any) -> dict[str, Any]:
    response = api_as(client, agent).post(
        f"/api/v1/persons/{case.person_id}/diagnostics", json={"criteria": criteria(**values)}
    )
    assert response.status_code == 201, response.json
    return response.json


def test_decision_notification_and_the_france_travail_hook(client):
    agent = charge("LYON")
    ft = structure_in("LYON", StructureType.FRANCE_TRAVAIL, capacity=100)
    case = opened(D(2025, 3, 3))
    persist()
    diagnostic = _diagnosed(client, agent, case, situation_emploi="recherche_active")
    assert diagnostic["suggested_structure_id"] == ft.id
    committed: list[int] = []
    decisions_module.DECISION_COMMITTED_HOOKS.append(committed.append)
    try:
        response = api_as(client, agent).post(
            "/api/v1/orientation-decisions",
            json={"case_id": case.id, "parcours": "emploi", "structure_id": ft.id},
        )
    finally:
        decisions_module.DECISION_COMMITTED_HOOKS.remove(committed.append)
    assert response.status_code == 201, response.json
    decision = response.json
    assert (decision["rank"], decision["follows_proposal"], decision["ft_code"]) == (1, True, "PED")
    assert (decision["via_rio"], decision["direct"]) == (False, False)
    assert decision["ft_sync_status"] == FtSyncStatus.PENDING.value
    assert committed == [decision["id"]]
    assert fresh(case).person.current_structure_id == ft.id
    assert fresh(case).status == CaseStatus.DECIDEE

    url = f"/api/v1/orientation-decisions/{decision['id']}/notification"
    early = api_as(client, agent).post(url, json={"notified_on": "2025-01-02", "channel": "letter"})
    assert early.status_code == 422
    notified = api_as(client, agent).post(
        url, json={"notified_on": paris_today().isoformat(), "channel": "letter"}
    )
    assert notified.status_code == 200, notified.json
    closed = fresh(case)
    assert (closed.status, closed.close_reason.value) == (CaseStatus.NOTIFIEE, "oriented")
    assert closed.closed_on == closed.notified_on
    twice = api_as(client, agent).post(url, json={"notified_on": "2025-04-01", "channel": "email"})
    assert twice.status_code == 409
    assert twice.json["code"] == "already_notified"

    letter = api_as(client, agent).get(f"/api/v1/orientation-decisions/{decision['id']}/letter")
    assert letter.status_code == 200
    html = unescape(letter.get_data(as_text=True))
    assert "parcours Emploi" in html
    assert ft.name in html
    assert "vous êtes déjà suivi(e) par France Travail" not in html  # rule not fired here
    assert "en recherche active d'emploi" in html  # the explanation shown to the person
    assert "L311-3-1" in html


def test_a_decision_on_a_closed_case_is_refused_and_nothing_is_stored(client):
    agent = charge("LYON")
    mdm = structure_in("LYON", StructureType.MDM)
    case = opened()
    persist()
    _diagnosed(client, agent, case)
    person_deceased(fresh(case).person, D(2025, 3, 20))
    persist()
    response = api_as(client, agent).post(
        "/api/v1/orientation-decisions",
        json={
            "case_id": case.id,
            "parcours": "social",
            "structure_id": mdm.id,
            "divergence_reason": "Situation sociale",
        },
    )
    assert response.status_code == 409
    assert response.json["code"] == "case_closed"
    assert "deceased" in response.json["detail"]
    assert db.session.scalar(select(func.count(OrientationDecision.id))) == 0
    assert fresh(case).person.current_structure_id is None


def test_a_decision_against_the_proposal_needs_a_reason(client):
    agent = charge("LYON")
    mdm = structure_in("LYON", StructureType.MDM)
    case = opened()
    persist()
    _diagnosed(client, agent, case)  # proposes socio-professionnel
    body = {"case_id": case.id, "parcours": "social", "structure_id": mdm.id}
    refused = api_as(client, agent).post("/api/v1/orientation-decisions", json=body)
    assert refused.status_code == 422
    assert list(refused.json["errors"]) == ["divergence_reason"]
    accepted = api_as(client, agent).post(
        "/api/v1/orientation-decisions",
        json={**body, "divergence_reason": "Difficultés de logement révélées à l'entretien"},
    )
    assert accepted.status_code == 201
    assert accepted.json["follows_proposal"] is False


def test_a_decision_without_diagnostic_is_refused(client):
    agent = charge("LYON")
    mdm = structure_in("LYON", StructureType.MDM)
    case = opened()
    persist()
    response = api_as(client, agent).post(
        "/api/v1/orientation-decisions",
        json={"case_id": case.id, "parcours": "social", "structure_id": mdm.id},
    )
    assert response.status_code == 422
    assert response.json["code"] == "diagnostic_required"


def test_reorientation_from_emploi_to_social_needs_the_ep_opinion(client):
    agent = charge("LYON")
    ft = structure_in("LYON", StructureType.FRANCE_TRAVAIL)
    mdm = structure_in("LYON", StructureType.MDM)
    case = opened()
    persist()
    _diagnosed(client, agent, case, situation_emploi="recherche_active")
    first = (
        api_as(client, agent)
        .post(
            "/api/v1/orientation-decisions",
            json={"case_id": case.id, "parcours": "emploi", "structure_id": ft.id},
        )
        .json
    )
    api_as(client, agent).post(
        f"/api/v1/orientation-decisions/{first['id']}/notification",
        json={"notified_on": paris_today().isoformat(), "channel": "email"},
    )
    _diagnosed(client, agent, case, sante="fort")  # on the notified case: a new proposal
    body = {"case_id": case.id, "parcours": "social", "structure_id": mdm.id}
    no_reason = api_as(client, agent).post("/api/v1/orientation-decisions", json=body)
    assert no_reason.status_code == 422
    assert set(no_reason.json["errors"]) == {"reorientation_reason", "ep_opinion"}
    no_ep = api_as(client, agent).post(
        "/api/v1/orientation-decisions",
        json={**body, "reorientation_reason": "Problème de santé apparu en cours de parcours"},
    )
    assert no_ep.status_code == 422
    assert list(no_ep.json["errors"]) == ["ep_opinion"]
    assert "équipe pluridisciplinaire" in no_ep.json["errors"]["ep_opinion"][0]
    assert db.session.scalar(select(func.count(OrientationDecision.id))) == 1

    done = api_as(client, agent).post(
        "/api/v1/orientation-decisions",
        json={
            **body,
            "reorientation_reason": "Problème de santé apparu en cours de parcours",
            "ep_opinion": "Avis favorable de l'EP du 12 mai",
            "ep_opinion_on": "2025-05-12",
        },
    )
    assert done.status_code == 201, done.json
    assert (done.json["rank"], done.json["parcours"]) == (2, "social")
    assert fresh(case).person.current_structure_id == mdm.id
    reoriented = fresh(case)
    assert reoriented.status == CaseStatus.NOTIFIEE  # the clock ended at the first notification

    manager = AgentFactory(roles=[Role.MANAGER], territory_codes=["LYON"])
    listed = api_as(client, manager).get(
        f"/api/v1/orientation-decisions?person_id={case.person_id}"
    )
    assert listed.status_code == 200
    assert [d["rank"] for d in listed.json["items"]] == [2, 1]
    assert listed.json["items"][0]["ep_opinion"] is None  # free text hidden from managers
    assert listed.json["items"][0]["reorientation_reason"] is None
    as_charge = api_as(client, agent).get(f"/api/v1/orientation-decisions/{done.json['id']}").json
    assert as_charge["ep_opinion"] == "Avis favorable de l'EP du 12 mai"


def test_decisions_of_persons_outside_the_scope_are_404(client):
    agent = charge("LYON")
    ft = structure_in("LYON", StructureType.FRANCE_TRAVAIL)
    case = opened()
    persist()
    _diagnosed(client, agent, case, situation_emploi="recherche_active")
    decision = (
        api_as(client, agent)
        .post(
            "/api/v1/orientation-decisions",
            json={"case_id": case.id, "parcours": "emploi", "structure_id": ft.id},
        )
        .json
    )
    outsider = charge(VILLEURBANNE)
    as_outsider = api_as(client, outsider)
    assert as_outsider.get(f"/api/v1/orientation-decisions/{decision['id']}").status_code == 404
    assert (
        as_outsider.post(
            f"/api/v1/orientation-decisions/{decision['id']}/notification",
            json={"notified_on": "2025-04-01", "channel": "letter"},
        ).status_code
        == 404
    )
    assert (
        as_outsider.post(
            "/api/v1/orientation-decisions",
            json={"case_id": case.id, "parcours": "emploi", "structure_id": ft.id},
        ).status_code
        == 404
    )
    assert as_outsider.get("/api/v1/orientation-decisions").json["total"] == 0


# --------------------------------------------------------------------------- work queue


def test_work_queue_counts_filters_and_sorts(client):
    agent = charge("LYON")
    as_of = D(2025, 4, 10)
    overdue = opened(D(2025, 2, 3))  # legal 2025-03-17
    due_soon = opened(D(2025, 3, 3))  # legal 2025-04-14: within 7 days of 10 April
    fresh_case = opened(D(2025, 4, 1))  # legal 2025-05-13
    rsj = opened(D(2025, 4, 2), public=Public.RSJ, bound_by_duties=False)
    paused = opened(D(2025, 2, 3))
    sdd_left(paused.person, D(2025, 2, 20), "moved_away")
    opened(D(2025, 1, 6), territory_code=VILLEURBANNE)  # outside the agent's territories
    persist()
    proposed = opened(D(2025, 3, 20))
    persist()
    _diagnosed(client, agent, proposed)

    url = "/api/v1/work-queues/orientation"
    everything = api_as(client, agent).get(f"{url}?as_of={as_of}").json
    assert everything["counts"] == {
        "to_convene": 4,
        "due_soon": 1,
        "overdue": 1,
        "awaiting_decision": 1,
        "awaiting_notification": 0,
        "flagged": 0,
    }
    assert everything["total"] == 5  # open, running cases of Lyon (the paused one is not)
    assert [i["person"]["id"] for i in everything["items"]] == [
        c.person_id for c in (overdue, due_soon, proposed, fresh_case, rsj)
    ]

    late = api_as(client, agent).get(f"{url}?as_of={as_of}&queue=overdue").json
    assert [i["id"] for i in late["items"]] == [overdue.id]
    soon = api_as(client, agent).get(f"{url}?as_of={as_of}&queue=due_soon").json
    assert [i["legal_deadline"] for i in soon["items"]] == ["2025-04-14"]
    rsj_only = api_as(client, agent).get(f"{url}?as_of={as_of}&public=rsj").json
    assert [i["id"] for i in rsj_only["items"]] == [rsj.id]
    assert rsj_only["counts"]["to_convene"] == 1
    newest_first = (
        api_as(client, agent)
        .get(f"{url}?as_of={as_of}&sort=-clock_started_on&per_page=2&page=1")
        .json
    )
    assert [i["id"] for i in newest_first["items"]] == [rsj.id, fresh_case.id]
    assert (newest_first["total"], newest_first["per_page"]) == (5, 2)

    villeurbanne = api_as(client, charge(VILLEURBANNE)).get(f"{url}?as_of={as_of}").json
    assert villeurbanne["total"] == 1
    assert villeurbanne["counts"]["overdue"] == 1
    bad = api_as(client, agent).get(f"{url}?queue=everything&per_page=1000")
    assert bad.status_code == 422
    assert set(bad.json["errors"]) == {"queue", "per_page"}


def test_work_queue_roles(client):
    opened()
    manager = AgentFactory(roles=[Role.MANAGER], territory_codes=["LYON"])
    referent = AgentFactory(roles=[Role.REFERENT])
    assert api_as(client, manager).get("/api/v1/work-queues/orientation").json["total"] == 1
    assert api_as(client, referent).get("/api/v1/work-queues/orientation").status_code == 403


def test_list_pages_take_a_constant_number_of_queries(client, count_queries):
    agent = charge("LYON")
    for day in range(1, 4):
        opened(D(2025, 3, day))
    persist()
    api = api_as(client, agent)
    api.get("/api/v1/work-queues/orientation?per_page=3")  # warm-up (token use recorded)
    count_queries.clear()
    api.get("/api/v1/work-queues/orientation?per_page=3")
    small = len(count_queries)
    for day in range(4, 20):
        opened(D(2025, 3, day))
    persist()
    count_queries.clear()
    response = api.get("/api/v1/work-queues/orientation?per_page=50")
    assert response.json["total"] == 19
    assert len(count_queries) == small


# --------------------------------------------------------------------------- policies


def test_delay_policies_are_listed_and_an_overlap_is_refused(client):
    admin = AgentFactory(roles=[Role.ADMIN])
    agent = charge("LYON")
    listed = api_as(client, agent).get("/api/v1/delay-policies?clock=orientation").json
    assert [(p["legal_limit"], p["valid_from"], p["valid_until"]) for p in listed] == [
        ("2m", "2009-06-01", "2025-01-01"),
        ("6w", "2025-01-01", None),
    ]
    in_force = api_as(client, agent).get("/api/v1/delay-policies?clock=orientation&on=2024-12-31")
    assert [p["legal_limit"] for p in in_force.json] == ["2m"]

    body = {
        "clock": "orientation",
        "legal_limit": "4w",
        "target": "6w",
        "valid_from": "2027-01-01",
        "label": "Orientation — hypothèse 2027",
    }
    assert api_as(client, agent).post("/api/v1/delay-policies", json=body).status_code == 403
    overlap = api_as(client, admin).post("/api/v1/delay-policies", json=body)
    assert overlap.status_code == 409
    assert overlap.json["code"] == "policy_overlap"
    current_id = listed[1]["id"]
    assert overlap.json["conflicting_policy_id"] == current_id
    assert db.session.scalar(select(func.count(DelayPolicy.id))) == 8

    url = f"/api/v1/delay-policies/{current_id}"
    etag = api_as(client, admin).get(url).headers["ETag"]
    closed = api_as(client, admin).patch(
        url, json={"valid_until": "2027-01-01"}, headers={"If-Match": etag}
    )
    assert closed.status_code == 200, closed.json
    created = api_as(client, admin).post("/api/v1/delay-policies", json=body)
    assert created.status_code == 201, created.json
    later = api_as(client, agent).get("/api/v1/delay-policies?clock=orientation&on=2027-03-01")
    assert [p["legal_limit"] for p in later.json] == ["4w"]


def test_policy_input_and_closing_a_period_in_use(client):
    admin = AgentFactory(roles=[Role.ADMIN])
    opened(D(2025, 3, 3))
    persist()
    bad = api_as(client, admin).post(
        "/api/v1/delay-policies",
        json={
            "clock": "contract",
            "legal_limit": "6 semaines",
            "valid_from": "2030-01-01",
            "valid_until": "2029-01-01",
            "label": "x",
        },
    )
    assert bad.status_code == 422
    assert set(bad.json["errors"]) == {"legal_limit", "label"}
    reversed_period = api_as(client, admin).post(
        "/api/v1/delay-policies",
        json={
            "clock": "contract",
            "legal_limit": "1m",
            "valid_from": "2030-01-01",
            "valid_until": "2029-01-01",
            "label": "Contrat 2030",
        },
    )
    assert reversed_period.status_code == 422
    assert list(reversed_period.json["errors"]) == ["valid_until"]

    policy = db.session.scalar(
        select(DelayPolicy).where(
            DelayPolicy.clock == ClockKind.ORIENTATION, DelayPolicy.valid_until.is_(None)
        )
    )
    policy_id, version = policy.id, policy.version
    url = f"/api/v1/delay-policies/{policy_id}"
    no_header = api_as(client, admin).patch(url, json={"valid_until": "2025-02-01"})
    assert no_header.status_code == 428
    in_use = api_as(client, admin).patch(
        url, json={"valid_until": "2025-02-01"}, headers={"If-Match": f'"{version}"'}
    )
    assert in_use.status_code == 409
    assert in_use.json["code"] == "policy_in_use"
    assert db.session.get(DelayPolicy, policy_id).valid_until is None


def test_everything_is_in_the_openapi_document(client):
    spec = client.get("/api/v1/openapi.json").json
    paths = spec["paths"]
    for path in (
        "/api/v1/rio-sessions",
        "/api/v1/rio-sessions/{session_id}/convene",
        "/api/v1/rio-sessions/{session_id}/convocations",
        "/api/v1/rio-sessions/{session_id}/attendance",
        "/api/v1/rio-sessions/{session_id}/convocations/{convocation_id}/letter",
        "/api/v1/persons/{person_id}/orientation",
        "/api/v1/persons/{person_id}/diagnostics",
        "/api/v1/orientation-decisions",
        "/api/v1/orientation-decisions/{decision_id}/notification",
        "/api/v1/work-queues/orientation",
        "/api/v1/referentiel-versions",
        "/api/v1/delay-policies",
    ):
        assert path in paths, path
    assert (
        "text/html"
        in paths["/api/v1/orientation-decisions/{decision_id}/letter"]["get"]["responses"]["200"][
            "content"
        ]
    )
