"""The "done when" scenarios: a person walked from SDD entry to the notified decision, every
clock date checked against the policy in force when the clock started."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from spie.clocks.calendar import Duration, add_duration, elapsed_days
from spie.db import db
from spie.orientation import decisions, diagnostics, rio
from spie.orientation.clock_events import sdd_entered
from spie.orientation.jobs import schedule_rio_reminders
from spie.orientation.models import (
    Attendance,
    CaseStatus,
    ClockStartBasis,
    CloseReason,
    Convocation,
    OrientationCase,
    Parcours,
)
from spie.structures.models import StructureType
from tests.factories import PersonFactory
from tests.orientation.factories import (
    RioSessionFactory,
    charge,
    criteria,
    paris,
    seed_orientation,
    structure_in,
)

D = dt.date


@pytest.fixture(autouse=True)
def _seed(app):
    seed_orientation()


def assert_clock(case: OrientationCase, legal: dt.date, target: dt.date) -> None:
    """The case's dates are the policy's limits added to the clock start (no pause)."""
    policy = case.policy
    assert policy.legal_limit is not None
    assert policy.target is not None
    assert case.legal_deadline == add_duration(
        case.clock_started_on, Duration.parse(policy.legal_limit)
    )
    assert case.target_date == add_duration(case.clock_started_on, Duration.parse(policy.target))
    assert (case.legal_deadline, case.target_date) == (legal, target)


def test_2025_entrant_through_two_rio_convocations_to_the_notified_decision():
    agent = charge("LYON")
    structure_in("LYON", StructureType.PLIE, capacity=40)
    person = PersonFactory(territory_code="LYON", email="helene@example.org")

    # SDD entry (what the CAF import calls): 6 weeks legal, 2 months Métropole target.
    case = sdd_entered(person, D(2025, 3, 3), ClockStartBasis.DDSOUDRODEV)
    assert case is not None
    assert case.policy.legal_limit == "6w"
    assert_clock(case, legal=D(2025, 4, 14), target=D(2025, 5, 3))

    # First RIO, Thursday 13 March: convened, reminded on Tuesday 11 (2 working days), absent.
    first = RioSessionFactory(starts_at=paris(2025, 3, 13), capacity=5)
    convened = rio.convene(first, agent, paris(2025, 3, 4, 10))
    assert [c.person_id for c in convened] == [person.id]
    assert case.status == CaseStatus.CONVOQUE_RIO
    assert schedule_rio_reminders(D(2025, 3, 10)) == {"sessions": 0, "reminders": 0}
    assert schedule_rio_reminders(D(2025, 3, 11)) == {"sessions": 1, "reminders": 1}
    rio.record_attendance(
        first, [{"person_id": person.id, "attendance": Attendance.ABSENT}], paris(2025, 3, 13, 12)
    )
    assert (case.status, case.rio_absences, case.flagged_for_ep) == (
        CaseStatus.A_ORIENTER,
        1,
        False,
    )

    # Second RIO on 27 March: convened again (oldest clock first), present.
    second = RioSessionFactory(starts_at=paris(2025, 3, 27), capacity=5)
    assert [c.person_id for c in rio.convene(second, agent, paris(2025, 3, 14, 10))] == [person.id]
    rio.record_attendance(
        second,
        [{"person_id": person.id, "attendance": Attendance.PRESENT}],
        paris(2025, 3, 27, 12),
    )
    assert case.status == CaseStatus.CONVOQUE_RIO

    # Interview at the RIO: the diagnostic gives the proposal with its explanation.
    diagnostic = diagnostics.record_diagnostic(
        person, agent, criteria(sante="fort"), second.id, paris(2025, 3, 27, 11)
    )
    assert diagnostic.proposed_parcours == Parcours.SOCIAL
    assert diagnostic.proposal["rule_id"] == "sante_forte"
    assert diagnostic.proposal["explanation"].startswith(
        "Vous êtes orienté(e) vers un parcours Social parce que votre santé"
    )
    assert diagnostic.direct_orientation is False
    assert case.status == CaseStatus.PROPOSEE

    # Decision by a human, following the proposal, then notification by letter.
    mdm = structure_in("LYON", StructureType.MDM, capacity=100)
    decision = decisions.decide(
        case,
        agent,
        {"parcours": Parcours.SOCIAL, "structure_id": mdm.id, "decided_on": D(2025, 3, 28)},
        today=D(2025, 3, 28),
    )
    assert (decision.rank, decision.follows_proposal, decision.via_rio, decision.direct) == (
        1,
        True,
        True,
        False,
    )
    assert (case.status, case.decided_on) == (CaseStatus.DECIDEE, D(2025, 3, 28))
    assert person.current_structure_id == mdm.id
    assert case.closed_on is None  # the clock runs until the notification

    decisions.notify(decision, D(2025, 4, 2), "letter", today=D(2025, 4, 2))
    assert (case.status, case.notified_on, case.closed_on, case.close_reason) == (
        CaseStatus.NOTIFIEE,
        D(2025, 4, 2),
        D(2025, 4, 2),
        CloseReason.ORIENTED,
    )
    assert_clock(case, legal=D(2025, 4, 14), target=D(2025, 5, 3))
    assert elapsed_days(case.clock_started_on, case.closed_on) == 30
    assert case.closed_on <= case.legal_deadline
    attendances = db.session.scalars(
        select(Convocation.attendance)
        .where(Convocation.case_id == case.id)
        .order_by(Convocation.id)
    ).all()
    assert attendances == [Attendance.ABSENT, Attendance.PRESENT]


def test_direct_orientation_without_rio():
    agent = charge("LYON")
    mission_locale = structure_in("LYON", StructureType.MISSION_LOCALE, capacity=30)
    person = PersonFactory(territory_code="LYON", birth_date=D(2003, 1, 20))
    case = sdd_entered(person, D(2025, 3, 3), ClockStartBasis.FLOW_ENTRY)
    assert case is not None
    assert_clock(case, legal=D(2025, 4, 14), target=D(2025, 5, 3))

    diagnostic = diagnostics.record_diagnostic(
        person, agent, criteria(age=22), None, paris(2025, 3, 5, 10)
    )
    assert diagnostic.direct_orientation is True
    assert diagnostic.proposal["rule_id"] == "jeune_rsj"
    assert diagnostic.suggested_structure_id == mission_locale.id
    assert "Mission locale" in diagnostic.proposal["explanation"]

    decision = decisions.decide(
        case,
        agent,
        {"parcours": Parcours.EMPLOI, "structure_id": diagnostic.suggested_structure_id},
        today=D(2025, 3, 5),
    )
    assert (decision.via_rio, decision.direct, decision.decided_on) == (False, True, D(2025, 3, 5))
    decisions.notify(decision, D(2025, 3, 6), "email", today=D(2025, 3, 6))
    assert (case.status, case.closed_on, case.close_reason) == (
        CaseStatus.NOTIFIEE,
        D(2025, 3, 6),
        CloseReason.ORIENTED,
    )
    assert_clock(case, legal=D(2025, 4, 14), target=D(2025, 5, 3))
    assert elapsed_days(case.clock_started_on, case.closed_on) == 3
    assert db.session.scalar(select(Convocation.id).where(Convocation.case_id == case.id)) is None


def test_2024_entrant_is_judged_by_the_two_month_rule_after_the_law_changed():
    agent = charge("LYON")
    structure_in("LYON", StructureType.FRANCE_TRAVAIL, capacity=100)
    person = PersonFactory(territory_code="LYON")
    case = sdd_entered(person, D(2024, 10, 15), ClockStartBasis.DDSOUDRODEV)
    assert case is not None
    assert case.policy.legal_limit == "2m"
    assert case.policy.valid_until == D(2025, 1, 1)
    assert_clock(case, legal=D(2024, 12, 15), target=D(2024, 12, 15))

    session = RioSessionFactory(starts_at=paris(2025, 1, 9), capacity=3)
    rio.convene(session, agent, paris(2024, 12, 20, 10))
    rio.record_attendance(
        session,
        [{"person_id": person.id, "attendance": Attendance.PRESENT}],
        paris(2025, 1, 9, 12),
    )
    diagnostic = diagnostics.record_diagnostic(
        person,
        agent,
        criteria(situation_emploi="recherche_active"),
        session.id,
        paris(2025, 1, 9, 11),
    )
    assert diagnostic.proposed_parcours == Parcours.EMPLOI
    decision = decisions.decide(
        case,
        agent,
        {"parcours": Parcours.EMPLOI, "structure_id": diagnostic.suggested_structure_id},
        today=D(2025, 1, 10),
    )
    decisions.notify(decision, D(2025, 1, 13), "letter", today=D(2025, 1, 13))

    # Decided and notified under the 2025 law, still judged by the 2-month rule of 2024.
    db.session.refresh(case)
    assert case.policy.legal_limit == "2m"
    assert_clock(case, legal=D(2024, 12, 15), target=D(2024, 12, 15))
    assert case.closed_on == D(2025, 1, 13)
    assert elapsed_days(case.clock_started_on, case.closed_on) == 90
    assert case.closed_on > case.legal_deadline  # oriented late: 29 days past the limit
