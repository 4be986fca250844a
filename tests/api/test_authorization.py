"""Who may call what: a role × endpoint matrix, then the person scope of each role (IDOR)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from spie.agents.models import Agent
from spie.auth.login import create_api_token
from spie.db import db
from spie.jobs.models import JobRun, JobStatus
from spie.persons.models import Person
from tests.api.worlds import PERSON_KEYS, VISIBLE, World, build_world, prepare_referrals
from tests.factories import commune_of
from tests.helpers import api_as

REF, CO, MAN, ADM = "referent1", "charge", "manager", "admin"
EVERY_AGENT = frozenset({REF, CO, MAN, ADM})
ROLES = (REF, CO, MAN, ADM, "anonymous")


@pytest.fixture
def world(app) -> World:
    return build_world()


# --- the matrix ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    method: str
    rule: str  # as in the URL map, to check the matrix covers every endpoint
    allowed: frozenset[str]
    success: int
    url: Callable[[World, Agent | None], str]
    body: Callable[[World], Any] | None = None
    if_match: bool = False


def _token_of(_world: World, agent: Agent | None) -> str:
    if agent is None:
        return "/api/v1/auth/tokens/999999"
    token, _value = create_api_token(agent, "to revoke", dt.timedelta(hours=1))
    return f"/api/v1/auth/tokens/{token.id}"


def _job_run(_world: World, _agent: Agent | None) -> str:
    run = JobRun(
        id=str(uuid.uuid4()), name="tests.sample", queue="default", status=JobStatus.QUEUED
    )
    db.session.add(run)
    db.session.flush()
    return f"/api/v1/admin/jobs/{run.id}"


def _referral(world: World) -> dict[str, Any]:
    prepare_referrals()
    return {
        "public": "rsj",
        "last_name": "Orientee",
        "first_name": "Lou",
        "birth_date": "2003-05-06",
        "commune_insee": commune_of("LYON").insee_code,
        "referral_source": "Mission locale",
    }


def _new_structure(_world: World) -> dict[str, Any]:
    return {"name": f"Nouvelle structure {uuid.uuid4().hex[:8]}", "type": "plie"}


def _new_agent(world: World) -> dict[str, Any]:
    return {
        "email": f"new-{uuid.uuid4().hex[:8]}@spie.test",
        "first_name": "Nouvel",
        "last_name": "Agent",
        "structure_id": world.s1.id,
        "roles": ["referent"],
    }


def _queue_person(world: World, _agent: Agent | None) -> str:
    return f"/api/v1/persons/{world.persons['queue'].id}"


def _fixed(url: str) -> Callable[[World, Agent | None], str]:
    return lambda _world, _agent: url


CASES: dict[str, Case] = {
    "auth.me": Case("GET", "/api/v1/auth/me", EVERY_AGENT, 200, _fixed("/api/v1/auth/me")),
    "auth.logout": Case(
        "POST", "/api/v1/auth/logout", EVERY_AGENT, 204, _fixed("/api/v1/auth/logout")
    ),
    "auth.tokens.list": Case(
        "GET", "/api/v1/auth/tokens", EVERY_AGENT, 200, _fixed("/api/v1/auth/tokens")
    ),
    "auth.tokens.create": Case(
        "POST",
        "/api/v1/auth/tokens",
        EVERY_AGENT,
        201,
        _fixed("/api/v1/auth/tokens"),
        body=lambda _w: {"name": "script"},
    ),
    "auth.tokens.revoke": Case(
        "DELETE", "/api/v1/auth/tokens/<int:token_id>", EVERY_AGENT, 204, _token_of
    ),
    "persons.list": Case("GET", "/api/v1/persons", EVERY_AGENT, 200, _fixed("/api/v1/persons")),
    "persons.search": Case(
        "POST",
        "/api/v1/persons/search",
        EVERY_AGENT,
        200,
        _fixed("/api/v1/persons/search"),
        body=lambda _w: {"name": "scopetest"},
    ),
    "persons.refer": Case(
        "POST",
        "/api/v1/persons",
        frozenset({REF, CO, ADM}),
        201,
        _fixed("/api/v1/persons"),
        body=_referral,
    ),
    "persons.get": Case("GET", "/api/v1/persons/<int:person_id>", EVERY_AGENT, 200, _queue_person),
    "persons.contacts": Case(
        "PATCH",
        "/api/v1/persons/<int:person_id>/contacts",
        frozenset({REF, CO, ADM}),
        200,
        lambda w, a: _queue_person(w, a) + "/contacts",
        body=lambda _w: {"phone": "04 72 00 00 00"},
        if_match=True,
    ),
    "structures.list": Case(
        "GET", "/api/v1/structures", EVERY_AGENT, 200, _fixed("/api/v1/structures")
    ),
    "structures.get": Case(
        "GET",
        "/api/v1/structures/<int:structure_id>",
        EVERY_AGENT,
        200,
        lambda w, _a: f"/api/v1/structures/{w.s2.id}",
    ),
    "structures.create": Case(
        "POST",
        "/api/v1/structures",
        frozenset({ADM}),
        201,
        _fixed("/api/v1/structures"),
        body=_new_structure,
    ),
    "structures.update": Case(
        "PATCH",
        "/api/v1/structures/<int:structure_id>",
        frozenset({ADM}),
        200,
        lambda w, _a: f"/api/v1/structures/{w.s2.id}",
        body=lambda _w: {"capacity": 42},
        if_match=True,
    ),
    "territories.list": Case(
        "GET", "/api/v1/territories", EVERY_AGENT, 200, _fixed("/api/v1/territories")
    ),
    "territories.get": Case(
        "GET",
        "/api/v1/territories/<int:territory_id>",
        EVERY_AGENT,
        200,
        lambda w, _a: f"/api/v1/territories/{w.t2.id}",
    ),
    "communes.list": Case("GET", "/api/v1/communes", EVERY_AGENT, 200, _fixed("/api/v1/communes")),
    "agents.list": Case("GET", "/api/v1/agents", EVERY_AGENT, 200, _fixed("/api/v1/agents")),
    "agents.get": Case(
        "GET",
        "/api/v1/agents/<int:agent_id>",
        EVERY_AGENT,
        200,
        lambda w, _a: f"/api/v1/agents/{w.agents[REF].id}",
    ),
    "agents.create": Case(
        "POST", "/api/v1/agents", frozenset({ADM}), 201, _fixed("/api/v1/agents"), body=_new_agent
    ),
    "agents.update": Case(
        "PATCH",
        "/api/v1/agents/<int:agent_id>",
        frozenset({ADM}),
        200,
        lambda w, _a: f"/api/v1/agents/{w.agents[MAN].id}",
        body=lambda _w: {"caseload_capacity": 80},
        if_match=True,
    ),
    "admin.jobs": Case(
        "GET", "/api/v1/admin/jobs", frozenset({ADM}), 200, _fixed("/api/v1/admin/jobs")
    ),
    "admin.job": Case("GET", "/api/v1/admin/jobs/<string:job_id>", frozenset({ADM}), 200, _job_run),
    "admin.audit": Case(
        "GET", "/api/v1/admin/audit", frozenset({ADM}), 200, _fixed("/api/v1/admin/audit")
    ),
}

# Blueprints of the foundation: every one of their non-public endpoints is in the matrix.
FOUNDATION_BLUEPRINTS = {"auth_api", "persons", "structures", "territories", "agents", "admin"}


def test_matrix_covers_every_endpoint_of_the_foundation(app):
    from spie.auth.access import access_declaration

    in_app = set()
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.split(".", 1)[0]
        if blueprint not in FOUNDATION_BLUEPRINTS:
            continue
        if (access_declaration(app.view_functions[rule.endpoint]) or {}).get("public"):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            in_app.add((method, rule.rule))
    assert in_app == {(case.method, case.rule) for case in CASES.values()}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case_name", sorted(CASES))
def test_role_matrix(client, world, case_name, role):
    case = CASES[case_name]
    agent = world.agents.get(role)
    url = case.url(world, agent)
    headers = {}
    if case.if_match:
        headers["If-Match"] = "*"
    body = case.body(world) if case.body else None
    kwargs: dict[str, Any] = {"headers": headers}
    if body is not None:
        kwargs["json"] = body
    api = api_as(client, agent)
    trail_before = _audit_count()
    response = getattr(api, case.method.lower())(url, **kwargs)

    if agent is None:
        expected = 401
    elif role in case.allowed:
        expected = case.success
    else:
        expected = 403
    assert response.status_code == expected, response.get_data(as_text=True)
    if expected >= 400:
        assert response.mimetype == "application/problem+json"
        assert _audit_count() == trail_before  # a refused call wrote nothing, read no file


def _audit_count() -> int:
    from sqlalchemy import func, select

    from spie.audit.models import AuditEvent

    return db.session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_anonymous_unsafe_request_answers_401_not_a_csrf_error(client, world):
    """Without credentials the answer is "authenticate", whatever the method."""
    response = client.patch(
        f"/api/v1/persons/{world.persons['queue'].id}/contacts",
        json={"phone": "0472000000"},
        headers={"If-Match": "*"},
    )
    assert response.status_code == 401
    assert response.json["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --- person scope: list, search, get, patch contacts --------------------------------------

AGENT_KEYS = ("referent1", "referent2", "charge", "manager", "admin")


def _listed(client, agent: Agent, world: World) -> set[int]:
    response = api_as(client, agent).get("/api/v1/persons?per_page=100")
    assert response.status_code == 200, response.json
    return {item["id"] for item in response.json["items"]} & world.ids(PERSON_KEYS)


@pytest.mark.parametrize("who", AGENT_KEYS)
def test_list_shows_exactly_the_scope(client, world, who):
    assert _listed(client, world.agents[who], world) == world.ids(VISIBLE[who])


def _criteria(person: Person) -> dict[str, dict[str, str]]:
    assert person.household is not None
    assert person.nir is not None
    assert person.france_travail_id is not None
    return {
        "name": {"name": f"{person.last_name} {person.first_name}"},
        "nir": {"nir": person.nir},
        "caf_matricule": {"caf_matricule": person.household.caf_matricule},
        "france_travail_id": {"france_travail_id": person.france_travail_id.lower()},
    }


@pytest.mark.parametrize("criterion", ["name", "nir", "caf_matricule", "france_travail_id"])
@pytest.mark.parametrize("who", AGENT_KEYS)
def test_search_finds_only_persons_in_scope(client, world, who, criterion):
    api = api_as(client, world.agents[who])
    found: dict[str, bool] = {}
    for key in PERSON_KEYS:
        person = world.persons[key]
        response = api.post("/api/v1/persons/search", json=_criteria(person)[criterion])
        assert response.status_code == 200, response.json
        ids = {item["id"] for item in response.json["items"]}
        assert ids <= {person.id}, "a criterion of one person matched another"
        found[key] = person.id in ids
    assert {k for k, hit in found.items() if hit} == VISIBLE[who]


def _not_found_shape(body: dict[str, Any], person_id: int) -> dict[str, Any]:
    return {**body, "detail": body["detail"].replace(str(person_id), "<id>"), "instance": None}


@pytest.mark.parametrize("who", AGENT_KEYS)
def test_get_answers_404_outside_the_scope_like_a_missing_id(client, world, who):
    api = api_as(client, world.agents[who])
    missing_id = max(world.ids(PERSON_KEYS)) + 10_000
    missing = api.get(f"/api/v1/persons/{missing_id}")
    assert missing.status_code == 404
    for key in PERSON_KEYS:
        person = world.persons[key]
        response = api.get(f"/api/v1/persons/{person.id}")
        if key in VISIBLE[who]:
            assert response.status_code == 200, (key, response.json)
            assert response.json["id"] == person.id
        else:
            assert response.status_code == 404, key
            # Nothing tells a guessed id from a missing one.
            assert _not_found_shape(response.json, person.id) == _not_found_shape(
                missing.json, missing_id
            )
            assert "ETag" not in response.headers


@pytest.mark.parametrize("who", ["referent1", "referent2", "charge", "admin"])
def test_patch_contacts_only_inside_the_scope(client, world, who):
    api = api_as(client, world.agents[who])
    for key in PERSON_KEYS:
        person = world.persons[key]
        phone = f"04 78 00 00 {PERSON_KEYS.index(key):02d}"
        response = api.patch(
            f"/api/v1/persons/{person.id}/contacts",
            json={"phone": phone},
            headers={"If-Match": f'"{person.version}"'},
        )
        db.session.expire_all()
        if key in VISIBLE[who]:
            assert response.status_code == 200, (key, response.json)
            assert db.session.get(Person, person.id).phone == phone
        else:
            assert response.status_code == 404, key
            assert db.session.get(Person, person.id).phone != phone


def test_manager_cannot_patch_contacts_even_in_territory(client, world):
    person = world.persons["queue"]
    response = api_as(client, world.agents["manager"]).patch(
        f"/api/v1/persons/{person.id}/contacts",
        json={"phone": "0478000000"},
        headers={"If-Match": "*"},
    )
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(Person, person.id).phone != "0478000000"


def test_referent_list_follows_the_end_of_an_assignment(client, world):
    """Caseload is the *active* assignment: once ended, the person leaves the référent's scope."""
    from spie.db import utcnow
    from spie.referent.models import ReferentAssignment

    referent1 = world.agents["referent1"]
    assert world.persons["caseload"].id in _listed(client, referent1, world)
    assignment = (
        db.session.query(ReferentAssignment)
        .filter_by(person_id=world.persons["caseload"].id, ended_at=None)
        .one()
    )
    assignment.ended_at = utcnow()
    db.session.flush()
    # Organisme référent is still s1 and nobody is active: back in s1's queue.
    assert world.persons["caseload"].id in _listed(client, referent1, world)
    world.persons["caseload"].current_structure_id = world.s2.id
    db.session.flush()
    assert world.persons["caseload"].id not in _listed(client, referent1, world)


