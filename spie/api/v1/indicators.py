"""Indicators of the manager's dashboard — orientation (DOMAIN §4, docs/indicators.md).

For managers, chargés d'orientation (their territories) and admins (everything); référents
are refused. Every endpoint answers JSON, or CSV with ``?format=csv`` (UTF-8 with a BOM,
``;`` separator, decimal comma: what Excel in French opens as is).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Sequence
from typing import Any

import marshmallow as ma
from flask import Response
from flask_smorest import Blueprint

from spie.agents.models import Role
from spie.auth.access import current_agent, roles_required
from spie.clocks.today import paris_today
from spie.orientation import indicators
from spie.orientation.indicators import AGE_BUCKETS, STOCK_GROUPS, Filters, GroupBy
from spie.persons.models import Public

blp = Blueprint(
    "indicators",
    __name__,
    url_prefix="/indicators",
    description="Indicateurs du tableau de bord (managers, chargés d'orientation, admins)",
)

STEERING = (Role.MANAGER, Role.CHARGE_ORIENTATION, Role.ADMIN)


def csv_doc(schema: type[ma.Schema]) -> dict[str, Any]:
    """The 200 response in both media types (``@blp.response`` alone documents JSON)."""
    return {
        "responses": {
            "200": {
                "description": "JSON, ou CSV avec `format=csv` (UTF-8 avec BOM, séparateur "
                "`;`, virgule décimale).",
                "content": {
                    "application/json": {"schema": schema},
                    "text/csv": {"schema": {"type": "string"}},
                },
            }
        }
    }


# --- query arguments ------------------------------------------------------------------------


class MonthOrDate(ma.fields.Field):
    """``YYYY-MM`` (the whole month: its first day as a lower bound, its last day as an upper
    bound) or ``YYYY-MM-DD``."""

    default_error_messages = {  # noqa: RUF012 - marshmallow's own class attribute
        "invalid": "Date attendue au format AAAA-MM ou AAAA-MM-JJ."
    }

    def __init__(self, *, upper: bool, **kwargs: Any) -> None:
        metadata = {"type": "string", "pattern": r"^\d{4}-\d{2}(-\d{2})?$", "example": "2025-03"}
        kwargs["metadata"] = {**metadata, **kwargs.get("metadata", {})}
        super().__init__(**kwargs)
        self.upper = upper

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dt.date:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            if len(value) == 10:
                return dt.date.fromisoformat(value)
            if len(value) != 7 or value[4] != "-" or not value.replace("-", "").isdigit():
                raise ValueError(value)
            first = dt.date(int(value[:4]), int(value[5:]), 1)
        except ValueError as error:
            raise self.make_error("invalid") from error
        if not self.upper:
            return first
        next_month = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return next_month - dt.timedelta(days=1)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else value.isoformat()


class _IndicatorArgs(ma.Schema):
    as_of = ma.fields.Date(
        metadata={"description": "Date d'observation (défaut : aujourd'hui, Europe/Paris)."}
    )
    territory_id = ma.fields.Integer(
        validate=ma.validate.Range(min=1),
        metadata={"description": "Un territoire (CTM) de votre périmètre ; défaut : tous."},
    )
    public = ma.fields.Enum(Public, by_value=True)
    format = ma.fields.String(
        load_default="json",
        validate=ma.validate.OneOf(["json", "csv"]),
        metadata={"description": "`csv` : export pour Excel."},
    )

    @ma.validates_schema
    def _check_as_of(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("as_of") and data["as_of"] > paris_today():
            raise ma.ValidationError(
                "La date d'observation ne peut pas être dans le futur.", "as_of"
            )


def _check_range(data: dict[str, Any], low: str, high: str) -> None:
    if data.get(low) and data.get(high) and data[low] > data[high]:
        raise ma.ValidationError(f"{low} doit précéder {high}.", high)


class DelayArgs(_IndicatorArgs):
    cohort_from = MonthOrDate(
        upper=False,
        metadata={"description": "Début de la cohorte (mois ou date) ; défaut : 11 mois avant."},
    )
    cohort_to = MonthOrDate(
        upper=True, metadata={"description": "Fin de la cohorte (mois ou date) ; défaut : as_of."}
    )
    group_by = ma.fields.Enum(GroupBy, by_value=True)

    @ma.validates_schema
    def _check_cohort(self, data: dict[str, Any], **_: Any) -> None:
        _check_range(data, "cohort_from", "cohort_to")


class StockArgs(_IndicatorArgs):
    group_by = ma.fields.Enum(
        GroupBy,
        by_value=True,
        validate=ma.validate.OneOf(
            STOCK_GROUPS, error="Le stock se regroupe par month, ctm ou public."
        ),
        metadata={"description": "month, ctm ou public (pas de structure avant décision)."},
    )


class RioArgs(_IndicatorArgs):
    period_from = MonthOrDate(
        upper=False,
        metadata={"description": "Début de la période (mois ou date) ; défaut : 11 mois avant."},
    )
    period_to = MonthOrDate(
        upper=True, metadata={"description": "Fin de la période (mois ou date) ; défaut : as_of."}
    )
    group_by = ma.fields.Enum(GroupBy, by_value=True)

    @ma.validates_schema
    def _check_period(self, data: dict[str, Any], **_: Any) -> None:
        _check_range(data, "period_from", "period_to")


# --- responses ------------------------------------------------------------------------------


class _GroupSchema(ma.Schema):
    key = ma.fields.String(allow_none=True, metadata={"description": "null : sans groupe."})
    label = ma.fields.String()


class DelaySchema(ma.Schema):
    count = ma.fields.Integer(metadata={"description": "Orientés de la cohorte mûre à 2 mois."})
    mean = ma.fields.Float(allow_none=True)
    median = ma.fields.Float(allow_none=True)
    p75 = ma.fields.Float(allow_none=True)
    p90 = ma.fields.Float(allow_none=True)


class KmSummarySchema(ma.Schema):
    median = ma.fields.Integer(allow_none=True)
    p75 = ma.fields.Integer(allow_none=True)
    p90 = ma.fields.Integer(allow_none=True)
    share_6w = ma.fields.Float()
    share_2m = ma.fields.Float()


class DelayGroupSchema(_GroupSchema):
    cases = ma.fields.Integer()
    oriented = ma.fields.Integer()
    waiting = ma.fields.Integer()
    closed_other = ma.fields.Integer()
    mature_6w = ma.fields.Integer()
    oriented_within_6w = ma.fields.Integer()
    share_6w = ma.fields.Float(allow_none=True)
    mature_2m = ma.fields.Integer()
    oriented_within_2m = ma.fields.Integer()
    share_2m = ma.fields.Float(allow_none=True)
    delay = ma.fields.Nested(DelaySchema)
    km = ma.fields.Nested(KmSummarySchema)


class _ReportSchema(ma.Schema):
    as_of = ma.fields.Date()
    group_by = ma.fields.Enum(GroupBy, by_value=True, allow_none=True)
    territory_id = ma.fields.Integer(allow_none=True)
    public = ma.fields.Enum(Public, by_value=True, allow_none=True)


class DelayReportSchema(_ReportSchema):
    cohort_from = ma.fields.Date()
    cohort_to = ma.fields.Date()
    groups = ma.fields.List(ma.fields.Nested(DelayGroupSchema))


class KmPointSchema(ma.Schema):
    t = ma.fields.Integer(metadata={"description": "Jours de délai (pauses déduites)."})
    at_risk = ma.fields.Integer()
    events = ma.fields.Integer()
    censored = ma.fields.Integer()
    survival = ma.fields.Float()


class KmGroupSchema(_GroupSchema, KmSummarySchema):
    points = ma.fields.List(ma.fields.Nested(KmPointSchema))


class KmReportSchema(_ReportSchema):
    cohort_from = ma.fields.Date()
    cohort_to = ma.fields.Date()
    groups = ma.fields.List(ma.fields.Nested(KmGroupSchema))


AgeSchema = ma.Schema.from_dict(
    {name: ma.fields.Integer() for name, _low, _high in AGE_BUCKETS}, name="StockAgeSchema"
)


class StockGroupSchema(_GroupSchema):
    total = ma.fields.Integer()
    by_age = ma.fields.Nested(AgeSchema)
    overdue = ma.fields.Integer()
    past_target = ma.fields.Integer()
    paused = ma.fields.Integer()


class StockReportSchema(_ReportSchema):
    groups = ma.fields.List(ma.fields.Nested(StockGroupSchema))


class RioGroupSchema(_GroupSchema):
    convocations = ma.fields.Integer()
    convened = ma.fields.Integer()
    present = ma.fields.Integer()
    absent = ma.fields.Integer()
    excused = ma.fields.Integer()
    recorded = ma.fields.Integer()
    not_recorded = ma.fields.Integer()
    attendance_rate = ma.fields.Float(allow_none=True)
    no_show_rate = ma.fields.Float(allow_none=True)
    orientations = ma.fields.Integer()
    via_rio = ma.fields.Integer()
    share_via_rio = ma.fields.Float(allow_none=True)
    direct = ma.fields.Integer()
    share_direct = ma.fields.Float(allow_none=True)
    reorientations = ma.fields.Integer()
    abandonments = ma.fields.Integer()


class RioReportSchema(_ReportSchema):
    period_from = ma.fields.Date()
    period_to = ma.fields.Date()
    groups = ma.fields.List(ma.fields.Nested(RioGroupSchema))


# --- CSV ------------------------------------------------------------------------------------


Column = tuple[str, str]  # (dotted path in a group, French header)

GROUP_COLUMNS: list[Column] = [("key", "groupe"), ("label", "libellé")]
DELAY_COLUMNS: list[Column] = [
    *GROUP_COLUMNS,
    ("cases", "dossiers"),
    ("oriented", "orientés"),
    ("waiting", "en attente"),
    ("closed_other", "sortis sans orientation"),
    ("mature_6w", "cohorte mûre 6 semaines"),
    ("oriented_within_6w", "orientés en 6 semaines"),
    ("share_6w", "part en 6 semaines"),
    ("mature_2m", "cohorte mûre 2 mois"),
    ("oriented_within_2m", "orientés en 2 mois"),
    ("share_2m", "part en 2 mois"),
    ("delay.count", "orientés mesurés (cohorte 2 mois)"),
    ("delay.mean", "délai moyen (j)"),
    ("delay.median", "délai médian (j)"),
    ("delay.p75", "délai 75e centile (j)"),
    ("delay.p90", "délai 90e centile (j)"),
    ("km.median", "KM médiane (j)"),
    ("km.p75", "KM 75e centile (j)"),
    ("km.p90", "KM 90e centile (j)"),
    ("km.share_6w", "KM part en 42 j"),
    ("km.share_2m", "KM part en 61 j"),
]
KM_COLUMNS: list[Column] = [
    *GROUP_COLUMNS,
    ("t", "jour"),
    ("at_risk", "à risque"),
    ("events", "orientés ce jour"),
    ("censored", "censurés ce jour"),
    ("survival", "part encore en attente"),
]
STOCK_COLUMNS: list[Column] = [
    *GROUP_COLUMNS,
    ("total", "en attente d'orientation"),
    *((f"by_age.{name}", f"{name} jours") for name, _low, _high in AGE_BUCKETS),
    ("overdue", "délai légal dépassé"),
    ("past_target", "objectif dépassé"),
    ("paused", "horloge suspendue"),
]
RIO_COLUMNS: list[Column] = [
    *GROUP_COLUMNS,
    ("convocations", "convocations"),
    ("convened", "personnes convoquées"),
    ("present", "présents"),
    ("absent", "absents"),
    ("excused", "excusés"),
    ("not_recorded", "présence non saisie"),
    ("attendance_rate", "taux de présence"),
    ("no_show_rate", "taux d'absence"),
    ("orientations", "orientations"),
    ("via_rio", "orientations après RIO"),
    ("share_via_rio", "part après RIO"),
    ("direct", "orientations directes"),
    ("share_direct", "part directe"),
    ("reorientations", "réorientations"),
    ("abandonments", "abandons (hors BRSA)"),
]


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".").replace(".", ",")
    return str(value)


def _pick(row: dict[str, Any], path: str) -> Any:
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def csv_response(
    columns: Sequence[Column], rows: Sequence[dict[str, Any]], meta: dict[str, Any], name: str
) -> Response:
    """``;``-separated UTF-8 with a BOM; the filters are repeated on every line."""
    meta_columns = [(key, header) for key, header in META_HEADERS if key in meta]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow([header for _key, header in meta_columns + list(columns)])
    for row in rows:
        writer.writerow(
            [_csv_value(meta[key]) for key, _header in meta_columns]
            + [_csv_value(_pick(row, path)) for path, _header in columns]
        )
    filename = f"indicateurs-orientation-{name}-{meta['as_of'].isoformat()}.csv"
    return Response(
        "\ufeff" + buffer.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


META_HEADERS: list[Column] = [
    ("as_of", "arrêté au"),
    ("cohort_from", "cohorte du"),
    ("cohort_to", "cohorte au"),
    ("period_from", "période du"),
    ("period_to", "période au"),
]


# --- views ----------------------------------------------------------------------------------


def _filters(args: dict[str, Any], low: str | None, high: str | None) -> Filters:
    as_of = args.get("as_of") or paris_today()
    default_start, default_end = indicators.default_period(as_of)
    return Filters(
        as_of=as_of,
        start=args.get(low or "", default_start),
        end=args.get(high or "", default_end),
        territories=indicators.scoped_territories(current_agent(), args.get("territory_id")),
        public=args.get("public"),
        group_by=args.get("group_by"),
    )


def _report(
    args: dict[str, Any],
    filters: Filters,
    bounds: tuple[str, str] | None,
    compute: Callable[[Filters], list[dict[str, Any]]],
    columns: Sequence[Column],
    name: str,
    *,
    flatten: str | None = None,
) -> Any:
    meta: dict[str, Any] = {
        "as_of": filters.as_of,
        "group_by": filters.group_by,
        "territory_id": args.get("territory_id"),
        "public": filters.public,
    }
    if bounds is not None:
        meta[bounds[0]], meta[bounds[1]] = filters.start, min(filters.end, filters.as_of)
    groups = compute(filters)
    if args["format"] == "csv":
        rows = groups
        if flatten:  # one CSV line per point of each group's curve
            rows = [{**group, **point} for group in groups for point in group[flatten]]
        return csv_response(columns, rows, meta, name)
    return {**meta, "groups": groups}


@blp.route("/orientation", methods=["GET"])
@roles_required(*STEERING)
@blp.arguments(DelayArgs, location="query")
@blp.response(200, DelayReportSchema)
@blp.doc(**csv_doc(DelayReportSchema))
def orientation_delays(args: dict[str, Any]) -> Any:
    """Délai d'orientation par cohorte : volumes, part orientée en 6 semaines et en 2 mois
    (cohorte mûre), médiane et centiles, résumé Kaplan-Meier (en-attente censurés)."""
    filters = _filters(args, "cohort_from", "cohort_to")
    return _report(
        args,
        filters,
        ("cohort_from", "cohort_to"),
        indicators.delay_indicators,
        DELAY_COLUMNS,
        "delais",
    )


@blp.route("/orientation/km", methods=["GET"])
@roles_required(*STEERING)
@blp.arguments(DelayArgs, location="query")
@blp.response(200, KmReportSchema)
@blp.doc(**csv_doc(KmReportSchema))
def orientation_km(args: dict[str, Any]) -> Any:
    """Courbe de Kaplan-Meier du délai d'orientation : part encore en attente S(t) à chaque
    durée observée, personnes à risque, orientations et censures."""
    filters = _filters(args, "cohort_from", "cohort_to")
    return _report(
        args,
        filters,
        ("cohort_from", "cohort_to"),
        indicators.km_curves,
        KM_COLUMNS,
        "kaplan-meier",
        flatten="points",
    )


@blp.route("/orientation/stock", methods=["GET"])
@roles_required(*STEERING)
@blp.arguments(StockArgs, location="query")
@blp.response(200, StockReportSchema)
@blp.doc(**csv_doc(StockReportSchema))
def orientation_stock(args: dict[str, Any]) -> Any:
    """Stock des personnes SDD en attente d'orientation à la date d'observation, par
    ancienneté (0-29, 30-59, 60-89, 90+ jours), dont délai légal dépassé."""
    filters = _filters(args, None, None)
    return _report(args, filters, None, indicators.stock_indicators, STOCK_COLUMNS, "stock")


@blp.route("/orientation/rio", methods=["GET"])
@roles_required(*STEERING)
@blp.arguments(RioArgs, location="query")
@blp.response(200, RioReportSchema)
@blp.doc(**csv_doc(RioReportSchema))
def orientation_rio(args: dict[str, Any]) -> Any:
    """RIO et modes d'orientation sur une période : convoqués, présence, absence, part des
    orientations après RIO, orientations directes, réorientations, abandons (hors BRSA)."""
    filters = _filters(args, "period_from", "period_to")
    return _report(
        args,
        filters,
        ("period_from", "period_to"),
        indicators.rio_indicators,
        RIO_COLUMNS,
        "rio",
    )
