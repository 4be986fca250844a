"""Delay policies: every legal limit and Métropole target is data with a validity period.

A clock is always judged by the policy in force on the day it started (``valid_from`` ≤ start
< ``valid_until``), so history keeps the rule of its time when the law changes.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import CheckConstraint, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from spie.db import Base, TimestampMixin, VersionedMixin, enum_type


class ClockKind(enum.StrEnum):
    ORIENTATION = "orientation"
    PATHWAY_ENTRY = "pathway_entry"  # orientation notified → first honoured appointment
    CONTRACT = "contract"  # orientation notified → contract signed
    SOCIAL_REVIEW = "social_review"  # contract signed (parcours social) → joint review
    CONTRACT_RENEWAL = "contract_renewal"  # alert N days before the contract ends
    REFERENT_GAP = "referent_gap"  # days without an active référent before alerting


class DelayPolicy(TimestampMixin, VersionedMixin, Base):
    __tablename__ = "delay_policies"
    __table_args__ = (
        CheckConstraint("valid_until IS NULL OR valid_until > valid_from", name="validity_order"),
        Index("ix_delay_policies_clock_from", "clock", "valid_from"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clock: Mapped[ClockKind] = mapped_column(enum_type(ClockKind, "clock_kind"))
    # Durations as data: "6w" (weeks), "2m" (calendar months), "15d" (days);
    # see spie.clocks.calendar.Duration
    legal_limit: Mapped[str | None] = mapped_column(String(8))
    target: Mapped[str | None] = mapped_column(String(8))
    # Upper bound some clocks may be extended to (social review: 12 months for listed reasons).
    extended_limit: Mapped[str | None] = mapped_column(String(8))
    valid_from: Mapped[dt.date]
    valid_until: Mapped[dt.date | None]  # exclusive
    label: Mapped[str] = mapped_column(String(200))
    legal_source: Mapped[str | None] = mapped_column(Text)
