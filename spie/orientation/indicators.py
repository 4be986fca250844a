"""Orientation indicators of the manager's dashboard (DOMAIN §4), computed by the database.

Every definition (population, start, end, censoring, maturity, percentile rule, grouping) is
written in ``docs/indicators.md``; this module implements exactly that text. Each indicator is
**one SQL statement** whatever the number of cases or groups: rows are never loaded into
Python to be counted, only the aggregated groups come back (and, for the Kaplan-Meier curve,
one row per distinct duration).

The same SQL runs on PostgreSQL and SQLite (window functions, ``ln``/``exp``); only the date
arithmetic differs by dialect (:class:`_Dates`). Dates are turned into day numbers (days since
1970-01-01) once, so every duration is integer arithmetic.

Scope: an admin sees every case; a manager or chargé d'orientation sees the cases whose
territory (frozen on the case when the clock started) is one of theirs. Asking for a
territory outside one's scope is refused (403), see :func:`scoped_territories`.
"""

from __future__ import annotations

import datetime as dt
import enum
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import (
    CTE,
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
    union_all,
)
from sqlalchemy.orm import aliased

from spie.agents.models import Agent
from spie.auth.scope import territory_ids_of
from spie.clocks.today import PARIS
from spie.db import db
from spie.errors import Forbidden, SpieError
from spie.orientation.models import (
    Attendance,
    CloseReason,
    Convocation,
    OrientationCase,
    OrientationDecision,
    Parcours,
    RioSession,
    RioStatus,
)
from spie.persons.models import PUBLIC_LABELS, Person, Public
from spie.structures.models import Structure
from spie.territories.models import Territory

# The thresholds are part of the indicators' definitions (DOMAIN §4: "within 6 weeks and
# within 2 months"), fixed so that cohorts stay comparable across years; the legal limit of
# a given clock (which changed in 2025) is data: ``legal_deadline`` from its DelayPolicy.
SIX_WEEKS_DAYS = 42
TWO_MONTHS = 2
# Kaplan-Meier runs on one time axis (days): "2 months" is read as 61 days there.
KM_TWO_MONTHS_DAYS = 61
# exp(sum(ln(...))) is exact to ~1e-15: S(t) = 0.5 must count as "reached the median".
KM_TOLERANCE = 1e-9
EPOCH = dt.date(1970, 1, 1)
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-29", 0, 29),
    ("30-59", 30, 59),
    ("60-89", 60, 89),
    ("90+", 90, None),
)
# (numerator, denominator) of the percentiles, so that interpolation is exact integer maths.
PERCENTILES: tuple[tuple[str, int, int], ...] = (
    ("median", 1, 2),
    ("p75", 3, 4),
    ("p90", 9, 10),
)
KM_QUANTILES: tuple[tuple[str, float], ...] = (("median", 0.5), ("p75", 0.25), ("p90", 0.1))

MONTH_NAMES = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
PARCOURS_LABELS = {
    Parcours.EMPLOI: "Emploi",
    Parcours.SOCIO_PROFESSIONNEL: "Socio-professionnel",
    Parcours.SOCIAL: "Social",
}
NO_GROUP_LABEL = "Ensemble"


class GroupBy(enum.StrEnum):
    MONTH = "month"
    CTM = "ctm"
    STRUCTURE = "structure"
    PUBLIC = "public"
    PARCOURS = "parcours"


# The stock has no decision yet: it cannot be split by structure or parcours.
STOCK_GROUPS = (GroupBy.MONTH, GroupBy.CTM, GroupBy.PUBLIC)


class IndicatorsUnavailableError(SpieError):
    status = 501
    code = "indicators_unavailable"
    title = "Indicateurs indisponibles"


@dataclass(frozen=True)
class Filters:
    """What the caller asked for. ``start``/``end`` bound the cohort (clock start dates) for
    the delay indicators and the period of the events for the RIO figures; the stock ignores
    them. ``territories`` is the resolved scope (``None``: every case, admin only)."""

    as_of: dt.date
    start: dt.date
    end: dt.date
    territories: frozenset[int] | None
    public: Public | None = None
    group_by: GroupBy | None = None


