"""The audit trail: every read of a person's file and every write, who/when/why/from where,
field names only, append-only."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from spie.agents.models import Role
from spie.audit.models import ActorKind, AuditAction, AuditEvent
from spie.audit.service import record
from spie.db import db
from tests.api.worlds import prepare_referrals
from tests.conftest import ON_POSTGRES
from tests.factories import TEST_PASSWORD, AgentFactory, PersonFactory, commune_of
from tests.helpers import api_as


def _events(**where: object) -> list[AuditEvent]:
    db.session.expire_all()
    query = select(AuditEvent).order_by(AuditEvent.id)
    for name, value in where.items():
        query = query.where(getattr(AuditEvent, name) == value)
    return list(db.session.scalars(query))


@pytest.fixture
def referent(app):
    return AgentFactory(roles=[Role.REFERENT])


@pytest.fixture
def admin(app):
    return AgentFactory(roles=[Role.ADMIN])


def test_reading_a_file_records_who_why_and_from_where(client, referent):
    person = PersonFactory(current_structure_id=referent.structure_id)
    response = api_as(client, referent).get(
        f"/api/v1/persons/{person.id}?reason=work_queue", headers={"X-Request-Id": "req-audit-1"}
    )
    assert response.status_code == 200
    events = _events(person_id=person.id)
    assert len(events) == 1
    event = events[0]
    assert event.action == AuditAction.READ
    assert event.actor_kind == ActorKind.AGENT
    assert event.actor_agent_id == referent.id
    assert event.actor_structure_id == referent.structure_id
    assert (event.resource_type, event.resource_id) == ("person", str(person.id))
    assert event.reason == "work_queue"
    assert event.ip == "127.0.0.1"
    assert event.request_id == "req-audit-1"
    assert event.at is not None


def test_every_read_is_recorded_and_the_default_reason_is_consultation(client, referent):
    person = PersonFactory(current_structure_id=referent.structure_id)
    api = api_as(client, referent)
    for _ in range(3):
        assert api.get(f"/api/v1/persons/{person.id}").status_code == 200
    events = _events(person_id=person.id, action=AuditAction.READ)
    assert [e.reason for e in events] == ["consultation"] * 3


def test_a_refused_read_records_no_read(client, referent):
    outside = PersonFactory()  # no structure, no référent: outside the référent's scope
    assert api_as(client, referent).get(f"/api/v1/persons/{outside.id}").status_code == 404
    assert _events(person_id=outside.id) == []


def test_lists_and_searches_show_summaries_and_are_not_file_reads(client, admin):
    person = PersonFactory(last_name="Auditlist")
    api = api_as(client, admin)
    listed = api.get("/api/v1/persons")
    assert person.id in {item["id"] for item in listed.json["items"]}
    assert "nir" not in listed.json["items"][0]
    found = api.post("/api/v1/persons/search", json={"name": "auditlist"})
    assert [item["id"] for item in found.json["items"]] == [person.id]
    assert _events(person_id=person.id) == []


def test_referral_records_a_creation_without_personal_values(client, admin):
    prepare_referrals()
    nir13 = "2030569123045"
    from spie.common.nir import nir_with_key

    body = {
        "public": "rsj",
        "last_name": "Vergnaud",
        "first_name": "Maëlys",
        "birth_date": "2003-05-06",
        "nir": nir_with_key(nir13),
        "email": "maelys@example.org",
        "phone": "0611223344",
        "address_line": "3 rue des Tanneurs",
        "commune_insee": commune_of("LYON").insee_code,
        "referral_source": "Mission locale",
    }
    response = api_as(client, admin).post("/api/v1/persons", json=body)
    assert response.status_code == 201, response.json
    person_id = response.json["id"]
    creations = _events(person_id=person_id, action=AuditAction.CREATE, resource_type="person")
    assert len(creations) == 1
    event = creations[0]
    assert event.actor_agent_id == admin.id
    assert event.ip == "127.0.0.1"
    dumped = json.dumps(event.details, ensure_ascii=False) + (event.reason or "")
    for value in ("Vergnaud", "Maëlys", nir13, "maelys@example.org", "0611223344", "Tanneurs"):
        assert value not in dumped


def test_contact_update_records_the_field_names_only(client, admin):
    person = PersonFactory(email="old@example.org")
    response = api_as(client, admin).patch(
        f"/api/v1/persons/{person.id}/contacts",
        json={"email": "new@example.org", "phone": "0699887766", "address_line": None},
        headers={"If-Match": f'"{person.version}"'},
    )
    assert response.status_code == 200, response.json
    updates = _events(person_id=person.id, action=AuditAction.UPDATE)
    assert len(updates) == 1
    # address_line was already empty: not a change.
    assert updates[0].details == {"fields": ["email", "phone"]}
    assert updates[0].reason == "contacts"
    dumped = json.dumps(updates[0].details)
    assert "example.org" not in dumped
    assert "0699887766" not in dumped


def test_a_write_refused_for_a_stale_version_records_nothing(client, admin):
    person = PersonFactory()
    response = api_as(client, admin).patch(
        f"/api/v1/persons/{person.id}/contacts",
        json={"phone": "0699887766"},
        headers={"If-Match": '"99"'},
    )
    assert response.status_code == 409
    assert _events(person_id=person.id) == []


def test_admin_writes_on_structures_and_agents_are_recorded(client, admin):
    api = api_as(client, admin)
    created = api.post("/api/v1/structures", json={"name": "PLIE de test audit", "type": "plie"})
    assert created.status_code == 201
    structure_id = created.json["id"]
    api.patch(f"/api/v1/structures/{structure_id}", json={"capacity": 9}, headers={"If-Match": "*"})
    events = _events(resource_type="structure", resource_id=str(structure_id))
    assert [(e.action, e.actor_agent_id) for e in events] == [
        (AuditAction.CREATE, admin.id),
        (AuditAction.UPDATE, admin.id),
    ]
    assert events[1].details == {"fields": ["capacity"]}

    agent = api.post(
        "/api/v1/agents",
        json={
            "email": "audit.agent@spie.test",
            "first_name": "A",
            "last_name": "B",
            "structure_id": structure_id,
            "roles": ["referent"],
            "password": "a long enough password",
        },
    )
    assert agent.status_code == 201, agent.json
    event = _events(resource_type="agent", resource_id=str(agent.json["id"]))[0]
    assert event.action == AuditAction.CREATE
    assert "password" in event.details["fields"]
    assert "a long enough password" not in json.dumps(event.details)


def test_api_logins_are_recorded_failed_and_successful(client):
    agent = AgentFactory()
    failed = client.post("/api/v1/auth/login", json={"email": agent.email, "password": "wrong" * 3})
    assert failed.status_code == 401
    unknown = client.post(
        "/api/v1/auth/login", json={"email": "nobody@spie.test", "password": TEST_PASSWORD}
    )
    assert unknown.status_code == 401
    ok = client.post("/api/v1/auth/login", json={"email": agent.email, "password": TEST_PASSWORD})
    assert ok.status_code == 200

    events = [e for e in _events() if e.action in {AuditAction.LOGIN, AuditAction.LOGIN_FAILED}]
    assert [(e.action, e.resource_id) for e in events] == [
        (AuditAction.LOGIN_FAILED, str(agent.id)),
        (AuditAction.LOGIN_FAILED, None),
        (AuditAction.LOGIN, str(agent.id)),
    ]
    assert all(e.ip == "127.0.0.1" for e in events)
    assert events[2].actor_agent_id == agent.id
    # The unknown address is not kept (it may be a mistyped personal address).
    assert all("nobody" not in json.dumps(e.details) for e in events)


def test_html_logins_are_recorded_failed_and_successful(client):
    import re

    agent = AgentFactory()
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    bad = client.post(
        "/login", data={"email": agent.email, "password": "nope", "csrf_token": token}
    )
    assert bad.status_code == 401
    good = client.post(
        "/login", data={"email": agent.email, "password": TEST_PASSWORD, "csrf_token": token}
    )
    assert good.status_code == 302
    actions = [e.action for e in _events(resource_type="agent", resource_id=str(agent.id))]
    assert actions == [AuditAction.LOGIN_FAILED, AuditAction.LOGIN]


def test_the_audit_api_shows_the_reads_of_a_person(client, admin, referent):
    person = PersonFactory(current_structure_id=referent.structure_id)
    api_as(client, referent).get(f"/api/v1/persons/{person.id}?reason=caseload")
    api_as(client, admin).get(f"/api/v1/persons/{person.id}?reason=alert")
    response = api_as(client, admin).get(f"/api/v1/admin/audit?person_id={person.id}&action=read")
    assert response.status_code == 200
    assert [
        (i["actor_agent_id"], i["actor_structure_id"], i["reason"]) for i in response.json["items"]
    ] == [
        (admin.id, admin.structure_id, "alert"),
        (referent.id, referent.structure_id, "caseload"),
    ]


# --- append-only --------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.skipif(
    not ON_POSTGRES,
    reason="the append-only trigger exists on PostgreSQL only (set SPIE_TEST_DATABASE_URL)",
)
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET reason = 'tampered' WHERE id = :id",
        "DELETE FROM audit_events WHERE id = :id",
    ],
)
def test_audit_events_cannot_be_updated_or_deleted(app, statement):
    event = record(AuditAction.READ, "person", 1, person_id=1, reason="consultation")
    db.session.flush()
    event_id = event.id
    with pytest.raises(DBAPIError, match="append-only"), db.session.begin_nested():
        db.session.execute(text(statement), {"id": event_id})
    db.session.expire_all()
    stored = db.session.get(AuditEvent, event_id)
    assert stored is not None
    assert stored.reason == "consultation"


def test_inserting_audit_events_stays_possible(app):
    """The counterpart of the trigger test, on every backend: appending works."""
    record(AuditAction.READ, "person", 2, person_id=2, reason="consultation")
    db.session.flush()
    assert [e.reason for e in _events(person_id=2)] == ["consultation"]
