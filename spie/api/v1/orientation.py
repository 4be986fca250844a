"""Orientation — cases and clocks, diagnostics, decisions, work queues (territory-scoped);
référentiel versions and delay policies (published by admins).

Who may call what:

- chargés d'orientation and admins run orientation (write);
- managers read cases, decisions and work queues of their territories, without free text
  and without diagnostics (health-related content);
- référents read the orientation (and diagnostics) of the persons in their scope.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask_smorest import Blueprint
from sqlalchemy import select

from spie.agents.models import Role
from spie.api.common import etag, page_schema, paginate, require_if_match
from spie.audit.service import record_person_read
from spie.auth.access import current_agent, roles_required
from spie.clocks.models import DelayPolicy
from spie.clocks.services import create_policy, policy_in_force, update_policy
from spie.clocks.today import paris_today
from spie.db import db, utcnow
from spie.errors import NotFound, ValidationFailed
from spie.notifications.letters import render_letter
from spie.orientation import decisions, diagnostics, queries, services
from spie.orientation.models import Diagnostic, ReferentielVersion
from spie.orientation.referentiel import PARCOURS_LABELS
from spie.orientation.referentiel_admin import publish_version
from spie.orientation.schemas import (
    DecisionArgs,
    DecisionListArgs,
    DecisionSchema,
    DelayPolicyArgs,
    DelayPolicyListArgs,
    DelayPolicyPatchArgs,
    DelayPolicySchema,
    DiagnosticArgs,
    DiagnosticSchema,
    NotificationArgs,
    OpenCaseArgs,
    OrientationSchema,
    ReferentielVersionArgs,
    ReferentielVersionSchema,
    ReferentielVersionSummarySchema,
    WorkQueueArgs,
    WorkQueueSchema,
)
from spie.persons.queries import get_visible_person

blp = Blueprint(
    "orientation",
    __name__,
    description="Orientation : dossiers et horloges, diagnostics, décisions, files de travail",
)
admin_blp = Blueprint(
    "orientation_admin",
    __name__,
    description="Référentiel d'orientation et politiques de délai",
)

ALL = tuple(Role)
WRITERS = (Role.CHARGE_ORIENTATION, Role.ADMIN)
READERS = (Role.CHARGE_ORIENTATION, Role.ADMIN, Role.MANAGER)
IF_MATCH = [{"in": "header", "name": "If-Match", "required": True, "schema": {"type": "string"}}]
IF_MATCH_OPTIONAL = [
    {
        "in": "header",
        "name": "If-Match",
        "required": False,
        "schema": {"type": "string"},
        "description": "ETag du dossier d'orientation lu (vérifié s'il est fourni).",
    }
]
HTML = {"200": {"content": {"text/html": {"schema": {"type": "string"}}}}}

DecisionPage = page_schema(DecisionSchema, "OrientationDecisionPage")


def _html(body: str) -> Response:
    return Response(body, mimetype="text/html")


# --------------------------------------------------------------------------- cases


@blp.route("/persons/<int:person_id>/orientation", methods=["GET"])
@roles_required(*ALL)
@blp.response(200, OrientationSchema)
def get_orientation(person_id: int) -> Any:
    """The person's orientation: current case and its clock, earlier cases, ranked
    decisions, convocations of the current case. The read is audited."""
    person = get_visible_person(current_agent(), person_id)
    record_person_read(person.id, "orientation", resource_type="orientation")
    view = queries.orientation_of(person)
    headers = etag(view.current_case.version) if view.current_case else {}
    return view, 200, headers


@blp.route("/persons/<int:person_id>/orientation", methods=["POST"])
@roles_required(*WRITERS)
@blp.arguments(OpenCaseArgs)
@blp.response(201, OrientationSchema)
def open_orientation(args: dict[str, Any], person_id: int) -> Any:
    """Open an orientation case by hand (until the CAF import opens them): the clock starts
    on ``started_on`` and is judged by the policy in force that day."""
    person = get_visible_person(current_agent(), person_id)
    case = services.open_case_manually(person, args["started_on"], args["basis"], args["estimated"])
    return queries.orientation_of(person), 201, etag(case.version)


# --------------------------------------------------------------------------- diagnostics


@blp.route("/persons/<int:person_id>/diagnostics", methods=["GET"])
@roles_required(Role.CHARGE_ORIENTATION, Role.ADMIN, Role.REFERENT)
@blp.response(200, DiagnosticSchema(many=True))
def list_diagnostics(person_id: int) -> Any:
    """The person's diagnostics, newest first, each with the proposal of the référentiel
    version it was evaluated with. The read is audited."""
    person = get_visible_person(current_agent(), person_id)
    record_person_read(person.id, "orientation", resource_type="diagnostic")
    return queries.diagnostics_of(person)


@blp.route("/persons/<int:person_id>/diagnostics", methods=["POST"])
@roles_required(*WRITERS)
@blp.arguments(DiagnosticArgs)
@blp.response(201, DiagnosticSchema)
def record_diagnostic(args: dict[str, Any], person_id: int) -> Any:
    """Record the diagnostic (at the RIO interview, or for a direct orientation) and get
    the proposal: parcours, suggested structure, direct orientation or not, the rule that
    fired and its plain-French explanation."""
    agent = current_agent()
    person = get_visible_person(agent, person_id)
    session_id = args.get("rio_session_id")
    if session_id is not None:
        queries.visible_session(agent, session_id)
    return diagnostics.record_diagnostic(person, agent, args["criteria"], session_id, utcnow()), 201


# --------------------------------------------------------------------------- decisions


@blp.route("/orientation-decisions", methods=["GET"])
@roles_required(*READERS)
@blp.arguments(DecisionListArgs, location="query")
@blp.response(200, DecisionPage)
def list_decisions(args: dict[str, Any]) -> dict[str, Any]:
    """Decisions of the persons in scope, newest first."""
    page, per_page = args.pop("page"), args.pop("per_page")
    return paginate(queries.list_decisions(current_agent(), args), page, per_page)


@blp.route("/orientation-decisions", methods=["POST"])
@roles_required(*WRITERS)
@blp.arguments(DecisionArgs)
@blp.response(201, DecisionSchema)
@blp.doc(parameters=IF_MATCH_OPTIONAL)
def create_decision(args: dict[str, Any]) -> Any:
    """Decide an orientation (or a réorientation) on a case; hands the person to the chosen
    structure's queue. Append-only: a new decision never changes an earlier one."""
    agent = current_agent()
    case = queries.visible_case(agent, args["case_id"])
    if request.headers.get("If-Match"):
        require_if_match(case.version)
    return decisions.decide(case, agent, args, paris_today()), 201


