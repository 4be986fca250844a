"""Bad input: a precise problem+json answer and nothing changed in the database."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from spie.db import db
from spie.parcours.models import (
    Alert,
    Appointment,
    Contract,
    OfferTheme,
    PathwayClock,
    Step,
    StepTransition,
)
from spie.parcours.services import create_step
from spie.referent.models import ReferentAssignment
from tests.factories import AgentFactory
from tests.parcours.api import api_as, fresh, if_match
from tests.parcours.factories import followed, offer, paris, problem, referent, structure

D = dt.date
TABLES = (ReferentAssignment, Step, StepTransition, Contract, Appointment, Alert, PathwayClock)


def snapshot() -> dict[str, object]:
    """Row counts of the pathway tables and the state of every step and assignment."""
    state: dict[str, object] = {
        model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
        for model in TABLES
    }
    state["steps"] = db.session.execute(
        select(Step.id, Step.status, Step.version).order_by(Step.id)
    ).all()
    state["assignments"] = db.session.execute(
        select(
            ReferentAssignment.id, ReferentAssignment.agent_id, ReferentAssignment.ended_at
        ).order_by(ReferentAssignment.id)
    ).all()
    return state


@pytest.fixture
def world(rules, clock):
    return followed(clock)


def test_a_second_active_referent_is_refused(client, world, clock):
    clock.set(D(2025, 3, 10))
    before = snapshot()
    response = api_as(client, world.manager).post(
        f"/api/v1/persons/{world.person.id}/referent",
        json={"agent_id": world.colleague.id, "reason": "Deuxième référent"},
        headers=if_match(0),
    )
    body = problem(response, 409, "referent_already_active")
    assert "second référent actif" in body["detail"]
    assert snapshot() == before


def test_the_database_refuses_a_second_active_assignment(world):
    second = ReferentAssignment(
        person_id=world.person.id,
        agent_id=world.colleague.id,
        structure_id=world.mdm.id,
        reason="contournement",
    )
    with pytest.raises(IntegrityError):
        _insert_in_savepoint(second)


def _insert_in_savepoint(row: object) -> None:
    with db.session.begin_nested():  # rolled back alone when the insert fails
        db.session.add(row)
        db.session.flush()


def test_a_change_of_referent_needs_a_handover_note(client, world, clock):
    clock.set(D(2025, 3, 10))
    etag = (
        api_as(client, world.manager)
        .get(f"/api/v1/persons/{world.person.id}/referent")
        .headers["ETag"]
    )
    before = snapshot()
    response = api_as(client, world.manager).post(
        f"/api/v1/persons/{world.person.id}/referent",
        json={"agent_id": world.colleague.id, "reason": "Rééquilibrage"},
        headers={"If-Match": etag},
    )
    body = problem(response, 422, "validation_failed")
    assert body["errors"] == {"handover_note": ["Obligatoire lors d'un changement de référent."]}
    assert snapshot() == before


def test_a_referent_of_another_structure_is_refused(client, world, clock):
    clock.set(D(2025, 3, 10))
    elsewhere = referent(structure("LYON"))
    before = snapshot()
    response = api_as(client, world.manager).post(
        f"/api/v1/persons/{world.person.id}/referent",
        json={"agent_id": elsewhere.id, "reason": "Erreur", "handover_note": "x"},
        headers=if_match(world_assignment_id(world)),
    )
    body = problem(response, 422, "referent_wrong_structure")
    assert list(body["errors"]) == ["agent_id"]
    assert snapshot() == before


def world_assignment_id(world) -> int:
    return db.session.scalar(
        select(ReferentAssignment.id).where(
            ReferentAssignment.person_id == world.person.id, ReferentAssignment.ended_at.is_(None)
        )
    )


def test_a_full_caseload_is_refused_unless_confirmed(client, world, clock):
    clock.set(D(2025, 3, 10))
    world.colleague.caseload_capacity = 0
    active = world_assignment_id(world)
    before = snapshot()
    body = {"agent_id": world.colleague.id, "reason": "Rééquilibrage", "handover_note": "Suivi"}
    url = f"/api/v1/persons/{world.person.id}/referent"
    response = api_as(client, world.manager).post(url, json=body, headers=if_match(active))
    problem(response, 409, "caseload_full")
    assert snapshot() == before
    forced = api_as(client, fresh(world.manager)).post(
        url, json={**body, "allow_over_capacity": True}, headers=if_match(active)
    )
    assert forced.status_code == 201, forced.json


def test_a_step_transition_the_state_machine_forbids(client, world, clock):
    clock.set(D(2025, 3, 24))
    step = create_step(world.person, {"offer_id": offer("FLE-ASL").id}, world.referent)
    before = snapshot()
    response = api_as(client, world.referent).post(
        f"/api/v1/steps/{step.id}/transitions",
        json={"to": "terminee", "outcome": "achieved", "bilan": "Bien"},
        headers=if_match(step.version),
    )
    body = problem(response, 409, "step_transition_forbidden")
    assert body["current_status"] == "proposee"
    assert body["allowed"] == ["abandonnee", "en_cours", "planifiee"]
    assert body["errors"] == {"status": ["proposee → terminee interdit."]}
    assert snapshot() == before


def test_finishing_a_step_needs_an_outcome_and_a_bilan(client, world, clock):
    clock.set(D(2025, 3, 24))
    step = create_step(
        world.person, {"title": "Stage", "theme": OfferTheme.JOB_SEARCH}, world.referent
    )
    url = f"/api/v1/steps/{step.id}/transitions"
    started = api_as(client, world.referent).post(
        url, json={"to": "en_cours"}, headers=if_match(step.version)
    )
    before = snapshot()
    response = api_as(client, world.referent).post(
        url,
        json={"to": "terminee"},
        headers={"If-Match": started.headers["ETag"]},
    )
    body = problem(response, 422, "validation_failed")
    assert sorted(body["errors"]) == ["bilan", "outcome"]
    assert snapshot() == before


CONTRACT = {
    "kind": "contrat_engagement",
    "signed_on": "2025-03-20",
    "starts_on": "2025-03-20",
    "ends_on": "2025-09-19",
    "weekly_hours": 15,
    "objectives": "Plan d'action",
}


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"ends_on": "2025-03-01"}, "ends_on", "La fin du contrat doit suivre son début."),
        ({"ends_on": "2025-05-19"}, "ends_on", "Un contrat dure au moins 3 mois."),
        ({"ends_on": "2026-04-20"}, "ends_on", "Un contrat dure au plus 12 mois."),
        (
            {"weekly_hours": 10},
            "reduction_reason",
            "Motif de réduction obligatoire en dessous de 15 h par semaine.",
        ),
        (
            {"kind": "cer_social"},
            "kind",
            "Depuis le 1er janvier 2025, le contrat signé est le contrat d'engagement.",
        ),
        (
            {"signed_on": "2025-04-01"},
            "signed_on",
            "La date de signature ne peut pas être dans le futur.",
        ),
        (
            {"review_extension_reason": "health"},
            "review_extension_reason",
            "Réservé au parcours social.",
        ),
    ],
)
def test_an_invalid_contract(client, world, clock, changes, field, message):
    clock.set(D(2025, 3, 20))
    before = snapshot()
    response = api_as(client, world.referent).post(
        "/api/v1/contracts", json={"person_id": world.person.id, **CONTRACT, **changes}
    )
    body = problem(response, 422, "validation_failed")
    assert body["errors"][field] == [message]
    assert snapshot() == before


def test_an_overlapping_contract(client, world, clock):
    clock.set(D(2025, 3, 20))
    first = api_as(client, world.referent).post(
        "/api/v1/contracts", json={"person_id": world.person.id, **CONTRACT}
    )
    assert first.status_code == 201, first.json
    clock.set(D(2025, 6, 1))
    before = snapshot()
    response = api_as(client, world.referent).post(
        "/api/v1/contracts",
        json={
            "person_id": world.person.id,
            **CONTRACT,
            "signed_on": "2025-06-01",
            "starts_on": "2025-09-19",
            "ends_on": "2026-03-18",
        },
    )
    body = problem(response, 409, "contract_overlap")
    assert body["conflicting_contract_id"] == first.json["id"]
    assert "2025-03-20" in body["detail"]
    assert "2025-09-19" in body["detail"]
    assert snapshot() == before
    # The day after the end does not overlap.
    renewal = api_as(client, world.referent).post(
        "/api/v1/contracts",
        json={
            "person_id": world.person.id,
            **CONTRACT,
            "signed_on": "2025-06-01",
            "starts_on": "2025-09-20",
            "ends_on": "2026-03-19",
        },
    )
    assert renewal.status_code == 201, renewal.json


def test_an_appointment_in_the_past_marked_planned(client, world, clock):
    clock.set(D(2025, 3, 20), 12)
    before = snapshot()
    response = api_as(client, world.referent).post(
        "/api/v1/appointments",
        json={
            "person_id": world.person.id,
            "scheduled_at": paris(2025, 3, 19, 10).isoformat(),
            "theme": "suivi",
        },
    )
    body = problem(response, 422, "validation_failed")
    assert body["errors"] == {
        "scheduled_at": ["Date passée : enregistrez le rendez-vous comme honoré ou manqué."]
    }
    assert snapshot() == before


def test_a_future_appointment_cannot_be_honoured(client, world, clock):
    clock.set(D(2025, 3, 20), 9)
    created = api_as(client, world.referent).post(
        "/api/v1/appointments",
        json={
            "person_id": world.person.id,
            "scheduled_at": paris(2025, 3, 21, 10).isoformat(),
            "theme": "suivi",
        },
    )
    before = snapshot()
    response = api_as(client, world.referent).patch(
        f"/api/v1/appointments/{created.json['id']}",
        json={"status": "honoured"},
        headers={"If-Match": created.headers["ETag"]},
    )
    body = problem(response, 422, "validation_failed")
    assert body["errors"] == {"status": ["Le rendez-vous n'a pas encore eu lieu."]}
    assert snapshot() == before


def test_a_provider_reading_a_step_they_do_not_run(client, world, clock):
    clock.set(D(2025, 3, 24))
    step = create_step(world.person, {"offer_id": offer("FLE-ASL").id}, world.referent)
    step_id, version = step.id, step.version
    other_provider = referent(offer("MOBILITE-PERMIS").provider_structure)
    before = snapshot()
    response = api_as(client, other_provider).get(f"/api/v1/steps/{step_id}")
    body = problem(response, 404, "not_found")
    assert body["detail"] == f"Étape {step_id} introuvable."
    moved = api_as(client, fresh(other_provider)).post(
        f"/api/v1/steps/{step_id}/transitions",
        json={"to": "en_cours"},
        headers=if_match(version),
    )
    problem(moved, 404, "not_found")
    assert snapshot() == before


def test_unknown_fields_are_rejected(client, world, clock):
    clock.set(D(2025, 3, 20))
    before = snapshot()
    response = api_as(client, world.referent).post(
        "/api/v1/contracts",
        json={"person_id": world.person.id, **CONTRACT, "amount": 600},
    )
    body = problem(response, 422, "validation_failed")
    assert "amount" in body["errors"]
    assert snapshot() == before


# --- optimistic locking ---------------------------------------------------------------------


def test_writes_need_the_current_version(client, world, clock):
    clock.set(D(2025, 3, 24))
    step = create_step(world.person, {"offer_id": offer("FLE-ASL").id}, world.referent)
    url, version = f"/api/v1/steps/{step.id}/transitions", step.version
    before = snapshot()
    missing = api_as(client, world.referent).post(url, json={"to": "en_cours"})
    problem(missing, 428, "precondition_required")
    stale = api_as(client, fresh(world.referent)).post(
        url, json={"to": "en_cours"}, headers=if_match(version + 7)
    )
    body = problem(stale, 409, "stale_version")
    assert body["current_version"] == version
    assert snapshot() == before


def test_two_advisers_editing_the_same_contract(client, world, clock):
    clock.set(D(2025, 3, 20))
    created = api_as(client, world.referent).post(
        "/api/v1/contracts", json={"person_id": world.person.id, **CONTRACT}
    )
    etag = created.headers["ETag"]
    first = api_as(client, world.referent).patch(
        f"/api/v1/contracts/{created.json['id']}",
        json={"objectives": "Premier"},
        headers={"If-Match": etag},
    )
    assert first.status_code == 200, first.json
    second = api_as(client, world.referent).patch(
        f"/api/v1/contracts/{created.json['id']}",
        json={"objectives": "Second"},
        headers={"If-Match": etag},
    )
    problem(second, 409, "stale_version")
    assert db.session.get(Contract, created.json["id"]).objectives == "Premier"


def test_the_pathway_and_the_referent_are_versioned(client, world, clock):
    clock.set(D(2025, 3, 20))
    person_id, main_id, colleague_id = world.person.id, world.referent.id, world.colleague.id
    url = f"/api/v1/persons/{person_id}/parcours"
    etag = api_as(client, world.referent).get(url).headers["ETag"]
    ok = api_as(client, world.referent).patch(
        url, json={"typology": "itinéraire emploi renforcé"}, headers={"If-Match": etag}
    )
    assert ok.status_code == 200, ok.json
    problem(
        api_as(client, world.referent).patch(
            url, json={"typology": "PLIE"}, headers={"If-Match": etag}
        ),
        409,
        "stale_version",
    )
    boss = fresh(world.manager)
    referent_url = f"/api/v1/persons/{person_id}/referent"
    old = api_as(client, boss).get(referent_url).headers["ETag"]
    moved = api_as(client, boss).post(
        referent_url,
        json={"agent_id": colleague_id, "reason": "Rééquilibrage", "handover_note": "Suivi"},
        headers={"If-Match": old},
    )
    assert moved.status_code == 201, moved.json
    again = api_as(client, boss).post(
        referent_url,
        json={"agent_id": main_id, "reason": "Retour", "handover_note": "Suivi"},
        headers={"If-Match": old},
    )
    problem(again, 409, "stale_version")


def test_a_non_referent_agent_cannot_hold_appointments(client, world, clock):
    clock.set(D(2025, 3, 20))
    clerk = AgentFactory(structure=world.mdm, roles=["manager"], territory_codes=["LYON"])
    before = snapshot()
    response = api_as(client, world.referent).post(
        "/api/v1/appointments",
        json={
            "person_id": world.person.id,
            "scheduled_at": paris(2025, 3, 25).isoformat(),
            "theme": "suivi",
            "agent_id": clerk.id,
        },
    )
    body = problem(response, 422, "validation_failed")
    assert body["errors"] == {"agent_id": ["L'agent n'a pas le rôle référent."]}
    assert snapshot() == before
