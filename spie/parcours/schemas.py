"""Input (``...Args``) and output (``...Schema``) schemas of the pathway API."""

from __future__ import annotations

import datetime as dt
from typing import Any

import marshmallow as ma
from dateutil.relativedelta import relativedelta

from spie.api.common import PaginationArgs
from spie.clocks.models import ClockKind
from spie.orientation.models import Parcours
from spie.parcours import clock
from spie.parcours.models import (
    AlertKind,
    AppointmentChannel,
    AppointmentStatus,
    AppointmentTheme,
    ContractKind,
    EpDecision,
    EpOrigin,
    EpStatus,
    OfferTheme,
    PathwayCloseReason,
    ReductionReason,
    ReviewExtensionReason,
    StepOutcome,
    StepStatus,
)
from spie.persons.models import Public

TEXT = ma.validate.Length(max=10_000)
SHORT = ma.validate.Length(min=1, max=200)


def _enum(enum_cls: Any, **kwargs: Any) -> ma.fields.Enum:
    return ma.fields.Enum(enum_cls, by_value=True, **kwargs)


class PathwayPersonSchema(ma.Schema):
    id = ma.fields.Integer()
    last_name = ma.fields.String()
    first_name = ma.fields.String()
    birth_date = ma.fields.Date()


# --- pathway --------------------------------------------------------------------------------


class ClockSchema(ma.Schema):
    id = ma.fields.Integer()
    kind = _enum(ClockKind)
    contract_id = ma.fields.Integer(allow_none=True)
    started_on = ma.fields.Date()
    due_on = ma.fields.Date()
    target_on = ma.fields.Date(allow_none=True)
    extended = ma.fields.Boolean()
    met_on = ma.fields.Date(allow_none=True)
    stopped_on = ma.fields.Date(allow_none=True)
    stop_reason = ma.fields.String(allow_none=True)
    overdue = ma.fields.Boolean()
    met_late = ma.fields.Boolean()
    policy_id = ma.fields.Integer()


class StepSchema(ma.Schema):
    id = ma.fields.Integer()
    version = ma.fields.Integer()
    pathway_id = ma.fields.Integer()
    person_id = ma.fields.Integer()
    person = ma.fields.Nested(PathwayPersonSchema)
    offer_id = ma.fields.Integer(allow_none=True)
    title = ma.fields.String()
    theme = _enum(OfferTheme, allow_none=True)
    provider_structure_id = ma.fields.Integer()
    sensitive = ma.fields.Boolean()
    masked = ma.fields.Boolean(metadata={"description": "Détails de santé masqués."})
    status = _enum(StepStatus)
    proposed_on = ma.fields.Date()
    planned_start_on = ma.fields.Date(allow_none=True)
    planned_end_on = ma.fields.Date(allow_none=True)
    started_on = ma.fields.Date(allow_none=True)
    ended_on = ma.fields.Date(allow_none=True)
    outcome = _enum(StepOutcome, allow_none=True)
    bilan = ma.fields.String(allow_none=True)
    abandon_reason = ma.fields.String(allow_none=True)
    notes = ma.fields.String(allow_none=True)
    allowed_transitions = ma.fields.List(ma.fields.String())
    contributor_view = ma.fields.Boolean(
        metadata={"description": "Vue prestataire : l'étape et l'identité minimale seulement."}
    )


class ContractSchema(ma.Schema):
    id = ma.fields.Integer()
    version = ma.fields.Integer()
    person_id = ma.fields.Integer()
    pathway_id = ma.fields.Integer()
    kind = _enum(ContractKind)
    status = ma.fields.String(metadata={"description": "active, upcoming, ended, cancelled"})
    signed_on = ma.fields.Date()
    starts_on = ma.fields.Date()
    ends_on = ma.fields.Date()
    objectives = ma.fields.String(allow_none=True)
    weekly_hours = ma.fields.Integer(allow_none=True)
    reduction_reason = _enum(ReductionReason, allow_none=True)
    reduced = ma.fields.Boolean()
    review_extension_reason = _enum(ReviewExtensionReason, allow_none=True)
    cancelled_on = ma.fields.Date(allow_none=True)
    cancel_reason = ma.fields.String(allow_none=True)


