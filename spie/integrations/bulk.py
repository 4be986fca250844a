"""Bulk writes for imports, in the current session's transaction.

- :func:`insert_rows` / :func:`insert_returning_ids`: PostgreSQL ``COPY ... FROM STDIN`` (ids
  taken from the table's sequence beforehand), else an ``INSERT`` executemany (SQLAlchemy's
  insertmanyvalues with ``RETURNING`` in parameter order);
- :func:`update_rows`: an ``UPDATE ... WHERE id = ...`` executemany (pipelined by psycopg),
  bumping ``version`` on versioned tables so that optimistic locking stays right.

Rows are plain dicts keyed by column name; enum members are written as their values and JSON
columns as serialised text on the COPY path.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import JSON, Select, Table, bindparam, insert, text, tuple_, update

from spie.db import db

#: Below this many rows a plain INSERT is as fast as COPY and simpler.
COPY_THRESHOLD = 50


def _is_postgres() -> bool:
    bind = db.session.get_bind()
    return bind.dialect.name == "postgresql"


def _pg_binary_type(kind: Any) -> str | None:
    """The type psycopg should encode a column's values as for a binary COPY (None: unknown,
    use the text format). JSON values are sent as their text (same binary layout)."""
    from sqlalchemy import BigInteger, Boolean, Date, DateTime, Enum, Integer, LargeBinary, String
    from sqlalchemy.types import TypeDecorator

    if isinstance(kind, TypeDecorator):
        kind = kind.impl
    if isinstance(kind, JSON):
        return "text"
    if isinstance(kind, BigInteger):
        return "int8"
    if isinstance(kind, Integer):
        return "int4"
    if isinstance(kind, Boolean):
        return "bool"
    if isinstance(kind, DateTime):
        return "timestamptz" if kind.timezone else "timestamp"
    if isinstance(kind, Date):
        return "date"
    if isinstance(kind, LargeBinary):
        return "bytea"
    if isinstance(kind, Enum | String):
        return "text"
    return None


def _copy(
    table: Table, columns: Sequence[str], rows: Sequence[dict[str, Any]], into: str | None = None
) -> None:
    """COPY ``rows`` into ``table`` (or the table named ``into``, with ``table``'s column
    types)."""
    column_types = [table.c[name].type for name in columns]
    json_positions = [index for index, kind in enumerate(column_types) if isinstance(kind, JSON)]
    types = [_pg_binary_type(kind) for kind in column_types]
    binary = all(types)
    connection = db.session.connection()
    raw: Any = connection.connection.driver_connection
    column_list = ", ".join(f'"{name}"' for name in columns)
    statement = f'COPY "{into or table.name}" ({column_list}) FROM STDIN'
    if binary:
        statement += " (FORMAT BINARY)"
    dumps = json.dumps
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        if binary:
            copy.set_types(types)
        write = copy.write_row
        take = operator.itemgetter(*columns) if len(columns) > 1 else None
        for row in rows:
            values: Sequence[Any]
            try:
                values = take(row) if take is not None else (row[columns[0]],)
            except KeyError:  # a column left out of this row: NULL
                values = tuple(map(row.get, columns))
            if json_positions:
                values = list(values)
                for index in json_positions:
                    if values[index] is not None:
                        values[index] = dumps(
                            values[index], ensure_ascii=False, separators=(",", ":")
                        )
            write(values)


def _update_from_copy(
    table: Table, columns: list[str], rows: Sequence[dict[str, Any]], versioned: bool
) -> None:
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.dialect()
    staging = f"_spie_update_{table.name}"
    names = ["id", *columns]
    definitions = ", ".join(
        f'"{name}" {table.c[name].type.compile(dialect=dialect)}' for name in names
    )
    connection = db.session.connection()
    raw: Any = connection.connection.driver_connection
    with raw.cursor() as cursor:
        cursor.execute(f'DROP TABLE IF EXISTS "{staging}"')
        cursor.execute(f'CREATE TEMPORARY TABLE "{staging}" ({definitions}) ON COMMIT DROP')
    _copy(table, names, rows, into=staging)
    assignments = [f'"{name}" = s."{name}"' for name in columns]
    if versioned:
        assignments.append('"version" = t."version" + 1')
    with raw.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{table.name}" AS t SET {", ".join(assignments)} '  # noqa: S608 - our columns
            f'FROM "{staging}" AS s WHERE t."id" = s."id"'
        )
        cursor.execute(f'DROP TABLE "{staging}"')


def commit_without_waiting_for_disk() -> None:
    """Let the current transaction's commit return before its WAL reaches the disk
    (PostgreSQL ``synchronous_commit = off``, this transaction only).

    For import batches: a batch commits its rows together with the run's checkpoint, so a
    database crash that loses the last few batches loses their checkpoint too, and the resumed
    import applies them again: nothing is lost or duplicated, and each batch saves a disk
    flush. Never for the commit that ends a run."""
    if _is_postgres():
        db.session.execute(text("SET LOCAL synchronous_commit TO OFF"))


class BatchCommit:
    """Commit an import batch without waiting for PostgreSQL to finish it.

    :meth:`start` flushes the session and sends ``COMMIT``; the importer then reads and prepares
    its next batch while PostgreSQL runs the batch's deferred foreign-key checks (about a third
    of its work on a first import) and commits; :meth:`settle` waits for that answer — raising
    its error, e.g. a foreign-key violation — before anything else uses the connection.
    :meth:`defer_checks` starts each batch with ``SET CONSTRAINTS ALL DEFERRED``, which moves the
    checks of the deferrable foreign keys (:func:`spie.db.deferrable_fk`) to the COMMIT.

    Only for a transaction of the connection's own (PostgreSQL, not a SAVEPOINT inside someone
    else's transaction, as in the tests' isolation) and with ``overlap`` (the CAF importer's
    ``SPIE_IMPORT_OVERLAP_COMMITS``, on by default): otherwise :meth:`start` commits at once and
    :meth:`defer_checks` does nothing, so that the checks fail at each statement as before.
    """

    def __init__(self, *, overlap: bool = True) -> None:
        self.overlap = overlap  # False: commit at once, checks at each statement (as before)
        self._in_flight: Any = None  # the psycopg connection whose COMMIT is unanswered

    @property
    def in_flight(self) -> bool:
        return self._in_flight is not None

    def _own_transaction(self) -> Any:
        """The psycopg connection, when the session's transaction is its own; else None."""
        if not self.overlap or not _is_postgres():
            return None
        connection = db.session.connection()
        if connection.in_nested_transaction():
            return None
        return connection.connection.driver_connection

    def defer_checks(self) -> None:
        self.settle()
        if self._own_transaction() is not None:
            db.session.execute(text("SET CONSTRAINTS ALL DEFERRED"))

    def start(self) -> None:
        from psycopg import generators

        from spie.db import commit

        self.settle()
        db.session.flush()
        raw = self._own_transaction()
        if raw is None:
            commit()
            return
        with raw.lock:
            raw.pgconn.send_query(b"COMMIT")
            raw.wait(generators.send(raw.pgconn))
        self._in_flight = raw

    def settle(self) -> None:
        """Wait for the COMMIT in flight, if any. Its error is raised (the batch is then not
        committed, as PostgreSQL rolled it back)."""
        raw = self._in_flight
        if raw is None:
            return
        self._in_flight = None
        import psycopg
        from psycopg import generators, pq

        from spie.db import commit, rollback

        with raw.lock:
            results = raw.wait(generators.fetch_many(raw.pgconn))
        failed = next(
            (result for result in results if result.status != pq.ExecStatus.COMMAND_OK), None
        )
        if failed is not None:
            rollback()  # the session's bookkeeping; PostgreSQL has already rolled back
            raise psycopg.errors.error_from_result(failed, encoding=raw.info.encoding)
        # The server has committed: psycopg sees no transaction left and sends nothing, the
        # session closes its own.
        commit()


