"""Leaving SDD pauses the pathway's clocks; coming back resumes them (DOMAIN §3)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from spie.audit.models import AuditEvent
from spie.clocks.models import ClockKind
from spie.db import db
from spie.orientation.models import Parcours
from spie.parcours.clocks import meet_clocks, pause_clocks, resume_clocks
from spie.parcours.models import PathwayClock, PathwayCloseReason
from spie.parcours.scan import scan_deadlines
from spie.parcours.services import close_pathway
from tests.factories import PersonFactory
from tests.parcours.factories import clocks_of, decide, structure

D = dt.date


def _reasons(person_id: int) -> dict[str, str | None]:
    rows = db.session.scalars(select(PathwayClock).where(PathwayClock.person_id == person_id))
    return {clock.kind.value: clock.stop_reason for clock in rows}


def _notified(clock):  # type: ignore[no-untyped-def]
    on = D(2025, 3, 3)
    person = PersonFactory()
    clock.set(on)
    pathway = decide(
        person, structure("LYON"), parcours=Parcours.EMPLOI, decided_on=on, notified_on=on
    )
    return person, pathway


def test_leaving_sdd_pauses_the_clocks_and_coming_back_pushes_the_deadlines(rules, clock):
    person, _pathway = _notified(clock)
    before = clocks_of(person.id)
    entry_due = before["pathway_entry"][1]
    assert before["pathway_entry"][2:] == (None, None)

    kinds = set(before)
    assert {"pathway_entry", "contract"} <= kinds
    assert pause_clocks(person.id, D(2025, 3, 10), "right_closed") == len(kinds)
    assert clocks_of(person.id)["pathway_entry"][3] == D(2025, 3, 10)
    assert _reasons(person.id) == dict.fromkeys(kinds, "paused:right_closed")
    assert pause_clocks(person.id, D(2025, 3, 12), "left_sdd") == 0  # already paused
    # Paused clocks are nobody's overdue work.
    late = scan_deadlines(D(2025, 5, 1))["alerts_raised"]
    assert (late["pathway_entry_overdue"], late["contract_overdue"]) == (0, 0)

    # An observation older than the pause changes nothing.
    assert resume_clocks(person.id, D(2025, 3, 5)) == 0
    # Back in SDD 20 days later: the deadlines move by 20 days, the start does not.
    assert resume_clocks(person.id, D(2025, 3, 30)) == len(kinds)
    after = clocks_of(person.id)
    assert after["pathway_entry"] == (
        before["pathway_entry"][0],
        entry_due + dt.timedelta(20),
        None,
        None,
    )
    assert after["contract"][1] == before["contract"][1] + dt.timedelta(20)
    assert _reasons(person.id) == dict.fromkeys(kinds)
    audit = db.session.scalars(
        select(AuditEvent).where(
            AuditEvent.person_id == person.id, AuditEvent.reason == "sdd_return"
        )
    ).all()
    assert sorted((e.details["kind"], e.details["paused_days"]) for e in audit) == sorted(
        (kind, 20) for kind in kinds
    )
    assert resume_clocks(person.id, D(2025, 4, 2)) == 0  # nothing paused any more


def test_a_paused_clock_is_met_by_its_event_and_ended_with_its_pathway(rules, clock):
    person, pathway = _notified(clock)
    pause_clocks(person.id, D(2025, 3, 10), "moved_away")
    assert meet_clocks(person.id, {ClockKind.PATHWAY_ENTRY}, D(2025, 3, 12), pathway.id) == 1
    assert clocks_of(person.id)["pathway_entry"][2:] == (D(2025, 3, 12), None)

    clock.set(D(2025, 4, 1))
    close_pathway(pathway, D(2025, 4, 1), PathwayCloseReason.MOVED_AWAY)
    contract = clocks_of(person.id)["contract"]
    assert contract[3] == D(2025, 3, 10)  # stopped counting on the pause
    assert _reasons(person.id)["contract"] == "moved_away"
    assert resume_clocks(person.id, D(2025, 5, 1)) == 0  # a closed pathway never restarts
