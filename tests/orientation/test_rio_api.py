"""RIO sessions through the API: planning, convening, e-mails, reminders, attendance,
letters, and who may do what."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select

from spie.agents.models import Role
from spie.audit.models import AuditEvent
from spie.clocks.calendar import PARIS, working_days_before
from spie.db import commit, db, utcnow
from spie.orientation.jobs import schedule_rio_reminders
from spie.orientation.models import (
    CaseStatus,
    Convocation,
    OrientationCase,
    RioSession,
    RioStatus,
)
from tests.factories import AgentFactory, PersonFactory, StructureFactory, territory
from tests.notifications.smtp_server import smtp_inbox  # noqa: F401 - fixture
from tests.orientation.api import api_as, fresh, persist
from tests.orientation.factories import (
    RioSessionFactory,
    charge,
    open_case_for,
    seed_orientation,
)

D = dt.date
VILLEURBANNE = "CTM-VILLEURBANNE"


@pytest.fixture(autouse=True)
def _seed(app):
    seed_orientation()


def future(days: int = 10, hour: int = 9) -> dt.datetime:
    day = dt.datetime.now(PARIS).date() + dt.timedelta(days=days)
    return dt.datetime(day.year, day.month, day.day, hour, 30, tzinfo=PARIS)


def waiting(started_on: dt.date, territory_code: str = "LYON", **kw: Any) -> OrientationCase:
    return open_case_for(PersonFactory(territory_code=territory_code, **kw), started_on=started_on)


def session_in(territory_code: str = "LYON", capacity: int = 10, days: int = 10) -> RioSession:
    return RioSessionFactory(
        territory_code=territory_code, capacity=capacity, starts_at=future(days)
    )


def held(session: RioSession) -> None:
    """Time passes: the session has taken place."""
    fresh(session).starts_at = utcnow() - dt.timedelta(hours=2)
    persist()


def convocation_count() -> int:
    return int(db.session.scalar(select(func.count(Convocation.id))) or 0)


# --------------------------------------------------------------------------- planning


def test_a_charge_plans_a_session_of_their_territory(client):
    agent = charge("LYON")
    animator = StructureFactory()
    persist()
    body = {
        "starts_at": future(12).isoformat(),
        "place": "MDM Lyon 8e, 12 avenue Berthelot",
        "territory_id": territory("LYON").id,
        "animator_structure_id": animator.id,
        "capacity": 12,
    }
    response = api_as(client, agent).post("/api/v1/rio-sessions", json=body)
    assert response.status_code == 201, response.json
    assert response.json["status"] == "planned"
    assert response.json["counts"] == {
        "convened": 0,
        "present": 0,
        "absent": 0,
        "excused": 0,
        "remaining": 12,
    }
    assert response.headers["ETag"] == '"1"'

    other = dict(body, territory_id=territory(VILLEURBANNE).id)
    refused = api_as(client, agent).post("/api/v1/rio-sessions", json=other)
    assert refused.status_code == 403
    assert refused.json["code"] == "territory_out_of_scope"


def test_session_input_is_checked(client):
    agent = charge("LYON")
    response = api_as(client, agent).post(
        "/api/v1/rio-sessions",
        json={
            "starts_at": "2025-03-13T09:30:00",
            "place": "x",
            "territory_id": territory("LYON").id,
            "animator_structure_id": 1,
            "capacity": 0,
            "colour": "blue",
        },
    )
    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    assert set(response.json["errors"]) == {"starts_at", "place", "capacity", "colour"}


# --------------------------------------------------------------------------- convening


def test_convene_takes_the_oldest_clocks_first_and_never_beyond_capacity(client):
    agent = charge("LYON")
    newest = waiting(D(2025, 3, 20))
    oldest = waiting(D(2025, 1, 6))
    middle = waiting(D(2025, 2, 10))
    also_old = waiting(D(2025, 1, 6))
    elsewhere = waiting(D(2024, 12, 2), VILLEURBANNE)
    session = session_in(capacity=3)
    persist()

    response = api_as(client, agent).post(f"/api/v1/rio-sessions/{session.id}/convene", json={})
    assert response.status_code == 201, response.json
    convened = [c["person_id"] for c in response.json["convened"]]
    assert convened == [oldest.person_id, also_old.person_id, middle.person_id]
    assert response.json["session"]["counts"]["remaining"] == 0
    assert {fresh(c).status for c in (oldest, also_old, middle)} == {CaseStatus.CONVOQUE_RIO}
    assert {fresh(c).status for c in (newest, elsewhere)} == {CaseStatus.A_ORIENTER}

    full = api_as(client, agent).post(f"/api/v1/rio-sessions/{session.id}/convene", json={})
    assert full.status_code == 409
    assert full.json["code"] == "session_full"

    # A second session to come never takes someone already convened to the first.
    later = session_in(capacity=10, days=20)
    persist()
    second = api_as(client, agent).post(f"/api/v1/rio-sessions/{later.id}/convene", json={})
    assert [c["person_id"] for c in second.json["convened"]] == [newest.person_id]


def test_convening_beyond_capacity_is_refused_and_changes_nothing(client):
    agent = charge("LYON")
    cases = [waiting(D(2025, 1, 6 + i)) for i in range(3)]
    person_ids = [c.person_id for c in cases]
    session = session_in(capacity=2)
    url = f"/api/v1/rio-sessions/{session.id}/convene"
    persist()
    before = convocation_count()

    by_count = api_as(client, agent).post(url, json={"count": 3})
    assert by_count.status_code == 409
    assert by_count.json["code"] == "capacity_exceeded"
    assert by_count.json["remaining"] == 2
    assert "2 place(s)" in by_count.json["detail"]

    by_list = api_as(client, agent).post(url, json={"person_ids": person_ids})
    assert by_list.status_code == 409
    assert by_list.json["code"] == "capacity_exceeded"
    assert convocation_count() == before
    assert {fresh(c).status for c in cases} == {CaseStatus.A_ORIENTER}


def test_convening_a_named_person_already_convened_elsewhere_is_refused(client):
    agent = charge("LYON")
    case = waiting(D(2025, 1, 6))
    first, second = session_in(days=10), session_in(days=20)
    persist()
    ok = api_as(client, agent).post(
        f"/api/v1/rio-sessions/{first.id}/convene", json={"person_ids": [case.person_id]}
    )
    assert ok.status_code == 201
    again = api_as(client, agent).post(
        f"/api/v1/rio-sessions/{second.id}/convene", json={"person_ids": [case.person_id]}
    )
    assert again.status_code == 422
    assert list(again.json["errors"]["person_ids"]) == [str(case.person_id)]
    assert convocation_count() == 1


def test_a_session_already_started_cannot_be_convened(client):
    agent = charge("LYON")
    waiting(D(2025, 1, 6))
    session = session_in()
    held(session)
    response = api_as(client, agent).post(f"/api/v1/rio-sessions/{session.id}/convene", json={})
    assert response.status_code == 409
    assert response.json["code"] == "session_started"


# --------------------------------------------------------------------------- e-mails


def test_convocation_email_carries_date_and_place_but_no_nir(client, smtp_inbox):  # noqa: F811
    agent = charge("LYON")
    case = waiting(D(2025, 1, 6), email="helene.dupre@example.org")
    no_email = waiting(D(2025, 1, 7))
    session = session_in(capacity=5)
    person = case.person
    persist()
    response = api_as(client, agent).post(f"/api/v1/rio-sessions/{session.id}/convene", json={})
    assert response.status_code == 201

    assert len(smtp_inbox.messages) == 1  # the person without an address gets the letter only
    message = smtp_inbox.messages[0]
    body = smtp_inbox.bodies()[0]
    local = session.starts_at.astimezone(PARIS)
    assert message["To"] == "helene.dupre@example.org"
    assert f"{local.day} " in body
    assert f"{local.hour} h 30" in body
    assert session.place in body
    assert person.nir not in body
    assert person.nir not in message["Subject"]
    assert person.last_name not in body
    convocations = {c.person_id: c for c in db.session.scalars(select(Convocation))}
    assert convocations[case.person_id].email_sent_at is not None
    assert convocations[no_email.person_id].email_sent_at is None


def test_reminders_are_sent_two_working_days_before_and_only_once(client, smtp_inbox):  # noqa: F811
    agent = charge("LYON")
    waiting(D(2025, 1, 6), email="a@example.org")
    waiting(D(2025, 1, 7), email="b@example.org")
    session = session_in(capacity=5, days=12)
    persist()
    api_as(client, agent).post(f"/api/v1/rio-sessions/{session.id}/convene", json={})
    assert len(smtp_inbox.messages) == 2  # the convocations
    day = session.starts_at.astimezone(PARIS).date()
    reminder_day = working_days_before(day, 2)

    assert schedule_rio_reminders(reminder_day - dt.timedelta(days=1))["reminders"] == 0
    assert schedule_rio_reminders(reminder_day) == {"sessions": 1, "reminders": 2}
    commit()  # the reminder e-mails leave after the commit
    reminders = [m for m in smtp_inbox.messages if m["Subject"].startswith("Rappel")]
    assert sorted(m["To"] for m in reminders) == ["a@example.org", "b@example.org"]
    assert fresh(session).reminder_sent_at is not None

    # Idempotent: the next day's run (or a second scheduler) sends nothing more.
    assert schedule_rio_reminders(reminder_day) == {"sessions": 0, "reminders": 0}
    assert schedule_rio_reminders(reminder_day + dt.timedelta(days=1))["reminders"] == 0
    commit()
    assert len(smtp_inbox.messages) == 4


def test_reminder_job_for_one_convocation_is_idempotent(app, smtp_inbox):  # noqa: F811
    from spie.orientation.jobs import send_reminder_email

    agent = charge("LYON")
    case = waiting(D(2025, 1, 6), email="a@example.org")
    session = session_in(capacity=5)
    from spie.orientation import rio

    (convocation,) = rio.convene(session, agent, utcnow())
    persist()
    assert send_reminder_email(convocation.id) == {"status": "sent"}
    assert send_reminder_email(convocation.id) == {"status": "already_sent"}
    subjects = [m["Subject"] for m in smtp_inbox.messages]
    assert len(subjects) == 2  # the convocation (sent after the commit) and one reminder
    assert sum(subject.startswith("Rappel") for subject in subjects) == 1
    assert fresh(case).status == CaseStatus.CONVOQUE_RIO


# --------------------------------------------------------------------------- attendance


def _convene_all(client: Any, agent: Any, session: RioSession) -> list[int]:
    persist()
    response = api_as(client, agent).post(f"/api/v1/rio-sessions/{session.id}/convene", json={})
    assert response.status_code == 201, response.json
    return [c["person_id"] for c in response.json["convened"]]


def test_attendance_is_recorded_in_bulk(client):
    agent = charge("LYON")
    cases = [waiting(D(2025, 1, 6 + i)) for i in range(3)]
    session = session_in(capacity=5)
    present, absent, excused = _convene_all(client, agent, session)
    held(session)

    response = api_as(client, agent).put(
        f"/api/v1/rio-sessions/{session.id}/attendance",
        json={
            "items": [
                {"person_id": present, "attendance": "present"},
                {"person_id": absent, "attendance": "absent"},
                {"person_id": excused, "attendance": "excuse"},
            ]
        },
    )
    assert response.status_code == 200, response.json
    by_person = {c["person_id"]: c for c in response.json["items"]}
    assert [by_person[p]["attendance"] for p in (present, absent, excused)] == [
        "present",
        "absent",
        "excuse",
    ]
    assert [fresh(c).status for c in cases] == [
        CaseStatus.CONVOQUE_RIO,  # attended, waits for the diagnostic
        CaseStatus.A_ORIENTER,  # absent: to be convened again
        CaseStatus.A_ORIENTER,  # excused: to be convened again, not counted as absence
    ]
    assert [fresh(c).rio_absences for c in cases] == [0, 1, 0]
    assert fresh(session).status == RioStatus.HELD
    counts = api_as(client, agent).get(f"/api/v1/rio-sessions/{session.id}").json["counts"]
    assert counts == {"convened": 3, "present": 1, "absent": 1, "excused": 1, "remaining": 2}


def test_attendance_for_someone_not_convened_is_refused_whole(client):
    agent = charge("LYON")
    waiting(D(2025, 1, 6))
    stranger = waiting(D(2025, 1, 7))
    session = session_in(capacity=1)
    (convened,) = _convene_all(client, agent, session)
    held(session)

    response = api_as(client, agent).put(
        f"/api/v1/rio-sessions/{session.id}/attendance",
        json={
            "items": [
                {"person_id": convened, "attendance": "present"},
                {"person_id": stranger.person_id, "attendance": "absent"},
            ]
        },
    )
    assert response.status_code == 422
    assert response.json["code"] == "not_convened"
    assert response.json["errors"] == {
        "items": {
            "1": {
                "person_id": [
                    f"La personne {stranger.person_id} n'est pas convoquée à cette session."
                ]
            }
        }
    }
    assert db.session.scalar(select(Convocation.attendance)) is None
    assert db.session.get(RioSession, session.id).status == RioStatus.PLANNED


def test_attendance_before_the_session_is_refused(client):
    agent = charge("LYON")
    waiting(D(2025, 1, 6))
    session = session_in()
    (person_id,) = _convene_all(client, agent, session)
    response = api_as(client, agent).put(
        f"/api/v1/rio-sessions/{session.id}/attendance",
        json={"items": [{"person_id": person_id, "attendance": "present"}]},
    )
    assert response.status_code == 409
    assert response.json["code"] == "session_not_started"


@pytest.mark.parametrize("threshold", [1, 2])
def test_after_the_configured_absences_the_case_is_flagged_and_no_longer_convened(
    app, client, threshold
):
    saved = app.config.get("SPIE_RIO_MAX_ABSENCES")
    app.config["SPIE_RIO_MAX_ABSENCES"] = threshold
    try:
        agent = charge("LYON")
        case = waiting(D(2025, 1, 6))
        for absence in range(1, threshold + 1):
            session = session_in(days=10 + absence)
            assert _convene_all(client, agent, session) == [case.person_id]
            held(session)
            api_as(client, agent).put(
                f"/api/v1/rio-sessions/{session.id}/attendance",
                json={"items": [{"person_id": case.person_id, "attendance": "absent"}]},
            )
            assert fresh(case).rio_absences == absence
            assert fresh(case).flagged_for_ep is (absence >= threshold)
        last = session_in(days=30)
        persist()
        nobody = api_as(client, agent).post(f"/api/v1/rio-sessions/{last.id}/convene", json={})
        assert nobody.status_code == 201
        assert nobody.json["convened"] == []
        queue = api_as(client, agent).get("/api/v1/work-queues/orientation?queue=flagged").json
        assert queue["counts"]["flagged"] == 1
        assert [i["person"]["id"] for i in queue["items"]] == [case.person_id]
    finally:
        app.config["SPIE_RIO_MAX_ABSENCES"] = saved


def test_cancelling_a_session_frees_the_people_convened(client):
    agent = charge("LYON")
    case = waiting(D(2025, 1, 6))
    session = session_in()
    _convene_all(client, agent, session)
    no_header = api_as(client, agent).patch(
        f"/api/v1/rio-sessions/{session.id}", json={"status": "cancelled"}
    )
    assert no_header.status_code == 428
    response = api_as(client, agent).patch(
        f"/api/v1/rio-sessions/{session.id}",
        json={"status": "cancelled"},
        headers={"If-Match": f'"{fresh(session).version}"'},
    )
    assert response.status_code == 200, response.json
    assert response.json["status"] == "cancelled"
    assert fresh(case).status == CaseStatus.A_ORIENTER
    assert db.session.scalar(select(Convocation.cancelled_at)) is not None


def test_capacity_cannot_go_below_the_people_convened(client):
    agent = charge("LYON")
    waiting(D(2025, 1, 6))
    waiting(D(2025, 1, 7))
    session = session_in(capacity=5)
    _convene_all(client, agent, session)
    response = api_as(client, agent).patch(
        f"/api/v1/rio-sessions/{session.id}",
        json={"capacity": 1},
        headers={"If-Match": f'"{fresh(session).version}"'},
    )
    assert response.status_code == 409
    assert response.json["code"] == "capacity_below_convened"
    assert db.session.get(RioSession, session.id).capacity == 5


# --------------------------------------------------------------------------- letter


def test_the_convocation_letter_is_printable_html(client):
    agent = charge("LYON")
    case = waiting(
        D(2025, 1, 6), address_line="3 rue Garibaldi", postal_code="69003", first_name="Inès"
    )
    session = session_in()
    person = case.person
    _convene_all(client, agent, session)
    convocation = db.session.scalar(select(Convocation))
    response = api_as(client, agent).get(
        f"/api/v1/rio-sessions/{session.id}/convocations/{convocation.id}/letter"
    )
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    local = session.starts_at.astimezone(PARIS)
    assert "convocation à une Rencontre Information et Orientation" in html
    assert f"{local.hour} h 30" in html
    assert "12 rue de la République" in html
    assert "Inès" in html
    assert "3 rue Garibaldi" in html
    assert "L262-28" in html
    assert person.nir not in html
    audit = db.session.scalar(
        select(AuditEvent).where(AuditEvent.resource_type == "rio_convocation_letter")
    )
    assert (audit.person_id, audit.actor_agent_id) == (case.person_id, agent.id)


# --------------------------------------------------------------------------- access


def test_sessions_outside_the_callers_territories_are_404(client):
    lyon_session = session_in("LYON")
    waiting(D(2025, 1, 6))
    lyon = charge("LYON")
    _convene_all(client, lyon, lyon_session)
    convocation_id = db.session.scalar(select(Convocation.id))
    as_other = api_as(client, charge(VILLEURBANNE))
    base = f"/api/v1/rio-sessions/{fresh(lyon_session).id}"
    assert as_other.get(base).status_code == 404
    assert as_other.get(f"{base}/convocations").status_code == 404
    assert as_other.post(f"{base}/convene", json={}).status_code == 404
    assert (
        as_other.put(
            f"{base}/attendance", json={"items": [{"person_id": 1, "attendance": "present"}]}
        ).status_code
        == 404
    )
    assert as_other.get(f"{base}/convocations/{convocation_id}/letter").status_code == 404
    listed = as_other.get("/api/v1/rio-sessions").json
    assert listed["total"] == 0


def test_roles_on_rio_sessions(client):
    session = session_in("LYON")
    manager = AgentFactory(roles=[Role.MANAGER], territory_codes=["LYON"])
    referent = AgentFactory(roles=[Role.REFERENT])
    admin = AgentFactory(roles=[Role.ADMIN])
    persist()
    base = f"/api/v1/rio-sessions/{session.id}"
    assert api_as(client, manager).get(base).status_code == 200
    assert api_as(client, manager).post(f"{base}/convene", json={}).status_code == 403
    assert api_as(client, referent).get(base).status_code == 403
    assert api_as(client, None).get(base).status_code == 401
    assert api_as(client, admin).get(base).status_code == 200
    assert api_as(client, admin).get("/api/v1/rio-sessions").json["total"] == 1