class AppointmentSchema(ma.Schema):
    id = ma.fields.Integer()
    version = ma.fields.Integer()
    person_id = ma.fields.Integer()
    pathway_id = ma.fields.Integer(allow_none=True)
    agent_id = ma.fields.Integer()
    structure_id = ma.fields.Integer()
    step_id = ma.fields.Integer(allow_none=True)
    scheduled_at = ma.fields.AwareDateTime()
    duration_minutes = ma.fields.Integer()
    theme = _enum(AppointmentTheme)
    channel = _enum(AppointmentChannel)
    status = _enum(AppointmentStatus)
    status_changed_at = ma.fields.AwareDateTime(allow_none=True)
    cancel_reason = ma.fields.String(allow_none=True)
    notes = ma.fields.String(allow_none=True)


class AlertSchema(ma.Schema):
    id = ma.fields.Integer()
    version = ma.fields.Integer()
    person_id = ma.fields.Integer()
    kind = _enum(AlertKind)
    due_on = ma.fields.Date()
    raised_at = ma.fields.AwareDateTime()
    agent_id = ma.fields.Integer(allow_none=True)
    structure_id = ma.fields.Integer(allow_none=True)
    source_type = ma.fields.String(allow_none=True)
    source_id = ma.fields.Integer(allow_none=True)
    details = ma.fields.Dict(allow_none=True)
    resolved_at = ma.fields.AwareDateTime(allow_none=True)
    resolved_by_id = ma.fields.Integer(allow_none=True)
    resolution = ma.fields.String(allow_none=True)


class PathwaySummarySchema(ma.Schema):
    id = ma.fields.Integer()
    version = ma.fields.Integer()
    decision_id = ma.fields.Integer(allow_none=True)
    parcours = _enum(Parcours)
    structure_id = ma.fields.Integer()
    structure_name = ma.fields.String(allow_none=True)
    typology = ma.fields.String(allow_none=True)
    opened_on = ma.fields.Date()
    notified_on = ma.fields.Date(allow_none=True)
    entered_on = ma.fields.Date(allow_none=True)
    last_review_on = ma.fields.Date(allow_none=True)


class PreviousPathwaySchema(ma.Schema):
    id = ma.fields.Integer()
    parcours = _enum(Parcours)
    structure_id = ma.fields.Integer()
    opened_on = ma.fields.Date()
    closed_on = ma.fields.Date(allow_none=True)
    close_reason = _enum(PathwayCloseReason, allow_none=True)


class ReferentRefSchema(ma.Schema):
    agent_id = ma.fields.Integer()
    name = ma.fields.String()
    structure_id = ma.fields.Integer()
    since = ma.fields.AwareDateTime()


class PathwayFileSchema(ma.Schema):
    person = ma.fields.Nested(PathwayPersonSchema)
    pathway = ma.fields.Nested(PathwaySummarySchema, allow_none=True)
    referent = ma.fields.Nested(ReferentRefSchema, allow_none=True)
    clocks = ma.fields.List(ma.fields.Nested(ClockSchema))
    steps = ma.fields.List(ma.fields.Nested(StepSchema))
    contracts = ma.fields.List(ma.fields.Nested(ContractSchema))
    appointments = ma.fields.List(ma.fields.Nested(AppointmentSchema))
    open_alerts = ma.fields.List(ma.fields.Nested(AlertSchema))
    previous_pathways = ma.fields.List(ma.fields.Nested(PreviousPathwaySchema))


class PathwayUpdateArgs(ma.Schema):
    typology = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=80))
    reviewed_on = ma.fields.Date(
        metadata={"description": "Réexamen du parcours social tenu ce jour-là."}
    )


# --- steps ----------------------------------------------------------------------------------


