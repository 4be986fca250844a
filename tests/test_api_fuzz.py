"""Property-based fuzz of the whole JSON API from its own OpenAPI document (schemathesis).

Every operation of ``/api/v1/openapi.json`` is one test: schemathesis generates parameters
and bodies for it, valid and invalid, and each one is sent in process through the WSGI app
(no network), as an administrator with a Bearer token, on a small demo Métropole (real
persons, cases, structures, agents: small generated ids reach real rows). The check is the
quality bar: no answer is a 5xx; bad input gets a 4xx problem+json.

Deterministic and fast: a fixed schemathesis seed, derandomized Hypothesis, a few examples
per operation, no deadline, no example database.

Isolation is the suite's (``tests/conftest.py``, ``tests/isolation.py``): each operation's
test runs in its own transaction, rolled back at the end; its world is saved once (a
SAVEPOINT release) and every generated request is served by the isolated test client inside
a SAVEPOINT rolled back after the call, so each example starts from the same database
whatever the previous one wrote, deleted or revoked (its own token included).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from sqlalchemy import Connection

from spie.agents.models import Role
from spie.app import create_app
from spie.auth.login import create_api_token
from spie.db import commit, db
from spie.demo.generator import load_demo
from tests.conftest import TEST_SECRET
from tests.factories import AgentFactory

OPENAPI_URL = "/api/v1/openapi.json"
SEED = 20250601
EXAMPLES_PER_OPERATION = 8
DEMO_PERSONS = 15

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": SEED,
        # The coverage phase enumerates boundary and invalid values of every parameter
        # (tens to hundreds of requests per operation): more than doubles the run. The
        # fuzzing phase below draws both valid and invalid requests.
        "phases": {"coverage": {"enabled": False}},
        "generation": {
            "max-examples": EXAMPLES_PER_OPERATION,
            "deterministic": True,
            "database": "none",
        },
    }
)


def _served_openapi_document() -> dict[str, Any]:
    """The document the app serves, read at collection time to make one test per operation.

    The tests' ``app`` fixture does not exist yet during collection: this app is built by the
    same factory on an unused in-memory database only to serve the document. The fixture's
    app, created afterwards, binds the extensions and the engine to itself again.
    (schemathesis' lazy ``from_fixture`` loader would avoid this but runs every operation as
    a subtest of one test, and breaks on pytest 9.2: it reads ``Function._nodeid``.)
    """
    doc_app = create_app(
        {
            "ENV": "testing",
            "SECRET_KEY": TEST_SECRET,
            "DATABASE_URL": "sqlite://",
            "REDIS_URL": None,
        }
    )
    response = doc_app.test_client().get(OPENAPI_URL)
    assert response.status_code == 200, response.status_code
    document: dict[str, Any] = response.get_json()
    if db.engine is not None:
        db.engine.dispose()
    return document


schema = schemathesis.openapi.from_dict(_served_openapi_document(), config=CONFIG)


@pytest.fixture
def bearer_headers(app: Flask) -> dict[str, str]:
    load_demo(persons=DEMO_PERSONS, seed=SEED)
    admin = AgentFactory(roles=[Role.ADMIN], territory_codes=["LYON"])
    _token, value = create_api_token(admin, "fuzz", dt.timedelta(hours=1))
    commit()  # a SAVEPOINT release: the test's transaction still rolls it all back
    return {"Authorization": f"Bearer {value}"}


@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    # The fixtures are built once per operation on purpose: every example rolls back to them.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@schema.parametrize()
def test_no_generated_request_gets_a_server_error(
    case: Any, app: Flask, client: FlaskClient, bearer_headers: dict[str, str]
) -> None:
    connection = db.session.get_bind()
    assert isinstance(connection, Connection)
    savepoint = connection.begin_nested()
    try:
        response = case.call(app=app, session=client, headers=bearer_headers)
    finally:
        if savepoint.is_active:
            savepoint.rollback()
    case.validate_response(response, checks=[not_a_server_error])
