"""Append-only audit trail: every write, and every read of a person's file."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from spie.db import Base, enum_type, utcnow


class AuditAction(enum.StrEnum):
    READ = "read"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    EXPORT = "export"


class ActorKind(enum.StrEnum):
    AGENT = "agent"
    BENEFICIARY = "beneficiary"
    PARTNER = "partner"
    SYSTEM = "system"


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_person_at", "person_id", "at"),
        Index("ix_audit_events_actor_at", "actor_agent_id", "at"),
    )

    # BigInteger on PostgreSQL (billions of reads over ten years), INTEGER on SQLite so that
    # the rowid alias keeps autoincrementing.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor_kind: Mapped[ActorKind] = mapped_column(enum_type(ActorKind, "audit_actor_kind"))
    actor_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    actor_structure_id: Mapped[int | None] = mapped_column(ForeignKey("structures.id"))
    actor_label: Mapped[str | None] = mapped_column(String(120))  # job name, partner client...
    action: Mapped[AuditAction] = mapped_column(enum_type(AuditAction, "audit_action"))
    resource_type: Mapped[str] = mapped_column(String(60))
    resource_id: Mapped[str | None] = mapped_column(String(60))
    # No FK: the trail must outlive a purge of the person (retention), it keeps the id only.
    person_id: Mapped[int | None]
    reason: Mapped[str | None] = mapped_column(String(60))  # why: caseload, search, alert...
    ip: Mapped[str | None] = mapped_column(String(45))
    request_id: Mapped[str | None] = mapped_column(String(36))
    # What changed: field names and non-personal values only.
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
