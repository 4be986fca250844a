"""Input (``...Args``) and output (``...Schema``) schemas of the orientation API."""

from __future__ import annotations

import datetime as dt
from typing import Any

import marshmallow as ma

from spie.agents.models import Role
from spie.api.common import PaginationArgs
from spie.clocks.calendar import elapsed_days
from spie.clocks.models import ClockKind
from spie.clocks.today import paris_today
from spie.orientation.models import (
    Attendance,
    CaseStatus,
    ClockStartBasis,
    CloseReason,
    FtSyncStatus,
    OrientationCase,
    Parcours,
    RioStatus,
)
from spie.orientation.queries import QUEUES, WORK_QUEUE_SORTS
from spie.orientation.referentiel import PARCOURS_FT_CODES, PARCOURS_LABELS, criteria_definitions
from spie.persons.models import Public

DURATION = ma.validate.Regexp(
    r"^\d{1,4}[dwm]$", error="Durée attendue : un entier suivi de d, w ou m (ex. '6w', '2m')."
)
FREE_TEXT = ma.validate.Length(min=2, max=2000)
MAX_BATCH = 500


def may_read_free_text() -> bool:
    """Managers never read free text (reasons, EP opinions); other roles of the caller do."""
    from spie.auth.access import current_agent_or_none

    agent = current_agent_or_none()
    return agent is not None and agent.has_role(Role.ADMIN, Role.CHARGE_ORIENTATION, Role.REFERENT)


def _free_text(attribute: str) -> ma.fields.Function:
    return ma.fields.Function(
        lambda obj: getattr(obj, attribute) if may_read_free_text() else None,
        allow_none=True,
        metadata={"description": "Texte libre : masqué (null) pour les managers."},
    )


# --------------------------------------------------------------------------- policies


class DelayPolicyArgs(ma.Schema):
    clock = ma.fields.Enum(ClockKind, by_value=True, required=True)
    legal_limit = ma.fields.String(allow_none=True, validate=DURATION)
    target = ma.fields.String(allow_none=True, validate=DURATION)
    extended_limit = ma.fields.String(allow_none=True, validate=DURATION)
    valid_from = ma.fields.Date(required=True)
    valid_until = ma.fields.Date(allow_none=True, metadata={"description": "exclusive"})
    label = ma.fields.String(required=True, validate=ma.validate.Length(min=3, max=200))
    legal_source = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=2000))


class DelayPolicyPatchArgs(ma.Schema):
    valid_until = ma.fields.Date(allow_none=True)
    label = ma.fields.String(validate=ma.validate.Length(min=3, max=200))
    legal_source = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=2000))


class DelayPolicyListArgs(ma.Schema):
    clock = ma.fields.Enum(ClockKind, by_value=True)
    on = ma.fields.Date(metadata={"description": "Seulement la politique en vigueur ce jour-là."})


class DelayPolicySchema(ma.Schema):
    id = ma.fields.Integer()
    version = ma.fields.Integer()
    clock = ma.fields.Enum(ClockKind, by_value=True)
    legal_limit = ma.fields.String(allow_none=True)
    target = ma.fields.String(allow_none=True)
    extended_limit = ma.fields.String(allow_none=True)
    valid_from = ma.fields.Date()
    valid_until = ma.fields.Date(allow_none=True)
    label = ma.fields.String()
    legal_source = ma.fields.String(allow_none=True)


# --------------------------------------------------------------------------- référentiel


class ReferentielVersionArgs(ma.Schema):
    label = ma.fields.String(required=True, validate=ma.validate.Length(min=3, max=200))
    data = ma.fields.Dict(required=True, metadata={"description": "Critères et règles."})


class ReferentielVersionSummarySchema(ma.Schema):
    id = ma.fields.Integer()
    number = ma.fields.Integer()
    label = ma.fields.String()
    published_at = ma.fields.AwareDateTime()
    published_by_id = ma.fields.Integer(allow_none=True)


class ReferentielVersionSchema(ReferentielVersionSummarySchema):
    data = ma.fields.Dict()
    criteria = ma.fields.Function(lambda v: criteria_definitions(v.data))


# --------------------------------------------------------------------------- cases


class OpenCaseArgs(ma.Schema):
    started_on = ma.fields.Date(required=True)
    basis = ma.fields.Enum(ClockStartBasis, by_value=True, load_default=ClockStartBasis.MANUAL)
    estimated = ma.fields.Boolean(load_default=False)

    @ma.validates("started_on")
    def _not_future(self, value: dt.date, **_: Any) -> None:
        if value > paris_today():
            raise ma.ValidationError("Le démarrage de l'horloge ne peut pas être dans le futur.")


