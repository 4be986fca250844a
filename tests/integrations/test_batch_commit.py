"""``bulk.BatchCommit``: an import batch's COMMIT sent without waiting, its deferred
foreign-key checks run there, and its errors raised when the importer settles it.

The overlapped path needs a transaction of the connection's own: those tests bind the session
to a connection of their own for the time of the test, on two scratch tables they drop after.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from spie.db import db
from spie.integrations import bulk
from tests.conftest import TEST_DATABASE_URL

needs_postgresql = pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="needs PostgreSQL (SPIE_TEST_DATABASE_URL): COMMIT overlap"
)

TABLES = """
CREATE TABLE bc_parent (id integer PRIMARY KEY);
CREATE TABLE bc_child (
    id integer PRIMARY KEY,
    parent_id integer NOT NULL REFERENCES bc_parent (id) DEFERRABLE INITIALLY IMMEDIATE
)
"""


@pytest.fixture
def own_session(app, database_url) -> Iterator[None]:
    """``db.session`` on a connection of its own (no SAVEPOINT around its transactions)."""
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS bc_child, bc_parent"))
        for statement in TABLES.split(";"):
            connection.execute(text(statement))
    db.session.remove()
    db.session.configure(bind=engine)
    try:
        yield
    finally:
        db.session.remove()
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS bc_child, bc_parent"))
        engine.dispose()


def _count_elsewhere(database_url: str, table: str) -> int:
    """Rows of ``table`` as another connection sees them (committed ones)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(text(f"SELECT count(*) FROM {table}")))  # noqa: S608
    finally:
        engine.dispose()


def _send_batch(batch: bulk.BatchCommit, statement: str) -> None:
    """One import batch: its checks deferred, its statement, its COMMIT sent."""
    batch.defer_checks()
    db.session.execute(text(statement))
    batch.start()


@needs_postgresql
def test_a_commit_sent_without_waiting_is_committed_once_settled(own_session, database_url):
    batch = bulk.BatchCommit()
    _send_batch(batch, "INSERT INTO bc_parent (id) VALUES (1), (2)")
    assert batch.in_flight
    batch.settle()
    assert not batch.in_flight
    assert _count_elsewhere(database_url, "bc_parent") == 2
    # The connection is free again: the next batch runs on it.
    _send_batch(batch, "INSERT INTO bc_child (id, parent_id) VALUES (10, 1)")
    batch.settle()
    assert _count_elsewhere(database_url, "bc_child") == 1


@needs_postgresql
def test_deferred_foreign_key_checks_fail_at_the_commit_and_keep_nothing(own_session, database_url):
    batch = bulk.BatchCommit()
    _send_batch(batch, "INSERT INTO bc_parent (id) VALUES (1)")
    # The second batch settles the first; deferred, its orphan passes its statement ...
    _send_batch(batch, "INSERT INTO bc_child (id, parent_id) VALUES (10, 1), (11, 99)")
    # ... and fails at the COMMIT, raised when the importer settles.
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        batch.settle()
    assert not batch.in_flight
    assert _count_elsewhere(database_url, "bc_child") == 0  # the whole batch rolled back
    assert _count_elsewhere(database_url, "bc_parent") == 1  # the batch before it is kept
    assert db.session.scalar(text("SELECT count(*) FROM bc_parent")) == 1  # usable again


@needs_postgresql
def test_settling_twice_or_with_nothing_in_flight_does_nothing(own_session, database_url):
    batch = bulk.BatchCommit()
    batch.settle()
    db.session.execute(text("INSERT INTO bc_parent (id) VALUES (1)"))
    batch.start()
    batch.settle()
    batch.settle()
    assert _count_elsewhere(database_url, "bc_parent") == 1


@needs_postgresql
def test_without_overlap_the_commit_is_immediate_and_checks_are_not_deferred(
    own_session, database_url
):
    batch = bulk.BatchCommit(overlap=False)
    _send_batch(batch, "INSERT INTO bc_parent (id) VALUES (1)")
    assert not batch.in_flight
    assert _count_elsewhere(database_url, "bc_parent") == 1
    batch.defer_checks()
    with pytest.raises(IntegrityError):  # checked at the statement, as before
        db.session.execute(text("INSERT INTO bc_child (id, parent_id) VALUES (10, 99)"))
    db.session.rollback()


def test_inside_someone_elses_transaction_it_commits_at_once(app, session):
    """The tests' isolation (a SAVEPOINT per commit), SQLite: no overlap, no deferral — the
    checks still fail at their statement."""
    from spie.persons.models import Person

    batch = bulk.BatchCommit()
    batch.defer_checks()
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(
            Person.__table__.insert().values(
                public="brsa",
                last_name="X",
                first_name="Y",
                search_name="X Y",
                birth_date=dt.date(1990, 1, 1),
                household_id=999_999,
                nir_verified=False,
                bound_by_duties=False,
                version=1,
            )
        )
    batch.start()
    assert not batch.in_flight