class StepListArgs(PaginationArgs):
    person_id = ma.fields.Integer()
    status = _enum(StepStatus)
    offer_id = ma.fields.Integer()
    provided_by_my_structure = ma.fields.Boolean()


class StepCreateArgs(ma.Schema):
    person_id = ma.fields.Integer(required=True)
    offer_id = ma.fields.Integer(allow_none=True)
    title = ma.fields.String(validate=SHORT)
    theme = _enum(OfferTheme)
    provider_structure_id = ma.fields.Integer()
    sensitive = ma.fields.Boolean()
    proposed_on = ma.fields.Date()
    planned_start_on = ma.fields.Date(allow_none=True)
    planned_end_on = ma.fields.Date(allow_none=True)
    notes = ma.fields.String(allow_none=True, validate=TEXT)


class StepUpdateArgs(ma.Schema):
    title = ma.fields.String(validate=SHORT)
    planned_start_on = ma.fields.Date(allow_none=True)
    planned_end_on = ma.fields.Date(allow_none=True)
    bilan = ma.fields.String(allow_none=True, validate=TEXT)
    notes = ma.fields.String(allow_none=True, validate=TEXT)


class StepTransitionArgs(ma.Schema):
    to = _enum(StepStatus, required=True)
    on = ma.fields.Date(metadata={"description": "Date de l'événement (défaut : aujourd'hui)."})
    planned_start_on = ma.fields.Date()
    planned_end_on = ma.fields.Date()
    outcome = _enum(StepOutcome)
    bilan = ma.fields.String(validate=TEXT)
    abandon_reason = ma.fields.String(validate=SHORT)


# --- contracts ------------------------------------------------------------------------------


class ContractListArgs(PaginationArgs):
    person_id = ma.fields.Integer()
    active_on = ma.fields.Date()


class ContractCreateArgs(ma.Schema):
    person_id = ma.fields.Integer(required=True)
    kind = _enum(ContractKind, required=True)
    signed_on = ma.fields.Date(required=True)
    starts_on = ma.fields.Date(required=True)
    ends_on = ma.fields.Date(required=True)
    objectives = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=10_000))
    weekly_hours = ma.fields.Integer(allow_none=True, validate=ma.validate.Range(min=0, max=48))
    reduction_reason = _enum(ReductionReason, allow_none=True)
    review_extension_reason = _enum(ReviewExtensionReason, allow_none=True)


class ContractUpdateArgs(ma.Schema):
    ends_on = ma.fields.Date()
    objectives = ma.fields.String(validate=ma.validate.Length(min=1, max=10_000))
    weekly_hours = ma.fields.Integer(allow_none=True, validate=ma.validate.Range(min=0, max=48))
    reduction_reason = _enum(ReductionReason, allow_none=True)
    review_extension_reason = _enum(ReviewExtensionReason, allow_none=True)
    cancelled = ma.fields.Boolean()
    cancel_reason = ma.fields.String(validate=SHORT)


# --- appointments ---------------------------------------------------------------------------