class PauseSchema(ma.Schema):
    paused_on = ma.fields.Date()
    resumed_on = ma.fields.Date(allow_none=True)
    reason = ma.fields.String()


class PolicyRefSchema(ma.Schema):
    id = ma.fields.Integer()
    label = ma.fields.String()
    legal_limit = ma.fields.String(allow_none=True)
    target = ma.fields.String(allow_none=True)
    valid_from = ma.fields.Date()
    valid_until = ma.fields.Date(allow_none=True)


def _clock_end(case: OrientationCase) -> dt.date:
    return case.closed_on or paris_today()


def _elapsed(case: OrientationCase) -> int:
    pauses = [(p.paused_on, p.resumed_on) for p in case.pauses]
    return elapsed_days(case.clock_started_on, _clock_end(case), pauses)


def _overdue(case: OrientationCase) -> bool:
    if case.legal_deadline is None:
        return False
    return _clock_end(case) > case.legal_deadline


class CaseSchema(ma.Schema):
    id = ma.fields.Integer()
    version = ma.fields.Integer()
    person_id = ma.fields.Integer()
    status = ma.fields.Enum(CaseStatus, by_value=True)
    clock_started_on = ma.fields.Date()
    start_basis = ma.fields.Enum(ClockStartBasis, by_value=True)
    clock_estimated = ma.fields.Boolean()
    policy = ma.fields.Nested(PolicyRefSchema)
    legal_deadline = ma.fields.Date(allow_none=True)
    target_date = ma.fields.Date(allow_none=True)
    paused_since = ma.fields.Date(allow_none=True)
    paused_days = ma.fields.Integer()
    elapsed_days = ma.fields.Function(
        _elapsed,
        metadata={
            "description": "Jours courus (hors suspensions) jusqu'à la clôture ou aujourd'hui."
        },
    )
    overdue = ma.fields.Function(_overdue)
    territory_id = ma.fields.Integer(allow_none=True)
    public = ma.fields.Enum(Public, by_value=True)
    rio_absences = ma.fields.Integer()
    flagged_for_ep = ma.fields.Boolean()
    decided_on = ma.fields.Date(allow_none=True)
    notified_on = ma.fields.Date(allow_none=True)
    closed_on = ma.fields.Date(allow_none=True)
    close_reason = ma.fields.Enum(CloseReason, by_value=True, allow_none=True)
    pauses = ma.fields.List(ma.fields.Nested(PauseSchema))


class StructureRefSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    type = ma.fields.Function(lambda s: s.type.value)


class DecisionSchema(ma.Schema):
    id = ma.fields.Integer()
    case_id = ma.fields.Integer()
    person_id = ma.fields.Integer()
    rank = ma.fields.Integer()
    decided_at = ma.fields.AwareDateTime()
    decided_on = ma.fields.Date()
    decided_by_id = ma.fields.Integer(allow_none=True)
    parcours = ma.fields.Enum(Parcours, by_value=True)
    parcours_label = ma.fields.Function(lambda d: PARCOURS_LABELS[d.parcours.value])
    ft_code = ma.fields.Function(lambda d: PARCOURS_FT_CODES[d.parcours.value])
    structure = ma.fields.Nested(StructureRefSchema)
    diagnostic_id = ma.fields.Integer(allow_none=True)
    follows_proposal = ma.fields.Boolean()
    divergence_reason = _free_text("divergence_reason")
    via_rio = ma.fields.Boolean()
    direct = ma.fields.Boolean()
    reorientation_reason = _free_text("reorientation_reason")
    ep_opinion = _free_text("ep_opinion")
    ep_opinion_on = ma.fields.Date(allow_none=True)
    notified_on = ma.fields.Date(allow_none=True)
    notification_channel = ma.fields.String(allow_none=True)
    ft_sync_status = ma.fields.Enum(FtSyncStatus, by_value=True)


class SessionRefSchema(ma.Schema):
    id = ma.fields.Integer()
    starts_at = ma.fields.AwareDateTime()
    place = ma.fields.String()
    status = ma.fields.Enum(RioStatus, by_value=True)


class PersonRefSchema(ma.Schema):
    id = ma.fields.Integer()
    last_name = ma.fields.String()
    first_name = ma.fields.String()
    territory_id = ma.fields.Integer(allow_none=True)


