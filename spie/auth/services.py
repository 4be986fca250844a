"""Authentication use cases shared by the HTML login page and the JSON API."""

from __future__ import annotations

import secrets

from flask import session
from flask_login import login_user, logout_user
from sqlalchemy import select

from spie.agents.models import Agent
from spie.audit.models import AuditAction
from spie.audit.service import record
from spie.auth.models import AgentSessionState
from spie.auth.passwords import hash_password, needs_rehash, verify_password
from spie.db import db, utcnow


def authenticate(email: str, password: str) -> Agent | None:
    """The agent if the credentials are right and the account active, else None.

    The failure does not say which part was wrong; it is audited without the email.
    """
    agent = db.session.scalar(select(Agent).where(Agent.email == email.strip().lower()))
    valid = verify_password(agent.password_hash if agent else None, password)
    if agent is None or not valid or not agent.is_active:
        record(AuditAction.LOGIN_FAILED, "agent", agent.id if agent else None)
        return None
    if agent.password_hash and needs_rehash(agent.password_hash):
        agent.password_hash = hash_password(password)
    return agent


def rotate_session_nonce(agent: Agent) -> None:
    """Void every session cookie of ``agent`` issued so far."""
    if agent.session_state is None:
        agent.session_state = AgentSessionState(nonce=secrets.token_hex(16))
    else:
        agent.session_state.nonce = secrets.token_hex(16)


def start_session(agent: Agent) -> None:
    # A fresh session on login: nothing from before authentication survives (fixation).
    session.clear()
    if agent.session_state is None:
        rotate_session_nonce(agent)
    state = agent.session_state
    if state is None:  # pragma: no cover - rotate_session_nonce just created it
        raise RuntimeError("session state missing after rotation")
    state.last_login_at = utcnow()
    login_user(agent)
    session.permanent = True
    record(AuditAction.LOGIN, "agent", agent.id)


def end_session(agent: Agent | None) -> None:
    """Log out everywhere: the nonce changes, so copies of any session cookie stop working."""
    if agent is not None:
        rotate_session_nonce(agent)
        record(AuditAction.LOGOUT, "agent", agent.id)
    logout_user()
    session.clear()