class AppointmentListArgs(PaginationArgs):
    person_id = ma.fields.Integer()
    mine = ma.fields.Boolean()
    status = _enum(AppointmentStatus)
    upcoming = ma.fields.Boolean()
    from_ = ma.fields.AwareDateTime(data_key="from")
    to = ma.fields.AwareDateTime()

    @ma.post_load
    def _rename(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if "from_" in data:
            data["from"] = data.pop("from_")
        return data


class AppointmentCreateArgs(ma.Schema):
    person_id = ma.fields.Integer(required=True)
    scheduled_at = ma.fields.AwareDateTime(required=True)
    duration_minutes = ma.fields.Integer(validate=ma.validate.Range(min=5, max=480))
    theme = _enum(AppointmentTheme, required=True)
    channel = _enum(AppointmentChannel)
    status = _enum(
        AppointmentStatus,
        metadata={
            "description": "planned (défaut, futur) ; honoured ou missed pour un rendez-vous passé."
        },
    )
    agent_id = ma.fields.Integer()
    step_id = ma.fields.Integer(allow_none=True)
    notes = ma.fields.String(allow_none=True, validate=TEXT)


class AppointmentUpdateArgs(ma.Schema):
    status = _enum(AppointmentStatus)
    cancel_reason = ma.fields.String(validate=SHORT)
    scheduled_at = ma.fields.AwareDateTime()
    duration_minutes = ma.fields.Integer(validate=ma.validate.Range(min=5, max=480))
    theme = _enum(AppointmentTheme)
    channel = _enum(AppointmentChannel)
    notes = ma.fields.String(allow_none=True, validate=TEXT)


# --- offers ---------------------------------------------------------------------------------


class OfferListArgs(PaginationArgs):
    theme = _enum(OfferTheme)
    active = ma.fields.Boolean()
    provider_structure_id = ma.fields.Integer()
    territory_id = ma.fields.Integer()
    available_on = ma.fields.Date()


class OfferArgs(ma.Schema):
    code = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(r"^[A-Z0-9][A-Z0-9_\-]{1,39}$", error="Code en majuscules."),
    )
    title = ma.fields.String(required=True, validate=SHORT)
    theme = _enum(OfferTheme, required=True)
    description = ma.fields.String(allow_none=True, validate=TEXT)
    provider_structure_id = ma.fields.Integer(required=True)
    publics = ma.fields.List(_enum(Public), load_default=list)
    parcours_types = ma.fields.List(_enum(Parcours), load_default=list)
    capacity = ma.fields.Integer(allow_none=True, validate=ma.validate.Range(min=1, max=100_000))
    starts_on = ma.fields.Date(required=True)
    ends_on = ma.fields.Date(allow_none=True)
    active = ma.fields.Boolean(load_default=True)
    sensitive = ma.fields.Boolean(load_default=False)
    territory_ids = ma.fields.List(ma.fields.Integer(), load_default=list)

    @ma.validates_schema
    def _period(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("ends_on") and data.get("starts_on") and data["ends_on"] < data["starts_on"]:
            raise ma.ValidationError("La fin précède le début de l'offre.", "ends_on")


class OfferUpdateArgs(ma.Schema):
    """Every field optional; the code never changes (it identifies the offer)."""

    title = ma.fields.String(validate=SHORT)
    theme = _enum(OfferTheme)
    description = ma.fields.String(allow_none=True, validate=TEXT)
    provider_structure_id = ma.fields.Integer()
    publics = ma.fields.List(_enum(Public))
    parcours_types = ma.fields.List(_enum(Parcours))
    capacity = ma.fields.Integer(allow_none=True, validate=ma.validate.Range(min=1, max=100_000))
    starts_on = ma.fields.Date()
    ends_on = ma.fields.Date(allow_none=True)
    active = ma.fields.Boolean()
    sensitive = ma.fields.Boolean()
    territory_ids = ma.fields.List(ma.fields.Integer())


class OfferSchema(ma.Schema):
    id = ma.fields.Integer()
    version = ma.fields.Integer()
    code = ma.fields.String()
    title = ma.fields.String()
    theme = _enum(OfferTheme)
    description = ma.fields.String(allow_none=True)
    provider_structure_id = ma.fields.Integer()
    publics = ma.fields.List(ma.fields.String())
    parcours_types = ma.fields.List(ma.fields.String())
    capacity = ma.fields.Integer(allow_none=True)
    starts_on = ma.fields.Date()
    ends_on = ma.fields.Date(allow_none=True)
    active = ma.fields.Boolean()
    sensitive = ma.fields.Boolean()
    territory_ids = ma.fields.Function(lambda o: sorted(t.id for t in o.territories))


# --- alerts, EP, diagnostics ----------------------------------------------------------------


class AlertListArgs(PaginationArgs):
    mine = ma.fields.Boolean()
    person_id = ma.fields.Integer()
    kind = _enum(AlertKind)
    structure_id = ma.fields.Integer()
    state = ma.fields.String(
        load_default="open", validate=ma.validate.OneOf(["open", "resolved", "all"])
    )


class AlertResolveArgs(ma.Schema):
    resolution = ma.fields.String(required=True, validate=SHORT)


class EpCaseListArgs(PaginationArgs):
    person_id = ma.fields.Integer()
    status = _enum(EpStatus)
    open = ma.fields.Boolean()


class EpCaseCreateArgs(ma.Schema):
    person_id = ma.fields.Integer(required=True)
    origin = _enum(EpOrigin, required=True)
    referral_reason = ma.fields.String(allow_none=True, validate=TEXT)


class EpCaseUpdateArgs(ma.Schema):
    referral_on = ma.fields.Date()
    referral_reason = ma.fields.String(validate=TEXT)
    person_observations = ma.fields.String(validate=TEXT)
    observations_on = ma.fields.Date()
    opinion = ma.fields.String(validate=TEXT)
    opinion_on = ma.fields.Date()
    decision = _enum(EpDecision)
    sanction_level_id = ma.fields.Integer(allow_none=True)
    decided_on = ma.fields.Date()
    close_reason = ma.fields.String(validate=SHORT)


class EpCaseSchema(ma.Schema):
    id = ma.fields.Integer()
    version = ma.fields.Integer()
    person_id = ma.fields.Integer()
    pathway_id = ma.fields.Integer(allow_none=True)
    structure_id = ma.fields.Integer(allow_none=True)
    origin = _enum(EpOrigin)
    status = _enum(EpStatus)
    opened_on = ma.fields.Date()
    missed_appointments = ma.fields.Integer()
    referral_on = ma.fields.Date(allow_none=True)
    referral_reason = ma.fields.String(allow_none=True)
    person_observations = ma.fields.String(allow_none=True)
    observations_on = ma.fields.Date(allow_none=True)
    opinion = ma.fields.String(allow_none=True)
    opinion_on = ma.fields.Date(allow_none=True)
    decision = _enum(EpDecision, allow_none=True)
    sanction_level_id = ma.fields.Integer(allow_none=True)
    decided_on = ma.fields.Date(allow_none=True)
    decided_by_id = ma.fields.Integer(allow_none=True)
    closed_on = ma.fields.Date(allow_none=True)
    close_reason = ma.fields.String(allow_none=True)


class SanctionLevelSchema(ma.Schema):
    id = ma.fields.Integer()
    code = ma.fields.String()
    rank = ma.fields.Integer()
    label = ma.fields.String()
    reduction_min_percent = ma.fields.Integer(allow_none=True)
    reduction_max_percent = ma.fields.Integer(allow_none=True)
    duration_min_months = ma.fields.Integer(allow_none=True)
    duration_max_months = ma.fields.Integer(allow_none=True)
    valid_from = ma.fields.Date()
    valid_until = ma.fields.Date(allow_none=True)
    legal_source = ma.fields.String(allow_none=True)


class AssessmentArgs(ma.Schema):
    assessed_on = ma.fields.Date()
    grid_code = ma.fields.String(validate=ma.validate.Length(max=40))
    scores = ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.Length(max=40)),
        values=ma.fields.Integer(),
        required=True,
    )
    comment = ma.fields.String(allow_none=True, validate=TEXT)


