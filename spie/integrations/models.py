"""Import machinery and partner state: files, runs, rejects, probable matches, CAF household
fingerprints, France Travail registrations and the orientation sending markers.

Tables (FLOWS.md "rules common to every import"):

- ``import_files`` / ``import_file_chunks``: the bytes of an uploaded or inbox file, kept in the
  database (no local disk between requests, any worker can read them), deduplicated by
  SHA-256;
- ``import_runs``: one row per file import (source, kind, checksum, counts, status, batch
  checkpoint ``last_committed_position``);
- ``import_rejects``: every rejected record (and every warning) with its position, keys,
  reason code, French-free stable code + precise message (never personal data) and the raw
  fragment (personal data: admins only);
- ``probable_matches``: people matched on name + birth date only, waiting for a human;
- ``caf_household_syncs``: per CAF household, the SHA-256/128 fingerprint of the bytes of its
  last applied ``InfosFoyerRSA`` and the DTREF of that flow (re-imports skip unchanged
  households before parsing them; an older flow never overwrites a newer one);
- ``caf_household_events``: CAF events (``Evenement``: liquidation date and motifs);
- ``ft_registrations`` / ``ft_registration_events``: France Travail registration state and
  history per NIR (linked to the person when known);
- ``ft_orientation_syncs``: the exactly-once marker of sending one orientation decision to
  France Travail.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from spie.db import Base, deferrable_fk, enum_type, utcnow


class ImportSource(enum.StrEnum):
    CAF = "caf"
    FRANCE_TRAVAIL = "france_travail"


class ImportTrigger(enum.StrEnum):
    CLI = "cli"
    UPLOAD = "upload"
    INBOX = "inbox"
    REPLAY = "replay"


class ImportStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"  # every record read (some may be rejected)
    PARTIAL = "partial"  # the file could not be read to its end: records before it imported
    REFUSED = "refused"  # unsafe or unusable file: nothing imported
    DUPLICATE = "duplicate"  # same file already imported: nothing changed
    FAILED = "failed"  # unexpected error: resumable from the last checkpoint


#: A file whose run ended in one of these states counts as imported (its checksum is known).
IMPORTED_STATUSES = (ImportStatus.DONE, ImportStatus.PARTIAL)
FINAL_STATUSES = (
    ImportStatus.DONE,
    ImportStatus.PARTIAL,
    ImportStatus.REFUSED,
    ImportStatus.DUPLICATE,
)
UNFINISHED_STATUSES = (ImportStatus.QUEUED, ImportStatus.RUNNING, ImportStatus.FAILED)


class RejectSeverity(enum.StrEnum):
    ERROR = "error"  # the record was not imported
    WARNING = "warning"  # imported, with a remark (NIR key, count mismatch...)


class RejectStatus(enum.StrEnum):
    OPEN = "open"
    REPLAYED = "replayed"
    IGNORED = "ignored"


class ProbableMatchStatus(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"  # same person: the record was applied to the candidate
    REJECTED = "rejected"  # another person: a new person was created


class FtRegistrationState(enum.StrEnum):
    INSCRIT = "inscrit"
    CESSATION = "cessation"
    RADIATION = "radiation"


class FtEventKind(enum.StrEnum):
    INSCRIPTION = "inscription"
    CESSATION = "cessation"
    RADIATION = "radiation"


class FtSyncState(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # the orientation may have left: read France Travail's before resending
    SENT = "sent"
    NOT_FOUND = "not_found"
    SEVERAL = "several"  # S003: several people match, nothing sent, flagged
    FAILED = "failed"  # permanent (R001, refused request)


class ImportFile(Base):
    """The content of an uploaded / inbox file, by checksum (stored once)."""

    __tablename__ = "import_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    checksum: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256, hex
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    file_name: Mapped[str] = mapped_column(String(255))
    chunk_count: Mapped[int] = mapped_column(default=0)
    complete: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ImportFileChunk(Base):
    __tablename__ = "import_file_chunks"

    file_id: Mapped[int] = mapped_column(
        ForeignKey("import_files.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ImportRun(Base):
    __tablename__ = "import_runs"
    __table_args__ = (
        Index("ix_import_runs_checksum_status", "checksum", "status"),
        Index("ix_import_runs_source_created", "source", "created_at"),
        CheckConstraint("last_committed_position >= 0", name="checkpoint_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[ImportSource] = mapped_column(enum_type(ImportSource, "import_source"))
    # "beneficiaires" for CAF; inscriptions / cessations / radiations / stock for France Travail
    kind: Mapped[str] = mapped_column(String(20))
    file_name: Mapped[str] = mapped_column(String(255))
    checksum: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    file_id: Mapped[int | None] = mapped_column(ForeignKey("import_files.id"))
    # The CLI reads the file where it is (its own disk); uploads and inbox files are in the DB.
    local_path: Mapped[str | None] = mapped_column(String(1000))
    trigger: Mapped[ImportTrigger] = mapped_column(enum_type(ImportTrigger, "import_trigger"))
    status: Mapped[ImportStatus] = mapped_column(
        enum_type(ImportStatus, "import_status"), default=ImportStatus.QUEUED
    )
    force: Mapped[bool] = mapped_column(default=False)
    batch_size: Mapped[int] = mapped_column(default=1000)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    job_run_id: Mapped[str | None] = mapped_column(String(36))
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("import_runs.id"))
    replay_of_run_id: Mapped[int | None] = mapped_column(ForeignKey("import_runs.id"))

    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    heartbeat_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)

    # What the file says about itself (CAF: IdentificationFlux).
    flow_type: Mapped[str | None] = mapped_column(String(1))  # I (daily) / M (monthly)
    flow_schema: Mapped[str | None] = mapped_column(String(10))
    flow_dtref: Mapped[dt.date | None]
    # The very first CAF monthly stock: people already SDD get DTDEMRSA, estimated.
    initial_stock: Mapped[bool] = mapped_column(default=False)
    expected_count: Mapped[int | None]
    count_mismatch: Mapped[bool] = mapped_column(default=False)

    last_committed_position: Mapped[int] = mapped_column(default=0)
    read_count: Mapped[int] = mapped_column(default=0)
    created_count: Mapped[int] = mapped_column(default=0)
    updated_count: Mapped[int] = mapped_column(default=0)
    unchanged_count: Mapped[int] = mapped_column(default=0)
    rejected_count: Mapped[int] = mapped_column(default=0)
    warning_count: Mapped[int] = mapped_column(default=0)
    # Finer counts (persons created / updated, cases opened, alerts...): codes and numbers.
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(40))
    error_message: Mapped[str | None] = mapped_column(Text)


class ImportReject(Base):
    __tablename__ = "import_rejects"
    __table_args__ = (
        Index("ix_import_rejects_run_position", "run_id", "position"),
        Index("ix_import_rejects_status", "status", "severity"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("import_runs.id", ondelete="CASCADE"))
    # Household ordinal in a CAF file (from 1), physical line number in a CSV file; NULL for
    # the whole file (count mismatch, truncation).
    position: Mapped[int | None]
    severity: Mapped[RejectSeverity] = mapped_column(
        enum_type(RejectSeverity, "import_reject_severity")
    )
    code: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)  # precise, never personal data
    keys: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    raw_fragment: Mapped[str | None] = mapped_column(Text)  # personal data: admins only
    status: Mapped[RejectStatus] = mapped_column(
        enum_type(RejectStatus, "import_reject_status"), default=RejectStatus.OPEN
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    replayed_at: Mapped[dt.datetime | None]
    replayed_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    replay_run_id: Mapped[int | None] = mapped_column(ForeignKey("import_runs.id"))


class ProbableMatch(Base):
    """An incoming CAF person matching an existing person on normalised name + birth date only.

    The record is held (not applied) until an admin confirms (applied to the candidate) or
    rejects (a new person is created); the clock start keeps the flow's date either way.
    """

    __tablename__ = "probable_matches"
    __table_args__ = (
        Index(
            "uq_probable_matches_pending",
            "candidate_person_id",
            "caf_numorg",
            "caf_matricule",
            "caf_role",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_probable_matches_status", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[ProbableMatchStatus] = mapped_column(
        enum_type(ProbableMatchStatus, "probable_match_status"),
        default=ProbableMatchStatus.PENDING,
    )
    candidate_person_id: Mapped[int] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), index=True
    )
    run_id: Mapped[int] = mapped_column(ForeignKey("import_runs.id"))
    position: Mapped[int | None]
    caf_numorg: Mapped[str] = mapped_column(String(3))
    caf_matricule: Mapped[str] = mapped_column(String(15))
    caf_role: Mapped[str | None] = mapped_column(String(3))
    flow_dtref: Mapped[dt.date]
    initial_stock: Mapped[bool] = mapped_column(default=False)
    # Why only probable: "no_nir", "nir_unverified", "candidate_without_nir"...
    reason: Mapped[str] = mapped_column(String(40))
    # The incoming person and the household context (personal data: admins only).
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[dt.datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    resulting_person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))


class CafHouseholdEvent(Base):
    __tablename__ = "caf_household_events"
    __table_args__ = (UniqueConstraint("household_id", "liquidated_on", "motifs"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(deferrable_fk("households.id", ondelete="CASCADE"))
    liquidated_on: Mapped[dt.date | None]
    motifs: Mapped[str] = mapped_column(String(200))  # MOTITRANSFLUX codes, space-separated
    flow_dtref: Mapped[dt.date]
    run_id: Mapped[int | None]  # informational: no foreign key


class FtRegistration(Base):
    """Current France Travail registration of one NIR (person linked when known to spie)."""

    __tablename__ = "ft_registrations"
    __table_args__ = (
        CheckConstraint("length(nir) = 13", name="nir_length"),
        # Room on each page for the monthly state updates (HOT updates: no index write; the
        # state is deliberately not indexed, the daily review reads few rows).
        {"postgresql_with": {"fillfactor": 80}},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    nir: Mapped[str] = mapped_column(String(13), unique=True)
    birth_date: Mapped[dt.date]
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("persons.id", ondelete="SET NULL"), index=True
    )
    france_travail_id: Mapped[str] = mapped_column(String(11))
    state: Mapped[FtRegistrationState] = mapped_column(
        enum_type(FtRegistrationState, "ft_registration_state")
    )
    state_since: Mapped[dt.date]
    category: Mapped[str | None] = mapped_column(String(2))  # 1..8, last inscription
    reason_code: Mapped[str | None] = mapped_column(String(10))
    reason_label: Mapped[str | None] = mapped_column(String(200))
    agency: Mapped[str | None] = mapped_column(String(120))
    commune_insee: Mapped[str | None] = mapped_column(String(5))
    updated_run_id: Mapped[int | None]  # informational: no foreign key
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class FtRegistrationEvent(Base):
    """One France Travail event of a NIR (its registration's natural key: the history is
    written by COPY without first asking the registrations for their ids)."""

    __tablename__ = "ft_registration_events"
    __table_args__ = (UniqueConstraint("nir", "kind", "event_on", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    nir: Mapped[str] = mapped_column(String(13))
    kind: Mapped[FtEventKind] = mapped_column(enum_type(FtEventKind, "ft_event_kind"))
    event_on: Mapped[dt.date]
    code: Mapped[str] = mapped_column(String(10))
    reason_label: Mapped[str | None] = mapped_column(String(200))
    agency: Mapped[str | None] = mapped_column(String(120))
    run_id: Mapped[int | None]  # informational: no foreign key (a check per imported line)
    line_no: Mapped[int | None] = mapped_column(Integer)


class FtOrientationSync(Base):
    """Sending one orientation decision to France Travail, exactly once."""

    __tablename__ = "ft_orientation_syncs"

    id: Mapped[int] = mapped_column(primary_key=True)
    decision_id: Mapped[int] = mapped_column(
        ForeignKey("orientation_decisions.id", ondelete="CASCADE"), unique=True
    )
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    state: Mapped[FtSyncState] = mapped_column(
        enum_type(FtSyncState, "ft_sync_state"), default=FtSyncState.PENDING
    )
    parcours: Mapped[str] = mapped_column(String(3))  # PED / PSO / PSP sent
    attempts: Mapped[int] = mapped_column(default=0)
    # A send timed out or got a 5xx: it may have been applied, read before sending again.
    maybe_applied: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error_code: Mapped[str | None] = mapped_column(String(40))
    code_retour: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    # France Travail's own orientation as last read (lectureOrientation): codes only.
    ft_parcours: Mapped[str | None] = mapped_column(String(10))
    ft_statut: Mapped[str | None] = mapped_column(String(30))
    ft_entered_on: Mapped[dt.date | None]
    ft_read_at: Mapped[dt.datetime | None]
