"""Database access: declarative base, engine, the scoped session and the transaction rules.

Rules (see docs/architecture.md):
- services ``flush()``; only the request wrapper, a job or a CLI command calls :func:`commit`;
- side effects that must not happen for rolled-back work (enqueue a job, call a partner) are
  registered with :func:`on_commit` and run after the commit succeeded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    declared_attr,
    mapped_column,
    scoped_session,
    sessionmaker,
)
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UTCDateTime()}


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class VersionedMixin:
    """Optimistic locking: SQLAlchemy checks ``version`` in every UPDATE's WHERE clause.

    The API exposes it as the ``ETag`` and requires ``If-Match`` on writes.
    """

    version: Mapped[int] = mapped_column(nullable=False)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805 - declared_attr receives the class
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


class Database:
    """The engine and a thread-scoped session, bound by the app factory."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.session: scoped_session[Any] = scoped_session(
            sessionmaker(expire_on_commit=False, autoflush=True)
        )

    def init_engine(self, url: str, echo: bool = False) -> Engine:
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False}
            if url in {"sqlite://", "sqlite:///:memory:"}:
                kwargs["poolclass"] = StaticPool
        else:
            kwargs["pool_pre_ping"] = True
        engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(engine, "connect", _sqlite_pragmas)
            # pysqlite's own transaction handling breaks SAVEPOINTs: let SQLAlchemy emit BEGIN
            # (documented recipe "Serializable isolation / Savepoints / Transactional DDL").
            event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        self.engine = engine
        self.session.remove()
        self.session.configure(bind=engine)
        return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


db = Database()

_ON_COMMIT_KEY = "spie_on_commit"


def on_commit(callback: Callable[[], None]) -> None:
    """Run ``callback`` once the current transaction has committed (dropped on rollback)."""
    db.session().info.setdefault(_ON_COMMIT_KEY, []).append(callback)


def commit() -> None:
    """Commit the unit of work, then run the side effects registered with :func:`on_commit`."""
    session = db.session()
    session.commit()
    callbacks = session.info.pop(_ON_COMMIT_KEY, [])
    for callback in callbacks:
        callback()


def rollback() -> None:
    session = db.session()
    session.rollback()
    session.info.pop(_ON_COMMIT_KEY, None)


@contextmanager
def unit_of_work() -> Iterator[Any]:
    """One commit for a job or CLI command; rollback on any error."""
    try:
        yield db.session()
        commit()
    except BaseException:
        rollback()
        raise


def enum_type(enum_cls: type[Any], name: str) -> Any:
    """A portable string enum column with a named CHECK constraint (stable values in the DB)."""
    from sqlalchemy import Enum

    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(m.value) for m in enum_cls),
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


def deferrable_fk(target: str, **options: Any) -> Any:
    """A foreign key checked, as any other, at the end of each statement — unless the
    transaction defers it (``SET CONSTRAINTS ALL DEFERRED``): then at its COMMIT.

    For the tables bulk imports fill: an import batch defers the checks so that PostgreSQL runs
    them at the batch's COMMIT, which the import does not wait for while it reads and prepares
    the next batch (:class:`spie.integrations.bulk.BatchCommit`). Nothing goes unchecked."""
    from sqlalchemy import ForeignKey

    return ForeignKey(target, deferrable=True, initially="IMMEDIATE", **options)
