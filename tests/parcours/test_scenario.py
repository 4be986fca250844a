"""A person walked from the orientation decision to a reassigned référent, with every
deadline checked on exact dates (DOMAIN §3, docs/parcours.md)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from spie.db import db
from spie.orientation.models import Parcours
from spie.parcours.models import Alert, AlertKind
from spie.parcours.scan import scan_deadlines
from tests.factories import PersonFactory
from tests.parcours.api import api_as, fresh, if_match
from tests.parcours.factories import (
    clocks_of,
    decide,
    manager,
    offer,
    paris,
    referent,
    structure,
)

D = dt.date


def open_alerts(person_id: int) -> dict[str, tuple[dt.date, int | None]]:
    rows = db.session.scalars(
        select(Alert).where(Alert.person_id == person_id, Alert.resolved_at.is_(None))
    )
    return {a.kind.value: (a.due_on, a.agent_id) for a in rows}


def test_from_decision_to_reassignment(client, rules, clock):
    mdm = structure("LYON")
    boss = manager(mdm, "LYON")
    first = referent(mdm, "LYON")
    second = referent(mdm, "LYON")
    fle = offer("FLE-ASL")
    provider_staff = referent(fle.provider_structure)
    person = PersonFactory()
    pid = person.id

    # 3 March 2025: social pathway decided, notified the next day.
    clock.set(D(2025, 3, 4))
    decide(
        person, mdm, parcours=Parcours.SOCIAL, decided_on=D(2025, 3, 3), notified_on=D(2025, 3, 4)
    )
    assert clocks_of(pid) == {
        "pathway_entry": (D(2025, 3, 4), D(2025, 3, 19), None, None),  # 15 days (target)
        "contract": (D(2025, 3, 4), D(2025, 4, 4), None, None),  # 1 month (D5411-14-1)
        "referent_gap": (D(2025, 3, 3), D(2025, 3, 18), None, None),  # 15 days
    }

    # 5 March: the manager reads the structure's queue and confirms the proposal.
    clock.set(D(2025, 3, 5))
    queue = api_as(client, boss).get(f"/api/v1/structures/{mdm.id}/referent-queue").json
    assert [(i["person"]["id"], i["waiting_since"], i["gap_due_on"]) for i in queue["items"]] == [
        (pid, "2025-03-03", "2025-03-18")
    ]
    assert queue["items"][0]["proposal"]["agent_id"] == first.id
    response = api_as(client, boss).post(
        f"/api/v1/persons/{pid}/referent",
        json={"agent_id": first.id, "reason": "Affectation initiale"},
        headers=if_match(0),
    )
    assert response.status_code == 201, response.json
    assert response.json["active"]["agent_id"] == first.id
    assert clocks_of(pid)["referent_gap"] == (D(2025, 3, 3), D(2025, 3, 18), D(2025, 3, 5), None)

    # 6 March: the référent plans the first appointment; 12 March it is honoured: the
    # person enters the pathway.
    clock.set(D(2025, 3, 6), 9)
    created = api_as(client, first).post(
        "/api/v1/appointments",
        json={
            "person_id": pid,
            "scheduled_at": paris(2025, 3, 12, 10).isoformat(),
            "theme": "premier_entretien",
        },
    )
    assert created.status_code == 201, created.json
    clock.set(D(2025, 3, 12), 11)
    honoured = api_as(client, first).patch(
        f"/api/v1/appointments/{created.json['id']}",
        json={"status": "honoured"},
        headers={"If-Match": created.headers["ETag"]},
    )
    assert honoured.status_code == 200, honoured.json
    parcours = api_as(client, first).get(f"/api/v1/persons/{pid}/parcours").json
    assert parcours["pathway"]["entered_on"] == "2025-03-12"
    assert clocks_of(pid)["pathway_entry"] == (D(2025, 3, 4), D(2025, 3, 19), D(2025, 3, 12), None)

    # 20 March: contrat d'engagement, 6 months, 15 h a week.
    clock.set(D(2025, 3, 20))
    contract = api_as(client, first).post(
        "/api/v1/contracts",
        json={
            "person_id": pid,
            "kind": "contrat_engagement",
            "signed_on": "2025-03-20",
            "starts_on": "2025-03-20",
            "ends_on": "2025-09-19",
            "weekly_hours": 15,
            "objectives": "Atelier sociolinguistique puis recherche de stage.",
        },
    )
    assert contract.status_code == 201, contract.json
    assert contract.json["status"] == "active"
    clocks = clocks_of(pid)
    assert clocks["contract"] == (D(2025, 3, 4), D(2025, 4, 4), D(2025, 3, 20), None)
    assert clocks["social_review"] == (D(2025, 3, 20), D(2025, 9, 20), None, None)  # 6 months
    assert clocks["contract_renewal"] == (D(2025, 8, 20), D(2025, 9, 19), None, None)  # 30 days

    # 24 March: step 1 from the catalogue, planned; run by the provider from 31 March.
    clock.set(D(2025, 3, 24))
    step1 = api_as(client, first).post("/api/v1/steps", json={"person_id": pid, "offer_id": fle.id})
    assert step1.status_code == 201, step1.json
    assert step1.json["provider_structure_id"] == fle.provider_structure_id
    planned = api_as(client, first).post(
        f"/api/v1/steps/{step1.json['id']}/transitions",
        json={"to": "planifiee", "planned_start_on": "2025-03-31", "planned_end_on": "2025-05-30"},
        headers={"If-Match": step1.headers["ETag"]},
    )
    assert planned.status_code == 200, planned.json
    clock.set(D(2025, 3, 31))
    seen = api_as(client, provider_staff).get(f"/api/v1/steps/{step1.json['id']}")
    assert seen.status_code == 200, seen.json
    assert seen.json["contributor_view"] is True
    started = api_as(client, provider_staff).post(
        f"/api/v1/steps/{step1.json['id']}/transitions",
        json={"to": "en_cours"},
        headers={"If-Match": seen.headers["ETag"]},
    )
    assert started.status_code == 200, started.json
    assert started.json["started_on"] == "2025-03-31"

    # 1 April: step 2, free, started on 7 April.
    clock.set(D(2025, 4, 1))
    step2 = api_as(client, first).post(
        "/api/v1/steps",
        json={"person_id": pid, "title": "Recherche de stage en logistique", "theme": "job_search"},
    )
    assert step2.status_code == 201, step2.json
    assert step2.json["provider_structure_id"] == mdm.id
    clock.set(D(2025, 4, 7))
    step2_started = api_as(client, first).post(
        f"/api/v1/steps/{step2.json['id']}/transitions",
        json={"to": "en_cours"},
        headers={"If-Match": step2.headers["ETag"]},
    )
    assert step2_started.status_code == 200, step2_started.json

    # 22 April: a missed appointment is a signalement to the référent.
    clock.set(D(2025, 4, 15))
    planned_visit = api_as(client, first).post(
        "/api/v1/appointments",
        json={
            "person_id": pid,
            "scheduled_at": paris(2025, 4, 22, 14).isoformat(),
            "theme": "point_etape",
        },
    )
    assert planned_visit.status_code == 201, planned_visit.json
    clock.set(D(2025, 4, 23))
    missed = api_as(client, first).patch(
        f"/api/v1/appointments/{planned_visit.json['id']}",
        json={"status": "missed"},
        headers={"If-Match": planned_visit.headers["ETag"]},
    )
    assert missed.status_code == 200, missed.json
    alerts = api_as(client, first).get(f"/api/v1/alerts?person_id={pid}&mine=true").json
    assert [(a["kind"], a["due_on"], a["source_id"]) for a in alerts["items"]] == [
        ("missed_appointment", "2025-04-22", planned_visit.json["id"])
    ]
    cases = api_as(client, first).get(f"/api/v1/ep-cases?person_id={pid}").json
    assert cases["total"] == 0  # one absence: below the threshold (2)

    # 30 May and 13 June: both steps end with their bilans.
    clock.set(D(2025, 5, 30))
    done1 = api_as(client, provider_staff).post(
        f"/api/v1/steps/{step1.json['id']}/transitions",
        json={
            "to": "terminee",
            "outcome": "achieved",
            "bilan": "Niveau A2 atteint à l'oral, poursuite en autonomie.",
        },
        headers={"If-Match": started.headers["ETag"]},
    )
    assert done1.status_code == 200, done1.json
    clock.set(D(2025, 6, 13))
    done2 = api_as(client, first).post(
        f"/api/v1/steps/{step2.json['id']}/transitions",
        json={
            "to": "terminee",
            "outcome": "partially_achieved",
            "bilan": "Deux immersions réalisées, projet logistique confirmé.",
        },
        headers={"If-Match": step2_started.headers["ETag"]},
    )
    assert done2.status_code == 200, done2.json
    steps = api_as(client, first).get(f"/api/v1/persons/{pid}/parcours").json["steps"]
    assert [(s["status"], s["outcome"], s["started_on"], s["ended_on"]) for s in steps] == [
        ("terminee", "achieved", "2025-03-31", "2025-05-30"),
        ("terminee", "partially_achieved", "2025-04-07", "2025-06-13"),
    ]
    assert all(s["bilan"] for s in steps)

    # 16 June: the référent leaves on 30 June; 20 June: bulk reassignment to the colleague.
    clock.set(D(2025, 6, 16))
    agent_etag = api_as(client, boss).get(f"/api/v1/agents/{first.id}").headers["ETag"]
    departure = api_as(client, boss).post(
        f"/api/v1/agents/{first.id}/departure",
        json={"left_on": "2025-06-30", "reason": "Mutation"},
        headers={"If-Match": agent_etag},
    )
    assert departure.status_code == 200, departure.json
    assert departure.json["flagged"] == 1
    assert open_alerts(pid)["referent_departure"] == (D(2025, 6, 30), None)
    clock.set(D(2025, 6, 20))
    body = {
        "from_agent_id": first.id,
        "reason": "Départ du référent",
        "handover_note": "Contrat en cours, FLE terminé, stage à chercher.",
        "dry_run": True,
    }
    plan = api_as(client, boss).post("/api/v1/referent-reassignments", json=body)
    assert plan.status_code == 200, plan.json
    assert plan.json["moves"] == [
        {"person_id": pid, "from_agent_id": first.id, "to_agent_id": second.id}
    ]
    assert fresh(person) is not None
    done = api_as(client, boss).post(
        "/api/v1/referent-reassignments", json={**body, "dry_run": False}
    )
    assert done.status_code == 200, done.json
    history = api_as(client, boss).get(f"/api/v1/persons/{pid}/referent").json
    assert [
        (h["agent_id"], h["started_at"][:10], h["ended_at"] and h["ended_at"][:10])
        for h in history["history"]
    ] == [
        (second.id, "2025-06-20", None),
        (first.id, "2025-03-05", "2025-06-20"),
    ]
    assert history["history"][0]["handover_note"] is None  # managers never read notes
    notes = api_as(client, second).get(f"/api/v1/persons/{pid}/referent").json
    assert notes["active"]["handover_note"] == "Contrat en cours, FLE terminé, stage à chercher."
    assert "referent_departure" not in open_alerts(pid)

    # The daily scan: nothing due on 1 July; the renewal window opens on 20 August; the
    # social review is due on 20 September.
    assert scan_deadlines(D(2025, 7, 1))["alerts_raised"] == {
        "pathway_entry_overdue": 0,
        "contract_overdue": 0,
        "social_review": 0,
        "contract_renewal": 0,
        "referent_gap": 0,
    }
    scan_deadlines(D(2025, 8, 21))
    assert open_alerts(pid)["contract_renewal"] == (D(2025, 9, 19), second.id)
    assert "social_review" not in open_alerts(pid)
    scan_deadlines(D(2025, 8, 21))  # idempotent
    # The new référent's caseload on 21 August.
    clock.set(D(2025, 8, 21))
    caseload = api_as(client, second).get("/api/v1/caseload").json
    (row,) = caseload["items"]
    assert row["person"]["id"] == pid
    assert row["next_deadline"] == {"on": "2025-09-19", "kind": "contract_renewal"}
    assert row["contract"]["status"] == "expiring"
    assert row["last_contact_at"] == "2025-03-12T09:00:00+00:00"
    assert row["entered_on"] == "2025-03-12"
    assert row["open_alerts"] == 2  # the absence and the renewal
    assert caseload["counts"]["contract_expiring"] == 1
    scan_deadlines(D(2025, 9, 21))
    assert open_alerts(pid)["social_review"] == (D(2025, 9, 20), second.id)
    assert (
        db.session.scalar(select(Alert.id).where(Alert.kind == AlertKind.REFERENT_GAP)) is None
    )  # never without a référent beyond the limit

    # Every deadline of the pathway.
    assert clocks_of(pid) == {
        "pathway_entry": (D(2025, 3, 4), D(2025, 3, 19), D(2025, 3, 12), None),
        "contract": (D(2025, 3, 4), D(2025, 4, 4), D(2025, 3, 20), None),
        "referent_gap": (D(2025, 3, 3), D(2025, 3, 18), D(2025, 3, 5), None),
        "social_review": (D(2025, 3, 20), D(2025, 9, 20), None, None),
        "contract_renewal": (D(2025, 8, 20), D(2025, 9, 19), None, None),
    }

    # The timeline.
    timeline = api_as(client, second).get(f"/api/v1/persons/{pid}/timeline?per_page=100").json
    kinds = [e["kind"] for e in timeline["items"]]
    for kind in (
        "orientation_case_opened",
        "orientation_decision",
        "orientation_notified",
        "pathway_opened",
        "referent_assigned",
        "referent_ended",
        "appointment",
        "pathway_entered",
        "contract_signed",
        "step_status",
        "alert_raised",
        "alert_resolved",
    ):
        assert kind in kinds, kind
    dates = [e["on"] for e in timeline["items"]]
    assert dates == sorted(dates, reverse=True)
