"""The adviser's caseload: their people with the next deadline, overdue items, last contact,
contract status, current step and alerts; filters, sorting and counts.

One SQL statement per page whatever its size (no N+1): the caseload's rows are computed once;
window aggregates over them give the counts of the whole caseload and the filtered total;
the filter, the sort and the page come next; the figures that are only displayed (current
step, contract details, next appointment) are correlated subqueries evaluated after the
LIMIT, for the rows of the page only. Every per-person figure comes from an index starting
with ``person_id``; the caseload itself from ``ix_referent_assignments_agent_active``. A page
past the end (no row to carry the counts) costs a second, aggregate-only statement.

A référent's own caseload (the hot path) is one statement object built once, with the
référent, today and now as bind parameters.
"""

from __future__ import annotations

import datetime as dt
import enum
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    select,
)
from sqlalchemy.orm import aliased

from spie.agents.models import Agent, Role
from spie.auth.scope import persons_visible_to
from spie.clocks.models import ClockKind
from spie.common.nir import normalize_name
from spie.db import UTCDateTime, db
from spie.parcours import clock
from spie.parcours.models import (
    Alert,
    Appointment,
    AppointmentStatus,
    Contract,
    Pathway,
    PathwayClock,
    Step,
    StepStatus,
)
from spie.parcours.queries import MASKED_TITLE
from spie.persons.models import Person
from spie.referent.models import ReferentAssignment

CONTRACT_STATUSES = ("none", "active", "expiring", "ended")
SORTS = ("name", "next_deadline", "-overdue", "last_contact", "-last_contact", "referent_since")
CURRENT_STEP_STATUSES = (StepStatus.EN_COURS, StepStatus.PLANIFIEE, StepStatus.PROPOSEE)
COUNTS = (
    "overdue",
    "with_alerts",
    "without_contract",
    "contract_expiring",
    "not_entered",
    "never_contacted",
)

TODAY = bindparam("caseload_today", type_=Date())
NOW = bindparam("caseload_now", type_=UTCDateTime())
AGENT = bindparam("caseload_agent", type_=Integer())


def _first(column: Any, *conditions: Any, order: tuple[Any, ...] = ()) -> Any:
    query = select(column).where(*conditions)
    if order:
        query = query.order_by(*order).limit(1)
    return query.scalar_subquery()


def _count(model: Any, *conditions: Any) -> Any:
    return select(func.count()).select_from(model).where(*conditions).scalar_subquery()


def _rows(viewer: Agent | None) -> Any:
    """One row per person of the référent's caseload (visible to ``viewer`` when it is
    someone else's), with what filters, sorts and counts need, and its contract status."""
    ra = aliased(ReferentAssignment, name="caseload_assignment")  # the scope has its own
    clock_open = and_(
        PathwayClock.person_id == Person.id,
        PathwayClock.met_on.is_(None),
        PathwayClock.stopped_on.is_(None),
    )
    current_contract = (
        Contract.person_id == Person.id,
        Contract.cancelled_on.is_(None),
        Contract.starts_on <= TODAY,
    )
    contract_order = (Contract.starts_on.desc(), Contract.id.desc())
    query = (
        select(
            Person.id.label("person_id"),
            Person.last_name,
            Person.first_name,
            Person.birth_date,
            Person.search_name,
            Person.current_structure_id,
            ra.started_at.label("referent_since"),
            Pathway.id.label("pathway_id"),
            Pathway.parcours,
            Pathway.notified_on,
            Pathway.entered_on,
            _first(func.min(PathwayClock.due_on), clock_open).label("next_deadline"),
            _count(PathwayClock, clock_open, PathwayClock.due_on < TODAY).label("overdue"),
            _count(
                PathwayClock,
                clock_open,
                PathwayClock.kind == ClockKind.CONTRACT_RENEWAL,
                PathwayClock.started_on <= TODAY,
            ).label("renewal_due"),
            _count(Alert, Alert.person_id == Person.id, Alert.resolved_at.is_(None)).label(
                "open_alerts"
            ),
            _first(
                func.max(Appointment.scheduled_at),
                Appointment.person_id == Person.id,
                Appointment.status == AppointmentStatus.HONOURED,
            ).label("last_contact"),
            _first(Contract.id, *current_contract, order=contract_order).label("contract_id"),
            _first(Contract.ends_on, *current_contract, order=contract_order).label(
                "contract_ends_on"
            ),
        )
        .select_from(ra)
        .join(Person, Person.id == ra.person_id)
        .outerjoin(Pathway, and_(Pathway.person_id == Person.id, Pathway.closed_on.is_(None)))
        .where(ra.agent_id == AGENT, ra.ended_at.is_(None))
    )
    if viewer is not None:
        query = query.where(persons_visible_to(viewer))
    # OFFSET 0: an optimisation fence, so that PostgreSQL evaluates each per-person subquery
    # once per row instead of inlining it into every window aggregate that reads it.
    base = query.offset(0).subquery("caseload_base")
    contract_status = case(
        (base.c.contract_id.is_(None), literal_column("'none'")),
        (base.c.contract_ends_on < TODAY, literal_column("'ended'")),
        (base.c.renewal_due > 0, literal_column("'expiring'")),
        else_=literal_column("'active'"),
    )
    return select(base, contract_status.label("contract_status")).subquery("caseload")


