"""The whole orientation of one person through the API only, as a chargé d'orientation runs
it: open the case, plan and fill two RIO sessions (absent, then present), record the
diagnostic, decide, notify — the clock read back at each step."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from spie.clocks.calendar import Duration, add_duration
from spie.clocks.today import paris_today
from spie.db import db, utcnow
from spie.orientation.models import RioSession
from spie.structures.models import StructureType
from tests.factories import PersonFactory, StructureFactory, territory
from tests.orientation.api import api_as, persist
from tests.orientation.factories import PARIS, charge, criteria, seed_orientation, structure_in


@pytest.fixture(autouse=True)
def _seed(app):
    seed_orientation()


def _plan(api: Any, animator_id: int, days: int) -> int:
    day = paris_today() + dt.timedelta(days=days)
    response = api.post(
        "/api/v1/rio-sessions",
        json={
            "starts_at": dt.datetime(day.year, day.month, day.day, 9, 30, tzinfo=PARIS).isoformat(),
            "place": "Maison de la Métropole, 12 rue de la République, 69002 Lyon",
            "territory_id": territory("LYON").id,
            "animator_structure_id": animator_id,
            "capacity": 8,
        },
    )
    assert response.status_code == 201, response.json
    return int(response.json["id"])


def _time_passes(session_id: int) -> None:
    session = db.session.get(RioSession, session_id)
    assert session is not None
    session.starts_at = utcnow() - dt.timedelta(hours=3)
    persist()


def test_a_charge_runs_a_whole_orientation_through_the_api(client):
    agent = charge("LYON")
    animator = StructureFactory()
    mdm = structure_in("LYON", StructureType.MDM, capacity=50)
    person = PersonFactory(territory_code="LYON")
    person_id, animator_id, mdm_id = person.id, animator.id, mdm.id
    api = api_as(client, agent)
    started = paris_today() - dt.timedelta(days=20)

    opened = api.post(f"/api/v1/persons/{person_id}/orientation", json={"started_on": str(started)})
    assert opened.status_code == 201, opened.json
    case = opened.json["current_case"]
    legal = add_duration(started, Duration.parse("6w"))
    target = add_duration(started, Duration.parse("2m"))
    assert (case["legal_deadline"], case["target_date"]) == (str(legal), str(target))
    assert case["elapsed_days"] == 20

    first = _plan(api, animator_id, days=3)
    convened = api.post(f"/api/v1/rio-sessions/{first}/convene", json={}).json["convened"]
    assert [c["person_id"] for c in convened] == [person_id]
    _time_passes(first)
    absent = api.put(
        f"/api/v1/rio-sessions/{first}/attendance",
        json={"items": [{"person_id": person_id, "attendance": "absent"}]},
    )
    assert absent.status_code == 200, absent.json

    second = _plan(api, animator_id, days=5)
    assert [
        c["person_id"]
        for c in api.post(f"/api/v1/rio-sessions/{second}/convene", json={}).json["convened"]
    ] == [person_id]
    _time_passes(second)
    api.put(
        f"/api/v1/rio-sessions/{second}/attendance",
        json={"items": [{"person_id": person_id, "attendance": "present"}]},
    )

    diagnostic = api.post(
        f"/api/v1/persons/{person_id}/diagnostics",
        json={"criteria": criteria(sante="fort", logement="fort"), "rio_session_id": second},
    )
    assert diagnostic.status_code == 201, diagnostic.json
    proposal = diagnostic.json["proposal"]
    assert proposal["rule_id"] == "difficultes_fortes_multiples"
    assert proposal["explanation"].endswith(": santé, logement.")
    assert diagnostic.json["suggested_structure_id"] == mdm_id

    decision = api.post(
        "/api/v1/orientation-decisions",
        json={"case_id": case["id"], "parcours": "social", "structure_id": mdm_id},
        headers={"If-Match": f'"{case["version"]}"'},  # read at opening: stale since
    )
    assert decision.status_code == 409
    current = api.get(f"/api/v1/persons/{person_id}/orientation")
    decision = api.post(
        "/api/v1/orientation-decisions",
        json={"case_id": case["id"], "parcours": "social", "structure_id": mdm_id},
        headers={"If-Match": current.headers["ETag"]},
    )
    assert decision.status_code == 201, decision.json
    assert (decision.json["via_rio"], decision.json["direct"]) == (True, False)
    notified = api.post(
        f"/api/v1/orientation-decisions/{decision.json['id']}/notification",
        json={"notified_on": str(paris_today()), "channel": "letter"},
    )
    assert notified.status_code == 200, notified.json

    view = api.get(f"/api/v1/persons/{person_id}/orientation").json
    final = view["current_case"]
    assert (final["status"], final["close_reason"], final["closed_on"]) == (
        "notifiee",
        "oriented",
        str(paris_today()),
    )
    assert (final["legal_deadline"], final["target_date"]) == (str(legal), str(target))
    assert (final["elapsed_days"], final["overdue"], final["rio_absences"]) == (20, False, 1)
    assert [c["attendance"] for c in view["convocations"]] == ["absent", "present"]
    assert [(d["rank"], d["parcours"], d["notified_on"]) for d in view["decisions"]] == [
        (1, "social", str(paris_today()))
    ]
