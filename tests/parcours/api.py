"""``api_as`` for pathway tests (same workaround as ``tests/orientation/api.py``).

The harness keeps one application context per test, so flask-login's cached user in ``g``
would survive from one request to the next; and a failing request rolls the session back,
which would take an uncommitted setup with it. This client drops the cached user around each
call and commits the setup (a SAVEPOINT release) when it is created.
"""

from __future__ import annotations

from typing import Any

from flask import g
from flask.testing import FlaskClient
from sqlalchemy import inspect

from spie.agents.models import Agent
from spie.db import commit, db
from tests.helpers import ApiClient


class FreshUserApiClient(ApiClient):
    def __init__(self, client: FlaskClient, agent: Agent | None) -> None:
        super().__init__(client, agent)
        commit()

    def _call(self, method: str, url: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        g.pop("_login_user", None)
        try:
            return super()._call(method, url, headers=headers, **kw)
        finally:
            g.pop("_login_user", None)


def api_as(client: FlaskClient, agent: Agent | None) -> FreshUserApiClient:
    return FreshUserApiClient(client, agent)


def fresh(obj: Any) -> Any:
    """Re-read ``obj`` in the current session (requests end with ``session.remove()``)."""
    identity = inspect(obj).identity
    assert identity is not None
    return db.session.get(type(obj), identity)


def if_match(version: int | str) -> dict[str, str]:
    return {"If-Match": f'"{version}"'}
