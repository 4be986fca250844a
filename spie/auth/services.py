"""Authentication use cases shared by the HTML login page and the JSON API."""

from __future__ import annotations

from flask import session
from flask_login import login_user, logout_user
from sqlalchemy import select

from spie.agents.models import Agent
from spie.audit.models import AuditAction
from spie.audit.service import record
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


def start_session(agent: Agent) -> None:
    # A fresh session on login: nothing from before authentication survives (fixation).
    session.clear()
    login_user(agent)
    session.permanent = True
    agent.last_login_at = utcnow()
    record(AuditAction.LOGIN, "agent", agent.id)


def end_session(agent: Agent | None) -> None:
    if agent is not None:
        record(AuditAction.LOGOUT, "agent", agent.id)
    logout_user()
    session.clear()