def _count_columns(rows: Any) -> dict[str, ColumnElement[bool]]:
    c = rows.c
    return {
        "overdue": c.overdue > 0,
        "with_alerts": c.open_alerts > 0,
        "without_contract": c.contract_status.in_(("none", "ended")),
        "contract_expiring": c.contract_status == "expiring",
        "not_entered": and_(c.pathway_id.is_not(None), c.entered_on.is_(None)),
        "never_contacted": c.last_contact.is_(None),
    }


def _flag(condition: ColumnElement[bool]) -> Any:
    return case((condition, 1), else_=0)


def _details(rows: Any) -> list[Any]:
    """Displayed only: correlated to the page subquery, so that PostgreSQL evaluates them
    after the sort and the LIMIT, for the page's rows."""
    person, pathway = rows.c.person_id, rows.c.pathway_id
    clock_open = and_(
        PathwayClock.person_id == person,
        PathwayClock.met_on.is_(None),
        PathwayClock.stopped_on.is_(None),
    )
    current_contract = (
        Contract.person_id == person,
        Contract.cancelled_on.is_(None),
        Contract.starts_on <= TODAY,
    )
    contract_order = (Contract.starts_on.desc(), Contract.id.desc())
    step_rank = case(
        (Step.status == StepStatus.EN_COURS, 0),
        (Step.status == StepStatus.PLANIFIEE, 1),
        else_=2,
    )
    current_step = (
        Step.person_id == person,
        Step.pathway_id == pathway,
        Step.status.in_(CURRENT_STEP_STATUSES),
    )
    step_order = (step_rank, Step.proposed_on.desc(), Step.id.desc())
    return [
        _first(PathwayClock.kind, clock_open, order=(PathwayClock.due_on, PathwayClock.id)).label(
            "next_deadline_kind"
        ),
        _first(
            func.min(Appointment.scheduled_at),
            Appointment.person_id == person,
            Appointment.status == AppointmentStatus.PLANNED,
            Appointment.scheduled_at >= NOW,
        ).label("next_appointment"),
        _first(Contract.kind, *current_contract, order=contract_order).label("contract_kind"),
        _first(Contract.starts_on, *current_contract, order=contract_order).label(
            "contract_starts_on"
        ),
        _first(Step.id, *current_step, order=step_order).label("step_id"),
        _first(Step.title, *current_step, order=step_order).label("step_title"),
        _first(Step.status, *current_step, order=step_order).label("step_status"),
        _first(Step.sensitive, *current_step, order=step_order).label("step_sensitive"),
        _first(Step.theme, *current_step, order=step_order).label("step_theme"),
    ]


@lru_cache(maxsize=1)
def _own() -> Any:
    """A référent's own caseload: built once (building this large statement is a good part
    of a request's time otherwise)."""
    return _rows(None)


def _conditions(rows: Any, filters: dict[str, Any]) -> list[ColumnElement[bool]]:
    c = rows.c
    conditions: list[ColumnElement[bool]] = []
    if "overdue" in filters:
        conditions.append(c.overdue > 0 if filters["overdue"] else c.overdue == 0)
    if "has_alerts" in filters:
        conditions.append(c.open_alerts > 0 if filters["has_alerts"] else c.open_alerts == 0)
    if filters.get("contract_status"):
        conditions.append(c.contract_status.in_(filters["contract_status"]))
    if "parcours" in filters:
        conditions.append(c.parcours == filters["parcours"])
    if "entered" in filters:
        conditions.append(
            c.entered_on.is_not(None) if filters["entered"] else c.entered_on.is_(None)
        )
    if filters.get("q"):
        key = normalize_name(filters["q"]).replace("\\", "\\\\").replace("%", "\\%")
        conditions.append(c.search_name.like(key.replace("_", "\\_") + "%", escape="\\"))
    return conditions


def _order(rows: Any, sort: str) -> list[Any]:
    c = rows.c
    name = [c.search_name, c.person_id]
    if sort == "next_deadline":
        return [case((c.next_deadline.is_(None), 1), else_=0), c.next_deadline, *name]
    if sort == "-overdue":
        return [
            c.overdue.desc(),
            case((c.next_deadline.is_(None), 1), else_=0),
            c.next_deadline,
            *name,
        ]
    if sort == "last_contact":  # never contacted first, then the oldest contact
        return [case((c.last_contact.is_(None), 0), else_=1), c.last_contact, *name]
    if sort == "-last_contact":
        return [case((c.last_contact.is_(None), 1), else_=0), c.last_contact.desc(), *name]
    if sort == "referent_since":
        return [c.referent_since, *name]
    return name


