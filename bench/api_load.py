"""Benchmark of the API under load (QUALITY.md "API under load").

Serves spie with gunicorn (2 sync workers, loopback) on a PostgreSQL database filled by the
demo loader, drives it with ``wrk`` cycling through mixed read requests of a working day,
each with the Bearer token of its agent (référents: caseload, person file, timeline,
pathway; a manager: orientation indicators, a référent's caseload; an admin: lists), and
compares its throughput with a bare Flask endpoint doing one indexed query
(``bench/bare_app.py``) served the same way, measured alternately in the same run::

    .venv/bin/python -m bench.api_load \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/spie_bench_api

Target: spie ≥ 50 % of the baseline's requests/s, 0 errors. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import ROOT, build_schema, ensure_database, log, psycopg_url

WRK = shutil.which("wrk") or "/usr/bin/wrk"
TOKEN_TTL = dt.timedelta(hours=2)
TARGET_RATIO = 0.5


@dataclass
class Request:
    label: str
    path: str
    token: str | None = None


# --- data -----------------------------------------------------------------------------------


def app_environment(url: str) -> dict[str, str]:
    """What spie needs to run outside the tests (spie/config.py): development environment,
    the database, a long random secret. No Redis: rate-limit counters in memory. Only the
    login endpoints carry a limit (``SPIE_LOGIN_RATE_LIMIT``, the benchmark never calls them;
    raised anyway so that nothing the benchmark does can hit a 429)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPIE_")}
    env.update(
        {
            "SPIE_ENV": "development",
            "SPIE_DATABASE_URL": url,
            "SPIE_SECRET_KEY": secrets.token_urlsafe(48),
            "SPIE_LOGIN_RATE_LIMIT": "1000000 per second",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("SECRET_KEY", None)
    return env


def make_app(url: str) -> Any:
    from spie.app import create_app

    return create_app(
        {"ENV": "development", "SECRET_KEY": secrets.token_urlsafe(48), "DATABASE_URL": url}
    )


def load_data(url: str, persons: int, seed: int) -> dict[str, Any]:
    """The demo Métropole, through the app's own loader (``flask spie demo load``)."""
    import psycopg

    from spie.db import db, unit_of_work
    from spie.demo.generator import load_demo

    app = make_app(url)
    started = time.perf_counter()
    with app.app_context():
        with unit_of_work():
            summary = load_demo(persons=persons, seed=seed)
        db.session.remove()
    seconds = time.perf_counter() - started
    with psycopg.connect(psycopg_url(url), autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
    counts: dict[str, Any] = summary["counts"]
    counts["load_seconds"] = round(seconds, 1)
    return counts


def has_data(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(psycopg_url(url)) as connection:
            row = connection.execute("SELECT count(*) FROM persons").fetchone()
    except psycopg.Error:
        return False
    return bool(row and row[0])


def build_requests(
    url: str, referents: int, people_per_referent: int, seed: int
) -> tuple[list[Request], dict[str, Any]]:
    """Tokens for the référents with the largest caseloads, a territorial manager and an
    admin, and the requests of their day (shuffled, deterministic)."""
    from sqlalchemy import func, select

    from spie.agents.models import Agent, AgentRole, Role
    from spie.auth.login import create_api_token
    from spie.db import commit, db
    from spie.referent.models import ReferentAssignment
    from spie.structures.models import Structure
    from spie.territories.models import Territory

    rng = random.Random(seed)
    app = make_app(url)
    requests: list[Request] = []
    with app.app_context():
        active = (
            select(ReferentAssignment.agent_id, func.count().label("n"))
            .where(ReferentAssignment.ended_at.is_(None))
            .group_by(ReferentAssignment.agent_id)
            .subquery()
        )
        rows = db.session.execute(
            select(Agent, active.c.n)
            .join(active, active.c.agent_id == Agent.id)
            .join(AgentRole, AgentRole.agent_id == Agent.id)
            .where(AgentRole.role == Role.REFERENT, Agent.active_until.is_(None))
            .order_by(active.c.n.desc(), Agent.id)
            .limit(referents)
        ).all()
        if len(rows) < referents:
            raise RuntimeError(f"only {len(rows)} référents with a caseload, {referents} wanted")

        def territories_of(agent: Agent) -> set[int]:
            """A référent's CTMs: their own, else their structure's (the demo's case)."""
            structure = db.session.get(Structure, agent.structure_id)
            own = agent.territories or (structure.territories if structure else [])
            return {t.id for t in own}

        referent_territories = {t for agent, _n in rows for t in territories_of(agent)}

        def with_role(role: Role) -> list[Agent]:
            return list(
                db.session.scalars(
                    select(Agent)
                    .join(AgentRole, AgentRole.agent_id == Agent.id)
                    .where(AgentRole.role == role, Agent.active_until.is_(None))
                    .order_by(Agent.id)
                )
            )

        all_territories = db.session.scalar(select(func.count(Territory.id)))
        # A territorial manager (not the Métropole-wide one) of a chosen référent's CTM.
        managers = [
            m
            for m in with_role(Role.MANAGER)
            if len(m.territories) < (all_territories or 0)
            and {t.id for t in m.territories} & referent_territories
        ] or with_role(Role.MANAGER)
        manager = managers[0]
        admin = with_role(Role.ADMIN)[0]
        manager_territory = sorted(
            t.id for t in manager.territories if t.id in referent_territories
        ) or sorted(t.id for t in manager.territories)
        territory_id = manager_territory[0]
        managed = [agent for agent, _n in rows if territory_id in territories_of(agent)]
        today = dt.date.today()  # noqa: DTZ011 - the app's default is Paris' today, close enough
        last_year = today.year - 1

        simple: list[Request] = []

        def token(agent: Agent) -> str:
            """A Bearer token, and the agent's structure read with it (the breakdown's
            "authentication + one primary-key query" request)."""
            _token, value = create_api_token(agent, "bench api_load", TOKEN_TTL)
            path = f"/api/v1/structures/{agent.structure_id}"
            simple.append(Request("GET /structures/{id}", path, value))
            return value

        agents: dict[str, Any] = {"referents": [], "manager": None, "admin": None}
        for agent, caseload in rows:
            bearer = token(agent)
            agents["referents"].append({"id": agent.id, "caseload": int(caseload)})
            people = list(
                db.session.scalars(
                    select(ReferentAssignment.person_id)
                    .where(
                        ReferentAssignment.agent_id == agent.id,
                        ReferentAssignment.ended_at.is_(None),
                    )
                    .order_by(ReferentAssignment.person_id)
                )
            )
            for person_id in rng.sample(people, min(people_per_referent, len(people))):
                requests += [
                    Request("GET /persons/{id}", f"/api/v1/persons/{person_id}?reason=caseload"),
                    Request("GET /persons/{id}/timeline", f"/api/v1/persons/{person_id}/timeline"),
                    Request("GET /persons/{id}/parcours", f"/api/v1/persons/{person_id}/parcours"),
                ]
                for request in requests[-3:]:
                    request.token = bearer
            requests += [
                Request("GET /caseload", "/api/v1/caseload", bearer),
                Request(
                    "GET /caseload (50, by deadline)",
                    "/api/v1/caseload?per_page=50&sort=next_deadline",
                    bearer,
                ),
                Request("GET /caseload?overdue=true", "/api/v1/caseload?overdue=true", bearer),
                Request("GET /caseload", "/api/v1/caseload?page=2", bearer),
            ]
        bearer = token(manager)
        agents["manager"] = {
            "id": manager.id,
            "territories": sorted(t.id for t in manager.territories),
        }
        indicators = "/api/v1/indicators/orientation"
        requests += [
            Request(
                "GET /indicators/orientation",
                f"{indicators}?territory_id={territory_id}&cohort_from={last_year}-01"
                f"&cohort_to={last_year}-12",
                bearer,
            ),
            Request(
                "GET /indicators/orientation",
                f"{indicators}?territory_id={territory_id}&group_by=month",
                bearer,
            ),
            Request(
                "GET /indicators/orientation/stock",
                f"{indicators}/stock?territory_id={territory_id}",
                bearer,
            ),
            Request(
                "GET /indicators/orientation/rio",
                f"{indicators}/rio?territory_id={territory_id}",
                bearer,
            ),
            Request("GET /structures", f"/api/v1/structures?territory_id={territory_id}", bearer),
        ]
        requests += [
            Request(
                "GET /caseload?agent_id= (manager)", f"/api/v1/caseload?agent_id={a.id}", bearer
            )
            for a in managed[:2]
        ]
        bearer = token(admin)
        agents["admin"] = {"id": admin.id}
        requests += [
            Request("GET /structures", "/api/v1/structures", bearer),
            Request("GET /structures", "/api/v1/structures?page=2&per_page=20", bearer),
            Request("GET /territories", "/api/v1/territories", bearer),
            Request("GET /persons", "/api/v1/persons?per_page=25", bearer),
            Request("GET /indicators/orientation", f"{indicators}?group_by=ctm", bearer),
        ]
        commit()
        db.session.remove()
    rng.shuffle(requests)
    agents["simple"] = simple
    return requests, agents


def baseline_requests(url: str, count: int, seed: int) -> list[Request]:
    import psycopg

    with psycopg.connect(psycopg_url(url)) as connection:
        ids = [row[0] for row in connection.execute("SELECT id FROM persons").fetchall()]
    rng = random.Random(seed + 1)
    return [Request("GET /person?id=", f"/person?id={rng.choice(ids)}") for _ in range(count)]


# --- servers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    name: str
    app: str
    env: dict[str, str]
    workers: int
    log_path: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    _log: Any = field(default=None, repr=False)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, probe: str) -> None:
        self.port = free_port()
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - fixed command line
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(self.workers),
                "--worker-class",
                "sync",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--chdir",
                str(ROOT),
                "--log-level",
                "warning",
                self.app,
            ],
            env=self.env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole
        )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name}: gunicorn exited\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base + probe, timeout=5) as answer:  # noqa: S310
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: no answer on {probe}\n{self.log_tail()}")
            time.sleep(0.3)
        log(f"  {self.name}: gunicorn pid {self.process.pid} on {self.base}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)  # graceful: the master stops its workers
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            except ProcessLookupError:
                pass
        if self._log is not None:
            self._log.close()
            self._log = None


def check_requests(server: Server, requests: list[Request]) -> None:
    """Every request once through the server: all must answer 200."""
    failures = []
    for request in requests:
        headers = {"Authorization": f"Bearer {request.token}"} if request.token else {}
        call = urllib.request.Request(server.base + request.path, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(call, timeout=60) as answer:  # noqa: S310
                status, body = answer.status, b""
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read()
        if status != 200:
            failures.append(f"{status} {request.path}: {body[:300]!r}")
    if failures:
        raise RuntimeError(
            f"{server.name}: {len(failures)} of {len(requests)} requests failed before the load:\n"
            + "\n".join(failures[:20])
        )


# --- load -----------------------------------------------------------------------------------


LUA = """
-- Written by bench/api_load.py: cycles through the requests, each with its own token.
local requests = {
__REQUESTS__
}
local threads = {}
local n = 0

function setup(thread)
  thread:set("id", n)
  n = n + 1
  table.insert(threads, thread)
end

function init(args)
  counter = id * 7919
  statuses = {}
end

function request()
  counter = counter + 1
  local r = requests[(counter % #requests) + 1]
  if r[2] then
    return wrk.format("GET", r[1], {["Authorization"] = r[2]})
  end
  return wrk.format("GET", r[1])
end

function response(status, headers, body)
  if status ~= 200 then
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    local seen = thread:get("statuses")
    if seen then
      for status, count in pairs(seen) do
        io.write(string.format("status %d: %d\\n", status, count))
      end
    end
  end
end
"""


def lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_script(requests: list[Request], path: Path) -> None:
    lines = []
    for r in requests:
        auth = lua_string(f"Bearer {r.token}") if r.token else "nil"
        lines.append(f"  {{{lua_string(r.path)}, {auth}}},")
    path.write_text(LUA.replace("__REQUESTS__", "\n".join(lines)))


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip())
    if not match:
        raise ValueError(f"latency {value!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse_wrk(output: str) -> dict[str, Any]:
    result: dict[str, Any] = {"non_2xx_3xx": 0, "socket_errors": 0, "statuses": {}}
    if found := re.search(r"Requests/sec:\s+([\d.]+)", output):
        result["rps"] = float(found[1])
    else:
        raise RuntimeError(f"wrk output not understood:\n{output}")
    if found := re.search(r"(\d+) requests in ([\d.]+\w+)", output):
        result["requests"] = int(found[1])
    for pct in ("50", "75", "90", "99"):
        if found := re.search(rf"^\s+{pct}%\s+(\S+)", output, re.MULTILINE):
            result[f"p{pct}_ms"] = _ms(found[1])
    if found := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        result["non_2xx_3xx"] = int(found[1])
    if found := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        result["socket_errors"] = sum(int(n) for n in found.groups())
        result["socket_detail"] = found[0]
    for status, count in re.findall(r"^status (\d+): (\d+)$", output, re.MULTILINE):
        result["statuses"][status] = result["statuses"].get(status, 0) + int(count)
    result["errors"] = result["non_2xx_3xx"] + result["socket_errors"]
    return result


def run_wrk(
    server: Server, script: Path, threads: int, connections: int, seconds: int
) -> dict[str, Any]:
    command = [
        WRK,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        server.base,
    ]
    completed = subprocess.run(  # noqa: S603 - fixed command line
        command, capture_output=True, text=True, check=False, timeout=seconds + 60
    )
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr}")
    result = parse_wrk(completed.stdout)
    result["raw"] = completed.stdout
    return result


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


# --- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--persons", type=int, default=3000, help="demo persons (default 3000)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true", help="reuse the demo data of a previous run")
    parser.add_argument("--referents", type=int, default=6, help="référents with a token")
    parser.add_argument("--people", type=int, default=8, help="people read per référent")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--duration", type=int, default=20, help="seconds per measure")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of warm-up per server")
    parser.add_argument("--rounds", type=int, default=2, help="measures of each, in turn")
    parser.add_argument(
        "--no-breakdown",
        dest="breakdown",
        action="store_false",
        help="measure only the baseline and the mix (not /healthz and /structures/{id})",
    )
    parser.add_argument("--show-wrk", action="store_true", help="print wrk's own output")
    args = parser.parse_args(argv)
    url = args.database_url
    if not url.startswith("postgresql"):
        parser.error("the benchmark runs on PostgreSQL")
    if not Path(WRK).exists():
        parser.error("wrk is not installed (apt-get install wrk)")

    ensure_database(url)
    if args.keep and has_data(url):
        log("reusing the demo data")
    else:
        log("building the schema (Alembic migrations)")
        build_schema(url)
        log(f"loading the demo Métropole ({args.persons:,} persons, seed {args.seed})")
        counts = load_data(url, args.persons, args.seed)
        log("  " + ", ".join(f"{k}={v:,}" for k, v in counts.items()))
    requests, agents = build_requests(url, args.referents, args.people, args.seed)
    mix: dict[str, int] = {}
    for request in requests:
        mix[request.label] = mix.get(request.label, 0) + 1
    log(
        f"{len(requests)} requests, {len(agents['referents'])} référents (caseloads "
        f"{', '.join(str(r['caseload']) for r in agents['referents'])}), manager "
        f"{agents['manager']['id']} (territories {agents['manager']['territories']}), "
        f"admin {agents['admin']['id']}"
    )
    for label, count in sorted(mix.items(), key=lambda item: -item[1]):
        log(f"  {count:4} × {label}")
    baseline = baseline_requests(url, 1000, args.seed)

    workdir = Path(tempfile.mkdtemp(prefix="spie-api-load-"))
    spie_env = app_environment(url)
    bare_env = {k: v for k, v in os.environ.items() if not k.startswith("SPIE_")}
    bare_env["BENCH_BARE_DATABASE_URL"] = psycopg_url(url)
    servers = {
        "baseline": Server(
            "baseline", "bench.bare_app:app", bare_env, args.workers, workdir / "baseline.log"
        ),
        "spie": Server("spie", "wsgi:app", spie_env, args.workers, workdir / "spie.log"),
    }
    # name -> (server, requests): the target pair, then the breakdown (same spie server).
    measures: dict[str, tuple[str, list[Request]]] = {
        "baseline": ("baseline", baseline),
        "spie": ("spie", requests),
    }
    if args.breakdown:
        measures["spie /healthz"] = ("spie", [Request("GET /healthz", "/healthz")])
        measures["spie /structures/{id}"] = ("spie", agents["simple"])
    scripts = {}
    for index, (name, (_server, listed)) in enumerate(measures.items()):
        scripts[name] = workdir / f"requests{index}.lua"
        write_script(listed, scripts[name])
    rounds: list[dict[str, Any]] = []
    load_before = load_average()
    try:
        log(f"starting gunicorn ({args.workers} sync workers each)")
        servers["baseline"].start(baseline[0].path)
        servers["spie"].start("/healthz")
        log("checking every request once")
        check_requests(servers["baseline"], baseline[:50])
        check_requests(servers["spie"], requests + agents["simple"])
        for name, (served, _listed) in measures.items():
            run_wrk(servers[served], scripts[name], args.threads, args.connections, args.warmup)
        log(
            f"load: wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
            f"{args.rounds} rounds ({', '.join(measures)} in turn); load average before "
            + " ".join(f"{x:.2f}" for x in load_before)
        )
        for index in range(args.rounds):
            row: dict[str, Any] = {"round": index + 1}
            for name, (served, _listed) in measures.items():
                result = run_wrk(
                    servers[served], scripts[name], args.threads, args.connections, args.duration
                )
                if args.show_wrk:
                    log(result["raw"])
                result.pop("raw")
                result["load_average"] = round(load_average()[0], 2)
                row[name] = result
                log(
                    f"  round {index + 1} {name:22} {result['rps']:8.1f} req/s  "
                    f"p50 {result.get('p50_ms', 0):7.1f} ms  p99 {result.get('p99_ms', 0):7.1f} ms"
                    f"  errors {result['errors']}"
                    + (f" {result['statuses']}" if result["statuses"] else "")
                    + f"  (load {result['load_average']:.2f})"
                )
            row["ratio"] = row["spie"]["rps"] / row["baseline"]["rps"]
            rounds.append(row)
        for server in servers.values():
            if "Traceback" in server.log_path.read_text(errors="replace"):
                log(f"{server.name}: tracebacks in the log (last lines):\n{server.log_tail()}")
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    load_after = load_average()

    def mean(name: str, key: str) -> float:
        return sum(r[name][key] for r in rounds) / len(rounds)

    base_rps = mean("baseline", "rps")
    ratio = mean("spie", "rps") / base_rps
    errors = {name: sum(r[name]["errors"] for r in rounds) for name in measures}
    log("")
    log(f"{'':24} {'req/s':>9} {'/ baseline':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name in measures:
        log(
            f"{name:24} {mean(name, 'rps'):9.1f} {mean(name, 'rps') / base_rps:10.3f} "
            f"{mean(name, 'p50_ms'):8.1f} {mean(name, 'p99_ms'):8.1f} {errors[name]:7}"
        )
    log(
        f"ratio spie / baseline: {ratio:.3f} (rounds: "
        + ", ".join(f"{r['ratio']:.3f}" for r in rounds)
        + f"); target ≥ {TARGET_RATIO}: {'met' if ratio >= TARGET_RATIO else 'MISSED'}; "
        f"spie errors {errors['spie']} (target 0): {'met' if errors['spie'] == 0 else 'MISSED'}"
    )
    log(
        "load average before "
        + " ".join(f"{x:.2f}" for x in load_before)
        + ", after "
        + " ".join(f"{x:.2f}" for x in load_after)
    )
    summary = {
        "persons": args.persons,
        "requests_in_mix": len(requests),
        "mix": mix,
        "workers": args.workers,
        "wrk": {
            "threads": args.threads,
            "connections": args.connections,
            "duration_s": args.duration,
            "rounds": args.rounds,
        },
        "baseline_rps": round(base_rps, 1),
        "spie_rps": round(mean("spie", "rps"), 1),
        "ratio": round(ratio, 3),
        "baseline_p50_ms": round(mean("baseline", "p50_ms"), 2),
        "baseline_p99_ms": round(mean("baseline", "p99_ms"), 2),
        "spie_p50_ms": round(mean("spie", "p50_ms"), 2),
        "spie_p99_ms": round(mean("spie", "p99_ms"), 2),
        "errors": errors,
        "target_met": ratio >= TARGET_RATIO and errors["spie"] == 0,
        "breakdown": {
            name: {
                "rps": round(mean(name, "rps"), 1),
                "ratio": round(mean(name, "rps") / base_rps, 3),
                "p50_ms": round(mean(name, "p50_ms"), 2),
                "p99_ms": round(mean(name, "p99_ms"), 2),
            }
            for name in measures
            if name not in ("baseline", "spie")
        },
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in load_after],
        },
        "rounds": rounds,
    }
    log(json.dumps(summary, indent=2, ensure_ascii=False))
    return 0 if summary["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
