"""Benchmark of the adviser's caseload, the timeline and the person file (QUALITY.md
"Adviser caseload").

Builds a PostgreSQL database with N persons followed by référents (150 each by default),
each with an orientation case and decision, a pathway, référent history, clocks, contracts,
steps and their transitions, appointments and alerts, loaded with COPY; then times, through
the Flask app (test client, Bearer token of each référent: authentication, parsing, SQL,
JSON — the whole server side, no network), for random référents and their people::

    .venv/bin/python -m bench.caseload --persons 1000000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/spie_bench4

- ``GET /api/v1/caseload`` (page of 50 sorted by next deadline, and the default page),
- ``GET /api/v1/persons/{id}/timeline``, ``GET /api/v1/persons/{id}`` (the person file) and
  ``GET /api/v1/persons/{id}/parcours`` (the pathway file),

beside a baseline measured in the same run: ``GET /api/v1/structures/{id}`` (authentication
+ one primary-key query). Target: p95 < 50 ms. See bench/README.md.
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
from sqlalchemy import event, text

from bench.common import build_schema, ensure_database, log, psycopg_url

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
TODAY = dt.date.today()  # noqa: DTZ011 - data relative to the run date, any zone will do
REFERENTS_PER_STRUCTURE = 30
PARCOURS = (("emploi", 0.45), ("socio_professionnel", 0.35), ("social", 0.20))
BULK_TABLES = (
    "agents",
    "agent_roles",
    "agent_territories",
    "persons",
    "sdd_periods",
    "orientation_cases",
    "orientation_decisions",
    "pathways",
    "referent_assignments",
    "pathway_clocks",
    "contracts",
    "steps",
    "step_transitions",
    "appointments",
    "alerts",
)
FIRST_NAMES = ("Camille", "Nora", "Karim", "Léa", "Yanis", "Inès", "Lucas", "Aïcha", "Hugo")
LAST_NAMES = ("Martin", "Bernard", "Dubois", "Haddad", "Nguyen", "Moreau", "Petit", "Diallo")
STEP_CHAIN = ("proposee", "planifiee", "en_cours", "terminee")


# --- database -----------------------------------------------------------------------------


def make_app(url: str) -> Any:
    from spie.app import create_app

    return create_app(
        {"ENV": "testing", "SECRET_KEY": "b" * 48, "DATABASE_URL": url, "REDIS_URL": None}
    )


def load_reference(url: str) -> dict[str, Any]:
    """Territories, communes, delay policies and the pathway seeds; returns what the
    generator needs (ids, policies)."""
    from sqlalchemy import select

    from spie.clocks.models import DelayPolicy
    from spie.clocks.services import seed_delay_policies
    from spie.db import db, unit_of_work
    from spie.parcours.models import Offer
    from spie.parcours.seeds import seed_all
    from spie.territories.models import Commune
    from spie.territories.services import load_reference_data

    app = make_app(url)
    with app.app_context():
        with unit_of_work():
            load_reference_data()
            seed_delay_policies()
            seed_all()
        communes: dict[int, str] = {}
        for commune in db.session.scalars(select(Commune).order_by(Commune.insee_code)):
            communes.setdefault(commune.territory_id, commune.insee_code)
        policies = [
            (
                p.clock.value,
                p.valid_from,
                p.valid_until,
                p.id,
                p.legal_limit,
                p.target,
                p.extended_limit,
            )
            for p in db.session.scalars(select(DelayPolicy))
        ]
        offers = [
            (o.id, o.title, o.theme.value, o.provider_structure_id, o.sensitive)
            for o in db.session.scalars(select(Offer).order_by(Offer.id))
        ]
        max_structure = db.session.scalar(text("SELECT coalesce(max(id), 0) FROM structures"))
        db.session.remove()
    return {
        "communes": communes,
        "policies": policies,
        "offers": offers,
        "first_structure": int(max_structure) + 1,
    }


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


def _v(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _line(*values: Any) -> str:
    return "\t".join(_v(v) for v in values) + "\n"


def _add(day: dt.date, duration: str) -> dt.date:
    amount, unit = int(duration[:-1]), duration[-1]
    if unit == "m":
        return day + relativedelta(months=amount)
    return day + dt.timedelta(days=amount * (7 if unit == "w" else 1))


def _at(day: dt.date, hour: int = 9) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


class Generator:
    """Deterministic data for N persons (``seed``), P per référent."""

    def __init__(self, persons: int, per_referent: int, seed: int, ref: dict[str, Any]) -> None:
        self.persons = persons
        self.per_referent = per_referent
        self.rng = random.Random(seed)
        self.ref = ref
        self.referents = math.ceil(persons / per_referent)
        self.structures = math.ceil(self.referents / REFERENTS_PER_STRUCTURE)
        self.territories = sorted(ref["communes"])
        self.clock_id = 0
        self.contract_id = 0
        self.step_id = 0
        self.transition_id = 0
        self.appointment_id = 0
        self.alert_id = 0
        self.assignment_id = 0

    def policy(self, kind: str, on: dt.date) -> tuple[int, str]:
        for clock, start, until, policy_id, legal, target, _ext in self.ref["policies"]:
            if clock == kind and start <= on and (until is None or on < until):
                return policy_id, legal or target
        raise RuntimeError(f"no policy {kind} on {on}")

    def structure_of(self, referent: int) -> int:
        return self.ref["first_structure"] + (referent - 1) // REFERENTS_PER_STRUCTURE

    def territory_of_structure(self, structure: int) -> int:
        return self.territories[(structure - self.ref["first_structure"]) % len(self.territories)]

    def staff(self, cursor: psycopg.Cursor[Any]) -> None:
        first = self.ref["first_structure"]
        _copy(
            cursor,
            "structures",
            "id, name, type, capacity, active, created_at, updated_at, version",
            (
                _line(
                    s,
                    f"Structure bench {s}",
                    "mdm",
                    REFERENTS_PER_STRUCTURE * 150,
                    True,
                    NOW,
                    NOW,
                    1,
                )
                for s in range(first, first + self.structures)
            ),
        )
        _copy(
            cursor,
            "structure_territories",
            "structure_id, territory_id",
            (
                _line(s, self.territory_of_structure(s))
                for s in range(first, first + self.structures)
            ),
        )
        _copy(
            cursor,
            "agents",
            "id, email, first_name, last_name, structure_id, caseload_capacity, active_from, "
            "created_at, updated_at, version",
            (
                _line(
                    a,
                    f"referent{a}@bench.spie",
                    "Référent",
                    f"Bench{a}",
                    self.structure_of(a),
                    self.per_referent,
                    dt.date(2015, 1, 1),
                    NOW,
                    NOW,
                    1,
                )
                for a in range(1, self.referents + 1)
            ),
        )
        _copy(
            cursor,
            "agent_roles",
            "agent_id, role",
            (_line(a, "referent") for a in range(1, self.referents + 1)),
        )
        _copy(
            cursor,
            "agent_territories",
            "agent_id, territory_id",
            (
                _line(a, self.territory_of_structure(self.structure_of(a)))
                for a in range(1, self.referents + 1)
            ),
        )

    def people(self, cursor: psycopg.Cursor[Any]) -> dict[str, int]:
        """Persons and their files, written in parallel streams table by table."""
        buffers: dict[str, list[str]] = {table: [] for table in BULK_TABLES[3:]}
        counts: dict[str, int] = dict.fromkeys(buffers, 0)
        columns = {
            "persons": "id, public, last_name, first_name, search_name, birth_date, sex, "
            "nir_verified, commune_insee, territory_id, bound_by_duties, current_structure_id, "
            "created_at, updated_at, version",
            "sdd_periods": "person_id, rsa_state, bound_by_duties, started_on, source",
            "orientation_cases": "id, person_id, status, clock_started_on, start_basis, "
            "clock_estimated, policy_id, legal_deadline, paused_days, territory_id, public, "
            "rio_absences, flagged_for_ep, decided_on, notified_on, closed_on, close_reason, "
            "created_at, updated_at, version",
            "orientation_decisions": "id, case_id, person_id, rank, decided_at, decided_on, "
            "parcours, structure_id, follows_proposal, via_rio, direct, notified_on, "
            "notification_channel, ft_sync_status",
            "pathways": "id, person_id, decision_id, parcours, structure_id, territory_id, "
            "public, opened_on, notified_on, entered_on, created_at, updated_at, version",
            "referent_assignments": "id, person_id, agent_id, structure_id, started_at, "
            "ended_at, reason, end_reason, handover_note",
            "pathway_clocks": "id, key, person_id, pathway_id, contract_id, kind, policy_id, "
            "started_on, due_on, extended, met_on",
            "contracts": "id, person_id, pathway_id, kind, signed_on, starts_on, ends_on, "
            "objectives, weekly_hours, created_at, updated_at, version",
            "steps": "id, pathway_id, person_id, offer_id, title, theme, provider_structure_id, "
            "sensitive, status, proposed_on, started_on, ended_on, outcome, bilan, notes, "
            "created_at, updated_at, version",
            "step_transitions": 'id, step_id, person_id, from_status, to_status, "on", at',
            "appointments": "id, person_id, pathway_id, agent_id, structure_id, scheduled_at, "
            "duration_minutes, theme, channel, status, notes, created_at, updated_at, version",
            "alerts": "id, person_id, kind, due_on, raised_at, agent_id, structure_id, "
            "source_type, source_id, created_at, updated_at, version",
        }

        def flush(force: bool = False) -> None:
            for table, lines in buffers.items():
                if lines and (force or len(lines) > 50_000):
                    counts[table] += _copy(cursor, table, columns[table], iter(lines))
                    lines.clear()

        started = time.perf_counter()
        for pid in range(1, self.persons + 1):
            self.person(pid, buffers)
            if pid % 20_000 == 0:
                flush()
            if pid % 200_000 == 0:
                log(f"  {pid:,} persons ({time.perf_counter() - started:.0f} s)")
        flush(force=True)
        return counts

    def person(self, pid: int, out: dict[str, list[str]]) -> None:
        rng = self.rng
        referent = (pid - 1) // self.per_referent + 1
        structure = self.structure_of(referent)
        territory = self.territory_of_structure(structure)
        first, last = rng.choice(FIRST_NAMES), f"{rng.choice(LAST_NAMES)}{pid}"
        birth = dt.date(1960, 1, 1) + dt.timedelta(days=rng.randrange(15_000))
        out["persons"].append(
            _line(
                pid,
                "brsa",
                last,
                first,
                f"{last.upper()} {first.upper()}",
                birth,
                rng.choice("12"),
                False,
                self.ref["communes"][territory],
                territory,
                True,
                structure,
                NOW,
                NOW,
                1,
            )
        )
        decided = TODAY - dt.timedelta(days=rng.randrange(20, 730))
        notified = decided + dt.timedelta(days=1)
        sdd_start = decided - dt.timedelta(days=rng.randrange(20, 60))
        out["sdd_periods"].append(_line(pid, "2", True, sdd_start, "bench"))
        policy_id, limit = self.policy("orientation", sdd_start)
        parcours = rng.choices([p for p, _ in PARCOURS], [w for _, w in PARCOURS])[0]
        out["orientation_cases"].append(
            _line(
                pid,
                pid,
                "notifiee",
                sdd_start,
                "ddsoudrodev",
                False,
                policy_id,
                _add(sdd_start, limit),
                0,
                territory,
                "brsa",
                0,
                False,
                decided,
                notified,
                notified,
                "oriented",
                NOW,
                NOW,
                1,
            )
        )
        out["orientation_decisions"].append(
            _line(
                pid,
                pid,
                pid,
                1,
                _at(decided),
                decided,
                parcours,
                structure,
                True,
                False,
                False,
                notified,
                "letter",
                "sent",
            )
        )
        entered = (
            notified + dt.timedelta(days=rng.randrange(3, 30)) if rng.random() < 0.85 else None
        )
        if entered and entered > TODAY:
            entered = None
        out["pathways"].append(
            _line(
                pid,
                pid,
                pid,
                parcours,
                structure,
                territory,
                "brsa",
                decided,
                notified,
                entered,
                NOW,
                NOW,
                1,
            )
        )
        # Référent history: 10 % had another référent of the structure before.
        assigned = decided + dt.timedelta(days=2)
        previous = referent - 1 if self.structure_of(referent - 1) == structure else referent + 1
        if rng.random() < 0.10 and previous <= self.referents and previous >= 1:
            switched = assigned + dt.timedelta(days=rng.randrange(10, 90))
            if switched < TODAY:
                self.assignment_id += 1
                out["referent_assignments"].append(
                    _line(
                        self.assignment_id,
                        pid,
                        previous,
                        structure,
                        _at(assigned),
                        _at(switched),
                        "Affectation",
                        "Rééquilibrage",
                        None,
                    )
                )
                assigned = switched
        self.assignment_id += 1
        out["referent_assignments"].append(
            _line(
                self.assignment_id,
                pid,
                referent,
                structure,
                _at(assigned),
                None,
                "Affectation",
                None,
                "Reprise du suivi, contrat à préparer.",
            )
        )
        # Clocks of the pathway.
        clocks = out["pathway_clocks"]

        def clock(
            kind: str,
            start: dt.date,
            met: dt.date | None,
            key: str,
            contract: int | None = None,
            due: dt.date | None = None,
        ) -> None:
            policy, duration = self.policy(kind, start if kind != "contract_renewal" else notified)
            self.clock_id += 1
            clocks.append(
                _line(
                    self.clock_id,
                    key,
                    pid,
                    pid,
                    contract,
                    kind,
                    policy,
                    start,
                    due or _add(start, duration),
                    False,
                    met,
                )
            )

        clock("referent_gap", decided, decided + dt.timedelta(days=2), f"r{pid}:gap:{decided}")
        clock("pathway_entry", notified, entered, f"p{pid}:pathway_entry")
        signed = None
        if entered and rng.random() < 0.75:
            signed = entered + dt.timedelta(days=rng.randrange(0, 40))
            if signed > TODAY:
                signed = None
        clock("contract", notified, signed, f"p{pid}:contract")
        if signed:
            self.contract_id += 1
            ends = signed + relativedelta(months=rng.choice((6, 6, 12))) - dt.timedelta(days=1)
            kind = (
                "contrat_engagement"
                if signed >= dt.date(2025, 1, 1)
                else ("cer_social" if parcours == "social" else "cer_professionnel")
            )
            out["contracts"].append(
                _line(
                    self.contract_id,
                    pid,
                    pid,
                    kind,
                    signed,
                    signed,
                    ends,
                    "Plan d'action : remobilisation, formation, recherche d'emploi.",
                    15,
                    NOW,
                    NOW,
                    1,
                )
            )
            clock(
                "contract_renewal",
                ends - dt.timedelta(days=30),
                None,
                f"c{self.contract_id}:contract_renewal",
                self.contract_id,
                ends,
            )
            if parcours == "social":
                clock(
                    "social_review",
                    signed,
                    None,
                    f"c{self.contract_id}:social_review",
                    self.contract_id,
                )
        # Steps from the catalogue, with their transitions.
        if entered:
            for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
                offer = rng.choice(self.ref["offers"])
                proposed = entered + dt.timedelta(days=rng.randrange(0, 60))
                if proposed > TODAY:
                    continue
                reached = rng.randrange(1, len(STEP_CHAIN) + 1)
                self.step_id += 1
                status = STEP_CHAIN[reached - 1]
                started_on = proposed + dt.timedelta(days=7) if reached >= 3 else None
                ended_on = proposed + dt.timedelta(days=60) if reached == 4 else None
                if ended_on and ended_on > TODAY:
                    status, ended_on, reached = "en_cours", None, 3
                out["steps"].append(
                    _line(
                        self.step_id,
                        pid,
                        pid,
                        offer[0],
                        offer[1],
                        offer[2],
                        offer[3],
                        offer[4],
                        status,
                        proposed,
                        started_on,
                        ended_on,
                        "achieved" if ended_on else None,
                        "Objectifs atteints." if ended_on else None,
                        "Note du référent",
                        NOW,
                        NOW,
                        1,
                    )
                )
                previous = None
                for index in range(reached):
                    day = proposed + dt.timedelta(days=(0, 3, 7, 60)[index])
                    self.transition_id += 1
                    out["step_transitions"].append(
                        _line(
                            self.transition_id,
                            self.step_id,
                            pid,
                            previous,
                            STEP_CHAIN[index],
                            min(day, TODAY),
                            _at(min(day, TODAY), 10),
                        )
                    )
                    previous = STEP_CHAIN[index]
        # Appointments: the honoured first one, follow-ups, a missed one, a planned one.
        appointments = out["appointments"]

        def appointment(when: dt.datetime, status: str, theme: str) -> None:
            self.appointment_id += 1
            appointments.append(
                _line(
                    self.appointment_id,
                    pid,
                    pid,
                    referent,
                    structure,
                    when,
                    45,
                    theme,
                    "in_person",
                    status,
                    "Entretien",
                    NOW,
                    NOW,
                    1,
                )
            )

        if entered:
            appointment(_at(entered, 10), "honoured", "premier_entretien")
            for _ in range(rng.randrange(0, 4)):
                day = entered + dt.timedelta(days=rng.randrange(10, 300))
                if day < TODAY:
                    appointment(_at(day, 14), "honoured", "suivi")
        if rng.random() < 0.15:
            day = notified + dt.timedelta(days=rng.randrange(5, 200))
            if day < TODAY:
                appointment(_at(day, 11), "missed", "point_etape")
                self.alert_id += 1
                out["alerts"].append(
                    _line(
                        self.alert_id,
                        pid,
                        "missed_appointment",
                        day,
                        _at(day, 18),
                        referent,
                        structure,
                        "appointment",
                        self.appointment_id,
                        NOW,
                        NOW,
                        1,
                    )
                )
        if rng.random() < 0.6:
            appointment(_at(TODAY + dt.timedelta(days=rng.randrange(1, 40)), 9), "planned", "suivi")


SECONDARY_INDEXES = """
SELECT i.indexname, i.indexdef FROM pg_indexes i
WHERE i.schemaname = 'public' AND i.tablename = ANY(%s)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
"""


def generate(url: str, persons: int, per_referent: int, seed: int) -> dict[str, Any]:
    """Bulk load as pg_restore does: foreign-key triggers off for the session (the rows are
    consistent by construction), secondary indexes dropped before COPY and rebuilt after."""
    ref = load_reference(url)
    started = time.perf_counter()
    with psycopg.connect(psycopg_url(url)) as connection, connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(SECONDARY_INDEXES, [list(BULK_TABLES)])
        indexes = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        generator = Generator(persons, per_referent, seed, ref)
        generator.staff(cursor)
        counts = generator.people(cursor)
        log(
            f"  COPY done: {time.perf_counter() - started:.0f} s; rebuilding "
            f"{len(indexes)} secondary indexes"
        )
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for _name, definition in indexes:
            cursor.execute(definition)
        for table in ("structures", "agents", *BULK_TABLES[3:]):
            if table == "sdd_periods" or "id" not in table_columns(cursor, table):
                continue
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        connection.commit()
    with psycopg.connect(psycopg_url(url), autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
    counts["load_seconds"] = round(time.perf_counter() - started)
    return counts


def table_columns(cursor: psycopg.Cursor[Any], table: str) -> set[str]:
    cursor.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s", [table]
    )
    return {row[0] for row in cursor.fetchall()}


def has_data(url: str, persons: int) -> bool:
    try:
        with psycopg.connect(psycopg_url(url)) as connection:
            row = connection.execute("SELECT count(*) FROM pathways").fetchone()
    except psycopg.Error:
        return False
    return bool(row and row[0] == persons)


# --- timing -------------------------------------------------------------------------------


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return statistics.median(ordered), p95


def time_endpoints(url: str, calls: int, per_referent: int, seed: int) -> list[dict[str, Any]]:
    from sqlalchemy import func, select

    from spie.agents.models import Agent
    from spie.auth.login import create_api_token
    from spie.db import commit, db

    app = make_app(url)
    rng = random.Random(seed + 1)
    with app.app_context():
        referents = db.session.scalar(select(func.max(Agent.id)))
        chosen = [rng.randrange(1, referents + 1) for _ in range(calls)]
        tokens: dict[int, str] = {}
        for agent_id in set(chosen):
            agent = db.session.get(Agent, agent_id)
            _token, tokens[agent_id] = create_api_token(agent, "bench", dt.timedelta(hours=2))
        people = {
            agent_id: (agent_id - 1) * per_referent + rng.randrange(1, per_referent + 1)
            for agent_id in set(chosen)
        }
        structures = {agent_id: db.session.get(Agent, agent_id).structure_id for agent_id in chosen}
        commit()
        db.session.remove()
    if db.engine is None:
        raise RuntimeError("no engine")
    statements: list[str] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def _count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    client = app.test_client()
    endpoints = [
        ("baseline: GET /structures/{id}", lambda a: f"/api/v1/structures/{structures[a]}"),
        (
            "GET /caseload (50, by deadline)",
            lambda a: "/api/v1/caseload?per_page=50&sort=next_deadline",
        ),
        ("GET /caseload (25, by name)", lambda a: "/api/v1/caseload"),
        ("GET /caseload?overdue=true", lambda a: "/api/v1/caseload?overdue=true"),
        ("GET /persons/{id}/timeline", lambda a: f"/api/v1/persons/{people[a]}/timeline"),
        (
            "GET /persons/{id} (person file)",
            lambda a: f"/api/v1/persons/{people[a]}?reason=caseload",
        ),
        ("GET /persons/{id}/parcours", lambda a: f"/api/v1/persons/{people[a]}/parcours"),
    ]
    results = []
    samples: dict[str, list[float]] = {label: [] for label, _ in endpoints}
    queries: dict[str, set[int]] = {label: set() for label, _ in endpoints}
    for warm in chosen[:10]:  # warm-up: caches, connection pool, token touch
        for _label, path in endpoints:
            client.get(path(warm), headers={"Authorization": f"Bearer {tokens[warm]}"})
    # Interleaved: every endpoint sees the same machine state, the ratio is what counts.
    for agent_id in chosen:
        headers = {"Authorization": f"Bearer {tokens[agent_id]}"}
        for label, path in endpoints:
            statements.clear()
            started = time.perf_counter()
            response = client.get(path(agent_id), headers=headers)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"{label}: {response.status_code} {response.get_data(True)}")
            samples[label].append(elapsed)
            queries[label].add(len(statements))
    baseline = percentiles(samples[endpoints[0][0]])
    for label, _path in endpoints:
        p50, p95 = percentiles(samples[label])
        results.append(
            {
                "label": label,
                "p50": p50,
                "p95": p95,
                "ratio_p50": p50 / baseline[0],
                "statements": sorted(queries[label]),
            }
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--per-referent", type=int, default=150)
    parser.add_argument("--calls", type=int, default=100, help="random référents timed")
    parser.add_argument("--seed", type=int, default=20250301)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="reuse the data of a previous run with the same --persons",
    )
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args(argv)
    url = args.database_url
    if not url.startswith("postgresql"):
        parser.error("the benchmark runs on PostgreSQL")
    ensure_database(url)
    if args.keep and has_data(url, args.persons):
        log(f"reusing {args.persons:,} persons")
    else:
        log("building the schema (Alembic migrations + create_all)")
        build_schema(url)
        log(f"generating {args.persons:,} persons, {args.per_referent} per référent")
        counts = generate(url, args.persons, args.per_referent, args.seed)
        log("rows: " + ", ".join(f"{k}={v:,}" for k, v in counts.items()))
    log(f"timing {args.calls} random référents (Flask test client, Bearer tokens)")
    results = time_endpoints(url, args.calls, args.per_referent, args.seed)
    log("")
    log(f"{'endpoint':36} {'p50 ms':>8} {'p95 ms':>8} {'p50/baseline':>13} {'SQL statements':>15}")
    for row in results:
        statements = "/".join(str(n) for n in row["statements"])
        log(
            f"{row['label']:36} {row['p50']:8.1f} {row['p95']:8.1f} {row['ratio_p50']:13.1f} "
            f"{statements:>15}"
        )
    worst = max(r["p95"] for r in results[1:])
    log("")
    log(f"target p95 < 50 ms: {'met' if worst < 50 else 'MISSED'} (worst p95 {worst:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
