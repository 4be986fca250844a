"""Orientation: the case and its clock, RIO sessions, diagnostics, référentiel versions and
the append-only, ranked decisions."""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from spie.db import Base, TimestampMixin, VersionedMixin, deferrable_fk, enum_type, utcnow
from spie.persons.models import Public

if TYPE_CHECKING:
    from spie.clocks.models import DelayPolicy
    from spie.persons.models import Person
    from spie.structures.models import Structure


class CaseStatus(enum.StrEnum):
    A_ORIENTER = "a_orienter"
    CONVOQUE_RIO = "convoque_rio"
    PROPOSEE = "proposee"
    DECIDEE = "decidee"
    NOTIFIEE = "notifiee"
    CLOSED = "closed"


class ClockStartBasis(enum.StrEnum):
    DDSOUDRODEV = "ddsoudrodev"  # CAF gives the date of entry into SDD
    FLOW_ENTRY = "flow_entry"  # DTREF of the first flow showing SDD / entering SDD / ENTDED
    RSA_REQUEST = "rsa_request"  # DTDEMRSA, for people already SDD in the first stock (estimated)
    MANUAL_REFERRAL = "manual_referral"  # non-BRSA referred by hand
    MANUAL = "manual"  # opened by an agent through the API or the demo data


class CloseReason(enum.StrEnum):
    ORIENTED = "oriented"  # decision notified: the clock ended
    LEFT_SDD = "left_sdd"
    RIGHT_CLOSED = "right_closed"
    MOVED_AWAY = "moved_away"
    DECEASED = "deceased"
    ABANDONED = "abandoned"  # non-BRSA who gave up
    DUPLICATE = "duplicate"


class Parcours(enum.StrEnum):
    EMPLOI = "emploi"
    SOCIO_PROFESSIONNEL = "socio_professionnel"
    SOCIAL = "social"


PARCOURS_FT_CODES = {
    Parcours.EMPLOI: "PED",
    Parcours.SOCIO_PROFESSIONNEL: "PSO",
    Parcours.SOCIAL: "PSP",
}