# --- agents -------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["referent1", "charge", "manager"])
def test_non_admins_see_only_the_agents_of_their_structure(client, world, who):
    me = world.agents[who]
    api = api_as(client, me)
    response = api.get("/api/v1/agents?per_page=100")
    assert response.status_code == 200
    assert {item["structure_id"] for item in response.json["items"]} == {me.structure_id}
    listed = {item["id"] for item in response.json["items"]}
    assert world.agents["referent2"].id not in listed
    assert world.agents["referent1"].id in listed
    # Filtering on another structure does not widen the scope.
    other = api.get(f"/api/v1/agents?structure_id={world.s2.id}")
    assert other.status_code == 200
    assert other.json["items"] == []
    assert api.get(f"/api/v1/agents/{world.agents['referent2'].id}").status_code == 404


def test_admin_sees_agents_of_every_structure(client, world):
    response = api_as(client, world.agents["admin"]).get("/api/v1/agents?per_page=100")
    listed = {item["id"] for item in response.json["items"]}
    assert {a.id for a in world.agents.values()} <= listed
    assert (
        api_as(client, world.agents["admin"])
        .get(f"/api/v1/agents/{world.agents['referent2'].id}")
        .status_code
        == 200
    )


def test_an_agent_cannot_revoke_someone_elses_token(client, world):
    victim = world.agents["referent2"]
    token, value = create_api_token(victim, "victim", dt.timedelta(hours=1))
    response = api_as(client, world.agents["referent1"]).delete(f"/api/v1/auth/tokens/{token.id}")
    assert response.status_code == 404
    assert (
        client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {value}"}).json["id"]
        == victim.id
    )
