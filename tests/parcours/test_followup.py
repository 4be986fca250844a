"""Missed appointments and the équipe pluridisciplinaire, alerts for other packages, the
diagnostic partagé, the daily scan and the decision hook."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from spie.db import db
from spie.orientation.models import OrientationDecision, Parcours
from spie.parcours.alerts import flag_for_review, raise_alert
from spie.parcours.models import (
    Alert,
    AlertKind,
    AppointmentStatus,
    AppointmentTheme,
    EpCase,
    Pathway,
    SanctionLevel,
)
from spie.parcours.scan import scan_deadlines
from spie.parcours.services import create_appointment
from spie.parcours.wiring import open_after_commit
from tests.factories import PersonFactory
from tests.parcours.api import api_as, if_match
from tests.parcours.factories import clocks_of, decide, followed, paris, problem, structure

D = dt.date


@pytest.fixture
def world(rules, clock):
    return followed(clock)


def _missed(world, clock, day: D) -> None:
    clock.set(day, 18)
    create_appointment(
        world.person,
        {
            "scheduled_at": paris(day.year, day.month, day.day, 10),
            "theme": AppointmentTheme.SUIVI,
            "status": AppointmentStatus.MISSED,
        },
        world.referent,
    )


def test_missed_appointments_open_an_ep_case_recorded_by_people(client, world, clock):
    _missed(world, clock, D(2025, 3, 12))
    assert db.session.scalar(select(func.count()).select_from(EpCase)) == 0
    _missed(world, clock, D(2025, 3, 26))  # second absence: the threshold (2) is reached
    case = db.session.scalar(select(EpCase))
    assert (case.status.value, case.origin.value, case.missed_appointments, case.opened_on) == (
        "opened",
        "missed_appointments",
        2,
        D(2025, 3, 26),
    )
    kinds = sorted(a.kind.value for a in db.session.scalars(select(Alert)))
    assert kinds == ["ep_threshold", "missed_appointment", "missed_appointment"]
    assert case.decision is None  # nothing decided by spie

    clock.set(D(2025, 4, 2))
    url = f"/api/v1/ep-cases/{case.id}"
    api = api_as(client, world.referent)
    version = case.version
    early = api.patch(url, json={"decision": "sanction"}, headers=if_match(version))
    problem(early, 409, "ep_transition_forbidden")
    referred = api.patch(
        url,
        json={"referral_on": "2025-04-02", "referral_reason": "Deux absences sans justificatif"},
        headers=if_match(version),
    )
    assert referred.status_code == 200, referred.json
    observed = api.patch(
        url,
        json={
            "person_observations": "Problème de transport",
            "opinion": "Maintien avec plateforme mobilité",
            "opinion_on": "2025-04-02",
        },
        headers={"If-Match": referred.headers["ETag"]},
    )
    assert observed.json["status"] == "opinion_given", observed.json
    level = db.session.scalar(select(SanctionLevel).where(SanctionLevel.rank == 1))
    no_level = api.patch(
        url, json={"decision": "sanction"}, headers={"If-Match": observed.headers["ETag"]}
    )
    assert problem(no_level, 422, "validation_failed")["errors"] == {
        "sanction_level_id": [
            "Un niveau de l'échelle en vigueur à la date de décision est obligatoire."
        ]
    }
    # The scale in force since 1 June 2025 does not apply to a decision of April.
    too_early = api.patch(
        url,
        json={"decision": "sanction", "sanction_level_id": level.id},
        headers={"If-Match": observed.headers["ETag"]},
    )
    problem(too_early, 422, "validation_failed")
    decided = api.patch(
        url, json={"decision": "no_sanction"}, headers={"If-Match": observed.headers["ETag"]}
    )
    assert decided.status_code == 200, decided.json
    assert (decided.json["status"], decided.json["decision"], decided.json["closed_on"]) == (
        "decided",
        "no_sanction",
        "2025-04-02",
    )
    # The manager reads the case without its free texts.
    seen = api_as(client, world.manager).get(url).json
    assert (seen["opinion"], seen["person_observations"], seen["decision"]) == (
        None,
        None,
        "no_sanction",
    )
    scale = api.get("/api/v1/ep-sanction-levels").json
    assert [s["rank"] for s in scale] == [1, 2, 3]


def test_alerts_for_other_packages_are_idempotent(client, world, clock):
    clock.set(D(2025, 4, 2))
    first = flag_for_review(world.person, "moved_to_other_ctm")
    assert flag_for_review(world.person, "moved_to_other_ctm").id == first.id
    assert (first.kind, first.agent_id, first.structure_id, first.details) == (
        AlertKind.ASSIGNMENT_REVIEW,
        world.referent.id,
        world.mdm.id,
        {"reason": "moved_to_other_ctm"},
    )
    radiation = raise_alert(
        world.person, "ft_radiation", due_on=D(2025, 3, 31), details={"motif": "absence_controle"}
    )
    assert raise_alert(world.person, AlertKind.FT_RADIATION, due_on=D(2025, 3, 31)).id == (
        radiation.id
    )
    with pytest.raises(ValueError, match="code court"):
        flag_for_review(world.person, "Déménagement à Vénissieux chez sa sœur")
    alert_id = radiation.id
    mine = api_as(client, world.referent).get("/api/v1/alerts?mine=true").json
    assert {a["kind"] for a in mine["items"]} == {"assignment_review", "ft_radiation"}
    resolved = api_as(client, world.referent).post(
        f"/api/v1/alerts/{alert_id}/resolve",
        json={"resolution": "Réinscription faite"},
        headers=if_match(1),
    )
    assert resolved.status_code == 200, resolved.json
    assert resolved.json["resolved_at"] is not None
    again = api_as(client, world.referent).post(
        f"/api/v1/alerts/{alert_id}/resolve",
        json={"resolution": "x"},
        headers={"If-Match": resolved.headers["ETag"]},
    )
    problem(again, 422, "validation_failed")


def test_diagnostics_and_their_progression(client, world, clock):
    from spie.parcours.seeds import grid_items

    items = grid_items()
    first = {i["code"]: (2 if i["dimension"] == "barrier" else 1) for i in items}
    second = dict(first, mobilite=0, sante=1, motivation=3)
    clock.set(D(2025, 3, 12))
    api = api_as(client, world.referent)
    created = api.post(
        f"/api/v1/persons/{world.person.id}/assessments",
        json={"scores": first, "comment": "Premier diagnostic"},
    )
    assert created.status_code == 201, created.json
    clock.set(D(2025, 6, 12))
    created = api.post(f"/api/v1/persons/{world.person.id}/assessments", json={"scores": second})
    items_out = created.json["items"]
    assert [i["assessed_on"] for i in items_out] == ["2025-03-12", "2025-06-12"]
    progression = items_out[1]["progression"]
    assert {k: v for k, v in progression.items() if v} == {
        "mobilite": 2,
        "sante": 1,
        "motivation": 2,
    }
    assert items_out[1]["progress_total"] == 5
    bad = api.post(
        f"/api/v1/persons/{world.person.id}/assessments",
        json={"scores": {**second, "mobilite": 7, "inconnu": 1}},
    )
    errors = problem(bad, 422, "validation_failed")["errors"]["scores"][0]
    assert set(errors) == {"mobilite", "inconnu"}
    manager_view = (
        api_as(client, world.manager).get(f"/api/v1/persons/{world.person.id}/assessments").json
    )
    assert "sante" not in manager_view["items"][1]["progression"]
    assert manager_view["items"][0]["comment"] is None


def test_the_scan_opens_missing_pathways_and_syncs_notifications(rules, clock):
    mdm = structure("LYON")
    person = PersonFactory()
    clock.set(D(2025, 3, 3))
    pathway = decide(person, mdm, parcours=Parcours.EMPLOI, decided_on=D(2025, 3, 3))
    assert "pathway_entry" not in clocks_of(person.id)  # not notified yet
    decision = db.session.get(OrientationDecision, pathway.decision_id)
    decision.notified_on = D(2025, 3, 6)
    # A decision whose pathway was never opened (the hook failed).
    other = PersonFactory()
    decide(other, mdm, decided_on=D(2025, 3, 3))
    db.session.delete(db.session.scalar(select(Pathway).where(Pathway.person_id == other.id)))
    db.session.flush()
    summary = scan_deadlines(D(2025, 3, 7))
    assert (summary["pathways_opened"], summary["notifications_synced"]) == (1, 1)
    assert clocks_of(person.id)["pathway_entry"] == (D(2025, 3, 6), D(2025, 3, 21), None, None)
    assert db.session.scalar(select(Pathway.id).where(Pathway.person_id == other.id))
    again = scan_deadlines(D(2025, 3, 7))
    assert (again["pathways_opened"], again["notifications_synced"]) == (0, 0)
    # Overdue entry and contract clocks alert the person's structure.
    late = scan_deadlines(D(2025, 4, 7))["alerts_raised"]
    assert (late["pathway_entry_overdue"], late["contract_overdue"]) == (1, 1)


def test_the_decision_hook_is_idempotent(rules, clock):
    from spie.orientation.decisions import DECISION_COMMITTED_HOOKS

    assert open_after_commit in DECISION_COMMITTED_HOOKS
    mdm = structure("LYON")
    person = PersonFactory()
    clock.set(D(2025, 3, 3))
    pathway = decide(person, mdm, decided_on=D(2025, 3, 3), notified_on=D(2025, 3, 3))
    open_after_commit(pathway.decision_id)
    assert (
        db.session.scalar(
            select(func.count()).select_from(Pathway).where(Pathway.person_id == person.id)
        )
        == 1
    )


def test_a_reorientation_closes_the_pathway_and_meets_the_social_review(rules, clock):
    from spie.parcours.models import ContractKind
    from spie.parcours.services import create_contract
    from spie.referent.services import assign_referent
    from tests.parcours.factories import manager, referent

    mdm = structure("LYON")
    main = referent(mdm, "LYON")
    person = PersonFactory()
    clock.set(D(2025, 3, 3))
    first = decide(
        person, mdm, parcours=Parcours.SOCIAL, decided_on=D(2025, 3, 3), notified_on=D(2025, 3, 3)
    )
    assign_referent(person, main, reason="x", handover_note=None, by=manager(mdm))
    clock.set(D(2025, 3, 20))
    create_contract(
        person,
        {
            "kind": ContractKind.ENGAGEMENT,
            "signed_on": D(2025, 3, 20),
            "starts_on": D(2025, 3, 20),
            "ends_on": D(2026, 3, 19),
            "weekly_hours": 8,
            "reduction_reason": "health",
            "review_extension_reason": "health",
            "objectives": "Soins",
        },
        main,
    )
    assert clocks_of(person.id)["social_review"] == (D(2025, 3, 20), D(2026, 3, 20), None, None)
    clock.set(D(2025, 9, 1))
    decide(
        person,
        mdm,
        parcours=Parcours.SOCIO_PROFESSIONNEL,
        decided_on=D(2025, 9, 1),
        notified_on=D(2025, 9, 1),
    )
    db.session.refresh(first)
    assert (first.closed_on, first.close_reason.value) == (D(2025, 9, 1), "reoriented")
    clocks = clocks_of(person.id)
    assert clocks["social_review"][2] == D(2025, 9, 1)  # met by the new decision
    assert clocks["contract_renewal"][3] == D(2025, 9, 1)  # stopped with the pathway
    assert clocks["pathway_entry"][:2] == (D(2025, 9, 1), D(2025, 9, 16))  # the new one


def test_the_pathway_api_is_in_the_openapi_document(client, app):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path in (
        "/api/v1/persons/{person_id}/parcours",
        "/api/v1/persons/{person_id}/referent",
        "/api/v1/persons/{person_id}/timeline",
        "/api/v1/persons/{person_id}/assessments",
        "/api/v1/steps",
        "/api/v1/steps/{step_id}/transitions",
        "/api/v1/contracts",
        "/api/v1/appointments",
        "/api/v1/offers",
        "/api/v1/caseload",
        "/api/v1/indicators/parcours",
        "/api/v1/structures/{structure_id}/referent-queue",
        "/api/v1/agents/{agent_id}/departure",
        "/api/v1/referent-reassignments",
        "/api/v1/alerts",
        "/api/v1/ep-cases",
    ):
        assert path in paths, path
