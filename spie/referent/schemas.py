"""Schemas of the référent API: assignment, history, queue, departure, bulk reassignment."""

from __future__ import annotations

import marshmallow as ma

from spie.api.common import PaginationArgs
from spie.orientation.models import Parcours
from spie.parcours.schemas import PathwayPersonSchema

REASON = ma.validate.Length(min=2, max=200)
NOTE = ma.validate.Length(max=10_000)


class AssignArgs(ma.Schema):
    agent_id = ma.fields.Integer(required=True)
    reason = ma.fields.String(required=True, validate=REASON)
    handover_note = ma.fields.String(
        allow_none=True,
        validate=NOTE,
        metadata={"description": "Note de passation, obligatoire lors d'un changement."},
    )
    allow_over_capacity = ma.fields.Boolean(load_default=False)


class AssignmentSchema(ma.Schema):
    id = ma.fields.Integer()
    agent_id = ma.fields.Integer()
    agent_name = ma.fields.String()
    structure_id = ma.fields.Integer()
    started_at = ma.fields.AwareDateTime()
    ended_at = ma.fields.AwareDateTime(allow_none=True)
    reason = ma.fields.String()
    end_reason = ma.fields.String(allow_none=True)
    handover_note = ma.fields.String(allow_none=True)
    assigned_by_id = ma.fields.Integer(allow_none=True)
    active = ma.fields.Boolean()


class ReferentSchema(ma.Schema):
    person_id = ma.fields.Integer()
    current_structure_id = ma.fields.Integer(allow_none=True)
    version = ma.fields.Integer(
        metadata={"description": "ETag : id de l'affectation active, 0 sans référent."}
    )
    active = ma.fields.Nested(AssignmentSchema, allow_none=True)
    history = ma.fields.List(ma.fields.Nested(AssignmentSchema))


class ReferentProposalSchema(ma.Schema):
    agent_id = ma.fields.Integer()
    name = ma.fields.String()
    load_ = ma.fields.Integer(data_key="load", attribute="load")
    capacity = ma.fields.Integer()
    covers_territory = ma.fields.Boolean()


class QueueItemSchema(ma.Schema):
    person = ma.fields.Nested(PathwayPersonSchema)
    territory_id = ma.fields.Integer(allow_none=True)
    pathway_id = ma.fields.Integer(allow_none=True)
    parcours = ma.fields.Enum(Parcours, by_value=True, allow_none=True)
    waiting_since = ma.fields.Date(allow_none=True)
    gap_due_on = ma.fields.Date(allow_none=True)
    overdue = ma.fields.Boolean()
    proposal = ma.fields.Nested(ReferentProposalSchema, allow_none=True)


class QueueReferentSchema(ma.Schema):
    agent_id = ma.fields.Integer()
    name = ma.fields.String()
    capacity = ma.fields.Integer()
    load_ = ma.fields.Integer(data_key="load", attribute="load")
    territory_ids = ma.fields.List(ma.fields.Integer())


class QueueSchema(ma.Schema):
    structure_id = ma.fields.Integer()
    referents = ma.fields.List(ma.fields.Nested(QueueReferentSchema))
    items = ma.fields.List(ma.fields.Nested(QueueItemSchema))
    page = ma.fields.Integer()
    per_page = ma.fields.Integer()
    total = ma.fields.Integer()


class QueueArgs(PaginationArgs):
    pass


class DepartureArgs(ma.Schema):
    left_on = ma.fields.Date(
        required=True, metadata={"description": "Dernier jour d'activité du référent."}
    )
    reason = ma.fields.String(required=True, validate=REASON)


class DepartureSchema(ma.Schema):
    agent_id = ma.fields.Integer()
    left_on = ma.fields.Date()
    flagged = ma.fields.Integer(metadata={"description": "Personnes signalées à réaffecter."})


class ReassignArgs(ma.Schema):
    from_agent_id = ma.fields.Integer(required=True)
    person_ids = ma.fields.List(
        ma.fields.Integer(), validate=ma.validate.Length(min=1, max=5000), allow_none=True
    )
    to_agent_ids = ma.fields.List(
        ma.fields.Integer(), validate=ma.validate.Length(min=1, max=500), allow_none=True
    )
    reason = ma.fields.String(required=True, validate=REASON)
    handover_note = ma.fields.String(required=True, validate=ma.validate.Length(min=2, max=10_000))
    dry_run = ma.fields.Boolean(load_default=False)


class MoveSchema(ma.Schema):
    person_id = ma.fields.Integer()
    from_agent_id = ma.fields.Integer()
    to_agent_id = ma.fields.Integer()


class ReassignSchema(ma.Schema):
    dry_run = ma.fields.Boolean()
    moves = ma.fields.List(ma.fields.Nested(MoveSchema))
    unassigned_person_ids = ma.fields.List(ma.fields.Integer())