def default_period(as_of: dt.date) -> tuple[dt.date, dt.date]:
    """Twelve calendar months ending with the month of ``as_of``: first day of the month
    eleven months earlier → ``as_of``."""
    return as_of.replace(day=1) - relativedelta(months=11), as_of


def scoped_territories(agent: Agent, territory_id: int | None) -> frozenset[int] | None:
    """The territories the figures may cover. Territories are reference data every agent
    can list, so asking for one outside one's scope is a 403 (not a 404)."""
    allowed = territory_ids_of(agent)
    if territory_id is not None:
        if allowed is not None and territory_id not in allowed:
            raise Forbidden(
                "Ce territoire n'est pas dans votre périmètre : ses indicateurs ne vous sont "
                "pas accessibles.",
                code="territory_out_of_scope",
            )
        return frozenset({territory_id})
    return None if allowed is None else frozenset(allowed)


def day_number(day: dt.date) -> int:
    return (day - EPOCH).days


def month_label(key: str) -> str:
    year, month = key.split("-")
    return f"{MONTH_NAMES[int(month) - 1]} {year}"


# --- dialect-specific date arithmetic --------------------------------------------------


def _const(text: str) -> ColumnElement[str]:
    """A constant written into the SQL text rather than bound: the same expression may then
    appear in SELECT and GROUP BY (PostgreSQL compares them textually, parameters included).
    Only ever called with constants of this module."""
    if "'" in text:
        raise ValueError("quote in an SQL constant")
    return literal_column(f"'{text}'", String)


class _Dates:
    """Day numbers, calendar months and month keys on PostgreSQL and SQLite."""

    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"

    def day(self, value: Any) -> ColumnElement[int]:
        """Days since 1970-01-01 (NULL stays NULL)."""
        if self.postgres:
            return type_coerce(value - literal_column("DATE '1970-01-01'", Date), Integer)
        return cast(func.julianday(value) - 2440587.5, Integer)

    def add_months(self, value: Any, months: int) -> ColumnElement[dt.date]:
        """``value`` + N calendar months, clamped to the end of a shorter month
        (2024-12-31 + 2 months = 2025-02-28), like ``dateutil.relativedelta``."""
        if self.postgres:
            return cast(value + literal_column(f"INTERVAL '{int(months)} months'"), Date)
        # SQLite's '+N months' overflows into the next month (2025-03-03): clamp it to the
        # last day of the target month.
        return type_coerce(
            func.min(
                func.date(value, _const(f"+{int(months)} months")),
                func.date(
                    value,
                    _const("start of month"),
                    _const(f"+{int(months) + 1} months"),
                    _const("-1 day"),
                ),
            ),
            Date,
        )

    def month(self, value: Any) -> ColumnElement[str]:
        """``YYYY-MM`` of a date."""
        if self.postgres:
            return func.to_char(value, _const("YYYY-MM"))
        return func.strftime(_const("%Y-%m"), value)

    def month_of_instant(self, value: Any) -> ColumnElement[str]:
        """``YYYY-MM`` of a UTC timestamp, in Europe/Paris on PostgreSQL (UTC on SQLite)."""
        if self.postgres:
            return func.to_char(func.timezone(_const("Europe/Paris"), value), _const("YYYY-MM"))
        return func.strftime(_const("%Y-%m"), value)

    def greatest(self, value: Any, floor: int) -> ColumnElement[int]:
        """``max(value, floor)`` as a scalar (not the aggregate) for integers."""
        bound = literal_column(str(int(floor)), Integer)
        found = func.greatest(value, bound) if self.postgres else func.max(value, bound)
        return type_coerce(found, Integer)


def _dates() -> _Dates:
    bind = db.session.get_bind()
    if bind.dialect.name == "sqlite":
        _require_sqlite_math()
    return _Dates(bind.dialect.name)


@cache
def _sqlite_has_math() -> bool:
    try:
        sqlite3.connect(":memory:").execute("SELECT ln(2.0), exp(1.0)").close()
    except sqlite3.OperationalError:
        return False
    return True


