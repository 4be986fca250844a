"""Background job runs, kept in the database so admins see them whatever the queue backend."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from spie.db import Base, enum_type, utcnow


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    STARTED = "started"
    RETRYING = "retrying"  # failed, another attempt is scheduled
    FINISHED = "finished"
    FAILED = "failed"  # failed for good


class JobRun(Base):
    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_status_enqueued", "status", "enqueued_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    queue: Mapped[str] = mapped_column(String(40))
    status: Mapped[JobStatus] = mapped_column(enum_type(JobStatus, "job_status"))
    # Job arguments are ids and options, never personal data.
    arguments: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    enqueued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=1)
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
