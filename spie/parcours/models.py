"""The person's pathway after orientation: parcours, offers and steps, contracts, appointments
with the référent, clocks, alerts, shared diagnostics and équipe pluridisciplinaire cases.

Naming: the model of a pathway is :class:`Pathway` (table ``pathways``) because
``spie.orientation.models.Parcours`` is already the enum of pathway *types* (emploi,
socio-professionnel, social), which :attr:`Pathway.parcours` reuses.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from spie.clocks.models import ClockKind
from spie.db import Base, TimestampMixin, VersionedMixin, enum_type, utcnow
from spie.orientation.models import Parcours
from spie.persons.models import Public
from spie.referent.models import ReferentAssignment

if TYPE_CHECKING:
    from spie.structures.models import Structure
    from spie.territories.models import Territory


# --------------------------------------------------------------------------------------------
# Pathway
# --------------------------------------------------------------------------------------------


class PathwayCloseReason(enum.StrEnum):
    REORIENTED = "reoriented"  # a new orientation decision opened another pathway
    LEFT_RSA = "left_rsa"
    MOVED_AWAY = "moved_away"
    DECEASED = "deceased"
    COMPLETED = "completed"  # sortie positive (emploi durable, formation qualifiante)
    OTHER = "other"


class Pathway(TimestampMixin, VersionedMixin, Base):
    """One pathway per orientation decision; at most one active (``closed_on IS NULL``) per
    person, guaranteed by a partial unique index."""

    __tablename__ = "pathways"
    __table_args__ = (
        Index(
            "uq_pathways_active_per_person",
            "person_id",
            unique=True,
            sqlite_where=text("closed_on IS NULL"),
            postgresql_where=text("closed_on IS NULL"),
        ),
        Index("ix_pathways_person_opened", "person_id", "opened_on"),
        Index("ix_pathways_structure_opened", "structure_id", "opened_on"),
        Index("ix_pathways_territory_opened", "territory_id", "opened_on"),
        CheckConstraint("closed_on IS NULL OR closed_on >= opened_on", name="closed_after_opened"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    decision_id: Mapped[int | None] = mapped_column(
        ForeignKey("orientation_decisions.id"), unique=True
    )
    parcours: Mapped[Parcours] = mapped_column(enum_type(Parcours, "pathway_parcours"))
    structure_id: Mapped[int] = mapped_column(ForeignKey("structures.id"))
    # Grouping keys frozen at opening (indicators group by where the pathway started).
    territory_id: Mapped[int | None] = mapped_column(ForeignKey("territories.id"))
    public: Mapped[Public] = mapped_column(enum_type(Public, "pathway_public"))
    # Métropole typology (itinéraire activité, emploi renforcé, PLIE...): data, free label.
    typology: Mapped[str | None] = mapped_column(String(80))
    opened_on: Mapped[dt.date]  # decision date
    # Orientation notified: the entry and contract clocks start on this date.
    notified_on: Mapped[dt.date | None]
    entered_on: Mapped[dt.date | None]  # first honoured appointment with the référent
    last_review_on: Mapped[dt.date | None]  # social pathway: last joint review
    closed_on: Mapped[dt.date | None]
    close_reason: Mapped[PathwayCloseReason | None] = mapped_column(
        enum_type(PathwayCloseReason, "pathway_close_reason")
    )

    structure: Mapped[Structure] = relationship()


# --------------------------------------------------------------------------------------------
# Offer catalogue and steps
# --------------------------------------------------------------------------------------------


class OfferTheme(enum.StrEnum):
    TRAINING = "training"
    SIAE = "siae"
    HEALTH = "health"
    HOUSING = "housing"
    MOBILITY = "mobility"
    FRENCH_LANGUAGE = "french_language"
    DIGITAL_SKILLS = "digital_skills"
    CHILDCARE = "childcare"
    JOB_SEARCH = "job_search"
    VOLUNTEERING = "volunteering"
    SOCIAL = "social"  # remobilisation sociale, accès aux droits
    OTHER = "other"


OFFER_THEME_LABELS = {
    OfferTheme.TRAINING: "Formation",
    OfferTheme.SIAE: "Insertion par l'activité économique (SIAE)",
    OfferTheme.HEALTH: "Santé",
    OfferTheme.HOUSING: "Logement",
    OfferTheme.MOBILITY: "Mobilité",
    OfferTheme.FRENCH_LANGUAGE: "Langue française",
    OfferTheme.DIGITAL_SKILLS: "Compétences numériques",
    OfferTheme.CHILDCARE: "Garde d'enfants",
    OfferTheme.JOB_SEARCH: "Recherche d'emploi",
    OfferTheme.VOLUNTEERING: "Bénévolat",
    OfferTheme.SOCIAL: "Remobilisation sociale",
    OfferTheme.OTHER: "Autre",
}

# Health-related content is never shown to managers (DOMAIN §1): offers and steps of these
# themes are always ``sensitive``.
SENSITIVE_THEMES = frozenset({OfferTheme.HEALTH})

offer_territories = Table(
    "offer_territories",
    Base.metadata,
    Column("offer_id", ForeignKey("offers.id", ondelete="CASCADE"), primary_key=True),
    Column("territory_id", ForeignKey("territories.id"), primary_key=True, index=True),
)


class Offer(TimestampMixin, VersionedMixin, Base):
    """An offre d'insertion of the catalogue (managed by admins)."""

    __tablename__ = "offers"
    __table_args__ = (
        CheckConstraint("capacity IS NULL OR capacity > 0", name="capacity_positive"),
        CheckConstraint("ends_on IS NULL OR ends_on >= starts_on", name="period_order"),
        CheckConstraint("theme <> 'health' OR sensitive", name="health_is_sensitive"),
        Index("ix_offers_provider", "provider_structure_id"),
        Index("ix_offers_theme_active", "theme", "active"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    theme: Mapped[OfferTheme] = mapped_column(enum_type(OfferTheme, "offer_theme"))
    description: Mapped[str | None] = mapped_column(Text)
    provider_structure_id: Mapped[int] = mapped_column(ForeignKey("structures.id"))
    # Public(s) the offer is open to (values of spie.persons.models.Public); empty = all.
    publics: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Pathway types it suits (values of Parcours); empty = all.
    parcours_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    capacity: Mapped[int | None]  # simultaneous places (planned + running steps)
    starts_on: Mapped[dt.date]
    ends_on: Mapped[dt.date | None]
    active: Mapped[bool] = mapped_column(default=True)
    sensitive: Mapped[bool] = mapped_column(default=False)

    provider_structure: Mapped[Structure] = relationship()
    territories: Mapped[list[Territory]] = relationship(secondary=offer_territories)


class StepStatus(enum.StrEnum):
    PROPOSEE = "proposee"
    PLANIFIEE = "planifiee"
    EN_COURS = "en_cours"
    TERMINEE = "terminee"
    ABANDONNEE = "abandonnee"


class StepOutcome(enum.StrEnum):
    ACHIEVED = "achieved"  # objectif atteint
    PARTIALLY_ACHIEVED = "partially_achieved"
    NOT_ACHIEVED = "not_achieved"
    EMPLOYMENT = "employment"  # sortie vers l'emploi
    TRAINING = "training"  # entrée en formation qualifiante


class Step(TimestampMixin, VersionedMixin, Base):
    """A step of the pathway, from the catalogue (``offer_id``) or free, run by a provider."""

    __tablename__ = "steps"
    __table_args__ = (
        CheckConstraint(
            "planned_end_on IS NULL OR planned_start_on IS NULL "
            "OR planned_end_on >= planned_start_on",
            name="planned_period_order",
        ),
        CheckConstraint(
            "ended_on IS NULL OR started_on IS NULL OR ended_on >= started_on",
            name="period_order",
        ),
        CheckConstraint("status <> 'terminee' OR outcome IS NOT NULL", name="finished_has_outcome"),
        CheckConstraint("theme <> 'health' OR sensitive", name="health_is_sensitive"),
        Index("ix_steps_person_status", "person_id", "status"),
        Index("ix_steps_provider_status", "provider_structure_id", "status"),
        Index("ix_steps_offer", "offer_id"),
        Index("ix_steps_pathway", "pathway_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pathway_id: Mapped[int] = mapped_column(ForeignKey("pathways.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    offer_id: Mapped[int | None] = mapped_column(ForeignKey("offers.id"))
    title: Mapped[str] = mapped_column(String(200))
    theme: Mapped[OfferTheme] = mapped_column(enum_type(OfferTheme, "step_theme"))
    provider_structure_id: Mapped[int] = mapped_column(ForeignKey("structures.id"))
    sensitive: Mapped[bool] = mapped_column(default=False)
    status: Mapped[StepStatus] = mapped_column(enum_type(StepStatus, "step_status"))
    proposed_on: Mapped[dt.date]
    planned_start_on: Mapped[dt.date | None]
    planned_end_on: Mapped[dt.date | None]
    started_on: Mapped[dt.date | None]
    ended_on: Mapped[dt.date | None]
    outcome: Mapped[StepOutcome | None] = mapped_column(enum_type(StepOutcome, "step_outcome"))
    bilan: Mapped[str | None] = mapped_column(Text)  # bilan de fin d'étape
    abandon_reason: Mapped[str | None] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)  # référent's notes: never shown to managers
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))

    offer: Mapped[Offer | None] = relationship()
    provider_structure: Mapped[Structure] = relationship()


class StepTransition(Base):
    """Append-only history of a step's statuses (the timeline reads it)."""

    __tablename__ = "step_transitions"
    __table_args__ = (Index("ix_step_transitions_step", "step_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    step_id: Mapped[int] = mapped_column(ForeignKey("steps.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[StepStatus | None] = mapped_column(
        enum_type(StepStatus, "step_transition_from")
    )
    to_status: Mapped[StepStatus] = mapped_column(enum_type(StepStatus, "step_transition_to"))
    on: Mapped[dt.date]
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    by_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))


# --------------------------------------------------------------------------------------------
# Contracts
# --------------------------------------------------------------------------------------------


class ContractKind(enum.StrEnum):
    ENGAGEMENT = "contrat_engagement"  # since 2025-01-01 (loi pour le plein emploi)
    CER_SOCIAL = "cer_social"  # historical: contrat d'engagements réciproques, social
    CER_PRO = "cer_professionnel"  # historical: CER professionnel
    PPAE = "ppae"  # historical: projet personnalisé d'accès à l'emploi (France Travail)


HISTORICAL_CONTRACT_KINDS = frozenset(
    {ContractKind.CER_SOCIAL, ContractKind.CER_PRO, ContractKind.PPAE}
)


class ReductionReason(enum.StrEnum):
    """Why the weekly activity of a contrat d'engagement is below 15 hours."""

    HEALTH = "health"
    DISABILITY = "disability"
    SINGLE_PARENT_NO_CHILDCARE = "single_parent_no_childcare"
    OTHER_SITUATION = "other_situation"


class ReviewExtensionReason(enum.StrEnum):
    """Reasons for which the social review may be pushed up to the extended limit."""

    HEALTH = "health"
    DISABILITY = "disability"
    HOUSING = "housing"
    FAMILY = "family"


class Contract(TimestampMixin, VersionedMixin, Base):
    __tablename__ = "contracts"
    __table_args__ = (
        CheckConstraint("ends_on > starts_on", name="period_order"),
        CheckConstraint(
            "weekly_hours IS NULL OR (weekly_hours >= 0 AND weekly_hours <= 48)",
            name="weekly_hours_range",
        ),
        Index("ix_contracts_person_period", "person_id", "starts_on", "ends_on"),
        Index("ix_contracts_pathway", "pathway_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    pathway_id: Mapped[int] = mapped_column(ForeignKey("pathways.id", ondelete="CASCADE"))
    kind: Mapped[ContractKind] = mapped_column(enum_type(ContractKind, "contract_kind"))
    signed_on: Mapped[dt.date]
    starts_on: Mapped[dt.date]
    ends_on: Mapped[dt.date]
    objectives: Mapped[str] = mapped_column(Text)
    weekly_hours: Mapped[int | None]
    reduction_reason: Mapped[ReductionReason | None] = mapped_column(
        enum_type(ReductionReason, "contract_reduction_reason")
    )
    review_extension_reason: Mapped[ReviewExtensionReason | None] = mapped_column(
        enum_type(ReviewExtensionReason, "contract_review_extension")
    )
    cancelled_on: Mapped[dt.date | None]
    cancel_reason: Mapped[str | None] = mapped_column(String(200))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))


# --------------------------------------------------------------------------------------------
# Appointments with the référent
# --------------------------------------------------------------------------------------------


class AppointmentStatus(enum.StrEnum):
    PLANNED = "planned"
    HONOURED = "honoured"
    MISSED = "missed"
    CANCELLED = "cancelled"


class AppointmentTheme(enum.StrEnum):
    """Interview themes used by advisers (DOMAIN §2)."""

    PREMIER_ENTRETIEN = "premier_entretien"
    DIAGNOSTIC = "diagnostic"
    DEFINITION_PROJET = "definition_projet"
    ELABORATION_CONTRAT = "elaboration_contrat"
    POINT_ETAPE = "point_etape"
    SUIVI = "suivi"
    ACCES_DROITS = "acces_droits"
    MISE_EN_RELATION = "mise_en_relation"
    PREPARATION_RECRUTEMENT = "preparation_recrutement"
    BILAN = "bilan"
    TRIPARTITE = "tripartite"  # person + référent + step provider


class AppointmentChannel(enum.StrEnum):
    IN_PERSON = "in_person"
    PHONE = "phone"
    VIDEO = "video"


class Appointment(TimestampMixin, VersionedMixin, Base):
    __tablename__ = "appointments"
    __table_args__ = (
        CheckConstraint("duration_minutes > 0 AND duration_minutes <= 480", name="duration_range"),
        Index("ix_appointments_person_status_at", "person_id", "status", "scheduled_at"),
        Index("ix_appointments_agent_at", "agent_id", "scheduled_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    pathway_id: Mapped[int | None] = mapped_column(ForeignKey("pathways.id", ondelete="CASCADE"))
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    structure_id: Mapped[int] = mapped_column(ForeignKey("structures.id"))
    step_id: Mapped[int | None] = mapped_column(ForeignKey("steps.id"))  # tripartite
    scheduled_at: Mapped[dt.datetime]
    duration_minutes: Mapped[int] = mapped_column(default=45)
    theme: Mapped[AppointmentTheme] = mapped_column(
        enum_type(AppointmentTheme, "appointment_theme")
    )
    channel: Mapped[AppointmentChannel] = mapped_column(
        enum_type(AppointmentChannel, "appointment_channel"), default=AppointmentChannel.IN_PERSON
    )
    status: Mapped[AppointmentStatus] = mapped_column(
        enum_type(AppointmentStatus, "appointment_status")
    )
    status_changed_at: Mapped[dt.datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)  # never shown to managers
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))


# --------------------------------------------------------------------------------------------
# Clocks of the pathway (DOMAIN §3) and alerts
# --------------------------------------------------------------------------------------------


class PathwayClock(Base):
    """One running or finished clock: entry into pathway, contract, social review, contract
    renewal, days without référent. Judged by the :class:`DelayPolicy` in force on its start.

    ``due_on`` is the legal limit when the policy sets one, else its target; ``met_on`` is
    the day the end event happened; ``stopped_on`` ends a clock without meeting it (pathway
    closed, contract cancelled). ``key`` makes the creation idempotent.
    """

    __tablename__ = "pathway_clocks"
    __table_args__ = (
        CheckConstraint("due_on >= started_on", name="due_after_start"),
        CheckConstraint("met_on IS NULL OR stopped_on IS NULL", name="met_or_stopped"),
        Index("ix_pathway_clocks_person_open", "person_id", "met_on", "stopped_on", "due_on"),
        Index("ix_pathway_clocks_kind_started", "kind", "started_on"),
        Index("ix_pathway_clocks_pathway", "pathway_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    pathway_id: Mapped[int | None] = mapped_column(ForeignKey("pathways.id", ondelete="CASCADE"))
    contract_id: Mapped[int | None] = mapped_column(
        ForeignKey("contracts.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[ClockKind] = mapped_column(enum_type(ClockKind, "pathway_clock_kind"))
    policy_id: Mapped[int] = mapped_column(ForeignKey("delay_policies.id"))
    started_on: Mapped[dt.date]
    due_on: Mapped[dt.date]
    target_on: Mapped[dt.date | None]
    extended: Mapped[bool] = mapped_column(default=False)
    met_on: Mapped[dt.date | None]
    stopped_on: Mapped[dt.date | None]
    stop_reason: Mapped[str | None] = mapped_column(String(60))


class AlertKind(enum.StrEnum):
    MISSED_APPOINTMENT = "missed_appointment"  # the signalement of an absence
    EP_THRESHOLD = "ep_threshold"  # enough missed appointments: an EP case was opened
    REFERENT_GAP = "referent_gap"  # too many days without an active référent
    REFERENT_DEPARTURE = "referent_departure"  # the référent leaves: reassign
    ASSIGNMENT_REVIEW = "assignment_review"  # e.g. the address moved to another CTM
    PATHWAY_ENTRY_OVERDUE = "pathway_entry_overdue"
    CONTRACT_OVERDUE = "contract_overdue"
    CONTRACT_RENEWAL = "contract_renewal"
    SOCIAL_REVIEW = "social_review"
    FT_RADIATION = "ft_radiation"  # France Travail radiation of an SDD person
    OTHER = "other"


class Alert(TimestampMixin, VersionedMixin, Base):
    """Something an agent must act on, for one person. Idempotent: one alert per
    (person, kind, due date). ``agent_id`` is who must act (the référent), ``structure_id``
    whose managers are told (the organisme référent)."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("person_id", "kind", "due_on"),
        Index("ix_alerts_person_open", "person_id", "resolved_at"),
        Index("ix_alerts_agent_open", "agent_id", "resolved_at"),
        Index("ix_alerts_structure_open", "structure_id", "resolved_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    kind: Mapped[AlertKind] = mapped_column(enum_type(AlertKind, "alert_kind"))
    due_on: Mapped[dt.date]
    raised_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    structure_id: Mapped[int | None] = mapped_column(ForeignKey("structures.id"))
    source_type: Mapped[str | None] = mapped_column(String(40))
    source_id: Mapped[int | None]
    # Codes and ids only (never personal data or free text).
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    resolved_at: Mapped[dt.datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    resolution: Mapped[str | None] = mapped_column(String(200))


# --------------------------------------------------------------------------------------------
# Rules kept as data
# --------------------------------------------------------------------------------------------


class PathwaySetting(TimestampMixin, VersionedMixin, Base):
    """A threshold of the pathway rules, valid over a period (e.g. how many missed
    appointments open an équipe pluridisciplinaire case)."""

    __tablename__ = "pathway_settings"
    __table_args__ = (
        CheckConstraint("valid_until IS NULL OR valid_until > valid_from", name="validity_order"),
        UniqueConstraint("key", "valid_from"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(60))
    value: Mapped[int]
    valid_from: Mapped[dt.date]
    valid_until: Mapped[dt.date | None]
    label: Mapped[str] = mapped_column(String(200))


# --------------------------------------------------------------------------------------------
# Diagnostic partagé
# --------------------------------------------------------------------------------------------


class AssessmentGrid(Base):
    """The grid of the diagnostic partagé: items (potentials, barriers, skills) and scales.

    ``items`` is a list of ``{"code", "label", "dimension" (potential|barrier|skill),
    "max" (highest level), "sensitive" (health-related)}``. A barrier's level is how much it
    weighs (0 sans impact … max fort); a potential's or skill's level is how much it is there.
    """

    __tablename__ = "assessment_grids"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    valid_from: Mapped[dt.date]
    valid_until: Mapped[dt.date | None]


class Assessment(TimestampMixin, VersionedMixin, Base):
    __tablename__ = "assessments"
    __table_args__ = (Index("ix_assessments_person_on", "person_id", "assessed_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    pathway_id: Mapped[int | None] = mapped_column(ForeignKey("pathways.id", ondelete="CASCADE"))
    grid_id: Mapped[int] = mapped_column(ForeignKey("assessment_grids.id"))
    assessed_on: Mapped[dt.date]
    assessed_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    scores: Mapped[dict[str, int]] = mapped_column(JSON)
    comment: Mapped[str | None] = mapped_column(Text)  # never shown to managers

    grid: Mapped[AssessmentGrid] = relationship()


# --------------------------------------------------------------------------------------------
# Équipe pluridisciplinaire
# --------------------------------------------------------------------------------------------


class SanctionLevel(Base):
    """A level of the sanction scale, kept as data with its validity period."""

    __tablename__ = "sanction_levels"
    __table_args__ = (
        UniqueConstraint("code", "valid_from"),
        CheckConstraint("valid_until IS NULL OR valid_until > valid_from", name="validity_order"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40))
    rank: Mapped[int]
    label: Mapped[str] = mapped_column(String(300))
    reduction_min_percent: Mapped[int | None]
    reduction_max_percent: Mapped[int | None]
    duration_min_months: Mapped[int | None]
    duration_max_months: Mapped[int | None]
    valid_from: Mapped[dt.date]
    valid_until: Mapped[dt.date | None]
    legal_source: Mapped[str | None] = mapped_column(Text)


class EpOrigin(enum.StrEnum):
    MISSED_APPOINTMENTS = "missed_appointments"
    NO_CONTRACT = "no_contract"
    REORIENTATION = "reorientation"  # Emploi → Social needs the EP's opinion
    OTHER = "other"


class EpStatus(enum.StrEnum):
    OPENED = "opened"  # à instruire
    REFERRED = "referred"  # saisine de l'EP
    OPINION_GIVEN = "opinion_given"
    DECIDED = "decided"
    CLOSED = "closed"  # classé sans suite


class EpDecision(enum.StrEnum):
    NO_SANCTION = "no_sanction"
    SANCTION = "sanction"
    REORIENTATION = "reorientation"


class EpCase(TimestampMixin, VersionedMixin, Base):
    """An équipe pluridisciplinaire case: referral, the person's observations, opinion,
    decision. Opened by spie when the missed-appointment threshold is reached, or by hand;
    every later step is recorded by a person — spie never decides a sanction."""

    __tablename__ = "ep_cases"
    __table_args__ = (
        Index(
            "uq_ep_cases_open_per_person",
            "person_id",
            unique=True,
            sqlite_where=text("closed_on IS NULL"),
            postgresql_where=text("closed_on IS NULL"),
        ),
        Index("ix_ep_cases_person_opened", "person_id", "opened_on"),
        CheckConstraint(
            "decision <> 'sanction' OR sanction_level_id IS NOT NULL", name="sanction_has_level"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    pathway_id: Mapped[int | None] = mapped_column(ForeignKey("pathways.id", ondelete="CASCADE"))
    structure_id: Mapped[int | None] = mapped_column(ForeignKey("structures.id"))
    origin: Mapped[EpOrigin] = mapped_column(enum_type(EpOrigin, "ep_origin"))
    status: Mapped[EpStatus] = mapped_column(enum_type(EpStatus, "ep_status"))
    opened_on: Mapped[dt.date]
    missed_appointments: Mapped[int] = mapped_column(default=0)
    referral_on: Mapped[dt.date | None]
    referral_reason: Mapped[str | None] = mapped_column(Text)
    person_observations: Mapped[str | None] = mapped_column(Text)
    observations_on: Mapped[dt.date | None]
    opinion: Mapped[str | None] = mapped_column(Text)
    opinion_on: Mapped[dt.date | None]
    decision: Mapped[EpDecision | None] = mapped_column(enum_type(EpDecision, "ep_decision"))
    sanction_level_id: Mapped[int | None] = mapped_column(ForeignKey("sanction_levels.id"))
    decided_on: Mapped[dt.date | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    closed_on: Mapped[dt.date | None]
    close_reason: Mapped[str | None] = mapped_column(String(200))

    sanction_level: Mapped[SanctionLevel | None] = relationship()


# The référent history of a person (timeline, GET /persons/{id}/referent) reads every
# assignment of the person, active or ended: the partial unique index covers the active one
# only. Declared here until it moves to spie/referent/models.py (same table, same migration).
Index(
    "ix_referent_assignments_person_started",
    ReferentAssignment.person_id,
    ReferentAssignment.started_at,
)