def _require_sqlite_math() -> None:
    if not _sqlite_has_math():
        raise IndicatorsUnavailableError(
            "Les indicateurs demandent PostgreSQL, ou SQLite 3.35 ou plus récent compilé avec "
            "les fonctions mathématiques (ln, exp)."
        )


# --- the population of cases --------------------------------------------------------------


def _first_decision_condition(decision: Any, case_id: Any) -> ColumnElement[bool]:
    """``decision`` is the first decision of its case: no decision of the case ranks lower."""
    lower = aliased(OrientationDecision, name="lower_decision")
    return ~exists(select(lower.id).where(lower.case_id == case_id, lower.rank < decision.rank))


def _case_scope(case: Any, filters: Filters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        or_(case.close_reason.is_(None), case.close_reason != CloseReason.DUPLICATE)
    ]
    if filters.territories is not None:
        conditions.append(case.territory_id.in_(sorted(filters.territories)))
    if filters.public is not None:
        conditions.append(case.public == filters.public)
    return conditions


def _first_decision_value(column: str, case_id: Any, as_of: dt.date) -> ColumnElement[Any]:
    """``column`` of the case's first decision decided on or before ``as_of`` (lowest rank);
    a correlated lookup on ``ix_orientation_decisions_case_id`` per case."""
    first = aliased(OrientationDecision, name="first_decision")
    return (
        select(getattr(first, column))
        .where(first.case_id == case_id, first.decided_on <= as_of)
        .order_by(first.rank)
        .limit(1)
        .scalar_subquery()
    )


def _case_group_key(
    group_by: GroupBy | None, d: _Dates, case: Any, as_of: dt.date
) -> ColumnElement[Any]:
    if group_by is GroupBy.MONTH:
        return d.month(case.clock_started_on)
    if group_by is GroupBy.CTM:
        return case.territory_id
    if group_by is GroupBy.PUBLIC:
        return case.public
    if group_by is GroupBy.STRUCTURE:
        return _first_decision_value("structure_id", case.id, as_of)
    if group_by is GroupBy.PARCOURS:
        return _first_decision_value("parcours", case.id, as_of)
    return cast(null(), String)


def _cohort_cases(filters: Filters, d: _Dates) -> CTE:
    """One row per case of the cohort, as of ``as_of``: its group ``g``, its duration ``t``
    in running days and what ended it (``e`` = 1 oriented, ``closed_other`` = 1 left for
    another reason, else still waiting), plus the maturity flags of the two thresholds."""
    c = OrientationCase
    as_of = filters.as_of
    as_of_n = literal(day_number(as_of), Integer)
    oriented = and_(c.notified_on.is_not(None), c.notified_on <= as_of)
    closed_other = and_(~oriented, c.closed_on.is_not(None), c.closed_on <= as_of)
    raw = (
        select(
            _case_group_key(filters.group_by, d, c, as_of).label("g"),
            d.day(c.clock_started_on).label("start_n"),
            d.day(d.add_months(c.clock_started_on, TWO_MONTHS)).label("two_months_n"),
            case(
                (oriented, d.day(c.notified_on)),
                (closed_other, d.day(c.closed_on)),
                else_=as_of_n,
            ).label("stop_n"),
            case((oriented, 1), else_=0).label("e"),
            case((closed_other, 1), else_=0).label("closed_other"),
            case((c.paused_since <= as_of, d.day(c.paused_since)), else_=None).label(
                "paused_since_n"
            ),
            c.paused_days,
        )
        .where(
            c.clock_started_on >= filters.start,
            c.clock_started_on <= min(filters.end, as_of),
            *_case_scope(c, filters),
        )
        .cte("raw_cases")
    )
    # An open pause froze the clock on the day it started (waiting or closed cases only).
    frozen = case(
        (
            and_(raw.c.e == 0, raw.c.paused_since_n < raw.c.stop_n),
            raw.c.paused_since_n,
        ),
        else_=raw.c.stop_n,
    )
    t = d.greatest(frozen - raw.c.start_n - raw.c.paused_days, 0)
    return select(
        raw.c.g,
        t.label("t"),
        raw.c.e,
        raw.c.closed_other,
        (raw.c.two_months_n - raw.c.start_n).label("two_months_days"),
        case((raw.c.start_n + SIX_WEEKS_DAYS <= as_of_n, 1), else_=0).label("mature_6w"),
        case((raw.c.two_months_n <= as_of_n, 1), else_=0).label("mature_2m"),
    ).cte("cases")


