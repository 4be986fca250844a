"""Helpers for the orientation API tests (see ``tests/isolation.py``: each test-client
request runs in its own session and application context, after committing the test's setup;
the test's objects may then be stale)."""

from __future__ import annotations

from spie.db import commit
from tests.helpers import api_as, fresh

__all__ = ["api_as", "fresh", "persist"]


def persist() -> None:
    """Commit the test's setup now (a SAVEPOINT release; the outer test transaction is still
    rolled back at the end) — for code that must see it outside a request."""
    commit()
