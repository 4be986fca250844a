"""Test harness: migrations once per session, one SAVEPOINT-wrapped transaction per test.

PostgreSQL and Redis when ``SPIE_TEST_DATABASE_URL`` / ``SPIE_TEST_REDIS_URL`` are set (CI),
SQLite and in-process jobs otherwise; the header of the run says which.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from spie.app import create_app
from spie.db import db

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TEST_DATABASE_URL = os.environ.get("SPIE_TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("SPIE_TEST_REDIS_URL")
TEST_SECRET = "t" * 48

ON_POSTGRES = bool(TEST_DATABASE_URL)


def pytest_report_header(config: pytest.Config) -> str:
    database = (
        "PostgreSQL" if TEST_DATABASE_URL else "SQLite (set SPIE_TEST_DATABASE_URL for PostgreSQL)"
    )
    jobs = "Redis + rq" if TEST_REDIS_URL else "in-process jobs (set SPIE_TEST_REDIS_URL for Redis)"
    return f"spie tests on {database}; {jobs}"


def _worker_database_url(worker_id: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    if not TEST_DATABASE_URL:
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'spie-test.sqlite3'}"
    url = make_url(TEST_DATABASE_URL)
    if worker_id == "master":
        return TEST_DATABASE_URL
    # One database per xdist worker, created on the fly next to the configured one.
    name = f"{url.database}_{worker_id}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        )
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _reset_schema(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


@pytest.fixture(scope="session")
def database_url(worker_id: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = _worker_database_url(worker_id, tmp_path_factory)
    _reset_schema(url)
    migrate(url)
    return url


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    # pytest-xdist provides this fixture; without xdist we are the only process.
    return getattr(request.config, "workerinput", {}).get("workerid", "master")


@pytest.fixture(scope="session")
def app(database_url: str) -> Iterator[Flask]:
    app = create_app(
        {
            "ENV": "testing",
            "SECRET_KEY": TEST_SECRET,
            "DATABASE_URL": database_url,
            "REDIS_URL": None,
            "SPIE_LOGIN_RATE_LIMIT": "1000 per minute",
            "SERVER_NAME": "spie.test",
        }
    )
    with app.app_context():
        from spie.db import unit_of_work
        from spie.territories.services import load_reference_data

        with unit_of_work():
            load_reference_data()
    yield app
    db.session.remove()
    if db.engine is not None:
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _transaction(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test runs in a transaction rolled back at the end (services' commits are
    SAVEPOINT releases), unless it does not use the app at all."""
    if "app" not in request.fixturenames:
        yield
        return
    app: Flask = request.getfixturevalue("app")
    assert db.engine is not None
    connection = db.engine.connect()
    outer = connection.begin()
    db.session.remove()
    db.session.configure(bind=connection, join_transaction_mode="create_savepoint")
    context = app.app_context()
    context.push()
    try:
        yield
    finally:
        context.pop()
        db.session.remove()
        outer.rollback()
        connection.close()
        db.session.configure(bind=db.engine, join_transaction_mode="conservative_savepoint")


@pytest.fixture
def session(app: Flask) -> Any:
    return db.session


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Each request gets its own session and app context, as in production (see
    ``tests/isolation.py``); the test's pending work is saved (SAVEPOINT) before each call."""
    from tests.isolation import IsolatedRequestsClient

    return IsolatedRequestsClient(app, app.response_class, use_cookies=True)


@pytest.fixture
def territories(app: Flask) -> dict[str, Any]:
    from sqlalchemy import select

    from spie.territories.models import Territory

    return {t.code: t for t in db.session.scalars(select(Territory))}