@blp.route("/orientation-decisions/<int:decision_id>", methods=["GET"])
@roles_required(*ALL)
@blp.response(200, DecisionSchema)
def get_decision(decision_id: int) -> Any:
    decision = queries.visible_decision(current_agent(), decision_id)
    record_person_read(decision.person_id, "orientation", resource_type="orientation_decision")
    return decision


@blp.route("/orientation-decisions/<int:decision_id>/notification", methods=["POST"])
@roles_required(*WRITERS)
@blp.arguments(NotificationArgs)
@blp.response(200, DecisionSchema)
def notify_decision(args: dict[str, Any], decision_id: int) -> Any:
    """Record the notification (date, letter or e-mail): ends the orientation clock."""
    decision = queries.visible_decision(current_agent(), decision_id)
    return decisions.notify(decision, args["notified_on"], args["channel"], paris_today())


@blp.route("/orientation-decisions/<int:decision_id>/letter", methods=["GET"])
@roles_required(*WRITERS)
@blp.response(200, content_type="text/html", description="Courrier imprimable (HTML)")
@blp.doc(responses=HTML)
def decision_letter(decision_id: int) -> Response:
    """The printable notification letter, with the proposal's explanation when the decision
    follows it. The read is audited."""
    decision = queries.visible_decision(current_agent(), decision_id)
    person = get_visible_person(current_agent(), decision.person_id)
    record_person_read(person.id, "orientation", resource_type="orientation_letter")
    diagnostic = (
        db.session.get(Diagnostic, decision.diagnostic_id) if decision.diagnostic_id else None
    )
    explanation = None
    version_number = None
    if diagnostic is not None and decision.follows_proposal:
        explanation = diagnostic.proposal.get("explanation")
        version_number = diagnostic.referentiel_version.number
    return _html(
        render_letter(
            "orientation/decision_letter.html",
            person=person,
            decision=decision,
            parcours_label=PARCOURS_LABELS[decision.parcours.value],
            explanation=explanation,
            referentiel_version=version_number,
            letter_date=decision.notified_on or paris_today(),
        )
    )


# --------------------------------------------------------------------------- work queue


