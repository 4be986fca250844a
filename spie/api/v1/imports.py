"""Imports of partner files — uploads, runs, rejects and probable matches (admins only).

An upload stores the file in the database and answers 202 with its run; the import runs on
the ``imports`` queue (or in process without Redis) and is followed at ``/imports/runs/{id}``.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint

from spie.agents.models import Role
from spie.api.common import page_schema, paginate
from spie.audit.service import record_person_read
from spie.auth.access import current_agent, roles_required
from spie.integrations import queries, services
from spie.integrations.models import ImportReject, ImportRun, ImportSource, ProbableMatch
from spie.integrations.schemas import (
    ImportRejectDetailSchema,
    ImportRejectSchema,
    ImportRunSchema,
    MatchDecisionSchema,
    MatchListArgs,
    ProbableMatchDetailSchema,
    ProbableMatchSchema,
    RejectCorrectionArgs,
    RejectListArgs,
    ReplayArgs,
    ReplayQueuedSchema,
    RunListArgs,
    UploadFileArgs,
    UploadFormArgs,
)

blp = Blueprint(
    "imports",
    __name__,
    url_prefix="/imports",
    description="Imports CAF et France Travail : dépôts, exécutions, rejets, rapprochements",
)

RunPage = page_schema(ImportRunSchema, "ImportRunPage")
RejectPage = page_schema(ImportRejectSchema, "ImportRejectPage")
MatchPage = page_schema(ProbableMatchSchema, "ProbableMatchPage")


@blp.route("/uploads", methods=["POST"])
@roles_required(Role.ADMIN)
@blp.arguments(UploadFormArgs, location="form")
@blp.arguments(UploadFileArgs, location="files")
@blp.response(202, ImportRunSchema)
def upload(form: dict[str, Any], files: dict[str, Any]) -> ImportRun:
    """Upload a CAF flow or a France Travail file: stored, then imported by a worker.

    The same file twice gives the same run (or a ``duplicate`` run once imported)."""
    storage = files["file"]
    source: ImportSource = form["source"]
    return services.upload(
        storage.stream,
        storage.filename or "upload",
        source,
        form.get("kind"),
        current_agent().id,
        force=form["force"],
        max_bytes=current_app.config.get("MAX_CONTENT_LENGTH"),
    )


@blp.route("/runs", methods=["GET"])
@roles_required(Role.ADMIN)
@blp.arguments(RunListArgs, location="query")
@blp.response(200, RunPage)
def list_runs(args: dict[str, Any]) -> dict[str, Any]:
    """Import runs, newest first, with their counts and status."""
    page, per_page = args.pop("page"), args.pop("per_page")
    return paginate(queries.list_runs(args), page, per_page)


@blp.route("/runs/<int:run_id>", methods=["GET"])
@roles_required(Role.ADMIN)
@blp.response(200, ImportRunSchema)
def get_run(run_id: int) -> ImportRun:
    """One run: counts (read, created, updated, unchanged, rejected, warnings), checkpoint."""
    return queries.get_run(run_id)


@blp.route("/runs/<int:run_id>/resume", methods=["POST"])
@roles_required(Role.ADMIN)
@blp.response(202, ImportRunSchema)
def resume_run(run_id: int) -> ImportRun:
    """Enqueue an interrupted run again: it restarts after its last committed batch."""
    return services.resume(queries.get_run(run_id), current_agent().id)


@blp.route("/runs/<int:run_id>/rejects", methods=["GET"])
@roles_required(Role.ADMIN)
@blp.arguments(RejectListArgs, location="query")
@blp.response(200, RejectPage)
def list_rejects(args: dict[str, Any], run_id: int) -> dict[str, Any]:
    """The rejects and warnings of a run, by position (file-level ones first)."""
    queries.get_run(run_id)
    page, per_page = args.pop("page"), args.pop("per_page")
    return paginate(queries.list_rejects(run_id, args), page, per_page)


@blp.route("/runs/<int:run_id>/replay-rejects", methods=["POST"])
@roles_required(Role.ADMIN)
@blp.arguments(ReplayArgs)
@blp.response(202, ReplayQueuedSchema)
def replay_rejects(args: dict[str, Any], run_id: int) -> dict[str, Any]:
    """Replay the open rejects of a run (all, or ``reject_ids``) after a fix."""
    from spie.integrations.jobs import replay_run_rejects

    queries.get_run(run_id)
    reject_ids = args.get("reject_ids")
    count = len(services.replayable(run_id, reject_ids))
    agent_id = current_agent().id
    job_id = (
        replay_run_rejects.delay(run_id, agent_id, reject_ids)
        if reject_ids
        else replay_run_rejects.delay(run_id, agent_id)
    )
    return {"run_id": run_id, "job_run_id": job_id, "rejects": count}


@blp.route("/rejects/<int:reject_id>", methods=["GET"])
@roles_required(Role.ADMIN)
@blp.response(200, ImportRejectDetailSchema)
def get_reject(reject_id: int) -> ImportReject:
    """One reject with its raw fragment (personal data: admins only)."""
    return queries.get_reject(reject_id)


@blp.route("/rejects/<int:reject_id>", methods=["PATCH"])
@roles_required(Role.ADMIN)
@blp.arguments(RejectCorrectionArgs)
@blp.response(200, ImportRejectDetailSchema)
def correct_reject(args: dict[str, Any], reject_id: int) -> ImportReject:
    """Correct the raw record of an open reject before replaying it."""
    return services.correct_reject(
        queries.get_reject(reject_id), args["raw_fragment"], current_agent().id
    )


@blp.route("/rejects/<int:reject_id>/ignore", methods=["POST"])
@roles_required(Role.ADMIN)
@blp.response(200, ImportRejectSchema)
def ignore_reject(reject_id: int) -> ImportReject:
    """Close a reject that will not be replayed."""
    return services.ignore_reject(queries.get_reject(reject_id), current_agent().id)


@blp.route("/probable-matches", methods=["GET"])
@roles_required(Role.ADMIN)
@blp.arguments(MatchListArgs, location="query")
@blp.response(200, MatchPage)
def list_matches(args: dict[str, Any]) -> dict[str, Any]:
    """People matched on name and birth date only, waiting for a decision."""
    page, per_page = args.pop("page"), args.pop("per_page")
    return paginate(queries.list_matches(args), page, per_page)


@blp.route("/probable-matches/<int:match_id>", methods=["GET"])
@roles_required(Role.ADMIN)
@blp.response(200, ProbableMatchDetailSchema)
def get_match(match_id: int) -> ProbableMatch:
    """One probable match with the held record (a read of the candidate's data)."""
    match = queries.get_match(match_id)
    record_person_read(match.candidate_person_id, "probable_match")
    return match


@blp.route("/probable-matches/<int:match_id>/confirm", methods=["POST"])
@roles_required(Role.ADMIN)
@blp.response(200, MatchDecisionSchema)
def confirm_match(match_id: int) -> dict[str, Any]:
    """Same person: the held record is applied to the candidate."""
    match = queries.get_match(match_id)
    person = services.confirm_match(match, current_agent().id)
    return {"match": match, "person_id": person.id}


@blp.route("/probable-matches/<int:match_id>/reject", methods=["POST"])
@roles_required(Role.ADMIN)
@blp.response(200, MatchDecisionSchema)
def reject_match(match_id: int) -> dict[str, Any]:
    """Another person: a new person is created from the held record."""
    match = queries.get_match(match_id)
    person = services.reject_match(match, current_agent().id)
    return {"match": match, "person_id": person.id}