# --- Kaplan-Meier ----------------------------------------------------------------------


def _km_curve(cases: CTE) -> CTE:
    """S(t) = Π over event times t_i ≤ t of (1 − d_i / n_i), one row per distinct duration of
    each group: n = cases with a duration ≥ t (at risk), d = orientations at t, c = censored at
    t. The product is exp(Σ ln(1 − d/n)); a factor 0 (d = n) makes S 0 from there on."""
    times = (
        select(
            cases.c.g,
            cases.c.t,
            func.sum(cases.c.e).label("d"),
            func.count().label("m"),
        )
        .group_by(cases.c.g, cases.c.t)
        .cte("km_times")
    )
    at_risk = select(
        times.c.g,
        times.c.t,
        times.c.d,
        (times.c.m - times.c.d).label("c"),
        cast(
            func.sum(times.c.m).over(
                partition_by=times.c.g, order_by=times.c.t.desc(), rows=(None, 0)
            ),
            Integer,
        ).label("n"),
    ).cte("km_risk")

    def running(total: Any) -> ColumnElement[Any]:
        return func.sum(total).over(partition_by=at_risk.c.g, order_by=at_risk.c.t, rows=(None, 0))

    zeros = running(case((at_risk.c.d == at_risk.c.n, 1), else_=0))
    log_sum = running(
        case(
            (
                and_(at_risk.c.d > 0, at_risk.c.d < at_risk.c.n),
                func.ln(1.0 - cast(at_risk.c.d, Float) / at_risk.c.n),
            ),
            else_=0.0,
        )
    )
    return select(
        at_risk.c.g,
        at_risk.c.t,
        at_risk.c.n,
        at_risk.c.d,
        at_risk.c.c,
        case((zeros > 0, 0.0), else_=func.exp(log_sum)).label("s"),
    ).cte("km_curve")


def _km_summaries(curve: CTE, *, window: bool) -> list[ColumnElement[Any]]:
    """KM quantiles (smallest t with S(t) ≤ 1 − p) and shares oriented within 42 and 61
    days (1 − S(42), 1 − S(61)): as aggregates per group, or as windows over each group."""

    def per_group(expression: Any) -> ColumnElement[Any]:
        aggregated = func.min(expression)
        return aggregated.over(partition_by=curve.c.g) if window else aggregated

    columns: list[ColumnElement[Any]] = [
        per_group(case((curve.c.s <= level + KM_TOLERANCE, curve.c.t))).label(f"km_{name}")
        for name, level in KM_QUANTILES
    ]
    for name, days in (("6w", SIX_WEEKS_DAYS), ("2m", KM_TWO_MONTHS_DAYS)):
        survival = per_group(case((curve.c.t <= days, curve.c.s)))
        columns.append((1.0 - func.coalesce(survival, 1.0)).label(f"km_share_{name}"))
    return columns


# --- labels -------------------------------------------------------------------------------


def _label_join(
    query: Select[Any], key: ColumnElement[Any], group_by: GroupBy | None, *, grouped: bool
) -> tuple[Select[Any], ColumnElement[Any]]:
    """Add the territory or structure name of the group (a LEFT JOIN in the same statement;
    also a GROUP BY column when ``query`` aggregates). Returns the query and its sort key."""
    name: Any = None
    if group_by is GroupBy.CTM:
        territory = aliased(Territory, name="group_territory")
        query, name = query.outerjoin(territory, territory.id == key), territory.name
    elif group_by is GroupBy.STRUCTURE:
        structure = aliased(Structure, name="group_structure")
        query, name = query.outerjoin(structure, structure.id == key), structure.name
    if name is None:
        return query.add_columns(cast(null(), String).label("label")), key
    query = query.add_columns(name.label("label"))
    return (query.group_by(name) if grouped else query), name


