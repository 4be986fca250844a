"""Pathway indicators of the manager's dashboard (DOMAIN §4), computed by the database.

Same rules as the orientation indicators (``spie.orientation.indicators``, documented in
``docs/indicators.md``): an ``as_of`` date (default today, Europe/Paris), a cohort
``[cohort_from, cohort_to]`` of clock start dates (default: the twelve calendar months
ending with the month of ``as_of``), the caller's territory scope (admin: all; manager:
their territories; a territory outside it is refused), an optional ``public`` and one
``group_by`` among month, ctm, structure, public, parcours. Grouping keys are frozen on the
pathway when it opens (``Pathway.territory_id``, ``public``, ``structure_id``,
``parcours``); ``month`` is the month the clock started (delays) or the pathway opened
(stocks). Each indicator is one SQL statement; rows are never loaded into Python to be
counted. Definitions: ``docs/indicators.md`` § Pathway indicators.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Float,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import aliased

from spie.agents.models import Agent, AgentRole, Role
from spie.clocks.models import ClockKind
from spie.clocks.today import PARIS
from spie.db import db
from spie.orientation.indicators import Filters, GroupBy, day_number, month_label, ratio
from spie.orientation.models import Parcours
from spie.parcours.models import (
    OFFER_THEME_LABELS,
    Contract,
    Offer,
    OfferTheme,
    Pathway,
    PathwayClock,
    Step,
    StepOutcome,
    StepStatus,
    StepTransition,
)
from spie.persons.models import PUBLIC_LABELS, Person, Public, SddPeriod
from spie.referent.models import ReferentAssignment
from spie.structures.models import Structure, structure_territories
from spie.territories.models import Territory

PERCENTILES: tuple[tuple[str, int, int], ...] = (("median", 1, 2), ("p75", 3, 4), ("p90", 9, 10))
PARCOURS_LABELS = {
    Parcours.EMPLOI: "Emploi",
    Parcours.SOCIO_PROFESSIONNEL: "Socio-professionnel",
    Parcours.SOCIAL: "Social",
}
INDICATORS = (
    "entry",
    "contract_delay",
    "contract_rate",
    "without_referent",
    "caseload",
    "steps",
)


# --- dialect helpers (same arithmetic as the orientation indicators) ----------------------


class _Dates:
    def __init__(self) -> None:
        self.postgres = db.session.get_bind().dialect.name == "postgresql"

    def day(self, value: Any) -> ColumnElement[int]:
        """Days since 1970-01-01."""
        if self.postgres:
            return type_coerce(value - literal_column("DATE '1970-01-01'", Date), Integer)
        return cast(func.julianday(value) - 2440587.5, Integer)

    def add_months(self, value: Any, months: int) -> ColumnElement[dt.date]:
        """Calendar months clamped to the end of a shorter month (dateutil semantics)."""
        if self.postgres:
            return cast(value + literal_column(f"INTERVAL '{int(months)} months'"), Date)
        return type_coerce(
            func.min(
                func.date(value, literal_column(f"'+{int(months)} months'")),
                func.date(
                    value,
                    literal_column("'start of month'"),
                    literal_column(f"'+{int(months) + 1} months'"),
                    literal_column("'-1 day'"),
                ),
            ),
            Date,
        )

    def month(self, value: Any) -> ColumnElement[str]:
        if self.postgres:
            return func.to_char(value, literal_column("'YYYY-MM'"))
        return func.strftime(literal_column("'%Y-%m'"), value)


def end_of_day_utc(day: dt.date) -> dt.datetime:
    """The instant ``day`` ends in Europe/Paris (midnight of the next day), in UTC."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=PARIS).astimezone(
        dt.UTC
    )


def _group_key(group_by: GroupBy | None, d: _Dates, month_of: Any) -> Any:
    pathway = Pathway
    if group_by is GroupBy.MONTH:
        return d.month(month_of)
    if group_by is GroupBy.CTM:
        return pathway.territory_id
    if group_by is GroupBy.STRUCTURE:
        return pathway.structure_id
    if group_by is GroupBy.PUBLIC:
        return pathway.public
    if group_by is GroupBy.PARCOURS:
        return pathway.parcours
    return cast(null(), String)