@blp.route("/work-queues/orientation", methods=["GET"])
@roles_required(*READERS)
@blp.arguments(WorkQueueArgs, location="query")
@blp.response(200, WorkQueueSchema)
def orientation_work_queue(args: dict[str, Any]) -> dict[str, Any]:
    """Open cases whose clock runs, in the caller's territories: one queue (``to_convene``,
    ``due_soon`` — legal deadline within 7 days —, ``overdue``, ``awaiting_decision``,
    ``awaiting_notification``, ``flagged`` for the EP procedure) or ``all``, sorted and
    paginated, with the count of every queue."""
    page, per_page = args.pop("page"), args.pop("per_page")
    as_of = args.pop("as_of", None) or paris_today()
    query, counts = queries.work_queue(current_agent(), args, as_of)
    result = paginate(query, page, per_page)
    result.update(queue=args["queue"], as_of=as_of, counts=counts)
    return result


# --------------------------------------------------------------------------- référentiel


@admin_blp.route("/referentiel-versions", methods=["GET"])
@roles_required(*ALL)
@admin_blp.response(200, ReferentielVersionSummarySchema(many=True))
def list_referentiel_versions() -> Any:
    """Published versions, newest first."""
    return db.session.scalars(
        select(ReferentielVersion).order_by(ReferentielVersion.number.desc())
    ).all()


@admin_blp.route("/referentiel-versions/<int:version_id>", methods=["GET"])
@roles_required(*ALL)
@admin_blp.response(200, ReferentielVersionSchema)
def get_referentiel_version(version_id: int) -> Any:
    """One version: its rules and the definitions of its criteria (to build the form)."""
    version = db.session.get(ReferentielVersion, version_id)
    if version is None:
        raise NotFound(f"Version du référentiel {version_id} introuvable.")
    return version


@admin_blp.route("/referentiel-versions", methods=["POST"])
@roles_required(Role.ADMIN)
@admin_blp.arguments(ReferentielVersionArgs)
@admin_blp.response(201, ReferentielVersionSchema)
def publish_referentiel_version(args: dict[str, Any]) -> Any:
    """Publish a new version (used for every new diagnostic; past proposals keep theirs).
    A malformed version is refused with the path of the problem."""
    return publish_version(args["label"], args["data"], current_agent().id), 201


# --------------------------------------------------------------------------- policies


@admin_blp.route("/delay-policies", methods=["GET"])
@roles_required(*ALL)
@admin_blp.arguments(DelayPolicyListArgs, location="query")
@admin_blp.response(200, DelayPolicySchema(many=True))
def list_delay_policies(args: dict[str, Any]) -> Any:
    """Delay policies by clock and validity (``on``: only the one in force that day)."""
    if "on" in args:
        if "clock" not in args:
            raise ValidationFailed(
                "Paramètre manquant.", errors={"clock": ["Obligatoire avec « on »."]}
            )
        return [policy_in_force(args["clock"], args["on"])]
    query = select(DelayPolicy).order_by(DelayPolicy.clock, DelayPolicy.valid_from)
    if "clock" in args:
        query = query.where(DelayPolicy.clock == args["clock"])
    return db.session.scalars(query).all()


@admin_blp.route("/delay-policies", methods=["POST"])
@roles_required(Role.ADMIN)
@admin_blp.arguments(DelayPolicyArgs)
@admin_blp.response(201, DelayPolicySchema)
def create_delay_policy(args: dict[str, Any]) -> Any:
    """Add a policy; its validity must not overlap another policy of the same clock."""
    policy = create_policy(args)
    return policy, 201, etag(policy.version)


def _policy(policy_id: int) -> DelayPolicy:
    policy = db.session.get(DelayPolicy, policy_id)
    if policy is None:
        raise NotFound(f"Politique de délai {policy_id} introuvable.")
    return policy


@admin_blp.route("/delay-policies/<int:policy_id>", methods=["GET"])
@roles_required(*ALL)
@admin_blp.response(200, DelayPolicySchema)
def get_delay_policy(policy_id: int) -> Any:
    policy = _policy(policy_id)
    return policy, 200, etag(policy.version)


@admin_blp.route("/delay-policies/<int:policy_id>", methods=["PATCH"])
@roles_required(Role.ADMIN)
@admin_blp.arguments(DelayPolicyPatchArgs)
@admin_blp.response(200, DelayPolicySchema)
@admin_blp.doc(parameters=IF_MATCH)
def patch_delay_policy(args: dict[str, Any], policy_id: int) -> Any:
    """Close a period (``valid_until``) or fix the label / legal source. Durations are never
    edited: a new rule is a new policy."""
    policy = _policy(policy_id)
    require_if_match(policy.version)
    update_policy(policy, args)
    return policy, 200, etag(policy.version)
