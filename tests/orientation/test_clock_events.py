"""Clock events called by the CAF import: open, pause, resume, close — exact dates."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from spie.audit.models import AuditEvent
from spie.clocks.models import DelayPolicy
from spie.db import db
from spie.errors import NotFound
from spie.orientation.clock_events import (
    manual_referral_opened,
    person_deceased,
    sdd_entered,
    sdd_left,
)
from spie.orientation.models import CaseStatus, ClockStartBasis, CloseReason, OrientationCase
from spie.persons.models import Public
from tests.factories import PersonFactory
from tests.orientation.factories import seed_orientation

D = dt.date


@pytest.fixture(autouse=True)
def _seed(app):
    seed_orientation()


def test_2025_entrant_gets_six_weeks_and_the_two_month_target():
    person = PersonFactory()
    case = sdd_entered(person, D(2025, 3, 3), ClockStartBasis.DDSOUDRODEV)
    assert case is not None
    assert case.status == CaseStatus.A_ORIENTER
    assert (case.legal_deadline, case.target_date) == (D(2025, 4, 14), D(2025, 5, 3))
    assert case.policy.legal_limit == "6w"
    assert case.start_basis == ClockStartBasis.DDSOUDRODEV
    assert case.territory_id == person.territory_id
    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.resource_type == "orientation_case")
    ).all()
    assert [(e.action.value, e.resource_id) for e in events] == [("create", str(case.id))]
    assert "nir" not in str(events[0].details)


def test_2024_entrant_is_judged_by_the_two_month_rule_even_after_2025():
    case = sdd_entered(PersonFactory(), D(2024, 10, 15), ClockStartBasis.FLOW_ENTRY, True)
    assert case is not None
    assert case.clock_estimated is True
    assert (case.legal_deadline, case.target_date) == (D(2024, 12, 15), D(2024, 12, 15))
    assert case.policy.valid_until == D(2025, 1, 1)


def test_entry_is_idempotent_and_an_older_observation_changes_nothing():
    person = PersonFactory()
    case = sdd_entered(person, D(2025, 3, 3), ClockStartBasis.DDSOUDRODEV)
    assert sdd_entered(person, D(2025, 3, 3), ClockStartBasis.DDSOUDRODEV) is None
    assert sdd_entered(person, D(2025, 2, 1), ClockStartBasis.DDSOUDRODEV) is None
    assert db.session.scalars(select(OrientationCase)).all() == [case]


def test_leaving_sdd_pauses_and_coming_back_pushes_both_deadlines_back():
    person = PersonFactory()
    case = sdd_entered(person, D(2025, 3, 3), ClockStartBasis.DDSOUDRODEV)
    assert case is not None
    sdd_left(person, D(2025, 3, 20), "left_sdd")
    assert case.paused_since == D(2025, 3, 20)
    assert (case.legal_deadline, case.target_date) == (None, None)
    sdd_left(person, D(2025, 3, 25), "right_closed")  # already paused: nothing changes
    assert [p.reason for p in case.pauses] == ["left_sdd"]

    resumed = sdd_entered(person, D(2025, 4, 9), ClockStartBasis.FLOW_ENTRY)
    assert resumed is case
    assert case.paused_since is None
    assert case.paused_days == 20
    assert (case.legal_deadline, case.target_date) == (D(2025, 5, 4), D(2025, 5, 23))
    assert [(p.paused_on, p.resumed_on) for p in case.pauses] == [(D(2025, 3, 20), D(2025, 4, 9))]


def test_a_resume_older_than_the_pause_is_ignored():
    person = PersonFactory()
    case = sdd_entered(person, D(2025, 3, 3), ClockStartBasis.DDSOUDRODEV)
    sdd_left(person, D(2025, 3, 20), "moved_away")
    assert sdd_entered(person, D(2025, 3, 10), ClockStartBasis.FLOW_ENTRY) is None
    assert case is not None
    assert case.paused_since == D(2025, 3, 20)


def test_death_closes_the_case():
    person = PersonFactory()
    case = sdd_entered(person, D(2025, 3, 3), ClockStartBasis.DDSOUDRODEV)
    person_deceased(person, D(2025, 3, 12))
    assert case is not None
    assert (case.status, case.closed_on, case.close_reason) == (
        CaseStatus.CLOSED,
        D(2025, 3, 12),
        CloseReason.DECEASED,
    )
    assert person.deceased_on == D(2025, 3, 12)
    assert sdd_entered(person, D(2025, 5, 1), ClockStartBasis.FLOW_ENTRY) is None


def test_manual_referral_opens_a_case_from_the_referral_date():
    person = PersonFactory(public=Public.RSJ, bound_by_duties=False)
    case = manual_referral_opened(person, D(2025, 6, 2))
    assert case.start_basis == ClockStartBasis.MANUAL_REFERRAL
    assert case.public == Public.RSJ
    assert case.legal_deadline == D(2025, 7, 14)
    assert manual_referral_opened(person, D(2025, 6, 3)) is case


def test_no_policy_in_force_is_a_precise_error():
    db.session.execute(DelayPolicy.__table__.delete())
    with pytest.raises(NotFound) as caught:
        sdd_entered(PersonFactory(), D(2025, 3, 3), ClockStartBasis.DDSOUDRODEV)
    assert caught.value.code == "no_delay_policy"
    assert "2025-03-03" in caught.value.detail


def test_unknown_pause_reason_is_refused():
    person = PersonFactory()
    sdd_entered(person, D(2025, 3, 3), ClockStartBasis.DDSOUDRODEV)
    with pytest.raises(ValueError, match="motif"):
        sdd_left(person, D(2025, 3, 4), "holidays")