class AssessmentSchema(ma.Schema):
    id = ma.fields.Integer()
    version = ma.fields.Integer()
    grid_code = ma.fields.String()
    assessed_on = ma.fields.Date()
    assessed_by_id = ma.fields.Integer(allow_none=True)
    scores = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    comment = ma.fields.String(allow_none=True)
    previous_id = ma.fields.Integer(allow_none=True)
    progression = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        allow_none=True,
        metadata={"description": "Par critère, progrès depuis le diagnostic précédent (> 0)."},
    )
    progress_total = ma.fields.Integer(allow_none=True)


class AssessmentListSchema(ma.Schema):
    person = ma.fields.Nested(PathwayPersonSchema)
    items = ma.fields.List(ma.fields.Nested(AssessmentSchema))


class GridItemSchema(ma.Schema):
    code = ma.fields.String()
    label = ma.fields.String()
    dimension = ma.fields.String()
    max = ma.fields.Integer()
    sensitive = ma.fields.Boolean()


class GridSchema(ma.Schema):
    id = ma.fields.Integer()
    code = ma.fields.String()
    label = ma.fields.String()
    items = ma.fields.List(ma.fields.Nested(GridItemSchema))
    valid_from = ma.fields.Date()
    valid_until = ma.fields.Date(allow_none=True)


