"""Small helpers for API tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask.testing import FlaskClient

from spie.agents.models import Agent
from spie.auth.login import create_api_token


class ApiClient:
    """A test client that authenticates every call with a Bearer token of ``agent``."""

    def __init__(self, client: FlaskClient, agent: Agent | None) -> None:
        self.client = client
        self.headers: dict[str, str] = {}
        if agent is not None:
            _token, value = create_api_token(agent, "tests", dt.timedelta(hours=1))
            self.headers["Authorization"] = f"Bearer {value}"

    def _call(self, method: str, url: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.client.open(
            url, method=method, headers={**self.headers, **(headers or {})}, **kw
        )

    def get(self, url: str, **kw: Any) -> Any:
        return self._call("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> Any:
        return self._call("POST", url, **kw)

    def patch(self, url: str, **kw: Any) -> Any:
        return self._call("PATCH", url, **kw)

    def put(self, url: str, **kw: Any) -> Any:
        return self._call("PUT", url, **kw)

    def delete(self, url: str, **kw: Any) -> Any:
        return self._call("DELETE", url, **kw)


def api_as(client: FlaskClient, agent: Agent | None) -> ApiClient:
    return ApiClient(client, agent)


def fresh(obj: Any) -> Any:
    """``obj`` reloaded from the database: each test-client request works in its own session
    (``tests/isolation.py``), so the test's copy may be stale."""
    from sqlalchemy import inspect

    from spie.db import db

    identity = inspect(obj).identity
    assert identity is not None
    return db.session.get(type(obj), identity, populate_existing=True)


def if_match(version: int | str) -> dict[str, str]:
    return {"If-Match": f'"{version}"'}
