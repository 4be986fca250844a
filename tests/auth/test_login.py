"""Agent authentication: HTML form and JSON sessions (CSRF, cookies, fixation), Bearer tokens,
rate-limited logins, deactivation and password changes."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from spie.agents.models import Agent, Role
from spie.auth.login import create_api_token
from spie.clocks.today import paris_today
from spie.db import db
from spie.extensions import limiter
from tests.factories import TEST_PASSWORD, AgentFactory, PersonFactory
from tests.helpers import api_as

PROBLEM = "application/problem+json"


@pytest.fixture
def agent(app) -> Agent:
    return AgentFactory(roles=[Role.REFERENT])


@pytest.fixture
def admin(app) -> Agent:
    return AgentFactory(roles=[Role.ADMIN])


def _form_token(client: Any) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert found is not None
    return found.group(1)


def _session_cookie_header(response: Any) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("spie_session=")]
    assert len(cookies) == 1, response.headers.getlist("Set-Cookie")
    return cookies[0]


def _json_login(client: Any, email: str, password: str = TEST_PASSWORD) -> Any:
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


# --- HTML form ----------------------------------------------------------------------------


def test_html_login_without_csrf_token_is_refused(client, agent):
    response = client.post("/login", data={"email": agent.email, "password": TEST_PASSWORD})
    assert response.status_code == 400
    assert response.mimetype == PROBLEM
    assert "csrf" in response.json["detail"].lower()
    assert client.get("/api/v1/auth/me").status_code == 401


def test_html_login_with_a_forged_csrf_token_is_refused(client, agent):
    _form_token(client)
    response = client.post(
        "/login", data={"email": agent.email, "password": TEST_PASSWORD, "csrf_token": "forged"}
    )
    assert response.status_code == 400
    assert client.get("/api/v1/auth/me").status_code == 401


def test_html_login_with_csrf_token_opens_a_session_with_safe_cookie(client, agent):
    token = _form_token(client)
    response = client.post(
        "/login?next=/healthz",
        data={"email": agent.email, "password": TEST_PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/healthz")
    cookie = _session_cookie_header(response)
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    me = client.get("/api/v1/auth/me")
    assert me.status_code == 200
    assert me.json["id"] == agent.id


def test_html_login_refuses_open_redirects(client, agent):
    token = _form_token(client)
    response = client.post(
        "/login?next=//evil.example/x",
        data={"email": agent.email, "password": TEST_PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert "evil.example" not in response.headers["Location"]


def test_html_login_wrong_password_shows_the_form_again(client, agent):
    token = _form_token(client)
    response = client.post(
        "/login", data={"email": agent.email, "password": "wrong password", "csrf_token": token}
    )
    assert response.status_code == 401
    assert "incorrect" in response.get_data(as_text=True)
    assert client.get("/api/v1/auth/me").status_code == 401


def test_login_starts_a_fresh_session(client, agent):
    """Session fixation: nothing put in the session before authentication survives it."""
    token = _form_token(client)
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    client.post(
        "/login", data={"email": agent.email, "password": TEST_PASSWORD, "csrf_token": token}
    )
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["_user_id"].startswith(f"agent:{agent.id}:")


def test_session_cookie_is_secure_when_configured(app, client, agent):
    app.config["SESSION_COOKIE_SECURE"] = True
    try:
        response = _json_login(client, agent.email)
        assert response.status_code == 200
        assert "Secure" in _session_cookie_header(response)
    finally:
        app.config["SESSION_COOKIE_SECURE"] = False


def test_html_logout_needs_csrf_and_ends_the_session(client, agent):
    before_login = _form_token(client)
    client.post(
        "/login", data={"email": agent.email, "password": TEST_PASSWORD, "csrf_token": before_login}
    )
    assert client.post("/logout").status_code == 400  # no token: a cross-site form cannot log out
    # The session was renewed at login: the token of the anonymous session is void.
    assert client.post("/logout", data={"csrf_token": before_login}).status_code == 400
    assert client.get("/api/v1/auth/me").status_code == 200
    home = client.get("/").get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', home)
    assert found is not None
    assert client.post("/logout", data={"csrf_token": found.group(1)}).status_code == 302
    assert client.get("/api/v1/auth/me").status_code == 401


# --- JSON sessions and CSRF ---------------------------------------------------------------


def test_json_login_then_cookie_writes_need_the_csrf_header(client, agent):
    person = PersonFactory(current_structure_id=agent.structure_id)
    login = _json_login(client, agent.email)
    assert login.status_code == 200
    assert login.json["agent"]["id"] == agent.id
    csrf_token = login.json["csrf_token"]
    assert "HttpOnly" in _session_cookie_header(login)

    url = f"/api/v1/persons/{person.id}/contacts"
    without = client.patch(url, json={"phone": "0472000001"}, headers={"If-Match": "*"})
    assert without.status_code == 400
    assert without.mimetype == PROBLEM
    wrong = client.patch(
        url, json={"phone": "0472000001"}, headers={"If-Match": "*", "X-CSRFToken": "nope"}
    )
    assert wrong.status_code == 400
    db.session.expire_all()
    assert db.session.get(type(person), person.id).phone is None

    ok = client.patch(
        url, json={"phone": "0472000001"}, headers={"If-Match": "*", "X-CSRFToken": csrf_token}
    )
    assert ok.status_code == 200, ok.json
    assert ok.json["phone"] == "0472000001"


def test_csrf_endpoint_token_works_for_cookie_writes(client, agent):
    _json_login(client, agent.email)
    token = client.get("/api/v1/auth/csrf").json["csrf_token"]
    response = client.post(
        "/api/v1/auth/tokens", json={"name": "cli"}, headers={"X-CSRFToken": token}
    )
    assert response.status_code == 201


def test_bearer_requests_need_no_csrf_token(client, agent):
    person = PersonFactory(current_structure_id=agent.structure_id)
    response = api_as(client, agent).patch(
        f"/api/v1/persons/{person.id}/contacts",
        json={"phone": "0472000002"},
        headers={"If-Match": "*"},
    )
    assert response.status_code == 200, response.json


def test_json_login_with_wrong_password_is_401_problem(client, agent):
    response = _json_login(client, agent.email, "not the password")
    assert response.status_code == 401
    assert response.mimetype == PROBLEM
    assert response.json["code"] == "bad_credentials"
    assert client.get("/api/v1/auth/me").status_code == 401


def test_json_logout_ends_the_session(client, agent):
    token = _json_login(client, agent.email).json["csrf_token"]
    assert client.post("/api/v1/auth/logout", headers={"X-CSRFToken": token}).status_code == 204
    assert client.get("/api/v1/auth/me").status_code == 401


# --- Bearer tokens ------------------------------------------------------------------------


def test_token_from_password_is_returned_once_and_works(client, agent):
    response = client.post(
        "/api/v1/auth/token", json={"email": agent.email, "password": TEST_PASSWORD, "name": "etl"}
    )
    assert response.status_code == 201, response.json
    value = response.json["token"]
    assert value.startswith(response.json["prefix"])
    assert response.json["name"] == "etl"
    assert response.json["expires_at"]
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {value}"})
    assert me.status_code == 200
    assert me.json["id"] == agent.id
    listed = client.get("/api/v1/auth/tokens", headers={"Authorization": f"Bearer {value}"})
    assert "token" not in listed.json[0]


def test_token_from_wrong_password_is_refused(client, agent):
    response = client.post(
        "/api/v1/auth/token", json={"email": agent.email, "password": "not the password"}
    )
    assert response.status_code == 401
    assert "token" not in response.json


def test_revoked_token_is_401(client, agent):
    api = api_as(client, agent)
    token, value = create_api_token(agent, "to revoke", dt.timedelta(hours=1))
    headers = {"Authorization": f"Bearer {value}"}
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    assert api.delete(f"/api/v1/auth/tokens/{token.id}").status_code == 204
    response = client.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 401
    assert response.json["code"] == "invalid_token"


def test_expired_token_is_401(client, agent):
    _token, value = create_api_token(agent, "expired", dt.timedelta(seconds=-1))
    response = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {value}"})
    assert response.status_code == 401
    assert response.json["code"] == "invalid_token"


def test_created_token_expiry_follows_the_requested_ttl(client, agent):
    response = api_as(client, agent).post("/api/v1/auth/tokens", json={"name": "x", "ttl_hours": 2})
    assert response.status_code == 201
    expires = dt.datetime.fromisoformat(response.json["expires_at"])
    created = dt.datetime.fromisoformat(response.json["created_at"])
    assert dt.timedelta(hours=1, minutes=59) < expires - created <= dt.timedelta(hours=2, seconds=5)


# --- rate limit ---------------------------------------------------------------------------


@pytest.fixture
def strict_login_limit(app: Flask) -> Iterator[None]:
    previous = app.config["SPIE_LOGIN_RATE_LIMIT"]
    app.config["SPIE_LOGIN_RATE_LIMIT"] = "3 per minute"
    limiter.reset()
    try:
        yield
    finally:
        app.config["SPIE_LOGIN_RATE_LIMIT"] = previous
        limiter.reset()


@pytest.mark.usefixtures("strict_login_limit")
def test_json_login_is_rate_limited(client, agent):
    for _ in range(3):
        assert _json_login(client, agent.email, "wrong password").status_code == 401
    blocked = _json_login(client, agent.email, TEST_PASSWORD)  # even the right password
    assert blocked.status_code == 429
    assert blocked.mimetype == PROBLEM
    assert blocked.json["status"] == 429
    assert "Retry-After" in blocked.headers
    assert client.get("/api/v1/auth/me").status_code == 401


@pytest.mark.usefixtures("strict_login_limit")
def test_token_exchange_is_rate_limited(client, agent):
    body = {"email": agent.email, "password": "wrong password"}
    for _ in range(3):
        assert client.post("/api/v1/auth/token", json=body).status_code == 401
    blocked = client.post("/api/v1/auth/token", json=body)
    assert blocked.status_code == 429
    assert blocked.mimetype == PROBLEM


@pytest.mark.usefixtures("strict_login_limit")
def test_html_login_is_rate_limited_but_the_form_still_displays(client, agent):
    token = _form_token(client)
    for _ in range(3):
        response = client.post(
            "/login", data={"email": agent.email, "password": "wrong", "csrf_token": token}
        )
        assert response.status_code == 401
    blocked = client.post(
        "/login", data={"email": agent.email, "password": TEST_PASSWORD, "csrf_token": token}
    )
    assert blocked.status_code == 429
    assert blocked.mimetype == PROBLEM
    assert client.get("/login").status_code == 200  # GET is not limited


# --- deactivation and password change -----------------------------------------------------


def test_deactivated_agent_cannot_log_in_and_loses_existing_access(client, admin, agent):
    _token, value = create_api_token(agent, "before", dt.timedelta(hours=1))
    bearer = {"Authorization": f"Bearer {value}"}
    session_client = type(client)(client.application, client.application.response_class)
    assert _json_login(session_client, agent.email).status_code == 200
    assert client.get("/api/v1/auth/me", headers=bearer).status_code == 200
    assert session_client.get("/api/v1/auth/me").status_code == 200

    yesterday = paris_today() - dt.timedelta(days=1)
    api = api_as(client, admin)
    etag = api.get(f"/api/v1/agents/{agent.id}").headers["ETag"]
    response = api.patch(
        f"/api/v1/agents/{agent.id}",
        json={"active_until": yesterday.isoformat()},
        headers={"If-Match": etag},
    )
    assert response.status_code == 200, response.json

    assert client.get("/api/v1/auth/me", headers=bearer).status_code == 401
    assert session_client.get("/api/v1/auth/me").status_code == 401
    fresh = type(client)(client.application, client.application.response_class)
    assert _json_login(fresh, agent.email).status_code == 401
    assert (
        fresh.post(
            "/api/v1/auth/token", json={"email": agent.email, "password": TEST_PASSWORD}
        ).status_code
        == 401
    )


def test_agent_not_active_yet_cannot_log_in(client):
    future = AgentFactory(active_from=paris_today() + dt.timedelta(days=3))
    assert _json_login(client, future.email).status_code == 401


def test_password_change_invalidates_other_sessions(client, admin, agent):
    assert _json_login(client, agent.email).status_code == 200
    with client.session_transaction() as session:
        user_id = session["_user_id"]
    stored = db.session.get(Agent, agent.id)
    db.session.refresh(stored)
    assert user_id == stored.get_id()
    assert user_id.endswith(stored.session_state.nonce)  # the server-side session nonce
    assert client.get("/api/v1/auth/me").status_code == 200

    new_password = "a brand new passphrase"
    other = type(client)(client.application, client.application.response_class)
    response = api_as(other, admin).patch(
        f"/api/v1/agents/{agent.id}",
        json={"password": new_password},
        headers={"If-Match": "*"},
    )
    assert response.status_code == 200, response.json

    assert client.get("/api/v1/auth/me").status_code == 401
    assert _json_login(other, agent.email).status_code == 401  # the old password is gone
    assert _json_login(other, agent.email, new_password).status_code == 200


def test_a_session_cookie_copied_before_logout_is_void_after_it(client, agent):
    token = _json_login(client, agent.email).json["csrf_token"]
    cookie = client.get_cookie("spie_session", domain="spie.test")
    assert cookie is not None
    copied = cookie.value
    assert client.post("/api/v1/auth/logout", headers={"X-CSRFToken": token}).status_code == 204
    assert client.get("/api/v1/auth/me").status_code == 401
    client.set_cookie("spie_session", copied, domain="spie.test")
    assert client.get("/api/v1/auth/me").status_code == 401


def test_a_bearer_request_loads_its_agent_in_one_statement(client, app):
    """Token, agent, roles, territories and session nonce in one round trip: the
    relationships' own loading would add four statements to every API call."""
    from spie.territories.models import Territory
    from tests.parcours.factories import StatementCounter

    agent = AgentFactory(roles=[Role.REFERENT, Role.MANAGER])
    agent.territories = list(db.session.scalars(select(Territory).limit(2)))
    db.session.flush()
    _token, value = create_api_token(agent, "t", dt.timedelta(hours=1))
    headers = {"Authorization": f"Bearer {value}"}
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200  # warm
    with StatementCounter() as counter:
        response = client.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 200, response.json
    assert sorted(response.json["roles"]) == ["manager", "referent"]
    auth = [s for s in counter.statements if "api_tokens" in s]
    assert len(auth) == 1
    assert all(
        table not in s
        for s in counter.statements
        if s not in auth
        for table in ("FROM agent_roles", "FROM agent_session_states", "agent_territories.agent_id")
    )
