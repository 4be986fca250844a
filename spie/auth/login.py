"""flask-login wiring: agent sessions (cookie) and personal API tokens (Bearer)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from flask import Flask, request
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from spie.agents.models import Agent
from spie.auth.models import ApiToken
from spie.db import db, utcnow
from spie.errors import Unauthorized
from spie.extensions import login_manager

TOKEN_PREFIX = "spie_"  # noqa: S105 - a public marker of spie tokens, not a secret


def digest_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token_value() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def create_api_token(agent: Agent, name: str, ttl: dt.timedelta) -> tuple[ApiToken, str]:
    value = new_token_value()
    token = ApiToken(
        agent=agent,
        name=name,
        token_digest=digest_token(value),
        prefix=value[: len(TOKEN_PREFIX) + 6],
        expires_at=utcnow() + ttl,
    )
    db.session.add(token)
    db.session.flush()
    return token, value


def _agent_with_access() -> tuple[Any, ...]:
    """Loader options: the agent of a request with what every request reads (roles,
    territories for the scope, the session nonce) joined into the same statement — the
    relationships' default "selectin" loading costs three more round trips per request.
    (Built on call: touching the relationships at import would configure the mappers before
    every model is imported.)"""
    return (
        joinedload(Agent.role_rows),
        joinedload(Agent.territories),
        joinedload(Agent.session_state),
    )


def _load_session_agent(user_id: str) -> Agent | None:
    try:
        kind, raw_id, _nonce = user_id.split(":", 2)
        agent_id = int(raw_id)
    except ValueError:
        return None
    if kind != "agent":
        return None
    agent = db.session.get(Agent, agent_id, options=_agent_with_access())
    if agent is None or agent.get_id() != user_id or not agent.is_active:
        return None
    return agent


def _load_bearer_agent() -> Agent | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    value = header[len("Bearer ") :].strip()
    if not value.startswith(TOKEN_PREFIX):
        return None
    token = (
        db.session.execute(
            select(ApiToken)
            .where(ApiToken.token_digest == digest_token(value))
            .options(joinedload(ApiToken.agent).options(*_agent_with_access()))
        )
        .unique()
        .scalar_one_or_none()
    )
    now = utcnow()
    if token is None or not token.is_valid(now) or not token.agent.is_active:
        raise Unauthorized("Jeton d'API invalide, expiré ou révoqué.", code="invalid_token")
    # Touch at most once a minute: a read must not turn into a write on every call.
    if token.last_used_at is None or now - token.last_used_at > dt.timedelta(minutes=1):
        token.last_used_at = now
    request.environ["spie.bearer"] = True
    return token.agent


def init_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.session_protection = "strong"
    login_manager.user_loader(_load_session_agent)
    login_manager.request_loader(lambda _request: _load_bearer_agent())

    @login_manager.unauthorized_handler
    def _unauthorized() -> None:
        raise Unauthorized("Connectez-vous pour accéder à cette ressource.")


def is_bearer_request() -> bool:
    return bool(request.environ.get("spie.bearer"))
