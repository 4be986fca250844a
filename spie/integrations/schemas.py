"""Input (``...Args``) and output (``...Schema``) schemas of the imports API."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest.fields import Upload

from spie.api.common import PaginationArgs
from spie.integrations.models import (
    ImportSource,
    ImportStatus,
    ImportTrigger,
    ProbableMatchStatus,
    RejectSeverity,
    RejectStatus,
)

FT_KINDS = ("inscriptions", "cessations", "radiations", "stock")


class UploadFormArgs(ma.Schema):
    source = ma.fields.Enum(ImportSource, by_value=True, required=True)
    kind = ma.fields.String(validate=ma.validate.OneOf(FT_KINDS))
    force = ma.fields.Boolean(load_default=False)


class UploadFileArgs(ma.Schema):
    file = Upload(required=True)


class RunListArgs(PaginationArgs):
    source = ma.fields.Enum(ImportSource, by_value=True)
    status = ma.fields.Enum(ImportStatus, by_value=True)
    kind = ma.fields.String(validate=ma.validate.Length(max=20))


class RejectListArgs(PaginationArgs):
    severity = ma.fields.Enum(RejectSeverity, by_value=True)
    status = ma.fields.Enum(RejectStatus, by_value=True)
    code = ma.fields.String(validate=ma.validate.Length(max=40))


class RejectCorrectionArgs(ma.Schema):
    raw_fragment = ma.fields.String(
        required=True, validate=ma.validate.Length(min=1, max=1_000_000)
    )


class ReplayArgs(ma.Schema):
    reject_ids = ma.fields.List(
        ma.fields.Integer(validate=ma.validate.Range(min=1)),
        validate=ma.validate.Length(min=1, max=10_000),
    )


class MatchListArgs(PaginationArgs):
    status = ma.fields.Enum(ProbableMatchStatus, by_value=True)


class CountsSchema(ma.Schema):
    read = ma.fields.Integer(attribute="read_count")
    created = ma.fields.Integer(attribute="created_count")
    updated = ma.fields.Integer(attribute="updated_count")
    unchanged = ma.fields.Integer(attribute="unchanged_count")
    rejected = ma.fields.Integer(attribute="rejected_count")
    warnings = ma.fields.Integer(attribute="warning_count")


class ImportRunSchema(ma.Schema):
    id = ma.fields.Integer()
    source = ma.fields.Enum(ImportSource, by_value=True)
    kind = ma.fields.String()
    file_name = ma.fields.String()
    checksum = ma.fields.String()
    size_bytes = ma.fields.Integer()
    trigger = ma.fields.Enum(ImportTrigger, by_value=True)
    status = ma.fields.Enum(ImportStatus, by_value=True)
    force = ma.fields.Boolean()
    job_run_id = ma.fields.String(allow_none=True)
    duplicate_of_id = ma.fields.Integer(allow_none=True)
    replay_of_run_id = ma.fields.Integer(allow_none=True)
    requested_by_id = ma.fields.Integer(allow_none=True)
    created_at = ma.fields.AwareDateTime()
    started_at = ma.fields.AwareDateTime(allow_none=True)
    heartbeat_at = ma.fields.AwareDateTime(allow_none=True)
    finished_at = ma.fields.AwareDateTime(allow_none=True)
    attempts = ma.fields.Integer()
    flow_type = ma.fields.String(allow_none=True)
    flow_schema = ma.fields.String(allow_none=True)
    flow_dtref = ma.fields.Date(allow_none=True)
    initial_stock = ma.fields.Boolean()
    expected_count = ma.fields.Integer(allow_none=True)
    count_mismatch = ma.fields.Boolean()
    last_committed_position = ma.fields.Integer()
    counts = ma.fields.Function(lambda run: CountsSchema().dump(run))
    details = ma.fields.Dict(allow_none=True)
    error_code = ma.fields.String(allow_none=True)
    error_message = ma.fields.String(allow_none=True)


class ImportRejectSchema(ma.Schema):
    id = ma.fields.Integer()
    run_id = ma.fields.Integer()
    position = ma.fields.Integer(allow_none=True)
    severity = ma.fields.Enum(RejectSeverity, by_value=True)
    code = ma.fields.String()
    message = ma.fields.String()
    keys = ma.fields.Dict(allow_none=True)
    status = ma.fields.Enum(RejectStatus, by_value=True)
    created_at = ma.fields.AwareDateTime()
    replayed_at = ma.fields.AwareDateTime(allow_none=True)
    replay_run_id = ma.fields.Integer(allow_none=True)


class ImportRejectDetailSchema(ImportRejectSchema):
    raw_fragment = ma.fields.String(allow_none=True)


class ReplayQueuedSchema(ma.Schema):
    run_id = ma.fields.Integer()
    job_run_id = ma.fields.String()
    rejects = ma.fields.Integer()


class ProbableMatchSchema(ma.Schema):
    id = ma.fields.Integer()
    status = ma.fields.Enum(ProbableMatchStatus, by_value=True)
    candidate_person_id = ma.fields.Integer()
    run_id = ma.fields.Integer()
    position = ma.fields.Integer(allow_none=True)
    caf_numorg = ma.fields.String()
    caf_matricule = ma.fields.String()
    caf_role = ma.fields.String(allow_none=True)
    flow_dtref = ma.fields.Date()
    reason = ma.fields.String()
    created_at = ma.fields.AwareDateTime()
    decided_at = ma.fields.AwareDateTime(allow_none=True)
    decided_by_id = ma.fields.Integer(allow_none=True)
    resulting_person_id = ma.fields.Integer(allow_none=True)


class ProbableMatchDetailSchema(ProbableMatchSchema):
    payload = ma.fields.Dict()


class MatchDecisionSchema(ma.Schema):
    match = ma.fields.Nested(ProbableMatchSchema)
    person_id = ma.fields.Integer()