def _j(value: Any) -> Any:
    """JSON-ready value (the page is serialised by hand, see ``spie.api.v1.caseload``)."""
    if isinstance(value, dt.date):  # dates and datetimes (timezone-aware UTC)
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def caseload(
    viewer: Agent, referent: Agent, filters: dict[str, Any], page: int, per_page: int
) -> dict[str, Any]:
    own = viewer.id == referent.id and viewer.has_role(Role.REFERENT)
    # A référent's own caseload is in their scope by definition.
    rows = _own() if own else _rows(viewer)
    params = {
        "caseload_today": clock.today(),
        "caseload_now": clock.now(),
        "caseload_agent": referent.id,
    }
    conditions = _conditions(rows, filters)
    matching = and_(*conditions) if conditions else None
    counted = {
        "total": func.count().over(),
        "filtered": (
            func.sum(_flag(matching)).over() if matching is not None else func.count().over()
        ),
        **{
            name: func.sum(_flag(condition)).over()
            for name, condition in _count_columns(rows).items()
        },
    }
    windowed = select(rows, *(column.label(f"n_{name}") for name, column in counted.items()))
    windowed_rows = windowed.subquery("caseload_page")
    page_query = select(windowed_rows)
    if matching is not None:
        page_query = page_query.where(*_conditions(windowed_rows, filters))
    page_query = page_query.add_columns(*_details(windowed_rows))
    result = (
        db.session.execute(
            page_query.order_by(*_order(windowed_rows, filters.get("sort", "name")))
            .limit(per_page)
            .offset((page - 1) * per_page),
            params,
        )
        .mappings()
        .all()
    )
    if result:
        counts = {name: int(result[0][f"n_{name}"] or 0) for name in counted}
    else:  # nothing on this page to carry the counts: one aggregate statement
        aggregate = select(
            *(
                func.coalesce(func.sum(_flag(c)), 0).label(f"n_{name}")
                for name, c in {
                    "total": literal_column("1") == 1,
                    "filtered": matching if matching is not None else literal_column("1") == 1,
                    **_count_columns(rows),
                }.items()
            )
        )
        found = db.session.execute(aggregate, params).mappings().one()
        counts = {name: int(found[f"n_{name}"] or 0) for name in counted}
    health_everywhere = viewer.has_role(Role.ADMIN, Role.CHARGE_ORIENTATION)
    referent_viewer = viewer.has_role(Role.REFERENT)
    items = [_item(row, health_everywhere, referent_viewer, viewer.structure_id) for row in result]
    return {
        "agent": {
            "id": referent.id,
            "name": referent.full_name,
            "structure_id": referent.structure_id,
            "capacity": referent.caseload_capacity,
            "load": counts["total"],
        },
        "counts": {name: counts[name] for name in COUNTS},
        "items": items,
        "page": page,
        "per_page": per_page,
        "total": counts["filtered"],
    }


def _item(row: Any, health_everywhere: bool, referent_viewer: bool, structure_id: int) -> dict:
    sees_health = health_everywhere or (
        referent_viewer and structure_id == row["current_structure_id"]
    )
    masked = bool(row["step_sensitive"]) and not sees_health
    return {
        "person": {
            "id": row["person_id"],
            "last_name": row["last_name"],
            "first_name": row["first_name"],
            "birth_date": _j(row["birth_date"]),
        },
        "pathway_id": row["pathway_id"],
        "parcours": _j(row["parcours"]),
        "notified_on": _j(row["notified_on"]),
        "entered_on": _j(row["entered_on"]),
        "referent_since": _j(row["referent_since"]),
        "next_deadline": (
            {"on": _j(row["next_deadline"]), "kind": _j(row["next_deadline_kind"])}
            if row["next_deadline"] is not None
            else None
        ),
        "overdue": row["overdue"],
        "open_alerts": row["open_alerts"],
        "last_contact_at": _j(row["last_contact"]),
        "next_appointment_at": _j(row["next_appointment"]),
        "contract": {
            "status": row["contract_status"],
            "id": row["contract_id"],
            "kind": _j(row["contract_kind"]),
            "starts_on": _j(row["contract_starts_on"]),
            "ends_on": _j(row["contract_ends_on"]),
        },
        "current_step": (
            {
                "id": row["step_id"],
                "title": MASKED_TITLE if masked else row["step_title"],
                "theme": None if masked else _j(row["step_theme"]),
                "status": _j(row["step_status"]),
                "masked": masked,
            }
            if row["step_id"] is not None
            else None
        ),
    }
