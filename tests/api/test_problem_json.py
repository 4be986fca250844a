"""Every error is an ``application/problem+json`` document (RFC 9457) without personal data."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask

from spie.agents.models import Role
from spie.errors import PROBLEM_MIME, register_error_handlers
from tests.api.worlds import prepare_referrals
from tests.factories import AgentFactory, PersonFactory, StructureFactory, commune_of
from tests.helpers import api_as

CORE_KEYS = {"type", "title", "status", "detail", "code"}


def assert_problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_MIME
    body = response.json
    assert body.keys() >= CORE_KEYS
    assert body["status"] == status
    assert body["type"].endswith("/" + body["code"])
    assert body["title"]
    assert body["detail"]
    if code is not None:
        assert body["code"] == code
    return body


@pytest.fixture
def admin(app):
    return AgentFactory(roles=[Role.ADMIN])


@pytest.fixture
def referent(app):
    return AgentFactory(roles=[Role.REFERENT])


def test_401_without_credentials(client):
    response = client.get("/api/v1/persons")
    assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="spie"'


def test_401_with_an_unknown_token(client):
    response = client.get("/api/v1/auth/me", headers={"Authorization": "Bearer spie_nope"})
    assert_problem(response, 401, "invalid_token")


def test_403_for_a_wrong_role(client, referent):
    assert_problem(api_as(client, referent).get("/api/v1/admin/jobs"), 403, "forbidden")


def test_404_for_a_missing_resource_and_an_unknown_url(client, admin):
    api = api_as(client, admin)
    assert_problem(api.get("/api/v1/persons/987654"), 404, "not_found")
    assert_problem(api.get("/api/v1/no-such-thing"), 404)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/api/v1/persons/{id}"),
        ("DELETE", "/api/v1/auth/tokens/{id}"),
        ("GET", "/api/v1/rio-sessions/{id}"),
        ("POST", "/api/v1/imports/runs/{id}/resume"),
    ],
)
@pytest.mark.parametrize("row_id", [2**31, 2**63, 10**40])
def test_404_for_an_id_beyond_the_id_columns(client, admin, method, url, row_id):
    # Found by the API fuzz: the database cannot compare such a number (SQLite's driver
    # raised OverflowError, PostgreSQL answers "out of range for type integer"): it was a 500.
    response = api_as(client, admin)._call(method, url.format(id=row_id))
    assert_problem(response, 404)


def test_the_id_bound_is_published_in_the_openapi_document(client):
    document = client.get("/api/v1/openapi.json").json
    parameter = document["paths"]["/api/v1/persons/{person_id}"]["parameters"][0]
    assert parameter["schema"]["maximum"] == 2**31 - 1


def test_405_for_a_wrong_method(client, admin):
    response = api_as(client, admin).delete("/api/v1/persons")
    assert_problem(response, 405)


def test_405_for_an_anonymous_unsafe_method_is_not_a_csrf_error(client):
    assert_problem(client.put("/api/v1/persons"), 405)


def test_422_missing_fields(client, admin):
    body = assert_problem(
        api_as(client, admin).post("/api/v1/structures", json={}), 422, "validation_failed"
    )
    assert set(body["errors"]) == {"name", "type"}


def test_422_wrong_type(client, admin):
    body = assert_problem(
        api_as(client, admin).post(
            "/api/v1/structures", json={"name": "Une structure", "type": "mdm", "capacity": "x"}
        ),
        422,
        "validation_failed",
    )
    assert set(body["errors"]) == {"capacity"}


# Found by the API fuzz: integers no SQL INTEGER column can hold reached the database
# (SQLite's driver raised OverflowError, PostgreSQL "out of range for type integer"): 500s.
@pytest.mark.parametrize("number", [2**31, -(2**31) - 1, 10**40])
def test_422_integer_beyond_the_database_in_the_query_string(client, admin, number):
    body = assert_problem(
        api_as(client, admin).get(f"/api/v1/offers?provider_structure_id=1&territory_id={number}"),
        422,
        "validation_failed",
    )
    assert body["errors"] == {
        "territory_id": ["Nombre hors des bornes acceptées (-2147483648 à 2147483647)."]
    }


def test_422_integer_beyond_the_database_in_the_body_and_in_a_list(client, admin):
    body = assert_problem(
        api_as(client, admin).post(
            "/api/v1/agents",
            json={
                "email": "nouvel.agent@spie.test",
                "first_name": "Dominique",
                "last_name": "Martin",
                "roles": ["referent"],
                "structure_id": 10**40,
                "territory_ids": [1, 2**63],
            },
        ),
        422,
        "validation_failed",
    )
    assert set(body["errors"]) == {"structure_id", "territory_ids"}
    assert body["errors"]["territory_ids"] == {
        "1": ["Nombre hors des bornes acceptées (-2147483648 à 2147483647)."]
    }


def test_integers_within_the_database_range_are_accepted(client, admin):
    response = api_as(client, admin).get(f"/api/v1/offers?territory_id={2**31 - 1}")
    assert response.status_code == 200, response.get_data(as_text=True)


def test_422_body_that_is_not_json(client, admin):
    response = api_as(client, admin).post(
        "/api/v1/structures", data="name=x", content_type="application/x-www-form-urlencoded"
    )
    # webargs finds no JSON: every required field is missing.
    body = assert_problem(response, 422, "validation_failed")
    assert "name" in body["errors"]


def test_422_unknown_field_in_the_body(client, admin):
    body = assert_problem(
        api_as(client, admin).post(
            "/api/v1/structures",
            json={"name": "Une structure", "type": "mdm", "is_admin": True},
        ),
        422,
        "validation_failed",
    )
    assert set(body["errors"]) == {"is_admin"}


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/persons?foo=bar",
        "/api/v1/structures?foo=bar",
        "/api/v1/agents?foo=bar",
        "/api/v1/admin/jobs?foo=bar",
        "/api/v1/admin/audit?foo=bar",
        "/api/v1/communes?foo=bar",
    ],
)
def test_422_unknown_query_parameter(client, admin, url):
    body = assert_problem(api_as(client, admin).get(url), 422, "validation_failed")
    assert set(body["errors"]) == {"foo"}


def test_unknown_query_parameter_on_a_person_read_is_rejected_and_not_audited(client, admin):
    from sqlalchemy import select

    from spie.audit.models import AuditEvent
    from spie.db import db

    person = PersonFactory()
    response = api_as(client, admin).get(f"/api/v1/persons/{person.id}?reason=search&x=1")
    assert_problem(response, 422)
    assert (
        db.session.scalars(select(AuditEvent).where(AuditEvent.person_id == person.id)).all() == []
    )


@pytest.mark.parametrize("per_page", [0, 101, 10_000])
def test_422_page_size_out_of_bounds(client, admin, per_page):
    body = assert_problem(api_as(client, admin).get(f"/api/v1/persons?per_page={per_page}"), 422)
    assert set(body["errors"]) == {"per_page"}


def test_page_size_100_is_accepted(client, admin):
    response = api_as(client, admin).get("/api/v1/persons?per_page=100")
    assert response.status_code == 200
    assert response.json["per_page"] == 100


def test_422_search_page_size_out_of_bounds(client, admin):
    body = assert_problem(
        api_as(client, admin).post("/api/v1/persons/search", json={"name": "ab", "per_page": 101}),
        422,
    )
    assert set(body["errors"]) == {"per_page"}


def _referral(**changes: Any) -> dict[str, Any]:
    return {
        "public": "rsj",
        "last_name": "Orientee",
        "first_name": "Lou",
        "birth_date": "2003-05-06",
        "commune_insee": commune_of("LYON").insee_code,
        "referral_source": "Mission locale",
        **changes,
    }


def test_422_nir_with_a_bad_key_names_the_field_without_echoing_the_nir(client, admin):
    from tests.factories import nir_key

    prepare_referrals()
    nir13 = "2030569123045"
    wrong_key = f"{(nir_key(nir13) % 97) + 1:02d}"
    response = api_as(client, admin).post("/api/v1/persons", json=_referral(nir=nir13 + wrong_key))
    body = assert_problem(response, 422, "validation_failed")
    assert set(body["errors"]) == {"nir"}
    assert nir13 not in response.get_data(as_text=True)


def test_422_malformed_nir_does_not_echo_it(client, admin):
    prepare_referrals()
    bad = "2030569X23045"
    response = api_as(client, admin).post("/api/v1/persons", json=_referral(nir=bad))
    body = assert_problem(response, 422, "validation_failed")
    assert set(body["errors"]) == {"nir"}
    assert bad not in response.get_data(as_text=True)


def test_409_and_428_on_versioned_writes(client, admin):
    structure = StructureFactory()
    url = f"/api/v1/structures/{structure.id}"
    api = api_as(client, admin)
    body = assert_problem(api.patch(url, json={"capacity": 3}), 428, "precondition_required")
    assert body["current_version"] == structure.version
    body = assert_problem(
        api.patch(url, json={"capacity": 3}, headers={"If-Match": '"999"'}), 409, "stale_version"
    )
    assert body["current_version"] == structure.version


def test_409_on_a_unique_email_does_not_echo_it(client, admin):
    other = AgentFactory()
    response = api_as(client, admin).post(
        "/api/v1/agents",
        json={
            "email": other.email,
            "first_name": "A",
            "last_name": "B",
            "structure_id": other.structure_id,
            "roles": ["referent"],
        },
    )
    body = assert_problem(response, 409, "email_taken")
    assert set(body["errors"]) == {"email"}
    assert other.email not in response.get_data(as_text=True)


def test_400_csrf_is_a_problem_document(client):
    response = client.post("/login", data={"email": "a@b.c", "password": "x"})
    assert_problem(response, 400)


# --- internal errors, on a tiny app of their own ------------------------------------------

SECRET_TEXT = "NIR 1850469123456 of Hélène Dupré"


@pytest.fixture
def failing_app() -> Flask:
    tiny = Flask("failing")
    register_error_handlers(tiny)

    @tiny.route("/boom")
    def boom() -> str:
        raise RuntimeError(SECRET_TEXT)

    return tiny


def test_500_is_generic_and_does_not_leak_the_exception(failing_app, caplog):
    with caplog.at_level(logging.DEBUG):
        response = failing_app.test_client().get("/boom")
    body = assert_problem(response, 500, "internal_error")
    text = response.get_data(as_text=True)
    assert "RuntimeError" not in text
    assert "1850469123456" not in text
    assert "Dupré" not in text
    assert body["detail"] == "Une erreur inattendue est survenue ; elle a été journalisée."
    # The log says what failed (type, request id) but not the message: it may carry data.
    assert any("RuntimeError" in r.getMessage() for r in caplog.records)
    logged = "\n".join(caplog.text.splitlines())
    assert "1850469123456" not in logged
    assert "Dupré" not in logged
