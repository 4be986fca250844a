"""The person's pathway: parcours, timeline, diagnostics, steps, contracts, appointments,
alerts, équipe pluridisciplinaire cases and the pathway indicators.

Who (details in ``spie.parcours.access`` and docs/parcours.md): reading follows the person
scope (404 outside it); writing is for the person's référent (or, while the person waits in
the queue, the référents of their structure) and admins (403 for others who see the person);
référents of a step's provider structure see and move that step only (contributor view);
managers never get free-text notes nor health-related content. Writes on existing resources
require ``If-Match`` (optimistic locking).
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from sqlalchemy import select

from spie.agents.models import Role
from spie.api.common import etag, page_schema, paginate, require_if_match
from spie.audit.service import record_person_read
from spie.auth.access import current_agent, roles_required
from spie.db import db
from spie.orientation.indicators import Filters, GroupBy, default_period, scoped_territories
from spie.parcours import access, clock, indicators, queries, services
from spie.parcours.alerts import resolve_alert
from spie.parcours.models import AssessmentGrid, SanctionLevel
from spie.parcours.schemas import (
    AlertListArgs,
    AlertResolveArgs,
    AlertSchema,
    AppointmentCreateArgs,
    AppointmentListArgs,
    AppointmentSchema,
    AppointmentUpdateArgs,
    AssessmentArgs,
    AssessmentListSchema,
    ContractCreateArgs,
    ContractListArgs,
    ContractSchema,
    ContractUpdateArgs,
    EpCaseCreateArgs,
    EpCaseListArgs,
    EpCaseSchema,
    EpCaseUpdateArgs,
    GridSchema,
    PathwayFileSchema,
    PathwayIndicatorArgs,
    PathwayIndicatorsSchema,
    PathwayUpdateArgs,
    SanctionLevelSchema,
    StepCreateArgs,
    StepListArgs,
    StepSchema,
    StepTransitionArgs,
    StepUpdateArgs,
    TimelineArgs,
    TimelineSchema,
)
from spie.parcours.timeline import timeline

ALL = tuple(Role)
WRITERS = (Role.REFERENT, Role.ADMIN)
IF_MATCH = {
    "parameters": [
        {"in": "header", "name": "If-Match", "required": True, "schema": {"type": "string"}}
    ]
}

blp = Blueprint(
    "parcours", __name__, url_prefix=None, description="Parcours, chronologie, diagnostics"
)
steps_blp = Blueprint("steps", __name__, url_prefix="/steps", description="Étapes de parcours")
contracts_blp = Blueprint("contracts", __name__, url_prefix="/contracts", description="Contrats")
appointments_blp = Blueprint(
    "appointments", __name__, url_prefix="/appointments", description="Rendez-vous"
)
alerts_blp = Blueprint(
    "alerts", __name__, url_prefix=None, description="Alertes et équipes pluridisciplinaires"
)

StepPage = page_schema(StepSchema, "StepPage")
ContractPage = page_schema(ContractSchema, "ContractPage")
AppointmentPage = page_schema(AppointmentSchema, "AppointmentPage")
AlertPage = page_schema(AlertSchema, "AlertPage")
EpCasePage = page_schema(EpCaseSchema, "EpCasePage")


def _page(result: dict[str, Any], items: list[Any]) -> dict[str, Any]:
    return {**result, "items": items}


# --- parcours -------------------------------------------------------------------------------


@blp.route("/persons/<int:person_id>/parcours", methods=["GET"])
@roles_required(*ALL)
@blp.response(200, PathwayFileSchema)
def get_parcours(person_id: int) -> Any:
    """The current pathway: type, structure, référent, clocks and deadlines, steps,
    contracts, appointments, open alerts, previous pathways (ETag: the pathway's version)."""
    agent = current_agent()
    person = queries.visible_person(agent, person_id)
    record_person_read(person.id, "consultation", resource_type="parcours")
    result = queries.pathway_file(agent, person)
    version = result["pathway"]["version"] if result["pathway"] else 0
    return result, 200, etag(version)


@blp.route("/persons/<int:person_id>/parcours", methods=["PATCH"])
@roles_required(*WRITERS)
@blp.arguments(PathwayUpdateArgs)
@blp.response(200, PathwayFileSchema)
@blp.doc(**IF_MATCH)
def update_parcours(args: dict[str, Any], person_id: int) -> Any:
    """Typology of the pathway, or the social review held (``reviewed_on``)."""
    agent = current_agent()
    person = queries.visible_person(agent, person_id)
    access.require_writer(agent, person)
    pathway = services.require_active_pathway(person.id)
    require_if_match(pathway.version)
    services.update_pathway(pathway, args, agent)
    return queries.pathway_file(agent, person), 200, etag(pathway.version)


@blp.route("/persons/<int:person_id>/timeline", methods=["GET"])
@roles_required(*ALL)
@blp.arguments(TimelineArgs, location="query")
@blp.response(200, TimelineSchema)
def get_timeline(args: dict[str, Any], person_id: int) -> Any:
    """Everything that happened to the person, newest first: SDD changes, orientation, RIO,
    decisions, référent changes, pathway, steps, contracts, appointments, alerts,
    diagnostics, EP cases (one SQL statement)."""
    agent = current_agent()
    person = queries.visible_person(agent, person_id)
    record_person_read(person.id, "consultation", resource_type="timeline")
    return timeline(agent, person, args["page"], args["per_page"])


@blp.route("/persons/<int:person_id>/assessments", methods=["GET"])
@roles_required(*ALL)
@blp.response(200, AssessmentListSchema)
def list_assessments(person_id: int) -> Any:
    """Diagnostics partagés, oldest first, each with its progression since the previous."""
    agent = current_agent()
    person = queries.visible_person(agent, person_id)
    record_person_read(person.id, "consultation", resource_type="assessment")
    return queries.assessments_with_progression(agent, person)


@blp.route("/persons/<int:person_id>/assessments", methods=["POST"])
@roles_required(*WRITERS)
@blp.arguments(AssessmentArgs)
@blp.response(201, AssessmentListSchema)
def create_assessment(args: dict[str, Any], person_id: int) -> Any:
    """Record a diagnostic on the grid in force (every item scored)."""
    agent = current_agent()
    person = queries.visible_person(agent, person_id)
    access.require_writer(agent, person)
    services.create_assessment(person, args, agent)
    return queries.assessments_with_progression(agent, person), 201


@blp.route("/assessment-grids", methods=["GET"])
@roles_required(*ALL)
@blp.response(200, GridSchema(many=True))
def list_grids() -> Any:
    """The grids of the diagnostic partagé (data with validity periods)."""
    return list(db.session.scalars(select(AssessmentGrid).order_by(AssessmentGrid.valid_from)))


@blp.route("/indicators/parcours", methods=["GET"])
@roles_required(Role.MANAGER, Role.CHARGE_ORIENTATION, Role.ADMIN)
@blp.arguments(PathwayIndicatorArgs, location="query")
@blp.response(200, PathwayIndicatorsSchema)
def pathway_indicators(args: dict[str, Any]) -> Any:
    """Délai d'entrée en parcours, délai de contractualisation (and share within one month),
    contract rate among oriented SDD, people without an active référent, caseload against
    capacity, steps by offer and outcome — same ``as_of``, cohort, scope and grouping rules
    as the orientation indicators (docs/indicators.md)."""
    as_of = args.get("as_of") or clock.today()
    default_start, default_end = default_period(as_of)
    group_by = GroupBy(args["group_by"]) if args.get("group_by") else None
    filters = Filters(
        as_of=as_of,
        start=args.get("cohort_from", default_start),
        end=args.get("cohort_to", default_end),
        territories=scoped_territories(current_agent(), args.get("territory_id")),
        public=args.get("public"),
        group_by=group_by,
    )
    which = args.get("indicator") or list(indicators.INDICATORS)
    return {
        "as_of": filters.as_of,
        "cohort_from": filters.start,
        "cohort_to": filters.end,
        "group_by": group_by.value if group_by else None,
        "territory_id": args.get("territory_id"),
        "public": filters.public.value if filters.public else None,
        **indicators.compute(filters, which),
    }


# --- steps ----------------------------------------------------------------------------------


@steps_blp.route("", methods=["GET"])
@roles_required(*ALL)
@steps_blp.arguments(StepListArgs, location="query")
@steps_blp.response(200, StepPage)
def list_steps(args: dict[str, Any]) -> Any:
    """Steps of the people you see, and (référents) the steps your structure runs as a
    provider — those in the contributor view: the step and the person's name and birth
    date only."""
    agent = current_agent()
    page, per_page = args.pop("page"), args.pop("per_page")
    result = paginate_rows(queries.list_steps(agent, args), page, per_page)
    return _page(result, queries.step_rows_view(agent, result["items"]))


def paginate_rows(query: Any, page: int, per_page: int) -> dict[str, Any]:
    """``paginate`` for multi-entity selects (rows instead of scalars)."""
    from sqlalchemy import func

    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = db.session.execute(query.limit(per_page).offset((page - 1) * per_page)).all()
    return {"items": rows, "page": page, "per_page": per_page, "total": total or 0}


@steps_blp.route("", methods=["POST"])
@roles_required(*WRITERS)
@steps_blp.arguments(StepCreateArgs)
@steps_blp.response(201, StepSchema)
def create_step(args: dict[str, Any]) -> Any:
    """A step from the catalogue (``offer_id``) or free (title, theme, provider)."""
    agent = current_agent()
    person = queries.visible_person(agent, args.pop("person_id"))
    access.require_writer(agent, person)
    step = services.create_step(person, args, agent)
    return queries.step_view(step, agent, person, contributor=False), 201, etag(step.version)


@steps_blp.route("/<int:step_id>", methods=["GET"])
@roles_required(*ALL)
@steps_blp.response(200, StepSchema)
def get_step(step_id: int) -> Any:
    agent = current_agent()
    step, person, contributor = queries.get_step_for(agent, step_id)
    record_person_read(step.person_id, "consultation", resource_type="step")
    view = queries.step_view(step, agent, person, contributor=contributor)
    return view, 200, etag(step.version)


def _step_for_write(step_id: int) -> tuple[Any, Any, bool]:
    agent = current_agent()
    step, person, contributor = queries.get_step_for(agent, step_id)
    if person is not None and not contributor and not access.can_write(agent, person):
        if access.is_contributor(agent, step):
            contributor = True
        else:
            access.require_writer(agent, person)
    return step, person, contributor


@steps_blp.route("/<int:step_id>", methods=["PATCH"])
@roles_required(*WRITERS)
@steps_blp.arguments(StepUpdateArgs)
@steps_blp.response(200, StepSchema)
@steps_blp.doc(**IF_MATCH)
def update_step(args: dict[str, Any], step_id: int) -> Any:
    """Planned dates, title (free steps), notes; the bilan once the step is over. The
    provider's staff may change the planned dates and the bilan only."""
    agent = current_agent()
    step, person, contributor = _step_for_write(step_id)
    require_if_match(step.version)
    services.update_step(step, args, contributor=contributor)
    view = queries.step_view(step, agent, None if contributor else person, contributor=contributor)
    return view, 200, etag(step.version)


@steps_blp.route("/<int:step_id>/transitions", methods=["POST"])
@roles_required(*WRITERS)
@steps_blp.arguments(StepTransitionArgs)
@steps_blp.response(200, StepSchema)
@steps_blp.doc(**IF_MATCH)
def transition_step(args: dict[str, Any], step_id: int) -> Any:
    """Move the step: proposée → planifiée | en cours | abandonnée; planifiée → en cours |
    abandonnée; en cours → terminée (outcome and bilan required) | abandonnée (reason).
    Any other move answers 409 ``step_transition_forbidden`` and changes nothing."""
    agent = current_agent()
    step, person, contributor = _step_for_write(step_id)
    require_if_match(step.version)
    to = args.pop("to")
    services.transition_step(step, to, args, agent)
    view = queries.step_view(step, agent, None if contributor else person, contributor=contributor)
    return view, 200, etag(step.version)


# --- contracts ------------------------------------------------------------------------------


@contracts_blp.route("", methods=["GET"])
@roles_required(*ALL)
@contracts_blp.arguments(ContractListArgs, location="query")
@contracts_blp.response(200, ContractPage)
def list_contracts(args: dict[str, Any]) -> Any:
    agent = current_agent()
    page, per_page = args.pop("page"), args.pop("per_page")
    result = paginate_rows(queries.list_contracts(agent, args), page, per_page)
    return _page(result, [queries.contract_view(c, agent, p) for c, p in result["items"]])


@contracts_blp.route("", methods=["POST"])
@roles_required(*WRITERS)
@contracts_blp.arguments(ContractCreateArgs)
@contracts_blp.response(201, ContractSchema)
def create_contract(args: dict[str, Any]) -> Any:
    """Contrat d'engagement (since 2025) or, for history, CER / PPAE: 3 to 12 months, one at
    a time (no overlap), weekly hours (a reduction below the minimum needs a reason)."""
    agent = current_agent()
    person = queries.visible_person(agent, args.pop("person_id"))
    access.require_writer(agent, person)
    contract = services.create_contract(person, args, agent)
    return queries.contract_view(contract, agent, person), 201, etag(contract.version)


@contracts_blp.route("/<int:contract_id>", methods=["GET"])
@roles_required(*ALL)
@contracts_blp.response(200, ContractSchema)
def get_contract(contract_id: int) -> Any:
    agent = current_agent()
    contract, person = queries.get_contract_for(agent, contract_id)
    record_person_read(person.id, "consultation", resource_type="contract")
    return queries.contract_view(contract, agent, person), 200, etag(contract.version)


@contracts_blp.route("/<int:contract_id>", methods=["PATCH"])
@roles_required(*WRITERS)
@contracts_blp.arguments(ContractUpdateArgs)
@contracts_blp.response(200, ContractSchema)
@contracts_blp.doc(**IF_MATCH)
def update_contract(args: dict[str, Any], contract_id: int) -> Any:
    """Objectives, hours, end date, social review extension reason, or cancellation."""
    agent = current_agent()
    contract, person = queries.get_contract_for(agent, contract_id)
    access.require_writer(agent, person)
    require_if_match(contract.version)
    services.update_contract(contract, args, agent)
    return queries.contract_view(contract, agent, person), 200, etag(contract.version)


# --- appointments ---------------------------------------------------------------------------


@appointments_blp.route("", methods=["GET"])
@roles_required(*ALL)
@appointments_blp.arguments(AppointmentListArgs, location="query")
@appointments_blp.response(200, AppointmentPage)
def list_appointments(args: dict[str, Any]) -> Any:
    agent = current_agent()
    page, per_page = args.pop("page"), args.pop("per_page")
    result = paginate(queries.list_appointments(agent, args), page, per_page)
    return _page(result, [queries.appointment_view(a, agent) for a in result["items"]])


@appointments_blp.route("", methods=["POST"])
@roles_required(*WRITERS)
@appointments_blp.arguments(AppointmentCreateArgs)
@appointments_blp.response(201, AppointmentSchema)
def create_appointment(args: dict[str, Any]) -> Any:
    """Plan an appointment (future) or record one that took place (honoured / missed)."""
    agent = current_agent()
    person = queries.visible_person(agent, args.pop("person_id"))
    access.require_writer(agent, person)
    appointment = services.create_appointment(person, args, agent)
    return queries.appointment_view(appointment, agent), 201, etag(appointment.version)


@appointments_blp.route("/<int:appointment_id>", methods=["GET"])
@roles_required(*ALL)
@appointments_blp.response(200, AppointmentSchema)
def get_appointment(appointment_id: int) -> Any:
    agent = current_agent()
    appointment, person = queries.get_appointment_for(agent, appointment_id)
    record_person_read(person.id, "consultation", resource_type="appointment")
    return queries.appointment_view(appointment, agent), 200, etag(appointment.version)


@appointments_blp.route("/<int:appointment_id>", methods=["PATCH"])
@roles_required(*WRITERS)
@appointments_blp.arguments(AppointmentUpdateArgs)
@appointments_blp.response(200, AppointmentSchema)
@appointments_blp.doc(**IF_MATCH)
def update_appointment(args: dict[str, Any], appointment_id: int) -> Any:
    """Move or describe a planned appointment, or set its outcome: honoured (the first after
    orientation is the entry into the pathway), missed (a signalement; the configured number
    of absences opens an EP case), cancelled (with a reason)."""
    agent = current_agent()
    appointment, person = queries.get_appointment_for(agent, appointment_id)
    access.require_writer(agent, person)
    require_if_match(appointment.version)
    services.update_appointment(appointment, args, agent)
    return queries.appointment_view(appointment, agent), 200, etag(appointment.version)


# --- alerts and EP cases --------------------------------------------------------------------


@alerts_blp.route("/alerts", methods=["GET"])
@roles_required(*ALL)
@alerts_blp.arguments(AlertListArgs, location="query")
@alerts_blp.response(200, AlertPage)
def list_alerts(args: dict[str, Any]) -> Any:
    """Alerts about the people you see (``mine``: addressed to you, or to your structure's
    managers when you are one)."""
    agent = current_agent()
    page, per_page = args.pop("page"), args.pop("per_page")
    result = paginate(queries.list_alerts(agent, args), page, per_page)
    return _page(result, [queries.alert_view(a, agent) for a in result["items"]])


@alerts_blp.route("/alerts/<int:alert_id>/resolve", methods=["POST"])
@roles_required(Role.REFERENT, Role.MANAGER, Role.ADMIN)
@alerts_blp.arguments(AlertResolveArgs)
@alerts_blp.response(200, AlertSchema)
@alerts_blp.doc(**IF_MATCH)
def resolve(args: dict[str, Any], alert_id: int) -> Any:
    """Mark an alert as handled: by the person's référent, a manager of the alert's
    structure, or an admin."""
    agent = current_agent()
    alert, person = queries.get_alert_for(agent, alert_id)
    manager_of_structure = agent.has_role(Role.MANAGER) and agent.structure_id == alert.structure_id
    if not manager_of_structure:
        access.require_writer(agent, person)
    require_if_match(alert.version)
    resolve_alert(alert, agent.id, args["resolution"])
    return queries.alert_view(alert, agent), 200, etag(alert.version)


@alerts_blp.route("/ep-cases", methods=["GET"])
@roles_required(*ALL)
@alerts_blp.arguments(EpCaseListArgs, location="query")
@alerts_blp.response(200, EpCasePage)
def list_ep_cases(args: dict[str, Any]) -> Any:
    agent = current_agent()
    page, per_page = args.pop("page"), args.pop("per_page")
    result = paginate(queries.list_ep_cases(agent, args), page, per_page)
    return _page(result, [queries.ep_case_view(c, agent) for c in result["items"]])


@alerts_blp.route("/ep-cases", methods=["POST"])
@roles_required(*WRITERS)
@alerts_blp.arguments(EpCaseCreateArgs)
@alerts_blp.response(201, EpCaseSchema)
def create_ep_case(args: dict[str, Any]) -> Any:
    """Open an équipe pluridisciplinaire case by hand (the threshold of missed appointments
    opens one by itself)."""
    agent = current_agent()
    person = queries.visible_person(agent, args.pop("person_id"))
    access.require_writer(agent, person)
    case = services.open_ep_case(person, args, agent)
    return queries.ep_case_view(case, agent), 201, etag(case.version)


@alerts_blp.route("/ep-cases/<int:case_id>", methods=["GET"])
@roles_required(*ALL)
@alerts_blp.response(200, EpCaseSchema)
def get_ep_case(case_id: int) -> Any:
    agent = current_agent()
    case, person = queries.get_ep_case_for(agent, case_id)
    record_person_read(person.id, "consultation", resource_type="ep_case")
    return queries.ep_case_view(case, agent), 200, etag(case.version)


@alerts_blp.route("/ep-cases/<int:case_id>", methods=["PATCH"])
@roles_required(*WRITERS)
@alerts_blp.arguments(EpCaseUpdateArgs)
@alerts_blp.response(200, EpCaseSchema)
@alerts_blp.doc(**IF_MATCH)
def update_ep_case(args: dict[str, Any], case_id: int) -> Any:
    """Record, in order, the referral, the person's observations, the EP's opinion and the
    decision (with a level of the sanction scale in force) — or close without follow-up.
    Nothing is decided automatically."""
    agent = current_agent()
    case, person = queries.get_ep_case_for(agent, case_id)
    access.require_writer(agent, person)
    require_if_match(case.version)
    services.update_ep_case(case, args, agent)
    return queries.ep_case_view(case, agent), 200, etag(case.version)


@alerts_blp.route("/ep-sanction-levels", methods=["GET"])
@roles_required(*ALL)
@alerts_blp.response(200, SanctionLevelSchema(many=True))
def list_sanction_levels() -> Any:
    """The sanction scale (data with validity periods)."""
    return list(
        db.session.scalars(
            select(SanctionLevel).order_by(SanctionLevel.valid_from, SanctionLevel.rank)
        )
    )


__all__ = [
    "alerts_blp",
    "appointments_blp",
    "blp",
    "contracts_blp",
    "steps_blp",
]
