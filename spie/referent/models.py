"""Référent "fil rouge" assignments: exactly one active per person, every change dated."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from spie.db import Base, utcnow

if TYPE_CHECKING:
    from spie.agents.models import Agent
    from spie.persons.models import Person
    from spie.structures.models import Structure


class ReferentAssignment(Base):
    __tablename__ = "referent_assignments"
    __table_args__ = (
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="period_order"),
        # The database, not only the code, guarantees a single active référent.
        Index(
            "uq_referent_assignments_active_per_person",
            "person_id",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
        Index("ix_referent_assignments_agent_active", "agent_id", "ended_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    structure_id: Mapped[int] = mapped_column(ForeignKey("structures.id"), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[dt.datetime | None]
    reason: Mapped[str] = mapped_column(String(200))
    end_reason: Mapped[str | None] = mapped_column(String(200))
    handover_note: Mapped[str | None] = mapped_column(Text)
    assigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))

    person: Mapped[Person] = relationship()
    agent: Mapped[Agent] = relationship(foreign_keys=[agent_id])
    structure: Mapped[Structure] = relationship()
