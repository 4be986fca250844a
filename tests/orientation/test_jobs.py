"""Daily orientation jobs and their CLI: long pauses, reminders, seed."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from spie.clocks.models import DelayPolicy
from spie.db import db
from spie.jobs.models import JobRun
from spie.orientation.cli import orientation_cli
from spie.orientation.clock_events import sdd_entered, sdd_left
from spie.orientation.jobs import close_long_paused_cases, close_paused_cases, send_rio_reminders
from spie.orientation.models import (
    CaseStatus,
    ClockStartBasis,
    CloseReason,
    OrientationCase,
    ReferentielVersion,
)
from tests.factories import PersonFactory
from tests.orientation.factories import seed_orientation

D = dt.date


@pytest.fixture
def seeded(app):
    seed_orientation()


def test_a_case_paused_for_twelve_months_is_closed_and_a_return_opens_a_new_clock(seeded):
    person = PersonFactory()
    case = sdd_entered(person, D(2025, 3, 3), ClockStartBasis.DDSOUDRODEV)
    assert case is not None
    sdd_left(person, D(2025, 3, 20), "right_closed")
    assert close_paused_cases(D(2026, 3, 19)) == {"closed": 0}
    assert close_paused_cases(D(2026, 3, 20)) == {"closed": 1}
    assert (case.status, case.closed_on, case.close_reason) == (
        CaseStatus.CLOSED,
        D(2026, 3, 20),
        CloseReason.RIGHT_CLOSED,
    )
    assert close_paused_cases(D(2026, 3, 21)) == {"closed": 0}  # idempotent

    again = sdd_entered(person, D(2026, 5, 4), ClockStartBasis.FLOW_ENTRY)
    assert again is not None
    assert again.id != case.id
    assert (again.legal_deadline, again.target_date) == (D(2026, 6, 15), D(2026, 7, 4))


def test_the_pause_limit_is_configurable(app, seeded):
    saved = app.config.get("SPIE_ORIENTATION_PAUSE_CLOSE_AFTER")
    app.config["SPIE_ORIENTATION_PAUSE_CLOSE_AFTER"] = "3m"
    try:
        person = PersonFactory()
        sdd_entered(person, D(2025, 3, 3), ClockStartBasis.DDSOUDRODEV)
        sdd_left(person, D(2025, 3, 20), "moved_away")
        assert close_long_paused_cases("2025-06-20") == {"closed": 1}
        case = db.session.scalar(select(OrientationCase))
        assert case.close_reason == CloseReason.MOVED_AWAY
    finally:
        app.config["SPIE_ORIENTATION_PAUSE_CLOSE_AFTER"] = saved


def test_the_reminder_job_takes_an_iso_date(seeded):
    assert send_rio_reminders("2025-03-11") == {"sessions": 0, "reminders": 0}


def test_cli_seed_is_idempotent(app):
    runner = app.test_cli_runner()
    first = runner.invoke(orientation_cli, ["seed"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output) == {
        "delay_policies": {"created": 8, "kept": 0},
        "referentiel_versions": {"created": 1},
    }
    second = runner.invoke(orientation_cli, ["seed"])
    assert json.loads(second.output)["delay_policies"] == {"created": 0, "kept": 8}
    assert db.session.scalar(select(func.count(DelayPolicy.id))) == 8
    assert db.session.scalar(select(func.count(ReferentielVersion.id))) == 1


def test_cli_daily_commands(app, seeded):
    runner = app.test_cli_runner()
    reminders = runner.invoke(orientation_cli, ["send-reminders", "--date", "2025-03-11"])
    assert reminders.exit_code == 0, reminders.output
    assert json.loads(reminders.output) == {"sessions": 0, "reminders": 0}
    person = PersonFactory()
    sdd_entered(person, D(2025, 3, 3), ClockStartBasis.DDSOUDRODEV)
    sdd_left(person, D(2025, 3, 20), "left_sdd")
    closed = runner.invoke(orientation_cli, ["close-paused", "--date", "2026-04-01"])
    assert json.loads(closed.output) == {"closed": 1}
    assert db.session.scalar(select(func.count(JobRun.id))) == 0  # ran in the command itself