class ConvocationSchema(ma.Schema):
    id = ma.fields.Integer()
    session_id = ma.fields.Integer()
    case_id = ma.fields.Integer()
    person_id = ma.fields.Integer()
    convened_at = ma.fields.AwareDateTime()
    convened_by_id = ma.fields.Integer(allow_none=True)
    email_sent_at = ma.fields.AwareDateTime(allow_none=True)
    reminder_sent_at = ma.fields.AwareDateTime(allow_none=True)
    attendance = ma.fields.Enum(Attendance, by_value=True, allow_none=True)
    attendance_recorded_at = ma.fields.AwareDateTime(allow_none=True)
    cancelled_at = ma.fields.AwareDateTime(allow_none=True)


class SessionConvocationSchema(ConvocationSchema):
    person = ma.fields.Nested(PersonRefSchema)
    rio_absences = ma.fields.Function(lambda c: c.case.rio_absences)
    flagged_for_ep = ma.fields.Function(lambda c: c.case.flagged_for_ep)


class PersonConvocationSchema(ConvocationSchema):
    session = ma.fields.Nested(SessionRefSchema)


class OrientationSchema(ma.Schema):
    person_id = ma.fields.Integer()
    current_case = ma.fields.Nested(CaseSchema, allow_none=True)
    cases = ma.fields.List(ma.fields.Nested(CaseSchema))
    decisions = ma.fields.List(ma.fields.Nested(DecisionSchema))
    convocations = ma.fields.List(ma.fields.Nested(PersonConvocationSchema))


# --------------------------------------------------------------------------- diagnostics


class DiagnosticArgs(ma.Schema):
    criteria = ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.Length(min=1, max=63)),
        values=ma.fields.Raw(allow_none=True),
        required=True,
        validate=ma.validate.Length(max=100),
        metadata={"description": "Valeurs des critères de la version du référentiel en vigueur."},
    )
    rio_session_id = ma.fields.Integer(
        allow_none=True, metadata={"description": "La RIO où l'entretien a eu lieu."}
    )


class ProposalSchema(ma.Schema):
    parcours = ma.fields.String()
    parcours_label = ma.fields.Function(lambda p: PARCOURS_LABELS[p["parcours"]])
    ft_code = ma.fields.String()
    structure_types = ma.fields.List(ma.fields.String())
    direct = ma.fields.Boolean(metadata={"description": "Orientation directe, sans RIO."})
    rule_id = ma.fields.String()
    rule_label = ma.fields.String()
    explanation = ma.fields.String(metadata={"description": "Explication en français clair."})
    matched_conditions = ma.fields.List(ma.fields.String())


class DiagnosticSchema(ma.Schema):
    id = ma.fields.Integer()
    case_id = ma.fields.Integer()
    person_id = ma.fields.Integer()
    recorded_at = ma.fields.AwareDateTime()
    recorded_by_id = ma.fields.Integer(allow_none=True)
    rio_session_id = ma.fields.Integer(allow_none=True)
    referentiel_version = ma.fields.Nested(ReferentielVersionSummarySchema)
    criteria = ma.fields.Dict()
    proposal = ma.fields.Nested(ProposalSchema)
    proposed_parcours = ma.fields.Enum(Parcours, by_value=True)
    suggested_structure_id = ma.fields.Integer(allow_none=True)
    direct_orientation = ma.fields.Boolean()


# --------------------------------------------------------------------------- decisions


class DecisionArgs(ma.Schema):
    case_id = ma.fields.Integer(required=True)
    parcours = ma.fields.Enum(Parcours, by_value=True, required=True)
    structure_id = ma.fields.Integer(required=True)
    diagnostic_id = ma.fields.Integer(
        allow_none=True, metadata={"description": "Par défaut : le dernier diagnostic du dossier."}
    )
    divergence_reason = ma.fields.String(allow_none=True, validate=FREE_TEXT)
    reorientation_reason = ma.fields.String(allow_none=True, validate=FREE_TEXT)
    ep_opinion = ma.fields.String(allow_none=True, validate=FREE_TEXT)
    ep_opinion_on = ma.fields.Date(allow_none=True)
    decided_on = ma.fields.Date(allow_none=True)


class NotificationArgs(ma.Schema):
    notified_on = ma.fields.Date(required=True)
    channel = ma.fields.String(required=True, validate=ma.validate.OneOf(["letter", "email"]))


class DecisionListArgs(PaginationArgs):
    person_id = ma.fields.Integer()
    territory_id = ma.fields.Integer()
    ft_sync_status = ma.fields.Enum(FtSyncStatus, by_value=True)
    notified = ma.fields.Boolean()


# --------------------------------------------------------------------------- RIO


class RioSessionArgs(ma.Schema):
    starts_at = ma.fields.AwareDateTime(required=True)
    ends_at = ma.fields.AwareDateTime(allow_none=True)
    place = ma.fields.String(required=True, validate=ma.validate.Length(min=3, max=300))
    territory_id = ma.fields.Integer(required=True)
    animator_structure_id = ma.fields.Integer(required=True)
    capacity = ma.fields.Integer(required=True, validate=ma.validate.Range(min=1, max=MAX_BATCH))