def _group_order(key: ColumnElement[Any], sort: ColumnElement[Any]) -> list[Any]:
    """Groups sorted by label (CTM, structure) or key, the 'none' group last."""
    return [case((key.is_(None), 1), else_=0), sort, key]


def _key_and_label(group_by: GroupBy | None, key: Any, label: str | None) -> dict[str, Any]:
    if group_by is None:
        return {"key": None, "label": NO_GROUP_LABEL}
    if key is None:
        none_labels = {
            GroupBy.STRUCTURE: "Non orienté",
            GroupBy.PARCOURS: "Non orienté",
            GroupBy.CTM: "Sans territoire",
        }
        return {"key": None, "label": none_labels.get(group_by, "Non renseigné")}
    text = str(key.value if isinstance(key, enum.Enum) else key)
    if group_by is GroupBy.MONTH:
        label = month_label(text)
    elif group_by is GroupBy.PUBLIC:
        label = PUBLIC_LABELS[Public(text)]
    elif group_by is GroupBy.PARCOURS:
        label = PARCOURS_LABELS[Parcours(text)]
    return {"key": text, "label": label or text}


def ratio(numerator: int | None, denominator: int | None) -> float | None:
    if not denominator:
        return None
    return round((numerator or 0) / denominator, 6)


def _rounded(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(float(value), digits)


# --- délai d'orientation ------------------------------------------------------------------


def delay_indicators(filters: Filters) -> list[dict[str, Any]]:
    """Counts, mature-cohort shares and percentiles, and the Kaplan-Meier summary, per group
    (one SQL statement)."""
    d = _dates()
    cases = _cohort_cases(filters, d)
    # Percentiles over the oriented cases of the 2-month mature cohort: ranks within the group.
    member = and_(cases.c.e == 1, cases.c.mature_2m == 1)
    member_flag = case((member, 1), else_=0)
    ranked = select(
        cases,
        member_flag.label("member"),
        func.row_number()
        .over(partition_by=(cases.c.g, member_flag), order_by=cases.c.t)
        .label("rn"),
        func.count().over(partition_by=(cases.c.g, member_flag)).label("n"),
    ).cte("ranked")
    r = ranked.c
    percentile_columns: list[ColumnElement[Any]] = []
    for name, numerator, denominator in PERCENTILES:
        # percentile_cont: position h = p (n − 1) (0-based) = lo + rem / denominator;
        # value = x[lo] + (rem / denominator) (x[lo + 1] − x[lo]), rn is 1-based.
        position = numerator * (r.n - 1)
        lo, rem = position // denominator, position % denominator
        weighted = func.sum(
            case(
                (and_(r.member == 1, r.rn == lo + 1), r.t * (denominator - rem)),
                (and_(r.member == 1, r.rn == lo + 2), r.t * rem),
                else_=0,
            )
        )
        percentile_columns.append(
            case(
                (func.sum(r.member) > 0, cast(weighted, Float) / denominator),
                else_=None,
            ).label(name)
        )
    waiting = and_(r.e == 0, r.closed_other == 0)
    exited_before_6w = and_(r.closed_other == 1, r.t < SIX_WEEKS_DAYS)
    exited_before_2m = and_(r.closed_other == 1, r.t < r.two_months_days)
    counts = (
        select(
            r.g,
            func.count().label("cases"),
            func.sum(r.e).label("oriented"),
            func.sum(r.closed_other).label("closed_other"),
            func.sum(case((waiting, 1), else_=0)).label("waiting"),
            func.sum(case((and_(r.mature_6w == 1, ~exited_before_6w), 1), else_=0)).label(
                "mature_6w"
            ),
            func.sum(
                case((and_(r.mature_6w == 1, r.e == 1, r.t <= SIX_WEEKS_DAYS), 1), else_=0)
            ).label("within_6w"),
            func.sum(case((and_(r.mature_2m == 1, ~exited_before_2m), 1), else_=0)).label(
                "mature_2m"
            ),
            func.sum(
                case((and_(r.mature_2m == 1, r.e == 1, r.t <= r.two_months_days), 1), else_=0)
            ).label("within_2m"),
            func.sum(r.member).label("delay_count"),
            cast(func.avg(case((r.member == 1, r.t))), Float).label("mean"),
            *percentile_columns,
        )
        .group_by(r.g)
        .cte("delay_counts")
    )
    curve = _km_curve(cases)
    km = select(curve.c.g, *_km_summaries(curve, window=False)).group_by(curve.c.g).cte("km")
    query = select(counts, *(column for column in km.c if column.name != "g")).outerjoin(
        km, counts.c.g.is_not_distinct_from(km.c.g)
    )
    query, sort = _label_join(query, counts.c.g, filters.group_by, grouped=False)
    rows = db.session.execute(query.order_by(*_group_order(counts.c.g, sort))).mappings()
    return [_delay_group(filters.group_by, row) for row in rows]


def _delay_group(group_by: GroupBy | None, row: Any) -> dict[str, Any]:
    return {
        **_key_and_label(group_by, row["g"], row["label"]),
        "cases": row["cases"],
        "oriented": row["oriented"],
        "waiting": row["waiting"],
        "closed_other": row["closed_other"],
        "mature_6w": row["mature_6w"],
        "oriented_within_6w": row["within_6w"],
        "share_6w": ratio(row["within_6w"], row["mature_6w"]),
        "mature_2m": row["mature_2m"],
        "oriented_within_2m": row["within_2m"],
        "share_2m": ratio(row["within_2m"], row["mature_2m"]),
        "delay": {
            "count": row["delay_count"],
            "mean": _rounded(row["mean"], 2),
            **{name: _rounded(row[name]) for name, _n, _d in PERCENTILES},
        },
        "km": {
            **{name: row[f"km_{name}"] for name, _level in KM_QUANTILES},
            "share_6w": _rounded(row["km_share_6w"]),
            "share_2m": _rounded(row["km_share_2m"]),
        },
    }


def km_curves(filters: Filters) -> list[dict[str, Any]]:
    """The Kaplan-Meier curve of each group, one point per distinct duration, with the
    group's summary (one SQL statement)."""
    d = _dates()
    curve = _km_curve(_cohort_cases(filters, d))
    query = select(curve, *_km_summaries(curve, window=True))
    query, sort = _label_join(query, curve.c.g, filters.group_by, grouped=False)
    rows = db.session.execute(query.order_by(*_group_order(curve.c.g, sort), curve.c.t)).mappings()
    groups: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for row in rows:
        if current is None or current["_g"] != row["g"]:
            current = {
                "_g": row["g"],
                **_key_and_label(filters.group_by, row["g"], row["label"]),
                **{name: row[f"km_{name}"] for name, _level in KM_QUANTILES},
                "share_6w": _rounded(row["km_share_6w"]),
                "share_2m": _rounded(row["km_share_2m"]),
                "points": [],
            }
            groups.append(current)
        current["points"].append(
            {
                "t": row["t"],
                "at_risk": row["n"],
                "events": row["d"],
                "censored": row["c"],
                "survival": _rounded(row["s"]),
            }
        )
    for group in groups:
        del group["_g"]
    return groups


# --- stock ----------------------------------------------------------------------------------


def stock_indicators(filters: Filters) -> list[dict[str, Any]]:
    """SDD persons waiting for an orientation on ``as_of``, by running age of their clock
    (one SQL statement). The cohort bounds of ``filters`` are ignored."""
    d = _dates()
    c = OrientationCase
    as_of = filters.as_of
    as_of_n = literal(day_number(as_of), Integer)
    if filters.group_by not in (None, *STOCK_GROUPS):
        raise ValueError(f"stock cannot be grouped by {filters.group_by}")
    paused = and_(c.paused_since.is_not(None), c.paused_since <= as_of)
    stop = case((paused, d.day(c.paused_since)), else_=as_of_n)
    waiting = (
        select(
            _case_group_key(filters.group_by, d, c, as_of).label("g"),
            d.greatest(stop - d.day(c.clock_started_on) - c.paused_days, 0).label("t"),
            case((c.legal_deadline < as_of, 1), else_=0).label("overdue"),
            case((c.target_date < as_of, 1), else_=0).label("past_target"),
            case((paused, 1), else_=0).label("paused"),
        )
        .join(Person, Person.id == c.person_id)
        .where(
            Person.bound_by_duties.is_(True),
            c.clock_started_on <= as_of,
            or_(c.closed_on.is_(None), c.closed_on > as_of),
            or_(c.notified_on.is_(None), c.notified_on > as_of),
            *_case_scope(c, filters),
        )
        .cte("stock_cases")
    )
    w = waiting.c
    buckets = []
    for name, low, high in AGE_BUCKETS:
        condition = w.t >= low if high is None else and_(w.t >= low, w.t <= high)
        buckets.append(func.sum(case((condition, 1), else_=0)).label(f"age_{name}"))
    query = select(
        w.g,
        func.count().label("total"),
        *buckets,
        func.sum(w.overdue).label("overdue"),
        func.sum(w.past_target).label("past_target"),
        func.sum(w.paused).label("paused"),
    ).group_by(w.g)
    labelled, sort = _label_join(query, w.g, filters.group_by, grouped=True)
    rows = db.session.execute(labelled.order_by(*_group_order(w.g, sort))).mappings()
    return [
        {
            **_key_and_label(filters.group_by, row["g"], row["label"]),
            "total": row["total"],
            "by_age": {name: row[f"age_{name}"] for name, _low, _high in AGE_BUCKETS},
            "overdue": row["overdue"],
            "past_target": row["past_target"],
            "paused": row["paused"],
        }
        for row in rows
    ]


# --- RIO --------------------------------------------------------------------------------


RIO_SUMS = (
    "convocations",
    "convened",
    "present",
    "absent",
    "excused",
    "not_recorded",
    "orientations",
    "via_rio",
    "direct",
    "reorientations",
    "abandonments",
)


def _paris_midnight_utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=PARIS).astimezone(dt.UTC)


