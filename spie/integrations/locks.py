"""PostgreSQL advisory locks, so that two workers never work on the same thing at once.

Session-level locks live on a dedicated connection (not the ORM session's, which goes back to
the pool at every commit): they are held across the batch commits of an import and vanish
with the connection if the process dies (SIGKILL included). On SQLite (single writer,
development) they are no-ops that always succeed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from spie.db import db


def lock_key(name: str) -> int:
    """A signed 64-bit key for ``name`` (stable across processes and releases)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _is_postgres() -> bool:
    return db.engine is not None and db.engine.dialect.name == "postgresql"


@contextmanager
def advisory_lock(name: str) -> Iterator[bool]:
    """Try to take the lock ``name`` without waiting; yields whether it was taken."""
    engine = db.engine
    if engine is None or engine.dialect.name != "postgresql":
        yield True
        return
    connection = engine.connect()
    try:
        key = lock_key(name)
        taken = bool(connection.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
        connection.commit()
        try:
            yield taken
        finally:
            if taken:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                connection.commit()
    finally:
        connection.close()


def is_locked(name: str) -> bool:
    """True when another session holds the lock ``name`` (PostgreSQL only)."""
    with advisory_lock(name) as taken:
        return not taken


def try_xact_lock(name: str) -> bool:
    """A transaction-level lock in the current session (released at commit / rollback)."""
    if not _is_postgres():
        return True
    return bool(
        db.session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": lock_key(name)})
    )