def _scope(filters: Filters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.territories is not None:
        conditions.append(Pathway.territory_id.in_(sorted(filters.territories)))
    if filters.public is not None:
        conditions.append(Pathway.public == filters.public)
    return conditions


def _labelled(query: Select[Any], key: Any, group_by: GroupBy | None) -> tuple[Any, Any]:
    if group_by is GroupBy.CTM:
        territory = aliased(Territory, name="group_territory")
        return query.outerjoin(territory, territory.id == key).add_columns(
            territory.name.label("label")
        ), territory.name
    if group_by is GroupBy.STRUCTURE:
        structure = aliased(Structure, name="group_structure")
        return query.outerjoin(structure, structure.id == key).add_columns(
            structure.name.label("label")
        ), structure.name
    return query.add_columns(cast(null(), String).label("label")), key


def _key_and_label(group_by: GroupBy | None, key: Any, label: str | None) -> dict[str, Any]:
    if group_by is None:
        return {"key": None, "label": "Ensemble"}
    if key is None:
        return {"key": None, "label": "Sans territoire" if group_by is GroupBy.CTM else "—"}
    text = str(key.value if isinstance(key, enum.Enum) else key)
    if group_by is GroupBy.MONTH:
        label = month_label(text)
    elif group_by is GroupBy.PUBLIC:
        label = PUBLIC_LABELS[Public(text)]
    elif group_by is GroupBy.PARCOURS:
        label = PARCOURS_LABELS[Parcours(text)]
    return {"key": text, "label": label or text}


def _rounded(value: Any, digits: int = 6) -> float | None:
    return None if value is None else round(float(value), digits)


def _ordered(query: Any, key: Any, sort: Any) -> Any:
    return query.order_by(case((key.is_(None), 1), else_=0), sort, key)


# --- délais: entrée en parcours, contractualisation ----------------------------------------


def _clock_delay(kind: ClockKind, filters: Filters, *, one_month: bool) -> list[dict[str, Any]]:
    """Clocks of ``kind`` started in the cohort, as of ``as_of``: met (e), stopped without
    being met (closed_other) or running; delay t in days; within the policy limit among the
    mature ones (limit reached by ``as_of``); percentiles over the met ones."""
    d = _Dates()
    as_of = filters.as_of
    as_of_n = literal(day_number(as_of), Integer)
    c = PathwayClock
    met = and_(c.met_on.is_not(None), c.met_on <= as_of)
    stopped = and_(~met, c.stopped_on.is_not(None), c.stopped_on <= as_of)
    columns: list[Any] = [
        _group_key(filters.group_by, d, c.started_on).label("g"),
        (
            case((met, d.day(c.met_on)), (stopped, d.day(c.stopped_on)), else_=as_of_n)
            - d.day(c.started_on)
        ).label("t"),
        case((met, 1), else_=0).label("e"),
        case((stopped, 1), else_=0).label("closed_other"),
        # mature: the limit is reached by as_of and the clock was not stopped before it
        case((and_(c.due_on <= as_of, or_(~stopped, c.stopped_on > c.due_on)), 1), else_=0).label(
            "mature"
        ),
        case((and_(met, c.met_on <= c.due_on), 1), else_=0).label("within"),
    ]
    if one_month:
        month_end = d.add_months(c.started_on, 1)
        columns += [
            case(
                (and_(month_end <= as_of, or_(~stopped, c.stopped_on > month_end)), 1), else_=0
            ).label("mature_1m"),
            case((and_(met, c.met_on <= month_end), 1), else_=0).label("within_1m"),
        ]
    cohort = (
        select(*columns)
        .join(Pathway, Pathway.id == c.pathway_id)
        .where(
            c.kind == kind,
            c.started_on >= filters.start,
            c.started_on <= min(filters.end, as_of),
            *_scope(filters),
        )
        .cte(f"{kind.value}_cohort")
    )
    ranked = select(
        cohort,
        func.row_number()
        .over(partition_by=(cohort.c.g, cohort.c.e), order_by=cohort.c.t)
        .label("rn"),
        func.count().over(partition_by=(cohort.c.g, cohort.c.e)).label("n"),
    ).cte(f"{kind.value}_ranked")
    r = ranked.c
    percentiles = []
    for name, numerator, denominator in PERCENTILES:
        position = numerator * (r.n - 1)
        lo, rem = position // denominator, position % denominator
        weighted = func.sum(
            case(
                (and_(r.e == 1, r.rn == lo + 1), r.t * (denominator - rem)),
                (and_(r.e == 1, r.rn == lo + 2), r.t * rem),
                else_=0,
            )
        )
        percentiles.append(
            case((func.sum(r.e) > 0, cast(weighted, Float) / denominator), else_=None).label(name)
        )
    sums = [
        func.count().label("clocks"),
        func.sum(r.e).label("met"),
        func.sum(r.closed_other).label("closed_other"),
        func.sum(r.mature).label("mature"),
        func.sum(case((r.mature == 1, r.within), else_=0)).label("within"),
        cast(func.avg(case((r.e == 1, r.t))), Float).label("mean"),
    ]
    if one_month:
        sums += [
            func.sum(r.mature_1m).label("mature_1m"),
            func.sum(case((r.mature_1m == 1, r.within_1m), else_=0)).label("within_1m"),
        ]
    grouped = select(r.g, *sums, *percentiles).group_by(r.g).subquery("grouped")
    query, sort = _labelled(select(grouped), grouped.c.g, filters.group_by)
    rows = db.session.execute(_ordered(query, grouped.c.g, sort)).mappings().all()
    result = []
    for row in rows:
        met_count = int(row["met"] or 0)
        closed = int(row["closed_other"] or 0)
        group = {
            **_key_and_label(filters.group_by, row["g"], row["label"]),
            "clocks": row["clocks"],
            "met": met_count,
            "waiting": row["clocks"] - met_count - closed,
            "closed_other": closed,
            "mature": int(row["mature"] or 0),
            "within_limit": int(row["within"] or 0),
            "share_within_limit": ratio(row["within"], row["mature"]),
            "delay": {
                "count": met_count,
                "mean": _rounded(row["mean"], 2),
                **{name: _rounded(row[name]) for name, _n, _d in PERCENTILES},
            },
        }
        if one_month:
            group["mature_1m"] = int(row["mature_1m"] or 0)
            group["within_1m"] = int(row["within_1m"] or 0)
            group["share_within_1m"] = ratio(row["within_1m"], row["mature_1m"])
        result.append(group)
    return result


def entry_delay(filters: Filters) -> list[dict[str, Any]]:
    """Délai d'entrée en parcours: orientation notified → first honoured appointment."""
    return _clock_delay(ClockKind.PATHWAY_ENTRY, filters, one_month=False)


def contract_delay(filters: Filters) -> list[dict[str, Any]]:
    """Délai de contractualisation: orientation notified → first contract signed, with the
    share signed within one calendar month (and within the policy limit)."""
    return _clock_delay(ClockKind.CONTRACT, filters, one_month=True)


# --- stocks at as_of ----------------------------------------------------------------------


def _active_on(as_of: dt.date) -> list[ColumnElement[bool]]:
    return [
        Pathway.opened_on <= as_of,
        or_(Pathway.closed_on.is_(None), Pathway.closed_on > as_of),
    ]


def _sdd_on(as_of: dt.date) -> ColumnElement[bool]:
    """SDD on ``as_of``: an SDD period covers it; people without any recorded period (manual
    data) count by their current flag."""
    period = SddPeriod
    covered = exists(
        select(period.id).where(
            period.person_id == Pathway.person_id,
            period.bound_by_duties.is_(True),
            period.started_on <= as_of,
            or_(period.ended_on.is_(None), period.ended_on > as_of),
        )
    )
    no_history = ~exists(select(period.id).where(period.person_id == Pathway.person_id))
    current = exists(
        select(Person.id).where(Person.id == Pathway.person_id, Person.bound_by_duties.is_(True))
    )
    return or_(covered, and_(no_history, current))


def contract_rate(filters: Filters) -> list[dict[str, Any]]:
    """Oriented SDD people on ``as_of`` (an active pathway, SDD that day) and those with a
    contract in force that day (signed, started, not ended, not cancelled)."""
    d = _Dates()
    as_of = filters.as_of
    in_force = exists(
        select(Contract.id).where(
            Contract.person_id == Pathway.person_id,
            Contract.signed_on <= as_of,
            Contract.starts_on <= as_of,
            Contract.ends_on >= as_of,
            or_(Contract.cancelled_on.is_(None), Contract.cancelled_on > as_of),
        )
    )
    key = _group_key(filters.group_by, d, Pathway.opened_on)
    inner = (
        select(key.label("g"), case((in_force, 1), else_=0).label("contract"))
        .where(*_active_on(as_of), _sdd_on(as_of), *_scope(filters))
        .subquery("oriented_sdd")
    )
    grouped = (
        select(
            inner.c.g,
            func.count().label("oriented_sdd"),
            func.sum(inner.c.contract).label("with_contract"),
        )
        .group_by(inner.c.g)
        .subquery("grouped")
    )
    query, sort = _labelled(select(grouped), grouped.c.g, filters.group_by)
    rows = db.session.execute(_ordered(query, grouped.c.g, sort)).mappings().all()
    return [
        {
            **_key_and_label(filters.group_by, row["g"], row["label"]),
            "oriented_sdd": row["oriented_sdd"],
            "with_contract": int(row["with_contract"] or 0),
            "contract_rate": ratio(row["with_contract"], row["oriented_sdd"]),
        }
        for row in rows
    ]


def without_referent(filters: Filters) -> list[dict[str, Any]]:
    """People with an active pathway on ``as_of`` and no référent that day; among them those
    whose référent gap clock was past its limit."""
    d = _Dates()
    as_of = filters.as_of
    instant = end_of_day_utc(as_of)
    ra = ReferentAssignment
    has_referent = exists(
        select(ra.id).where(
            ra.person_id == Pathway.person_id,
            ra.started_at < instant,
            or_(ra.ended_at.is_(None), ra.ended_at >= instant),
        )
    )
    gap = PathwayClock
    beyond = exists(
        select(gap.id).where(
            gap.person_id == Pathway.person_id,
            gap.kind == ClockKind.REFERENT_GAP,
            gap.started_on <= as_of,
            gap.due_on < as_of,
            or_(gap.met_on.is_(None), gap.met_on > as_of),
            or_(gap.stopped_on.is_(None), gap.stopped_on > as_of),
        )
    )
    key = _group_key(filters.group_by, d, Pathway.opened_on)
    inner = (
        select(
            key.label("g"),
            case((has_referent, 0), else_=1).label("without"),
            case((and_(~has_referent, beyond), 1), else_=0).label("beyond"),
        )
        .where(*_active_on(as_of), *_scope(filters))
        .subquery("active_pathways")
    )
    grouped = (
        select(
            inner.c.g,
            func.count().label("active_pathways"),
            func.sum(inner.c.without).label("without_referent"),
            func.sum(inner.c.beyond).label("beyond_limit"),
        )
        .group_by(inner.c.g)
        .subquery("grouped")
    )
    query, sort = _labelled(select(grouped), grouped.c.g, filters.group_by)
    rows = db.session.execute(_ordered(query, grouped.c.g, sort)).mappings().all()
    return [
        {
            **_key_and_label(filters.group_by, row["g"], row["label"]),
            "active_pathways": row["active_pathways"],
            "without_referent": int(row["without_referent"] or 0),
            "share_without_referent": ratio(row["without_referent"], row["active_pathways"]),
            "beyond_limit": int(row["beyond_limit"] or 0),
        }
        for row in rows
    ]


# --- caseloads ------------------------------------------------------------------------------


def caseloads(filters: Filters) -> dict[str, list[dict[str, Any]]]:
    """Caseload against capacity on ``as_of``, per référent (agents with the référent role
    active that day) and per structure (sums over its référents). Scope: structures serving
    one of the caller's territories. ``group_by`` and ``public`` do not apply."""
    as_of = filters.as_of
    instant = end_of_day_utc(as_of)
    ra = ReferentAssignment
    load = (
        select(func.count())
        .select_from(ra)
        .where(
            ra.agent_id == Agent.id,
            ra.started_at < instant,
            or_(ra.ended_at.is_(None), ra.ended_at >= instant),
        )
        .scalar_subquery()
    )
    conditions: list[ColumnElement[bool]] = [
        Agent.active_from <= as_of,
        or_(Agent.active_until.is_(None), Agent.active_until >= as_of),
        exists(
            select(AgentRole.agent_id).where(
                AgentRole.agent_id == Agent.id, AgentRole.role == Role.REFERENT
            )
        ),
    ]
    if filters.territories is not None:
        conditions.append(
            Agent.structure_id.in_(
                select(structure_territories.c.structure_id).where(
                    structure_territories.c.territory_id.in_(sorted(filters.territories))
                )
            )
        )
    referents = (
        select(
            Agent.id.label("agent_id"),
            Agent.first_name,
            Agent.last_name,
            Agent.structure_id,
            Agent.caseload_capacity.label("capacity"),
            load.label("load"),
        )
        .where(*conditions)
        .subquery("referent_loads")
    )
    per_referent = (
        db.session.execute(
            select(referents, Structure.name.label("structure_name"))
            .join(Structure, Structure.id == referents.c.structure_id)
            .order_by(Structure.name, referents.c.last_name, referents.c.agent_id)
        )
        .mappings()
        .all()
    )
    # Per structure: the same subquery aggregated (a second statement for a second table).
    per_structure = (
        db.session.execute(
            select(
                referents.c.structure_id,
                Structure.name,
                Structure.capacity.label("structure_capacity"),
                func.count().label("referents"),
                func.sum(referents.c.capacity).label("capacity"),
                func.sum(referents.c.load).label("load"),
                func.sum(case((referents.c.load > referents.c.capacity, 1), else_=0)).label(
                    "over_capacity"
                ),
            )
            .join(Structure, Structure.id == referents.c.structure_id)
            .group_by(referents.c.structure_id, Structure.name, Structure.capacity)
            .order_by(Structure.name)
        )
        .mappings()
        .all()
    )
    return {
        "referents": [
            {
                "agent_id": row["agent_id"],
                "name": f"{row['first_name']} {row['last_name']}",
                "structure_id": row["structure_id"],
                "structure_name": row["structure_name"],
                "capacity": row["capacity"],
                "load": row["load"],
                "load_ratio": ratio(row["load"], row["capacity"]),
                "over_capacity": row["load"] > row["capacity"],
            }
            for row in per_referent
        ],
        "structures": [
            {
                "structure_id": row["structure_id"],
                "name": row["name"],
                "referents": row["referents"],
                "capacity": int(row["capacity"] or 0),
                "structure_capacity": row["structure_capacity"],
                "load": int(row["load"] or 0),
                "load_ratio": ratio(row["load"], row["capacity"]),
                "referents_over_capacity": int(row["over_capacity"] or 0),
            }
            for row in per_structure
        ],
    }


# --- steps by offer and outcome -------------------------------------------------------------


def steps_by_offer(filters: Filters) -> list[dict[str, Any]]:
    """Steps proposed in the cohort period, by offer (free steps by theme), with their status
    on ``as_of`` (last transition dated on or before it) and the outcome of those finished
    by then. ``group_by`` does not apply."""
    as_of = filters.as_of
    tr = StepTransition
    status_at = (
        select(tr.to_status)
        .where(tr.step_id == Step.id, tr.on <= as_of)
        .order_by(tr.on.desc(), tr.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    inner = (
        select(
            Step.offer_id,
            Step.theme,
            status_at.label("status_at"),
            Step.outcome,
        )
        .join(Pathway, Pathway.id == Step.pathway_id)
        .where(
            Step.proposed_on >= filters.start,
            Step.proposed_on <= min(filters.end, as_of),
            *_scope(filters),
        )
        .subquery("cohort_steps")
    )
    s = inner.c
    status_sums = [
        func.sum(case((s.status_at == status, 1), else_=0)).label(f"status_{status.value}")
        for status in StepStatus
    ]
    outcome_sums = [
        func.sum(
            case((and_(s.status_at == StepStatus.TERMINEE, s.outcome == outcome), 1), else_=0)
        ).label(f"outcome_{outcome.value}")
        for outcome in StepOutcome
    ]
    grouped = (
        select(s.offer_id, s.theme, func.count().label("steps"), *status_sums, *outcome_sums)
        .group_by(s.offer_id, s.theme)
        .subquery("by_offer")
    )
    rows = (
        db.session.execute(
            select(grouped, Offer.code, Offer.title)
            .outerjoin(Offer, Offer.id == grouped.c.offer_id)
            .order_by(
                case((grouped.c.offer_id.is_(None), 1), else_=0), Offer.title, grouped.c.theme
            )
        )
        .mappings()
        .all()
    )
    result = []
    for row in rows:
        theme = OfferTheme(row["theme"])
        result.append(
            {
                "offer_id": row["offer_id"],
                "offer_code": row["code"],
                "label": row["title"] or f"Étape hors catalogue — {OFFER_THEME_LABELS[theme]}",
                "theme": theme.value,
                "steps": row["steps"],
                "by_status": {
                    status.value: int(row[f"status_{status.value}"] or 0) for status in StepStatus
                },
                "by_outcome": {
                    outcome.value: int(row[f"outcome_{outcome.value}"] or 0)
                    for outcome in StepOutcome
                },
            }
        )
    return result


def compute(filters: Filters, which: list[str]) -> dict[str, Any]:
    functions: dict[str, Any] = {
        "entry": entry_delay,
        "contract_delay": contract_delay,
        "contract_rate": contract_rate,
        "without_referent": without_referent,
        "caseload": caseloads,
        "steps": steps_by_offer,
    }
    return {name: functions[name](filters) for name in which}