def next_ids(table: Table, count: int) -> list[int]:
    """``count`` fresh ids from the table's sequence (PostgreSQL), in one round trip."""
    if count == 0:
        return []
    raw: Any = db.session.connection().connection.driver_connection
    with raw.cursor() as cursor:
        sequence = _sequences.get(table.name)
        if sequence is None:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table.name,))
            found = cursor.fetchone()
            sequence = _sequences[table.name] = found[0]
        # A constant sequence name: looked up once per statement, not once per id (10x faster).
        cursor.execute(
            "SELECT array_agg(nextval(%s::regclass)) FROM generate_series(1, %s)",
            (sequence, count),
        )
        row = cursor.fetchone()
    return list(row[0])


_sequences: dict[str, str] = {}  # table name -> its id sequence (the schema's, stable)


def insert_returning_ids(table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` and return their ids, in the order of ``rows``."""
    if not rows:
        return []
    if _is_postgres() and len(rows) >= COPY_THRESHOLD:
        ids = next_ids(table, len(rows))
        for row, new_id in zip(rows, ids, strict=True):
            row["id"] = new_id
        columns = list(rows[0])
        _copy(table, columns, rows)
        return ids
    result = db.session.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
    )
    ids = [row[0] for row in result]
    for row, new_id in zip(rows, ids, strict=True):
        row["id"] = new_id
    return ids


def insert_rows(table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (all with the same keys); ids, if any, come from the database."""
    if not rows:
        return
    if _is_postgres() and len(rows) >= COPY_THRESHOLD:
        _copy(table, list(rows[0]), rows)
        return
    db.session.execute(insert(table), list(rows))


def update_rows(table: Table, rows: Sequence[dict[str, Any]], *, versioned: bool = False) -> None:
    """``UPDATE table SET ... WHERE id = row["id"]`` for each row (all rows with the same
    keys). ``versioned``: also ``version = version + 1``. On PostgreSQL, many rows go through a
    temporary table filled by COPY and one ``UPDATE ... FROM``."""
    if not rows:
        return
    columns = [name for name in rows[0] if name != "id"]
    if _is_postgres() and len(rows) >= COPY_THRESHOLD:
        _update_from_copy(table, columns, rows, versioned)
        return
    values: dict[str, Any] = {name: bindparam(f"p_{name}") for name in columns}
    if versioned:
        values["version"] = table.c.version + 1
    statement = update(table).where(table.c.id == bindparam("p_id")).values(values)
    params = [{f"p_{name}": value for name, value in row.items()} for row in rows]
    connection = db.session.connection()
    connection.execute(statement, params)


def audit_row(
    action: Any,
    resource_type: str,
    resource_id: object,
    *,
    person_id: int | None,
    reason: str,
    details: dict[str, Any] | None,
    actor_label: str,
    at: Any,
) -> dict[str, Any]:
    """An ``audit_events`` row for a write made by an import (system actor)."""
    from spie.audit.models import ActorKind

    return {
        "at": at,
        "actor_kind": ActorKind.SYSTEM,
        "actor_agent_id": None,
        "actor_structure_id": None,
        "actor_label": actor_label[:120],
        "action": action,
        "resource_type": resource_type,
        "resource_id": str(resource_id),
        "person_id": person_id,
        "reason": reason,
        "ip": None,
        "request_id": None,
        "details": details,
    }


def audit_batch_row(
    action: Any,
    resource_type: str,
    ids: Sequence[int],
    *,
    reason: str,
    details: dict[str, Any],
    actor_label: str,
    at: Any,
) -> dict[str, Any]:
    """One ``audit_events`` row for many rows created by an import batch: ``resource_id`` is the
    range ``first..last`` and ``details["ids"]`` lists them all. One row per created person
    cost as much as importing the person (two indexes and a JSON document per row, 275,000 rows
    for a monthly stock of 100,000 households); updates stay audited one row per person."""
    return audit_row(
        action,
        resource_type,
        f"{min(ids)}..{max(ids)}",
        person_id=None,
        reason=reason,
        details={**details, "count": len(ids), "ids": list(ids)},
        actor_label=actor_label,
        at=at,
    )


def insert_ignoring_conflicts(table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """``INSERT ... ON CONFLICT DO NOTHING`` (PostgreSQL and SQLite)."""
    if not rows:
        return
    if _is_postgres():
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        db.session.execute(pg_insert(table).on_conflict_do_nothing(), list(rows))
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        db.session.execute(sqlite_insert(table).on_conflict_do_nothing(), list(rows))


_SEPARATOR = "\x1f"  # ASCII unit separator: never in names, NIRs or identifiers


def _pg_array(values: list[Any], column_type: Any) -> Any:
    """``values`` as a PostgreSQL array of ``column_type``. Strings, integers and dates are
    sent as one text parameter split by ``string_to_array`` (in C, on the server): psycopg dumps
    a list parameter element by element in Python, a visible cost with thousands of values per
    batch. Anything else (or a value containing the separator) goes as a plain array."""
    from sqlalchemy import Date, Integer, String, Text, cast, func
    from sqlalchemy.dialects.postgresql import ARRAY

    joined: str | None = None
    if values and "" not in values:
        kind = column_type.impl if hasattr(column_type, "impl") else column_type
        first = values[0]
        try:
            if isinstance(first, str) and isinstance(kind, String):
                joined = _SEPARATOR.join(values)
                if joined.count(_SEPARATOR) != len(values) - 1:
                    joined = None  # a value holds the separator
            elif isinstance(first, int) and isinstance(kind, Integer):
                if all(type(value) is int for value in values):
                    joined = _SEPARATOR.join(map(str, values))
            elif type(first) is dt.date and isinstance(kind, Date):
                joined = _SEPARATOR.join(map(dt.date.isoformat, values))
        except TypeError:  # a None or a value of another type: sent as a plain array
            joined = None
    if joined is None:
        return bindparam(None, values, type_=ARRAY(column_type))
    split = func.string_to_array(bindparam(None, joined, type_=Text), _SEPARATOR)
    return cast(split, ARRAY(column_type))


def in_values(column: Any, values: Iterable[Any]) -> Any:
    """``column IN values`` — on PostgreSQL ``column = ANY(:array)``: one parameter instead of
    thousands (no huge statement to build, parse and plan for every batch)."""
    items = list(values)
    if _is_postgres():
        from sqlalchemy import any_

        return column == any_(_pg_array(items, column.type))
    return column.in_(items)


def select_matching_pairs(
    query: Select[Any], first: Any, second: Any, pairs: set[tuple[Any, Any]]
) -> Select[Any]:
    """``query`` restricted to rows whose (first, second) is one of ``pairs``: on PostgreSQL a
    join on ``unnest(:firsts, :seconds)`` (one index probe per pair), else a tuple ``IN``."""
    if not _is_postgres():
        return query.where(tuple_(first, second).in_(pairs))
    from sqlalchemy import and_, func

    ordered = list(pairs)
    wanted = (
        func.unnest(
            _pg_array([a for a, _b in ordered], first.type),
            _pg_array([b for _a, b in ordered], second.type),
        )
        .table_valued("a", "b")
        .render_derived()
    )
    return query.join(wanted, and_(first == wanted.c.a, second == wanted.c.b))
