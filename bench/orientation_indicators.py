"""Benchmark of the orientation indicators (QUALITY.md "Manager dashboard").

Builds a PostgreSQL database with N orientation cases over ten years (persons, cases, first
decisions and reorientations, RIO sessions and convocations), loaded with COPY, then times the
indicator endpoints through the Flask app (test client, admin Bearer token: the whole server
side, authentication and JSON included) beside the bare SQL statement they run::

    .venv/bin/python -m bench.orientation_indicators --cases 1000000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/spie_bench

Target: delay indicators for one cohort year and one CTM in < 300 ms server time. See
bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import math
import random
import statistics
import sys
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from dateutil.relativedelta import relativedelta
from sqlalchemy import event
from sqlalchemy.engine import make_url

from bench.common import build_schema, ensure_database, log, psycopg_url

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
TERRITORY_WEIGHTS = {  # share of the cases, roughly the RSA population
    "LYON": 0.34,
    "CTM-VILLEURBANNE": 0.12,
    "CTM-PORTES-DU-SUD": 0.09,
    "CTM-RHONE-AMONT": 0.08,
    "CTM-PORTE-DES-ALPES": 0.08,
    "CTM-LONES-COTEAUX": 0.07,
    "CTM-PLATEAU-NORD": 0.06,
    "CTM-VAL-YZERON": 0.06,
    "CTM-OUEST-NORD": 0.05,
    "CTM-VAL-DE-SAONE": 0.05,
}
PUBLICS = (("brsa", 0.92), ("rsj", 0.04), ("fse", 0.02), ("other", 0.02))
PARCOURS = (("emploi", 0.45), ("socio_professionnel", 0.35), ("social", 0.20))
# Structure types per parcours: which local structure is chosen as organisme référent.
STRUCTURE_OF_PARCOURS = {
    "emploi": "france_travail",
    "socio_professionnel": "association_siae",
    "social": "mdm",
}
# Indexes the indicator queries need, proposed for a migration (see bench/README.md) and
# created here meanwhile; ``--without-indexes`` times the migrations' indexes alone.
BENCH_INDEXES = {
    # délai / KM of a CTM-year read from the index only (no heap visit).
    "ix_orientation_cases_territory_started_cover": (
        "CREATE INDEX IF NOT EXISTS ix_orientation_cases_territory_started_cover "
        "ON orientation_cases (territory_id, clock_started_on) "
        "INCLUDE (id, notified_on, closed_on, close_reason, paused_since, paused_days, public)"
    ),
    # stock: cases open on a date (closed_on IS NULL OR closed_on > as_of) of a territory.
    "ix_orientation_cases_closed_territory": (
        "CREATE INDEX IF NOT EXISTS ix_orientation_cases_closed_territory "
        "ON orientation_cases (closed_on, territory_id)"
    ),
    # first decision of a case (grouping by structure/parcours, "first" for RIO figures).
    "ix_orientation_decisions_case_rank": (
        "CREATE INDEX IF NOT EXISTS ix_orientation_decisions_case_rank "
        "ON orientation_decisions (case_id, rank) INCLUDE (decided_on, structure_id, parcours)"
    ),
    # RIO figures: decisions of a period.
    "ix_orientation_decisions_decided_on": (
        "CREATE INDEX IF NOT EXISTS ix_orientation_decisions_decided_on "
        "ON orientation_decisions (decided_on) "
        "INCLUDE (case_id, rank, via_rio, direct, structure_id, parcours)"
    ),
}
BULK_TABLES = ("persons", "orientation_cases", "orientation_decisions", "rio_convocations")


# --- database -----------------------------------------------------------------------------


# --- generation ---------------------------------------------------------------------------


def _copy(cursor: psycopg.Cursor[Any], table: str, columns: str, rows: Iterator[str]) -> int:
    """COPY text-format lines (tab separated, ``\\N`` for NULL) in 1 MB chunks."""
    count = 0
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        buffer = io.StringIO()
        for line in rows:
            buffer.write(line)
            count += 1
            if buffer.tell() > 1 << 20:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())
    return count


def _d(day: dt.date | None) -> str:
    return "\\N" if day is None else day.isoformat()


def _weighted(rng: random.Random, pairs: Any, k: int) -> list[Any]:
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights=weights, k=k)


class Generator:
    """Deterministic synthetic history: N cases whose clocks start uniformly over ``years``
    years before ``today``, in chronological order (as they are created in real life)."""

    def __init__(self, cases: int, years: int, today: dt.date, seed: int) -> None:
        self.n = cases
        self.today = today
        self.first_day = today - relativedelta(years=years)
        self.rng = random.Random(seed)
        self.law_2025 = dt.date(2025, 1, 1)
        self.started = time.perf_counter()

    def reference(self, cursor: psycopg.Cursor[Any]) -> None:
        cursor.execute("SELECT code, id FROM territories")
        self.territory_ids = dict(cursor.fetchall())
        cursor.execute("SELECT territory_id, insee_code FROM communes ORDER BY insee_code")
        self.communes: dict[int, list[str]] = {}
        for territory_id, insee in cursor.fetchall():
            self.communes.setdefault(territory_id, []).append(insee)

    def structures(self, cursor: psycopg.Cursor[Any]) -> None:
        """Per territory: a France Travail agency, two Maisons de la Métropole, an
        association (socio-professional pathways)."""
        self.structure_ids: dict[tuple[int, str], list[int]] = {}
        rows = []
        next_id = 1
        for code, territory_id in sorted(self.territory_ids.items()):
            for kind, count in (("france_travail", 1), ("mdm", 2), ("association_siae", 1)):
                for number in range(count):
                    name = f"Bench {kind} {code} {number + 1}"
                    rows.append(f"{next_id}\t{name}\t{kind}\t500\tt\t{NOW}\t{NOW}\t1\n")
                    self.structure_ids.setdefault((territory_id, kind), []).append(next_id)
                    next_id += 1
        _copy(
            cursor,
            "structures",
            "id, name, type, capacity, active, created_at, updated_at, version",
            iter(rows),
        )
        _copy(
            cursor,
            "structure_territories",
            "structure_id, territory_id",
            (
                f"{sid}\t{territory_id}\n"
                for (territory_id, _kind), ids in self.structure_ids.items()
                for sid in ids
            ),
        )

    def policies(self, cursor: psycopg.Cursor[Any]) -> None:
        cursor.execute(
            "INSERT INTO delay_policies (clock, legal_limit, target, valid_from, valid_until, "
            "label, created_at, updated_at, version) VALUES "
            "('orientation', '2m', '2m', '2000-01-01', '2025-01-01', 'R262-65-2', now(), "
            "now(), 1), ('orientation', '6w', '2m', '2025-01-01', NULL, 'D262-65-2', now(), "
            "now(), 1) RETURNING id"
        )
        self.policy_before, self.policy_after = (row[0] for row in cursor.fetchall())

    def sessions(self, cursor: psycopg.Cursor[Any]) -> None:
        """One RIO session a week (Tuesday 09:30 Paris ≈ 07:30 UTC) in every territory."""
        self.first_tuesday = self.first_day + dt.timedelta(days=(1 - self.first_day.weekday()) % 7)
        self.weeks = (self.today - self.first_tuesday).days // 7 + 1
        self.territory_order = sorted(self.territory_ids.values())
        self.territory_position = {t: i for i, t in enumerate(self.territory_order)}
        animators = {
            territory_id: self.structure_ids[(territory_id, "mdm")][0]
            for territory_id in self.territory_order
        }

        def rows() -> Iterator[str]:
            session_id = 0
            for week in range(self.weeks):  # ids in chronological order, as in real life
                for territory_id in self.territory_order:
                    session_id += 1
                    day = self.first_tuesday + dt.timedelta(weeks=week)
                    status = "held" if day < self.today else "planned"
                    yield (
                        f"{session_id}\t{day.isoformat()} 07:30:00+00\tSalle RIO\t{territory_id}"
                        f"\t{animators[territory_id]}\t30\t{status}\t{NOW}\t{NOW}\t1\n"
                    )

        _copy(
            cursor,
            "rio_sessions",
            "id, starts_at, place, territory_id, animator_structure_id, capacity, status, "
            "created_at, updated_at, version",
            rows(),
        )

    def session_of(self, territory_id: int, day: dt.date) -> int | None:
        """The session of the week of ``day`` (its Tuesday on or before ``day``)."""
        week = (day - self.first_tuesday).days // 7
        if week < 0 or week >= self.weeks:
            return None
        return week * len(self.territory_order) + self.territory_position[territory_id] + 1

    def cases(self, cursor: psycopg.Cursor[Any]) -> dict[str, int]:
        rng = self.rng
        span = (self.today - self.first_day).days
        starts = sorted(rng.randrange(span) for _ in range(self.n))
        territories = _weighted(rng, TERRITORY_WEIGHTS.items(), self.n)
        publics = _weighted(rng, PUBLICS, self.n)
        parcours = _weighted(rng, PARCOURS, self.n)
        persons: list[str] = []
        cases: list[str] = []
        decisions: list[str] = []
        convocations: list[str] = []
        counts = {"oriented": 0, "waiting": 0, "closed_other": 0, "reorientations": 0}
        for index in range(self.n):
            case_id = index + 1
            start = self.first_day + dt.timedelta(days=starts[index])
            territory_id = self.territory_ids[territories[index]]
            public = publics[index]
            brsa = public == "brsa"
            bound = brsa and rng.random() < 0.97
            commune = rng.choice(self.communes[territory_id])
            birth = dt.date(1960, 1, 1) + dt.timedelta(days=rng.randrange(16000))
            persons.append(
                f"{case_id}\t{public}\tBENCH{case_id}\tCamille\tBENCH{case_id} CAMILLE"
                f"\t{birth.isoformat()}\tf\t{'t' if bound else 'f'}\t{commune}\t{territory_id}"
                f"\t{NOW}\t{NOW}\t1\n"
            )
            # Delay: slower before the 2025 reform; direct orientations within ten days.
            direct = brsa and rng.random() < 0.12
            median = 55 if start < self.law_2025 else 38
            spread = rng.lognormvariate(math.log(median), 0.55)
            delay = rng.randrange(11) if direct else int(spread)
            paused = rng.randrange(5, 46) if rng.random() < 0.08 else 0
            event_day = start + dt.timedelta(days=delay + paused)
            exit_day = None
            if rng.random() < (0.09 if brsa else 0.25):
                exit_day = start + dt.timedelta(days=rng.randrange(5, 150))
            limit = relativedelta(weeks=6) if start >= self.law_2025 else relativedelta(months=2)
            legal = start + limit + dt.timedelta(days=paused)
            target = start + relativedelta(months=2) + dt.timedelta(days=paused)
            policy = self.policy_after if start >= self.law_2025 else self.policy_before
            notified: dt.date | None = None
            decided: dt.date | None = None
            closed: dt.date | None = None
            paused_since: dt.date | None = None
            reason = "\\N"
            legal_or_none: dt.date | None = legal
            if exit_day is not None and exit_day < event_day and exit_day <= self.today:
                closed = exit_day
                reason = rng.choice(("left_sdd", "left_sdd", "right_closed", "moved_away"))
                if not brsa:
                    reason = "abandoned"
                status = "closed"
                counts["closed_other"] += 1
            elif event_day <= self.today:
                notified = closed = event_day
                reason = "oriented"
                decided = max(start, event_day - dt.timedelta(days=rng.randrange(4)))
                status = "notifiee"
                counts["oriented"] += 1
            else:
                status = rng.choice(("a_orienter", "convoque_rio", "proposee"))
                if rng.random() < 0.05:
                    paused_since = self.today - dt.timedelta(days=rng.randrange(1, 21))
                    legal_or_none = None
                counts["waiting"] += 1
            cases.append(
                f"{case_id}\t{case_id}\t{status}\t{start.isoformat()}\tddsoudrodev\tf\t{policy}"
                f"\t{_d(legal_or_none)}\t{_d(target if legal_or_none else None)}"
                f"\t{_d(paused_since)}\t{paused}\t{territory_id}"
                f"\t{public}\t0\tf\t{_d(decided)}\t{_d(notified)}\t{_d(closed)}"
                f"\t{reason}\t{NOW}\t{NOW}\t1\n"
            )
            via_rio = False
            if decided is not None:
                via_rio = not direct and rng.random() < 0.62
                kind = STRUCTURE_OF_PARCOURS[parcours[index]]
                structure = rng.choice(self.structure_ids[(territory_id, kind)])
                decisions.append(
                    self._decision(
                        case_id, 1, decided, parcours[index], structure, via_rio, direct, notified
                    )
                )
                if rng.random() < 0.05:
                    again = decided + dt.timedelta(days=rng.randrange(60, 500))
                    if again <= self.today:
                        other = rng.choice([p for p, _w in PARCOURS if p != parcours[index]])
                        kind = STRUCTURE_OF_PARCOURS[other]
                        structure = rng.choice(self.structure_ids[(territory_id, kind)])
                        decisions.append(
                            self._decision(case_id, 2, again, other, structure, False, False, again)
                        )
                        counts["reorientations"] += 1
            convocations.extend(
                self._convocations(case_id, territory_id, start, decided, via_rio, closed)
            )
        log(f"  rows generated in Python: {time.perf_counter() - self.started:.1f} s")
        copied = {
            "persons": _copy(
                cursor,
                "persons",
                "id, public, last_name, first_name, search_name, birth_date, nir_verified, "
                "bound_by_duties, commune_insee, territory_id, created_at, updated_at, version",
                iter(persons),
            )
        }
        del persons
        log(f"  persons copied: {time.perf_counter() - self.started:.1f} s")
        copied["orientation_cases"] = _copy(
            cursor,
            "orientation_cases",
            "id, person_id, status, clock_started_on, start_basis, clock_estimated, policy_id, "
            "legal_deadline, target_date, paused_since, paused_days, territory_id, public, "
            "rio_absences, flagged_for_ep, decided_on, notified_on, closed_on, close_reason, "
            "created_at, updated_at, version",
            iter(cases),
        )
        del cases
        log(f"  cases copied: {time.perf_counter() - self.started:.1f} s")
        copied["orientation_decisions"] = _copy(
            cursor,
            "orientation_decisions",
            "case_id, person_id, rank, decided_at, decided_on, parcours, structure_id, "
            "follows_proposal, via_rio, direct, reorientation_reason, notified_on, "
            "ft_sync_status",
            iter(decisions),
        )
        copied["rio_convocations"] = _copy(
            cursor,
            "rio_convocations",
            "session_id, case_id, person_id, convened_at, attendance",
            iter(convocations),
        )
        return {**counts, **copied}

    @staticmethod
    def _decision(
        case_id: int,
        rank: int,
        decided: dt.date,
        parcours: str,
        structure: int,
        via_rio: bool,
        direct: bool,
        notified: dt.date | None,
    ) -> str:
        reason = "Réorientation" if rank > 1 else "\\N"
        return (
            f"{case_id}\t{case_id}\t{rank}\t{decided.isoformat()} 10:00:00+00\t"
            f"{decided.isoformat()}\t{parcours}\t{structure}\tt\t{'t' if via_rio else 'f'}\t"
            f"{'t' if direct else 'f'}\t{reason}\t{_d(notified)}\tsent\n"
        )

    def _convocations(
        self,
        case_id: int,
        territory_id: int,
        start: dt.date,
        decided: dt.date | None,
        via_rio: bool,
        closed: dt.date | None,
    ) -> Iterator[str]:
        """A RIO before the decision (present) for orientations through a RIO, sometimes
        after a first missed one; waiting people convened two weeks after their start."""
        rng = self.rng
        wanted: list[tuple[dt.date, str]] = []
        if decided is not None and via_rio:
            wanted.append((decided, "present"))
            if rng.random() < 0.25:
                earlier = decided - dt.timedelta(days=14)
                if earlier >= start:
                    wanted.append((earlier, rng.choice(("absent", "absent", "excuse"))))
        elif decided is None and closed is None and rng.random() < 0.5:
            day = start + dt.timedelta(days=14)
            if day <= self.today:
                wanted.append((day, rng.choice(("absent", "\\N", "\\N"))))
        for day, attendance in wanted:
            session = self.session_of(territory_id, day)
            if session is not None:
                yield f"{session}\t{case_id}\t{case_id}\t{NOW}\t{attendance}\n"


SECONDARY_INDEXES = """
SELECT i.indexname, i.indexdef FROM pg_indexes i
WHERE i.schemaname = 'public' AND i.tablename = ANY(%s)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
"""


def generate(url: str, cases: int, years: int, today: dt.date, seed: int) -> dict[str, Any]:
    """Bulk load as pg_restore does: foreign-key triggers off for the session (the rows are
    consistent by construction), secondary indexes dropped before COPY and rebuilt after."""
    started = time.perf_counter()
    with psycopg.connect(psycopg_url(url)) as connection, connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(SECONDARY_INDEXES, [list(BULK_TABLES)])
        indexes = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        generator = Generator(cases, years, today, seed)
        generator.reference(cursor)
        generator.structures(cursor)
        generator.policies(cursor)
        generator.sessions(cursor)
        counts = generator.cases(cursor)
        copied = time.perf_counter() - started
        log(f"  COPY done: {copied:.1f} s; rebuilding {len(indexes)} secondary indexes")
        cursor.execute("SET maintenance_work_mem = '256MB'")
        for _name, definition in indexes:
            cursor.execute(definition)
        for table in ("structures", "rio_sessions", "persons", "orientation_cases"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        connection.commit()
    loaded = time.perf_counter() - started
    with psycopg.connect(psycopg_url(url), autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
    counts["load_seconds"] = round(loaded, 1)
    counts["load_and_vacuum_seconds"] = round(time.perf_counter() - started, 1)
    return counts


def create_indexes(url: str) -> float:
    started = time.perf_counter()
    with psycopg.connect(psycopg_url(url), autocommit=True) as connection:
        for statement in BENCH_INDEXES.values():
            connection.execute(statement)
        connection.execute("VACUUM ANALYZE orientation_cases")
        connection.execute("VACUUM ANALYZE orientation_decisions")
    return time.perf_counter() - started


def drop_indexes(url: str) -> None:
    with psycopg.connect(psycopg_url(url), autocommit=True) as connection:
        for name in BENCH_INDEXES:
            connection.execute(f"DROP INDEX IF EXISTS {name}")


# --- timing -------------------------------------------------------------------------------


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return statistics.median(ordered), p95


def time_endpoints(url: str, repeat: int, today: dt.date, cohort_year: int) -> list[dict[str, Any]]:
    from spie.agents.models import Agent, Role
    from spie.app import create_app
    from spie.auth.login import create_api_token
    from spie.db import commit, db
    from spie.structures.models import Structure
    from spie.territories.models import Territory

    app = create_app(
        {"ENV": "testing", "SECRET_KEY": "b" * 48, "DATABASE_URL": url, "REDIS_URL": None}
    )
    with app.app_context():
        structure = db.session.query(Structure).order_by(Structure.id).first()
        if structure is None:
            raise RuntimeError("no structure: generate the data first")
        admin = Agent(
            email=f"bench-{time.time_ns()}@spie.test",
            first_name="Bench",
            last_name="Admin",
            structure_id=structure.id,
            active_from=dt.date(2000, 1, 1),
        )
        admin.set_roles({Role.ADMIN})
        db.session.add(admin)
        _token, token = create_api_token(admin, "bench", dt.timedelta(hours=2))
        ctm = db.session.query(Territory).filter_by(code="CTM-VILLEURBANNE").one()
        ctm_id, ctm_name = ctm.id, ctm.name
        commit()
        db.session.remove()
    if db.engine is None:
        raise RuntimeError("no engine")
    captured: list[tuple[str, Any]] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def _capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "orientation_cases" in statement or "rio_" in statement:
            captured.append((statement, parameters))

    year = {"cohort_from": f"{cohort_year}-01", "cohort_to": f"{cohort_year}-12"}
    cases = [
        (f"délais, {ctm_name}, cohorte {cohort_year}", "", {**year, "territory_id": ctm_id}),
        (
            f"délais par mois, {ctm_name}, cohorte {cohort_year}",
            "",
            {**year, "territory_id": ctm_id, "group_by": "month"},
        ),
        (
            f"délais par structure, {ctm_name}, {cohort_year}",
            "",
            {**year, "territory_id": ctm_id, "group_by": "structure"},
        ),
        (f"courbe KM, {ctm_name}, cohorte {cohort_year}", "/km", {**year, "territory_id": ctm_id}),
        (f"délais par CTM, métropole, cohorte {cohort_year}", "", {**year, "group_by": "ctm"}),
        (f"stock, {ctm_name}", "/stock", {"territory_id": ctm_id}),
        (
            f"RIO, {ctm_name}, {cohort_year}",
            "/rio",
            {
                "period_from": f"{cohort_year}-01",
                "period_to": f"{cohort_year}-12",
                "territory_id": ctm_id,
            },
        ),
    ]
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    bare = psycopg.connect(psycopg_url(url))
    results = []
    for label, path, params in cases:
        params = {**params, "as_of": today.isoformat()}
        url_path = f"/api/v1/indicators/orientation{path}"

        def call_endpoint(url_path: str = url_path, params: dict[str, Any] = params) -> Any:
            captured.clear()
            started = time.perf_counter()
            response = client.get(url_path, query_string=params, headers=headers)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code} {response.get_data(True)}")
            return elapsed, response

        for _warm_up in range(2):
            _elapsed, response = call_endpoint()
        statement, parameters = captured[-1]
        for _warm_up in range(2):
            bare.execute(statement, parameters).fetchall()
        endpoint_samples: list[float] = []
        bare_samples: list[float] = []
        # Interleaved, so that both see the same machine: the ratio is what counts.
        for _attempt in range(repeat):
            elapsed, response = call_endpoint()
            endpoint_samples.append(elapsed)
            started = time.perf_counter()
            bare.execute(statement, parameters).fetchall()
            bare_samples.append((time.perf_counter() - started) * 1000)
        plan_row = bare.execute(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters
        ).fetchone()
        bare.rollback()
        if plan_row is None:
            raise RuntimeError("EXPLAIN returned nothing")
        plan = plan_row[0][0]
        results.append(
            {
                "label": label,
                "endpoint_ms": percentiles(endpoint_samples),
                "bare_ms": percentiles(bare_samples),
                "ratio": statistics.median(
                    e / b for e, b in zip(endpoint_samples, bare_samples, strict=True)
                ),
                "execution_ms": plan["Execution Time"],
                "plan": plan["Plan"],
                "groups": response.get_json()["groups"],
            }
        )
    bare.close()
    return results


def _plan_summary(node: dict[str, Any], depth: int = 0) -> Iterator[str]:
    relation = node.get("Relation Name") or node.get("CTE Name") or ""
    index = node.get("Index Name", "")
    yield (
        f"{'  ' * depth}{node['Node Type']} {relation} {index}".rstrip()
        + f"  rows={node.get('Actual Rows')} time={node.get('Actual Total Time')} ms"
    )
    for child in node.get("Plans", []):
        yield from _plan_summary(child, depth + 1)


def report(results: list[dict[str, Any]], show_plans: bool) -> None:
    log("")
    log(
        f"{'indicator':50} {'endpoint p50/p95 ms':>19} {'bare SQL p50/p95 ms':>19} "
        f"{'ratio':>5} {'PG exec':>7}"
    )
    for result in results:
        p50, p95 = result["endpoint_ms"]
        b50, b95 = result["bare_ms"]
        log(
            f"{result['label']:50} {p50:8.1f} /{p95:8.1f} {b50:8.1f} /{b95:8.1f} "
            f"{result['ratio']:5.2f} {result['execution_ms']:7.1f}"
        )
        if show_plans:
            for line in _plan_summary(result["plan"]):
                log("    " + line)


def print_figures(results: list[dict[str, Any]]) -> None:
    first = results[0]["groups"][0]
    log("")
    log(f"Figures ({results[0]['label']}):")
    log(
        f"  cases {first['cases']}, oriented {first['oriented']}, waiting {first['waiting']}, "
        f"closed for another reason {first['closed_other']}"
    )
    log(
        f"  mature 6 weeks {first['mature_6w']}: {first['share_6w']:.1%} within 6 weeks; "
        f"mature 2 months {first['mature_2m']}: {first['share_2m']:.1%} within 2 months"
    )
    delay = first["delay"]
    log(
        f"  délai (oriented, 2-month mature cohort, n={delay['count']}): median "
        f"{delay['median']} d, p75 {delay['p75']} d, p90 {delay['p90']} d, mean {delay['mean']} d"
    )
    km = first["km"]
    log(
        f"  Kaplan-Meier: median {km['median']} d, p75 {km['p75']} d, p90 {km['p90']} d, "
        f"{km['share_6w']:.1%} within 42 d, {km['share_2m']:.1%} within 61 d"
    )
    stock = next(r for r in results if r["label"].startswith("stock"))["groups"]
    if stock:
        log(
            f"  stock today: {stock[0]['total']} waiting, by age {stock[0]['by_age']}, "
            f"overdue {stock[0]['overdue']}"
        )
    rio = next(r for r in results if r["label"].startswith("RIO"))["groups"][0]
    log(
        f"  RIO: {rio['convened']} convened, attendance {rio['attendance_rate']:.1%}, "
        f"no-show {rio['no_show_rate']:.1%}, {rio['share_via_rio']:.1%} of orientations after "
        f"a RIO, {rio['share_direct']:.1%} direct, {rio['reorientations']} reorientations"
    )


# --- main ---------------------------------------------------------------------------------


def has_data(url: str, cases: int) -> bool:
    try:
        with psycopg.connect(psycopg_url(url)) as connection:
            row = connection.execute("SELECT count(*) FROM orientation_cases").fetchone()
    except psycopg.Error:
        return False
    return row is not None and row[0] == cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument(
        "--database-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/spie_bench",
        help="a PostgreSQL database, created if missing, EMPTIED unless --keep",
    )
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20250101)
    parser.add_argument(
        "--keep", action="store_true", help="reuse the data of a previous run (same --cases)"
    )
    parser.add_argument(
        "--without-indexes",
        action="store_true",
        help="time with the migrations' indexes only (drops the bench's proposed indexes)",
    )
    parser.add_argument("--plans", action="store_true", help="print the query plans")
    parser.add_argument(
        "--pg-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a PostgreSQL setting for the benchmark database (e.g. jit=off); server "
        "defaults otherwise",
    )
    args = parser.parse_args(argv)
    url = args.database_url
    if not url.startswith("postgresql"):
        parser.error("the benchmark runs on PostgreSQL")
    from spie.clocks.today import paris_today

    today = paris_today()
    cohort_year = today.year - 1
    ensure_database(url)
    if args.keep and has_data(url, args.cases):
        log(f"reusing the {args.cases:,} cases of {make_url(url).database}")
    else:
        log(f"building {make_url(url).database}: migrations, reference data")
        build_schema(url)
        load_reference(url)
        log(f"generating {args.cases:,} cases over {args.years} years (COPY)")
        counts = generate(url, args.cases, args.years, today, args.seed)
        log(
            f"loaded in {counts['load_seconds']} s (+ VACUUM ANALYZE: "
            f"{counts['load_and_vacuum_seconds']} s): "
            + ", ".join(f"{k} {v:,}" for k, v in counts.items() if not k.startswith("load"))
        )
    if args.without_indexes:
        drop_indexes(url)
        log("bench indexes dropped: migrations' indexes only")
    else:
        seconds = create_indexes(url)
        log(f"bench indexes present ({', '.join(BENCH_INDEXES)}; {seconds:.1f} s)")
    apply_settings(url, args.pg_setting)
    results = time_endpoints(url, args.repeat, today, cohort_year)
    report(results, args.plans)
    print_figures(results)
    target = results[0]["endpoint_ms"][1]
    log("")
    log(
        f"target: délais for one cohort year and one CTM < 300 ms server time — p95 "
        f"{target:.1f} ms: {'met' if target < 300 else 'MISSED'}"
    )
    return 0


def apply_settings(url: str, settings: list[str]) -> None:
    """``ALTER DATABASE ... SET`` each setting (after a RESET ALL: runs do not inherit each
    other's settings), then print the ones that matter for these queries."""
    database = make_url(url).database
    with psycopg.connect(psycopg_url(url), autocommit=True) as connection:
        connection.execute(f'ALTER DATABASE "{database}" RESET ALL')
        for setting in settings:
            name, _sep, value = setting.partition("=")
            if not name.replace("_", "").isalnum():
                raise SystemExit(f"bad setting {setting!r}")
            connection.execute(f'ALTER DATABASE "{database}" SET {name} = {value}')
    with psycopg.connect(psycopg_url(url)) as connection:
        shown = []
        for name in (
            "server_version",
            "shared_buffers",
            "work_mem",
            "random_page_cost",
            "jit",
            "max_parallel_workers_per_gather",
        ):
            row = connection.execute(f"SHOW {name}").fetchone()
            shown.append(f"{name}={row[0] if row else '?'}")
    log("PostgreSQL: " + ", ".join(shown))


def load_reference(url: str) -> None:
    from spie.app import create_app
    from spie.db import unit_of_work
    from spie.territories.services import load_reference_data

    app = create_app(
        {"ENV": "testing", "SECRET_KEY": "b" * 48, "DATABASE_URL": url, "REDIS_URL": None}
    )
    with app.app_context(), unit_of_work():
        load_reference_data()


if __name__ == "__main__":
    sys.exit(main())
