"""Small helpers for the orientation API tests (see ``tests/isolation.py``: each test-client
request runs in its own session and application context, after committing the test's setup;
the test's objects may then be stale)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect

from spie.db import commit, db
from tests.helpers import api_as

__all__ = ["api_as", "fresh", "persist"]


def persist() -> None:
    """Commit the test's setup now (a SAVEPOINT release; the outer test transaction is still
    rolled back at the end) — for code that must see it outside a request."""
    commit()


def fresh(obj: Any) -> Any:
    """``obj`` reloaded from the database (a request changed it in its own session)."""
    identity = inspect(obj).identity
    assert identity is not None
    return db.session.get(type(obj), identity, populate_existing=True)