def _pick_key(group_by: GroupBy | None, keys: dict[GroupBy, Any], null_type: Any) -> Any:
    """The group key of one RIO branch; NULL (typed, for the UNION) where the dimension does
    not apply to that branch."""
    if group_by is not None and group_by in keys:
        return keys[group_by]
    return cast(null(), null_type)


def _rio_branch(key: ColumnElement[Any], values: dict[str, ColumnElement[Any]]) -> Select[Any]:
    zero: ColumnElement[Any] = literal_column("0")
    return select(key.label("g"), *(values.get(name, zero).label(name) for name in RIO_SUMS))


def rio_indicators(filters: Filters) -> list[dict[str, Any]]:
    """RIO activity and orientation modes over the period ``[start, end]`` (clamped to
    ``as_of``), per group (one SQL statement: three pre-aggregated branches summed)."""
    d = _dates()
    end = min(filters.end, filters.as_of)
    group_by = filters.group_by
    c = OrientationCase
    one: ColumnElement[Any] = literal_column("1")

    def flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.sum(case((condition, 1), else_=0))

    # 1. Convocations to the sessions held in the period (not cancelled, nor the session).
    s, cv = RioSession, Convocation
    session_key = _pick_key(
        group_by,
        {
            GroupBy.MONTH: d.month_of_instant(s.starts_at),
            GroupBy.CTM: s.territory_id,
            GroupBy.PUBLIC: c.public,
            GroupBy.STRUCTURE: s.animator_structure_id,
        },
        String,
    )
    session_conditions = [
        s.status != RioStatus.CANCELLED,
        cv.cancelled_at.is_(None),
        s.starts_at >= _paris_midnight_utc(filters.start),
        s.starts_at < _paris_midnight_utc(end + dt.timedelta(days=1)),
        or_(c.close_reason.is_(None), c.close_reason != CloseReason.DUPLICATE),
    ]
    if filters.territories is not None:
        session_conditions.append(s.territory_id.in_(sorted(filters.territories)))
    if filters.public is not None:
        session_conditions.append(c.public == filters.public)
    sessions = (
        _rio_branch(
            session_key,
            {
                "convocations": func.count(),
                "convened": func.count(cv.person_id.distinct()),
                "present": flag(cv.attendance == Attendance.PRESENT),
                "absent": flag(cv.attendance == Attendance.ABSENT),
                "excused": flag(cv.attendance == Attendance.EXCUSE),
                "not_recorded": flag(cv.attendance.is_(None)),
            },
        )
        .select_from(cv)
        .join(s, s.id == cv.session_id)
        .join(c, c.id == cv.case_id)
        .where(*session_conditions)
        .group_by(session_key)
    )

    # 2. Decisions taken in the period: the first of a case is an orientation, any later
    # one a reorientation. "First" is evaluated once per decision (inner GROUP BY), then
    # the counts are summed per group.
    decision = aliased(OrientationDecision, name="decision")
    first = case((_first_decision_condition(decision, decision.case_id), 1), else_=0)
    via_rio = case((decision.via_rio.is_(True), 1), else_=0)
    direct = case((decision.direct.is_(True), 1), else_=0)
    decision_key = _pick_key(
        group_by,
        {
            GroupBy.MONTH: d.month(decision.decided_on),
            GroupBy.CTM: c.territory_id,
            GroupBy.PUBLIC: c.public,
            GroupBy.STRUCTURE: decision.structure_id,
            GroupBy.PARCOURS: decision.parcours,
        },
        String,
    )
    kinds = (
        select(
            decision_key.label("g"),
            first.label("first"),
            via_rio.label("via_rio"),
            direct.label("direct"),
            func.count().label("n"),
        )
        .select_from(decision)
        .join(c, c.id == decision.case_id)
        .where(
            decision.decided_on >= filters.start,
            decision.decided_on <= end,
            *_case_scope(c, filters),
        )
        .group_by(decision_key, first, via_rio, direct)
        .subquery("decision_kinds")
    )
    k = kinds.c

    def count_of(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.sum(case((condition, k.n), else_=0))

    decisions = _rio_branch(
        k.g,
        {
            "orientations": count_of(k.first == 1),
            "via_rio": count_of(and_(k.first == 1, k.via_rio == 1)),
            "direct": count_of(and_(k.first == 1, k.direct == 1)),
            "reorientations": count_of(k.first == 0),
        },
    ).group_by(k.g)

    # 3. Abandonments: non-BRSA cases closed as abandoned in the period.
    abandon_key = _pick_key(
        group_by,
        {
            GroupBy.MONTH: d.month(c.closed_on),
            GroupBy.CTM: c.territory_id,
            GroupBy.PUBLIC: c.public,
        },
        Integer if group_by is GroupBy.STRUCTURE else String,
    )
    abandonments = (
        _rio_branch(abandon_key, {"abandonments": func.count(one)})
        .select_from(c)
        .where(
            c.close_reason == CloseReason.ABANDONED,
            c.public != Public.BRSA,
            c.closed_on >= filters.start,
            c.closed_on <= end,
            *_case_scope(c, filters),
        )
        .group_by(abandon_key)
    )

    branches = union_all(sessions, decisions, abandonments).subquery("rio_branches")
    query = select(
        branches.c.g, *(func.sum(branches.c[name]).label(name) for name in RIO_SUMS)
    ).group_by(branches.c.g)
    labelled, sort = _label_join(query, branches.c.g, group_by, grouped=True)
    rows = db.session.execute(labelled.order_by(*_group_order(branches.c.g, sort))).mappings()
    return [_rio_group(group_by, row) for row in rows]


def _rio_group(group_by: GroupBy | None, row: Any) -> dict[str, Any]:
    sums = {name: int(row[name] or 0) for name in RIO_SUMS}
    recorded = sums["present"] + sums["absent"] + sums["excused"]
    return {
        **_key_and_label(group_by, row["g"], row["label"]),
        **sums,
        "recorded": recorded,
        "attendance_rate": ratio(sums["present"], recorded),
        "no_show_rate": ratio(sums["absent"], recorded),
        "share_via_rio": ratio(sums["via_rio"], sums["orientations"]),
        "share_direct": ratio(sums["direct"], sums["orientations"]),
    }


__all__: Sequence[str] = (
    "AGE_BUCKETS",
    "Filters",
    "GroupBy",
    "IndicatorsUnavailableError",
    "default_period",
    "delay_indicators",
    "km_curves",
    "rio_indicators",
    "scoped_territories",
    "stock_indicators",
)
