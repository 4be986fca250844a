"""Référent proposals, departures and bulk reassignment."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from spie.clocks.models import ClockKind
from spie.db import db
from spie.parcours.models import Alert, AlertKind, PathwayClock
from spie.parcours.scan import scan_deadlines
from spie.referent.models import ReferentAssignment
from spie.referent.services import assign_referent, reassign, record_departure
from tests.factories import PersonFactory, territory
from tests.parcours.api import api_as
from tests.parcours.factories import decide, manager, problem, referent, structure

D = dt.date
T2 = "CTM-VILLEURBANNE"


MARCH_3 = D(2025, 3, 3)


def _queued(mdm, clock, count: int, code: str = "LYON", day: D = MARCH_3):
    people = []
    for _ in range(count):
        person = PersonFactory(territory_code=code)
        clock.set(day)
        decide(person, mdm, decided_on=day, notified_on=day)
        people.append(person)
    return people


def _active(person_id: int) -> int | None:
    return db.session.scalar(
        select(ReferentAssignment.agent_id).where(
            ReferentAssignment.person_id == person_id, ReferentAssignment.ended_at.is_(None)
        )
    )


def test_queue_proposals_follow_territory_then_load(client, rules, clock):
    mdm = structure("LYON")
    mdm.territories.append(territory(T2))
    boss = manager(mdm, "LYON", T2)
    lyon = referent(mdm, "LYON", capacity=2)
    villeurbanne = referent(mdm, T2, capacity=5)
    everywhere = referent(mdm, capacity=1)  # no territory: covers the whole structure
    lyon_people = _queued(mdm, clock, 4, "LYON")
    villeurbanne_people = _queued(mdm, clock, 1, T2)
    clock.set(D(2025, 3, 5))
    queue = api_as(client, boss).get(f"/api/v1/structures/{mdm.id}/referent-queue").json
    proposals = {i["person"]["id"]: i["proposal"] for i in queue["items"]}
    chosen = [
        (proposals[p.id]["agent_id"], proposals[p.id]["covers_territory"]) for p in lyon_people
    ]
    # Lyon: its référent and the one without territory first (by load against capacity);
    # once both are full (2 + 1 places), a référent of another territory of the structure.
    assert sorted(chosen[:3]) == sorted([(lyon.id, True), (lyon.id, True), (everywhere.id, True)])
    assert chosen[3] == (villeurbanne.id, False)
    assert proposals[villeurbanne_people[0].id]["agent_id"] == villeurbanne.id
    assert proposals[villeurbanne_people[0].id]["covers_territory"] is True
    assert {r["agent_id"]: r["load"] for r in queue["referents"]} == {
        lyon.id: 0,
        villeurbanne.id: 0,
        everywhere.id: 0,
    }


def test_departure_flags_then_reassignment_spreads(client, rules, clock):
    mdm = structure("LYON")
    boss = manager(mdm, "LYON")
    leaving = referent(mdm, "LYON")
    a = referent(mdm, "LYON", capacity=2)
    b = referent(mdm, "LYON", capacity=10)
    people = _queued(mdm, clock, 4)
    clock.set(D(2025, 3, 5))
    for person in people:
        assign_referent(person, leaving, reason="x", handover_note=None, by=boss)
    clock.set(D(2025, 6, 1))
    result = record_departure(leaving, D(2025, 6, 30), "Mutation", boss)
    assert result["flagged"] == 4
    flagged = db.session.scalars(select(Alert).where(Alert.kind == AlertKind.REFERENT_DEPARTURE))
    assert {(f.due_on, f.agent_id, f.structure_id) for f in flagged} == {
        (D(2025, 6, 30), None, mdm.id)
    }
    plan = reassign(
        leaving,
        person_ids=None,
        to_agent_ids=None,
        reason="Départ",
        handover_note="Note",
        by=boss,
        dry_run=True,
    )
    targets = [m["to_agent_id"] for m in plan["moves"]]
    assert sorted(targets) == sorted([a.id, b.id, b.id, b.id]) or sorted(targets) == sorted(
        [a.id, a.id, b.id, b.id]
    )
    assert all(_active(p.id) == leaving.id for p in people)  # dry run: nothing moved
    done = reassign(
        leaving,
        person_ids=None,
        to_agent_ids=[b.id],
        reason="Départ",
        handover_note="Note de passation",
        by=boss,
        dry_run=False,
    )
    assert {m["to_agent_id"] for m in done["moves"]} == {b.id}
    assert all(_active(p.id) == b.id for p in people)
    assert (
        db.session.scalar(
            select(Alert.id).where(
                Alert.kind == AlertKind.REFERENT_DEPARTURE, Alert.resolved_at.is_(None)
            )
        )
        is None
    )


def test_capacity_exhausted_leaves_people_unassigned(rules, clock):
    mdm = structure("LYON")
    boss = manager(mdm, "LYON")
    leaving = referent(mdm, "LYON")
    small = referent(mdm, "LYON", capacity=1)
    people = _queued(mdm, clock, 3)
    clock.set(D(2025, 3, 5))
    for person in people:
        assign_referent(person, leaving, reason="x", handover_note=None, by=boss)
    result = reassign(
        leaving,
        person_ids=None,
        to_agent_ids=None,
        reason="Départ",
        handover_note="Note",
        by=boss,
        dry_run=False,
    )
    assert [m["to_agent_id"] for m in result["moves"]] == [small.id]
    assert len(result["unassigned_person_ids"]) == 2


def test_a_departed_referent_leaves_nobody_without_an_alert(rules, clock):
    """The leaving référent's people are not reassigned: the day after the departure their
    assignment ends, the gap clock starts, and past the limit the managers are alerted."""
    mdm = structure("LYON")
    boss = manager(mdm, "LYON")
    leaving = referent(mdm, "LYON")
    (person,) = _queued(mdm, clock, 1)
    clock.set(D(2025, 3, 5))
    assign_referent(person, leaving, reason="x", handover_note=None, by=boss)
    clock.set(D(2025, 6, 1))
    record_departure(leaving, D(2025, 6, 30), "Départ", boss)
    summary = scan_deadlines(D(2025, 7, 1))
    assert summary["assignments_ended"] == 1
    assert _active(person.id) is None
    gap = db.session.scalars(
        select(PathwayClock)
        .where(PathwayClock.kind == ClockKind.REFERENT_GAP)
        .order_by(PathwayClock.id)
    ).all()[-1]
    assert (gap.started_on, gap.due_on, gap.met_on) == (D(2025, 7, 1), D(2025, 7, 16), None)
    assert scan_deadlines(D(2025, 7, 16))["alerts_raised"]["referent_gap"] == 0
    assert scan_deadlines(D(2025, 7, 17))["alerts_raised"]["referent_gap"] == 1
    assert scan_deadlines(D(2025, 7, 18))["alerts_raised"]["referent_gap"] == 0  # idempotent
    alert = db.session.scalar(select(Alert).where(Alert.kind == AlertKind.REFERENT_GAP))
    assert (alert.due_on, alert.agent_id, alert.structure_id) == (D(2025, 7, 16), None, mdm.id)
    # A new référent closes the gap and the alert.
    successor = referent(mdm, "LYON")
    clock.set(D(2025, 7, 20))
    assign_referent(person, successor, reason="Reprise", handover_note=None, by=boss)
    db.session.refresh(gap)
    db.session.refresh(alert)
    assert gap.met_on == D(2025, 7, 20)
    assert alert.resolved_at is not None


def test_departure_and_reassignment_through_the_api(client, rules, clock):
    mdm = structure("LYON")
    boss = manager(mdm, "LYON")
    leaving = referent(mdm, "LYON")
    other = referent(mdm, "LYON")
    (person,) = _queued(mdm, clock, 1)
    clock.set(D(2025, 3, 5))
    assign_referent(person, leaving, reason="x", handover_note=None, by=boss)
    leaving_id, other_id, person_id = leaving.id, other.id, person.id
    clock.set(D(2025, 6, 1))
    api = api_as(client, boss)
    problem(
        api.post(
            f"/api/v1/agents/{leaving_id}/departure",
            json={"left_on": "2025-06-30", "reason": "Départ"},
        ),
        428,
        "precondition_required",
    )
    etag = api.get(f"/api/v1/agents/{leaving_id}").headers["ETag"]
    done = api.post(
        f"/api/v1/agents/{leaving_id}/departure",
        json={"left_on": "2025-06-30", "reason": "Départ"},
        headers={"If-Match": etag},
    )
    assert done.status_code == 200, done.json
    unknown = api.post(
        "/api/v1/referent-reassignments",
        json={
            "from_agent_id": leaving_id,
            "person_ids": [999999],
            "reason": "Départ",
            "handover_note": "Note",
        },
    )
    assert problem(unknown, 422, "validation_failed")["errors"]["person_ids"]
    moved = api.post(
        "/api/v1/referent-reassignments",
        json={
            "from_agent_id": leaving_id,
            "to_agent_ids": [other_id],
            "reason": "Départ",
            "handover_note": "Note",
        },
    )
    assert moved.status_code == 200, moved.json
    assert _active(person_id) == other_id
