"""Baseline of ``bench/api_load.py``: a bare Flask endpoint doing one indexed query.

``GET /person?id=N`` runs ``SELECT id, last_name FROM persons WHERE id = %s`` on the spie
benchmark database through one psycopg connection per worker process (opened on the first
request, autocommit) and answers the row as JSON (404 when there is none). No
authentication, no ORM, no audit: what any Flask service pays for one primary-key lookup
behind the same server. Served like spie::

    BENCH_BARE_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/spie_bench_api \\
        .venv/bin/gunicorn -w 2 -b 127.0.0.1:8001 bench.bare_app:app
"""

from __future__ import annotations

import os
from typing import Any

import psycopg
from flask import Flask, abort, jsonify, request

app = Flask(__name__)
_connection: dict[int, psycopg.Connection[Any]] = {}  # pid -> connection (fork-safe)


def connection() -> psycopg.Connection[Any]:
    pid = os.getpid()
    found = _connection.get(pid)
    if found is None or found.closed:
        found = psycopg.connect(os.environ["BENCH_BARE_DATABASE_URL"], autocommit=True)
        _connection[pid] = found
    return found


@app.get("/person")
def person() -> Any:
    person_id = request.args.get("id", type=int)
    if person_id is None:
        abort(400)
    row = (
        connection()
        .execute("SELECT id, last_name FROM persons WHERE id = %s", [person_id])
        .fetchone()
    )
    if row is None:
        abort(404)
    return jsonify({"id": row[0], "last_name": row[1]})
