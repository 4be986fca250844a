"""Personal API tokens for agents (Bearer), stored as SHA-256 digests only, and the
server-side session state that lets a logout or a password change end every session."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from spie.agents.models import Agent
from spie.db import Base, utcnow


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))  # shown in lists to recognise a token
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]

    agent: Mapped[Agent] = relationship()

    def is_valid(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


class AgentSessionState(Base):
    """Kept apart from the (versioned) agent row: logging in must not bump the agent's ETag."""

    __tablename__ = "agent_session_states"

    agent_id: Mapped[int] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    # Part of every session cookie; rotated on logout and password change, which voids every
    # session cookie issued before (signed cookies cannot be revoked otherwise).
    nonce: Mapped[str] = mapped_column(String(32))
    last_login_at: Mapped[dt.datetime | None]