# --- timeline -------------------------------------------------------------------------------


class TimelineArgs(ma.Schema):
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=10_000))
    per_page = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=100))


class TimelineEventSchema(ma.Schema):
    kind = ma.fields.String()
    on = ma.fields.Date(allow_none=True)
    at = ma.fields.AwareDateTime(allow_none=True)
    resource_type = ma.fields.String()
    resource_id = ma.fields.Integer()
    code = ma.fields.String(allow_none=True)
    label = ma.fields.String(allow_none=True)
    note = ma.fields.String(allow_none=True)
    masked = ma.fields.Boolean()
    agent_id = ma.fields.Integer(allow_none=True)
    structure_id = ma.fields.Integer(allow_none=True)
    date1 = ma.fields.Date(allow_none=True)
    date2 = ma.fields.Date(allow_none=True)


class TimelineSchema(ma.Schema):
    person = ma.fields.Nested(PathwayPersonSchema)
    items = ma.fields.List(ma.fields.Nested(TimelineEventSchema))
    page = ma.fields.Integer()
    per_page = ma.fields.Integer()
    total = ma.fields.Integer()


# --- caseload -------------------------------------------------------------------------------


class CaseloadArgs(PaginationArgs):
    agent_id = ma.fields.Integer(
        metadata={"description": "Portefeuille d'un autre référent (managers, admins)."}
    )
    overdue = ma.fields.Boolean()
    has_alerts = ma.fields.Boolean()
    contract_status = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(["none", "active", "expiring", "ended"]))
    )
    parcours = _enum(Parcours)
    entered = ma.fields.Boolean()
    q = ma.fields.String(validate=ma.validate.Length(min=1, max=100))
    sort = ma.fields.String(
        load_default="name",
        validate=ma.validate.OneOf(
            ["name", "next_deadline", "-overdue", "last_contact", "-last_contact", "referent_since"]
        ),
    )


class DeadlineSchema(ma.Schema):
    on = ma.fields.Date()
    kind = _enum(ClockKind)


class CaseloadContractSchema(ma.Schema):
    status = ma.fields.String()
    id = ma.fields.Integer(allow_none=True)
    kind = _enum(ContractKind, allow_none=True)
    starts_on = ma.fields.Date(allow_none=True)
    ends_on = ma.fields.Date(allow_none=True)


class CaseloadStepSchema(ma.Schema):
    id = ma.fields.Integer()
    title = ma.fields.String()
    theme = _enum(OfferTheme, allow_none=True)
    status = _enum(StepStatus)
    masked = ma.fields.Boolean()


class CaseloadItemSchema(ma.Schema):
    person = ma.fields.Nested(PathwayPersonSchema)
    pathway_id = ma.fields.Integer(allow_none=True)
    parcours = _enum(Parcours, allow_none=True)
    notified_on = ma.fields.Date(allow_none=True)
    entered_on = ma.fields.Date(allow_none=True)
    referent_since = ma.fields.AwareDateTime()
    next_deadline = ma.fields.Nested(DeadlineSchema, allow_none=True)
    overdue = ma.fields.Integer()
    open_alerts = ma.fields.Integer()
    last_contact_at = ma.fields.AwareDateTime(allow_none=True)
    next_appointment_at = ma.fields.AwareDateTime(allow_none=True)
    contract = ma.fields.Nested(CaseloadContractSchema)
    current_step = ma.fields.Nested(CaseloadStepSchema, allow_none=True)


class CaseloadAgentSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    structure_id = ma.fields.Integer()
    capacity = ma.fields.Integer()
    load_ = ma.fields.Integer(data_key="load", attribute="load")


class CaseloadCountsSchema(ma.Schema):
    overdue = ma.fields.Integer()
    with_alerts = ma.fields.Integer()
    without_contract = ma.fields.Integer()
    contract_expiring = ma.fields.Integer()
    not_entered = ma.fields.Integer()
    never_contacted = ma.fields.Integer()


class CaseloadSchema(ma.Schema):
    agent = ma.fields.Nested(CaseloadAgentSchema)
    counts = ma.fields.Nested(CaseloadCountsSchema)
    items = ma.fields.List(ma.fields.Nested(CaseloadItemSchema))
    page = ma.fields.Integer()
    per_page = ma.fields.Integer()
    total = ma.fields.Integer()


# --- indicators (same arguments as the orientation indicators) -----------------------------


class MonthOrDate(ma.fields.Field):
    """``YYYY-MM`` (the whole month: its first day as a lower bound, its last day as an upper
    bound) or ``YYYY-MM-DD`` — the same rule as the orientation indicators' arguments."""

    default_error_messages = {  # noqa: RUF012 - marshmallow's own class attribute
        "invalid": "Date attendue au format AAAA-MM ou AAAA-MM-JJ."
    }

    def __init__(self, *, upper: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.upper = upper

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dt.date:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            if len(value) == 10:
                return dt.date.fromisoformat(value)
            if len(value) != 7 or value[4] != "-" or not value.replace("-", "").isdigit():
                raise ValueError(value)
            first = dt.date(int(value[:4]), int(value[5:]), 1)
        except ValueError as error:
            raise self.make_error("invalid") from error
        if not self.upper:
            return first
        return first + relativedelta(months=1) - dt.timedelta(days=1)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else value.isoformat()


def _not_future(value: dt.date) -> None:
    if value > clock.today():
        raise ma.ValidationError("La date d'observation ne peut pas être dans le futur.")


class PathwayIndicatorArgs(ma.Schema):
    as_of = ma.fields.Date(validate=_not_future)
    cohort_from = MonthOrDate(
        upper=False,
        metadata={"description": "Début de la cohorte (mois ou date) ; défaut : 11 mois avant."},
    )
    cohort_to = MonthOrDate(
        upper=True, metadata={"description": "Fin de la cohorte (mois ou date) ; défaut : as_of."}
    )
    territory_id = ma.fields.Integer(validate=ma.validate.Range(min=1))
    public = _enum(Public)
    group_by = ma.fields.String(
        validate=ma.validate.OneOf(["month", "ctm", "structure", "public", "parcours"])
    )
    indicator = ma.fields.List(
        ma.fields.String(
            validate=ma.validate.OneOf(
                [
                    "entry",
                    "contract_delay",
                    "contract_rate",
                    "without_referent",
                    "caseload",
                    "steps",
                ]
            )
        )
    )

    @ma.validates_schema
    def _range(self, data: dict[str, Any], **_: Any) -> None:
        low, high = data.get("cohort_from"), data.get("cohort_to")
        if low and high and low > high:
            raise ma.ValidationError("cohort_from doit précéder cohort_to.", "cohort_to")


class PathwayIndicatorsSchema(ma.Schema):
    as_of = ma.fields.Date()
    cohort_from = ma.fields.Date()
    cohort_to = ma.fields.Date()
    group_by = ma.fields.String(allow_none=True)
    territory_id = ma.fields.Integer(allow_none=True)
    public = ma.fields.String(allow_none=True)
    entry = ma.fields.List(ma.fields.Dict())
    contract_delay = ma.fields.List(ma.fields.Dict())
    contract_rate = ma.fields.List(ma.fields.Dict())
    without_referent = ma.fields.List(ma.fields.Dict())
    caseload = ma.fields.Dict()
    steps = ma.fields.List(ma.fields.Dict())
