"""The pathway commands (``flask --app wsgi spie parcours ...`` once registered) and job."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import func, select

from spie.clocks.services import seed_delay_policies
from spie.db import db
from spie.parcours.cli import parcours_cli
from spie.parcours.jobs import scan_deadlines
from spie.parcours.models import Alert, AssessmentGrid, Offer, PathwaySetting, SanctionLevel
from tests.factories import PersonFactory
from tests.parcours.factories import decide, structure


def test_seed_is_idempotent(app):
    runner = app.test_cli_runner()
    first = runner.invoke(parcours_cli, ["seed"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["offers"] == {"created": 15, "kept": 0}
    again = runner.invoke(parcours_cli, ["seed"])
    assert json.loads(again.output) == {
        "offers": {"created": 0, "kept": 15},
        "assessment_grid": {"created": 0, "kept": 1},
        "sanction_levels": {"created": 0, "kept": 3},
        "settings": {"created": 0, "kept": 4},
    }
    counts = [
        db.session.scalar(select(func.count()).select_from(model))
        for model in (Offer, AssessmentGrid, SanctionLevel, PathwaySetting)
    ]
    assert counts == [15, 1, 3, 4]
    health = db.session.scalars(select(Offer).where(Offer.theme == "health")).all()
    assert health
    assert all(o.sensitive for o in health)


def test_scan_command_and_job(app, clock):
    seed_delay_policies()
    person = PersonFactory()
    clock.set(dt.date(2025, 3, 3))
    decide(
        person, structure("LYON"), decided_on=dt.date(2025, 3, 3), notified_on=dt.date(2025, 3, 3)
    )
    runner = app.test_cli_runner()
    result = runner.invoke(parcours_cli, ["scan-deadlines", "--as-of", "2025-04-07"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["alerts_raised"]["pathway_entry_overdue"] == 1
    assert summary["alerts_raised"]["referent_gap"] == 1
    assert scan_deadlines("2025-04-07")["alerts_raised"]["pathway_entry_overdue"] == 0
    assert db.session.scalar(select(func.count()).select_from(Alert)) == 3