class RioSessionPatchArgs(ma.Schema):
    starts_at = ma.fields.AwareDateTime()
    ends_at = ma.fields.AwareDateTime(allow_none=True)
    place = ma.fields.String(validate=ma.validate.Length(min=3, max=300))
    animator_structure_id = ma.fields.Integer()
    capacity = ma.fields.Integer(validate=ma.validate.Range(min=1, max=MAX_BATCH))
    status = ma.fields.Enum(
        RioStatus,
        by_value=True,
        validate=ma.validate.OneOf([RioStatus.CANCELLED]),
        metadata={"description": "Seule valeur admise : cancelled (annule la session)."},
    )


class RioSessionListArgs(PaginationArgs):
    territory_id = ma.fields.Integer()
    status = ma.fields.Enum(RioStatus, by_value=True)
    starts_from = ma.fields.Date()
    starts_until = ma.fields.Date()


class SessionCountsSchema(ma.Schema):
    convened = ma.fields.Integer()
    present = ma.fields.Integer()
    absent = ma.fields.Integer()
    excused = ma.fields.Integer()
    remaining = ma.fields.Integer()


class RioSessionSchema(ma.Schema):
    id = ma.fields.Integer()
    version = ma.fields.Integer()
    starts_at = ma.fields.AwareDateTime()
    ends_at = ma.fields.AwareDateTime(allow_none=True)
    place = ma.fields.String()
    territory_id = ma.fields.Integer()
    animator_structure = ma.fields.Nested(StructureRefSchema)
    capacity = ma.fields.Integer()
    status = ma.fields.Enum(RioStatus, by_value=True)
    reminder_sent_at = ma.fields.AwareDateTime(allow_none=True)
    counts = ma.fields.Nested(SessionCountsSchema)


class ConveneArgs(ma.Schema):
    count = ma.fields.Integer(
        validate=ma.validate.Range(min=1, max=MAX_BATCH),
        metadata={"description": "Par défaut : toutes les places restantes."},
    )
    person_ids = ma.fields.List(
        ma.fields.Integer(), validate=ma.validate.Length(min=1, max=MAX_BATCH)
    )

    @ma.validates_schema
    def _one_mode(self, data: dict[str, Any], **_: Any) -> None:
        if "count" in data and "person_ids" in data:
            raise ma.ValidationError("Indiquez count ou person_ids, pas les deux.", "_schema")


class ConveneResultSchema(ma.Schema):
    convened = ma.fields.List(ma.fields.Nested(SessionConvocationSchema))
    session = ma.fields.Nested(RioSessionSchema)


class AttendanceItemArgs(ma.Schema):
    person_id = ma.fields.Integer(required=True)
    attendance = ma.fields.Enum(Attendance, by_value=True, required=True)


class AttendanceArgs(ma.Schema):
    items = ma.fields.List(
        ma.fields.Nested(AttendanceItemArgs),
        required=True,
        validate=ma.validate.Length(min=1, max=MAX_BATCH),
    )


class ConvocationListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(SessionConvocationSchema))


# --------------------------------------------------------------------------- work queue


class WorkQueueArgs(PaginationArgs):
    queue = ma.fields.String(load_default="all", validate=ma.validate.OneOf(["all", *QUEUES]))
    territory_id = ma.fields.Integer()
    public = ma.fields.Enum(Public, by_value=True)
    status = ma.fields.Enum(CaseStatus, by_value=True)
    sort = ma.fields.String(
        load_default="clock_started_on", validate=ma.validate.OneOf(list(WORK_QUEUE_SORTS))
    )
    as_of = ma.fields.Date(metadata={"description": "Date de référence (défaut : aujourd'hui)."})


class WorkQueueItemSchema(CaseSchema):
    person = ma.fields.Nested(PersonRefSchema)


class WorkQueueCountsSchema(ma.Schema):
    to_convene = ma.fields.Integer()
    due_soon = ma.fields.Integer()
    overdue = ma.fields.Integer()
    awaiting_decision = ma.fields.Integer()
    awaiting_notification = ma.fields.Integer()
    flagged = ma.fields.Integer()


class WorkQueueSchema(ma.Schema):
    queue = ma.fields.String()
    as_of = ma.fields.Date()
    counts = ma.fields.Nested(WorkQueueCountsSchema)
    items = ma.fields.List(ma.fields.Nested(WorkQueueItemSchema))
    page = ma.fields.Integer()
    per_page = ma.fields.Integer()
    total = ma.fields.Integer()