class OrientationCase(TimestampMixin, VersionedMixin, Base):
    """One orientation clock for one person: from entry into SDD to the notified decision."""

    __tablename__ = "orientation_cases"
    __table_args__ = (
        Index(
            "uq_orientation_cases_open_per_person",
            "person_id",
            unique=True,
            sqlite_where=text("closed_on IS NULL"),
            postgresql_where=text("closed_on IS NULL"),
        ),
        # Covering indexes measured by bench/orientation_indicators.py: the délai and
        # Kaplan-Meier indicators read only this index on PostgreSQL.
        Index(
            "ix_orientation_cases_territory_started",
            "territory_id",
            "clock_started_on",
            postgresql_include=[
                "id",
                "notified_on",
                "closed_on",
                "close_reason",
                "paused_since",
                "paused_days",
                "public",
            ],
        ),
        Index("ix_orientation_cases_closed_territory", "closed_on", "territory_id"),
        Index("ix_orientation_cases_status_deadline", "status", "legal_deadline"),
        CheckConstraint("paused_days >= 0", name="paused_days_non_negative"),
        CheckConstraint("rio_absences >= 0", name="rio_absences_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(
        deferrable_fk("persons.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[CaseStatus] = mapped_column(enum_type(CaseStatus, "orientation_case_status"))
    clock_started_on: Mapped[dt.date]
    start_basis: Mapped[ClockStartBasis] = mapped_column(
        enum_type(ClockStartBasis, "clock_start_basis")
    )
    clock_estimated: Mapped[bool] = mapped_column(default=False)
    policy_id: Mapped[int] = mapped_column(deferrable_fk("delay_policies.id"))
    # Deadlines include the paused days; NULL while the clock is paused.
    legal_deadline: Mapped[dt.date | None]
    target_date: Mapped[dt.date | None]
    paused_since: Mapped[dt.date | None]
    paused_days: Mapped[int] = mapped_column(default=0)
    # Grouping keys frozen at opening (indicators group by where the clock started).
    territory_id: Mapped[int | None] = mapped_column(deferrable_fk("territories.id"))
    public: Mapped[Public] = mapped_column(enum_type(Public, "orientation_case_public"))
    rio_absences: Mapped[int] = mapped_column(default=0)
    flagged_for_ep: Mapped[bool] = mapped_column(default=False)
    decided_on: Mapped[dt.date | None]
    notified_on: Mapped[dt.date | None]
    closed_on: Mapped[dt.date | None]
    close_reason: Mapped[CloseReason | None] = mapped_column(
        enum_type(CloseReason, "orientation_close_reason")
    )

    person: Mapped[Person] = relationship()
    policy: Mapped[DelayPolicy] = relationship()
    pauses: Mapped[list[CasePause]] = relationship(
        back_populates="case", order_by="CasePause.paused_on"
    )
    decisions: Mapped[list[OrientationDecision]] = relationship(
        back_populates="case", order_by="OrientationDecision.rank"
    )


class CasePause(Base):
    """An interval [paused_on, resumed_on) during which the clock did not run."""

    __tablename__ = "orientation_case_pauses"
    __table_args__ = (
        CheckConstraint("resumed_on IS NULL OR resumed_on >= paused_on", name="pause_order"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("orientation_cases.id", ondelete="CASCADE"), index=True
    )
    paused_on: Mapped[dt.date]
    resumed_on: Mapped[dt.date | None]
    reason: Mapped[str] = mapped_column(String(40))

    case: Mapped[OrientationCase] = relationship(back_populates="pauses")


class RioStatus(enum.StrEnum):
    PLANNED = "planned"
    HELD = "held"
    CANCELLED = "cancelled"


class RioSession(TimestampMixin, VersionedMixin, Base):
    __tablename__ = "rio_sessions"
    __table_args__ = (
        CheckConstraint("capacity > 0", name="capacity_positive"),
        Index("ix_rio_sessions_territory_starts", "territory_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime | None]
    place: Mapped[str] = mapped_column(String(300))
    territory_id: Mapped[int] = mapped_column(ForeignKey("territories.id"))
    animator_structure_id: Mapped[int] = mapped_column(ForeignKey("structures.id"))
    capacity: Mapped[int]
    status: Mapped[RioStatus] = mapped_column(
        enum_type(RioStatus, "rio_status"), default=RioStatus.PLANNED
    )
    reminder_sent_at: Mapped[dt.datetime | None]

    animator_structure: Mapped[Structure] = relationship()
    convocations: Mapped[list[Convocation]] = relationship(back_populates="session")


class Attendance(enum.StrEnum):
    PRESENT = "present"
    ABSENT = "absent"
    EXCUSE = "excuse"


class Convocation(Base):
    __tablename__ = "rio_convocations"
    __table_args__ = (
        UniqueConstraint("session_id", "person_id"),
        Index("ix_rio_convocations_case", "case_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("rio_sessions.id", ondelete="CASCADE"))
    case_id: Mapped[int] = mapped_column(ForeignKey("orientation_cases.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    convened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    convened_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    email_sent_at: Mapped[dt.datetime | None]
    reminder_sent_at: Mapped[dt.datetime | None]
    attendance: Mapped[Attendance | None] = mapped_column(enum_type(Attendance, "rio_attendance"))
    attendance_recorded_at: Mapped[dt.datetime | None]
    cancelled_at: Mapped[dt.datetime | None]

    session: Mapped[RioSession] = relationship(back_populates="convocations")
    case: Mapped[OrientationCase] = relationship()
    person: Mapped[Person] = relationship()  # over person_id (no schema change)


class ReferentielVersion(Base):
    """A published version of the orientation référentiel (criteria and rules as data)."""

    __tablename__ = "referentiel_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    label: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))


class Diagnostic(Base):
    """The criteria recorded at the RIO interview (or for a direct orientation) and the
    proposal the référentiel version in force made from them, with its explanation."""

    __tablename__ = "orientation_diagnostics"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("orientation_cases.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    rio_session_id: Mapped[int | None] = mapped_column(ForeignKey("rio_sessions.id"))
    referentiel_version_id: Mapped[int] = mapped_column(ForeignKey("referentiel_versions.id"))
    criteria: Mapped[dict[str, Any]] = mapped_column(JSON)
    proposal: Mapped[dict[str, Any]] = mapped_column(JSON)
    proposed_parcours: Mapped[Parcours] = mapped_column(enum_type(Parcours, "parcours_type"))
    suggested_structure_id: Mapped[int | None] = mapped_column(ForeignKey("structures.id"))
    direct_orientation: Mapped[bool] = mapped_column(default=False)

    referentiel_version: Mapped[ReferentielVersion] = relationship()


class FtSyncStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    NOT_FOUND = "not_found"
    FAILED = "failed"
    NOT_APPLICABLE = "not_applicable"


class OrientationDecision(Base):
    """Append-only and ranked: a réorientation is a new row with the next rank."""

    __tablename__ = "orientation_decisions"
    __table_args__ = (
        UniqueConstraint("person_id", "rank"),
        CheckConstraint("rank >= 1", name="rank_positive"),
        CheckConstraint(
            "follows_proposal OR divergence_reason IS NOT NULL", name="divergence_explained"
        ),
        CheckConstraint(
            "rank = 1 OR reorientation_reason IS NOT NULL", name="reorientation_explained"
        ),
        Index("ix_orientation_decisions_structure_decided", "structure_id", "decided_on"),
        Index(
            "ix_orientation_decisions_case_rank",
            "case_id",
            "rank",
            postgresql_include=["decided_on", "structure_id", "parcours"],
        ),
        Index(
            "ix_orientation_decisions_decided",
            "decided_on",
            postgresql_include=["case_id", "rank", "via_rio", "direct", "structure_id", "parcours"],
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("orientation_cases.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    rank: Mapped[int]
    decided_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_on: Mapped[dt.date]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    parcours: Mapped[Parcours] = mapped_column(enum_type(Parcours, "decision_parcours_type"))
    structure_id: Mapped[int] = mapped_column(ForeignKey("structures.id"))
    diagnostic_id: Mapped[int | None] = mapped_column(ForeignKey("orientation_diagnostics.id"))
    follows_proposal: Mapped[bool]
    divergence_reason: Mapped[str | None] = mapped_column(Text)
    via_rio: Mapped[bool] = mapped_column(default=False)
    direct: Mapped[bool] = mapped_column(default=False)
    reorientation_reason: Mapped[str | None] = mapped_column(Text)
    ep_opinion: Mapped[str | None] = mapped_column(Text)  # équipe pluridisciplinaire
    ep_opinion_on: Mapped[dt.date | None]
    notified_on: Mapped[dt.date | None]
    notification_channel: Mapped[str | None] = mapped_column(String(20))
    ft_sync_status: Mapped[FtSyncStatus] = mapped_column(
        enum_type(FtSyncStatus, "ft_sync_status"), default=FtSyncStatus.PENDING
    )

    case: Mapped[OrientationCase] = relationship(back_populates="decisions")
    structure: Mapped[Structure] = relationship()
