"""RIO sessions (Rencontres Information et Orientation) — chargés d'orientation and admins
plan, convene and record attendance; managers read. A session of a territory outside the
caller's territories answers 404."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint

from spie.agents.models import Role
from spie.api.common import etag, page_schema, paginate, require_if_match
from spie.audit.service import record_person_read
from spie.auth.access import current_agent, roles_required
from spie.clocks.today import paris_today
from spie.db import utcnow
from spie.notifications.letters import render_letter
from spie.orientation import queries, rio
from spie.orientation.schemas import (
    AttendanceArgs,
    ConveneArgs,
    ConveneResultSchema,
    ConvocationListSchema,
    RioSessionArgs,
    RioSessionListArgs,
    RioSessionPatchArgs,
    RioSessionSchema,
)
from spie.persons.queries import get_visible_person

blp = Blueprint(
    "rio_sessions",
    __name__,
    url_prefix="/rio-sessions",
    description="Rencontres Information et Orientation (RIO) : sessions, convocations, présences",
)

WRITERS = (Role.CHARGE_ORIENTATION, Role.ADMIN)
READERS = (Role.CHARGE_ORIENTATION, Role.ADMIN, Role.MANAGER)
IF_MATCH = [{"in": "header", "name": "If-Match", "required": True, "schema": {"type": "string"}}]

RioSessionPage = page_schema(RioSessionSchema, "RioSessionPage")


@blp.route("", methods=["GET"])
@roles_required(*READERS)
@blp.arguments(RioSessionListArgs, location="query")
@blp.response(200, RioSessionPage)
def list_sessions(args: dict[str, Any]) -> dict[str, Any]:
    """Sessions of the caller's territories, by start date, with their counts."""
    page, per_page = args.pop("page"), args.pop("per_page")
    result = paginate(queries.list_sessions(current_agent(), args), page, per_page)
    queries.attach_counts(list(result["items"]))
    return result


@blp.route("", methods=["POST"])
@roles_required(*WRITERS)
@blp.arguments(RioSessionArgs)
@blp.response(201, RioSessionSchema)
def create_session(args: dict[str, Any]) -> Any:
    """Plan a session (date, place, territory, animator structure, capacity)."""
    session = rio.create_session(current_agent(), args)
    queries.attach_counts([session])
    return session, 201, etag(session.version)


@blp.route("/<int:session_id>", methods=["GET"])
@roles_required(*READERS)
@blp.response(200, RioSessionSchema)
def get_session(session_id: int) -> Any:
    session = queries.visible_session(current_agent(), session_id)
    queries.attach_counts([session])
    return session, 200, etag(session.version)


@blp.route("/<int:session_id>", methods=["PATCH"])
@roles_required(*WRITERS)
@blp.arguments(RioSessionPatchArgs)
@blp.response(200, RioSessionSchema)
@blp.doc(parameters=IF_MATCH)
def patch_session(args: dict[str, Any], session_id: int) -> Any:
    """Change a planned session, or cancel it (``status: cancelled``: pending convocations
    are cancelled and those people go back to the pool). Needs ``If-Match``."""
    session = queries.visible_session(current_agent(), session_id)
    require_if_match(session.version)
    rio.update_session(session, args)
    queries.attach_counts([session])
    return session, 200, etag(session.version)


@blp.route("/<int:session_id>/convene", methods=["POST"])
@roles_required(*WRITERS)
@blp.arguments(ConveneArgs)
@blp.response(201, ConveneResultSchema)
def convene(args: dict[str, Any], session_id: int) -> Any:
    """Convene the people of the session's territory who have waited longest (or the listed
    ``person_ids``), never beyond capacity, never someone already convened to a session to
    come. Convocation e-mails leave from a job after the commit."""
    agent = current_agent()
    session = queries.visible_session(agent, session_id)
    convened = rio.convene(
        session, agent, utcnow(), count=args.get("count"), person_ids=args.get("person_ids")
    )
    queries.attach_counts([session])
    return {"convened": convened, "session": session}, 201


@blp.route("/<int:session_id>/convocations", methods=["GET"])
@roles_required(*READERS)
@blp.response(200, ConvocationListSchema)
def list_convocations(session_id: int) -> dict[str, Any]:
    """Everyone convened to the session (cancelled convocations included), with attendance."""
    agent = current_agent()
    session = queries.visible_session(agent, session_id)
    return {"items": queries.session_convocations(agent, session)}


@blp.route("/<int:session_id>/attendance", methods=["PUT"])
@roles_required(*WRITERS)
@blp.arguments(AttendanceArgs)
@blp.response(200, ConvocationListSchema)
def record_attendance(args: dict[str, Any], session_id: int) -> dict[str, Any]:
    """Record attendance in bulk (``present`` / ``absent`` / ``excuse``). All lines are
    checked first: one person not convened refuses the whole batch."""
    agent = current_agent()
    session = queries.visible_session(agent, session_id)
    rio.record_attendance(session, args["items"], utcnow())
    return {"items": queries.session_convocations(agent, session)}


@blp.route("/<int:session_id>/convocations/<int:convocation_id>/letter", methods=["GET"])
@roles_required(*WRITERS)
@blp.response(200, content_type="text/html", description="Convocation imprimable (HTML)")
@blp.doc(responses={"200": {"content": {"text/html": {"schema": {"type": "string"}}}}})
def convocation_letter(session_id: int, convocation_id: int) -> Response:
    """The printable convocation letter (HTML, A4). The read is audited."""
    agent = current_agent()
    session = queries.visible_session(agent, session_id)
    convocation = queries.visible_convocation(agent, session, convocation_id)
    person = get_visible_person(agent, convocation.person_id)
    record_person_read(person.id, "orientation", resource_type="rio_convocation_letter")
    body = render_letter(
        "orientation/convocation_letter.html",
        person=person,
        session=session,
        convocation=convocation,
        letter_date=paris_today(),
    )
    return Response(body, mimetype="text/html")
