"""One chronological view per person of everything that happened (one SQL statement).

Sources: SDD periods, orientation cases, RIO convocations, orientation decisions and their
notification, référent assignments (with the handover note), pathways, step transitions,
contracts, appointments, alerts, diagnostics, équipe pluridisciplinaire cases. Each source
is one branch of a ``UNION ALL`` with the same columns; the rows of one person are few
(hundreds at most), so they are sorted by date in Python — timestamps by their Europe/Paris
date — and paginated there. Free-text notes are dropped for managers and health-related
labels for those who may not see them (``spie.parcours.access``).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Integer,
    Select,
    String,
    Text,
    bindparam,
    case,
    cast,
    false,
    literal,
    null,
    select,
    type_coerce,
    union_all,
)

from spie.agents.models import Agent
from spie.clocks.calendar import paris_date
from spie.db import UTCDateTime, db
from spie.orientation.models import (
    Convocation,
    OrientationCase,
    OrientationDecision,
    RioSession,
)
from spie.parcours import access
from spie.parcours.models import (
    Alert,
    Appointment,
    Assessment,
    Contract,
    EpCase,
    Pathway,
    Step,
    StepTransition,
)
from spie.parcours.queries import MASKED_TITLE
from spie.persons.models import Person, SddPeriod
from spie.referent.models import ReferentAssignment

MAX_EVENTS = 5000
COLUMNS = (
    "kind",
    "on",
    "at",
    "resource_type",
    "resource_id",
    "code",
    "label",
    "note",
    "sensitive",
    "agent_id",
    "structure_id",
    "date1",
    "date2",
)


def _text(value: str) -> Any:
    return cast(literal(value), String(40))


def _branch(
    kind: str,
    resource_type: str,
    resource_id: Any,
    *,
    on: Any = None,
    at: Any = None,
    code: Any = None,
    label: Any = None,
    note: Any = None,
    sensitive: Any = None,
    agent_id: Any = None,
    structure_id: Any = None,
    date1: Any = None,
    date2: Any = None,
) -> Select[Any]:
    def typed(value: Any, type_: Any) -> Any:
        if value is None:
            return cast(null(), type_)
        # Date columns stay as they are: SQLite's CAST(... AS DATE) makes a number.
        return value if type_ is Date else cast(value, type_)

    return select(
        _text(kind).label("kind"),
        typed(on, Date).label("on"),
        (cast(null(), DateTime(timezone=True)) if at is None else at).label("at"),
        _text(resource_type).label("resource_type"),
        cast(resource_id, Integer).label("resource_id"),
        typed(code, String(60)).label("code"),
        typed(label, String(300)).label("label"),
        typed(note, Text).label("note"),
        (false() if sensitive is None else sensitive).label("sensitive"),
        typed(agent_id, Integer).label("agent_id"),
        typed(structure_id, Integer).label("structure_id"),
        typed(date1, Date).label("date1"),
        typed(date2, Date).label("date2"),
    )


PERSON = bindparam("timeline_person", type_=Integer())


def _branches(person_id: Any) -> list[Select[Any]]:
    sdd = SddPeriod
    case_ = OrientationCase
    decision = OrientationDecision
    ra = ReferentAssignment
    pw = Pathway
    tr, st = StepTransition, Step
    ct = Contract
    ap = Appointment
    al = Alert
    asm = Assessment
    ep = EpCase
    return [
        _branch(
            "sdd_change",
            "sdd_period",
            sdd.id,
            on=sdd.started_on,
            code=case((sdd.bound_by_duties, "sdd"), else_="hors_sdd"),
            label=sdd.rsa_state,
            date2=sdd.ended_on,
        ).where(sdd.person_id == person_id),
        _branch(
            "orientation_case_opened",
            "orientation_case",
            case_.id,
            on=case_.clock_started_on,
            code=case_.start_basis,
            date2=case_.legal_deadline,
        ).where(case_.person_id == person_id),
        _branch(
            "orientation_case_closed",
            "orientation_case",
            case_.id,
            on=case_.closed_on,
            code=case_.close_reason,
        ).where(case_.person_id == person_id, case_.closed_on.is_not(None)),
        _branch(
            "rio_convocation",
            "rio_convocation",
            Convocation.id,
            at=RioSession.starts_at,
            code=case(
                (Convocation.cancelled_at.is_not(None), "annulee"),
                else_=cast(Convocation.attendance, String(20)),
            ),
            structure_id=RioSession.animator_structure_id,
        )
        .join(RioSession, RioSession.id == Convocation.session_id)
        .where(Convocation.person_id == person_id),
        _branch(
            "orientation_decision",
            "orientation_decision",
            decision.id,
            on=decision.decided_on,
            code=decision.parcours,
            label=case((decision.rank > 1, "reorientation"), else_="orientation"),
            note=decision.reorientation_reason,
            structure_id=decision.structure_id,
            agent_id=decision.decided_by_id,
        ).where(decision.person_id == person_id),
        _branch(
            "orientation_notified",
            "orientation_decision",
            decision.id,
            on=decision.notified_on,
            code=decision.parcours,
            label=decision.notification_channel,
            structure_id=decision.structure_id,
        ).where(decision.person_id == person_id, decision.notified_on.is_not(None)),
        _branch(
            "referent_assigned",
            "referent_assignment",
            ra.id,
            at=ra.started_at,
            label=ra.reason,
            note=ra.handover_note,
            agent_id=ra.agent_id,
            structure_id=ra.structure_id,
        ).where(ra.person_id == person_id),
        _branch(
            "referent_ended",
            "referent_assignment",
            ra.id,
            at=ra.ended_at,
            label=ra.end_reason,
            agent_id=ra.agent_id,
            structure_id=ra.structure_id,
        ).where(ra.person_id == person_id, ra.ended_at.is_not(None)),
        _branch(
            "pathway_opened",
            "pathway",
            pw.id,
            on=pw.opened_on,
            code=pw.parcours,
            structure_id=pw.structure_id,
            date1=pw.notified_on,
        ).where(pw.person_id == person_id),
        _branch(
            "pathway_entered",
            "pathway",
            pw.id,
            on=pw.entered_on,
            code=pw.parcours,
            structure_id=pw.structure_id,
        ).where(pw.person_id == person_id, pw.entered_on.is_not(None)),
        _branch(
            "pathway_closed",
            "pathway",
            pw.id,
            on=pw.closed_on,
            code=pw.close_reason,
            structure_id=pw.structure_id,
        ).where(pw.person_id == person_id, pw.closed_on.is_not(None)),
        _branch(
            "step_status",
            "step",
            st.id,
            on=tr.on,
            at=tr.at,
            code=tr.to_status,
            label=st.title,
            sensitive=st.sensitive,
            agent_id=tr.by_agent_id,
            structure_id=st.provider_structure_id,
            date1=st.planned_start_on,
            date2=st.planned_end_on,
        )
        .join(st, st.id == tr.step_id)
        .where(tr.person_id == person_id),
        _branch(
            "contract_signed",
            "contract",
            ct.id,
            on=ct.signed_on,
            code=ct.kind,
            date1=ct.starts_on,
            date2=ct.ends_on,
            agent_id=ct.created_by_id,
        ).where(ct.person_id == person_id),
        _branch(
            "contract_cancelled",
            "contract",
            ct.id,
            on=ct.cancelled_on,
            code=ct.kind,
            note=ct.cancel_reason,
        ).where(ct.person_id == person_id, ct.cancelled_on.is_not(None)),
        _branch(
            "appointment",
            "appointment",
            ap.id,
            at=ap.scheduled_at,
            code=ap.status,
            label=ap.theme,
            note=ap.notes,
            agent_id=ap.agent_id,
            structure_id=ap.structure_id,
        ).where(ap.person_id == person_id),
        _branch(
            "alert_raised",
            "alert",
            al.id,
            at=al.raised_at,
            code=al.kind,
            date1=al.due_on,
            agent_id=al.agent_id,
            structure_id=al.structure_id,
        ).where(al.person_id == person_id),
        _branch(
            "alert_resolved",
            "alert",
            al.id,
            at=al.resolved_at,
            code=al.kind,
            note=al.resolution,
            agent_id=al.resolved_by_id,
            structure_id=al.structure_id,
        ).where(al.person_id == person_id, al.resolved_at.is_not(None)),
        _branch(
            "assessment",
            "assessment",
            asm.id,
            on=asm.assessed_on,
            note=asm.comment,
            agent_id=asm.assessed_by_id,
        ).where(asm.person_id == person_id),
        _branch(
            "ep_case_opened",
            "ep_case",
            ep.id,
            on=ep.opened_on,
            code=ep.origin,
            structure_id=ep.structure_id,
        ).where(ep.person_id == person_id),
        _branch(
            "ep_case_referred",
            "ep_case",
            ep.id,
            on=ep.referral_on,
            code=ep.origin,
            note=ep.referral_reason,
            structure_id=ep.structure_id,
        ).where(ep.person_id == person_id, ep.referral_on.is_not(None)),
        _branch(
            "ep_opinion",
            "ep_case",
            ep.id,
            on=ep.opinion_on,
            note=ep.opinion,
            structure_id=ep.structure_id,
        ).where(ep.person_id == person_id, ep.opinion_on.is_not(None)),
        _branch(
            "ep_decision",
            "ep_case",
            ep.id,
            on=ep.decided_on,
            code=ep.decision,
            agent_id=ep.decided_by_id,
            structure_id=ep.structure_id,
        ).where(ep.person_id == person_id, ep.decided_on.is_not(None)),
    ]


@lru_cache(maxsize=1)
def _statement() -> Select[Any]:
    """Built once, the person as a bind parameter (building and hashing this 22-branch
    statement costs more than running it)."""
    union = union_all(*_branches(PERSON)).subquery("timeline")
    columns = union.c
    query = select(
        columns.kind,
        type_coerce(columns.on, Date()).label("on"),
        type_coerce(columns.at, UTCDateTime()).label("at"),
        columns.resource_type,
        columns.resource_id,
        columns.code,
        columns.label,
        columns.note,
        type_coerce(columns.sensitive, Boolean()).label("sensitive"),
        columns.agent_id,
        columns.structure_id,
        type_coerce(columns.date1, Date()).label("date1"),
        type_coerce(columns.date2, Date()).label("date2"),
    ).limit(MAX_EVENTS)
    return query


def timeline(agent: Agent, person: Person, page: int, per_page: int) -> dict[str, Any]:
    """The person's events, newest first (one query)."""
    rows = db.session.execute(_statement(), {"timeline_person": person.id}).mappings().all()
    notes = access.sees_notes(agent)
    health = access.sees_health(agent, person)
    events = []
    for index, row in enumerate(rows):
        at: dt.datetime | None = row["at"]
        # The business date when the source has one (a step started on a given day), else
        # the Europe/Paris date of the instant.
        on: dt.date | None = row["on"] or (paris_date(at) if at is not None else None)
        masked = bool(row["sensitive"]) and not health
        events.append(
            {
                "kind": row["kind"],
                "on": on,
                "at": at,
                "resource_type": row["resource_type"],
                "resource_id": row["resource_id"],
                "code": row["code"],
                "label": MASKED_TITLE if masked else row["label"],
                "note": row["note"] if notes and not masked else None,
                "masked": masked,
                "agent_id": row["agent_id"],
                "structure_id": row["structure_id"],
                "date1": row["date1"],
                "date2": row["date2"],
                "_order": index,
            }
        )
    events.sort(
        key=lambda e: (
            e["on"] or dt.date.min,
            e["at"] or dt.datetime.min.replace(tzinfo=dt.UTC),
            e["_order"],
        ),
        reverse=True,
    )
    for event in events:
        del event["_order"]
    start = (page - 1) * per_page
    return {
        "person": {
            "id": person.id,
            "last_name": person.last_name,
            "first_name": person.first_name,
            "birth_date": person.birth_date,
        },
        "items": events[start : start + per_page],
        "page": page,
        "per_page": per_page,
        "total": len(events),
    }
