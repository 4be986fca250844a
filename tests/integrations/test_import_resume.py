"""Killing an import with SIGKILL mid-file, then restarting it, gives the database a clean
import gives (PostgreSQL; with Redis, also a killed rq worker and its requeued job).

Real processes on real databases of their own (the tests' transaction isolation would hide
their work): ``<test database>_resume`` and ``<test database>_clean``, migrated here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL
from tests.integrations.import_helpers import SNAPSHOT_QUERIES

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL,
    reason="needs PostgreSQL (SPIE_TEST_DATABASE_URL): SQLite has no concurrent writer to "
    "kill, no advisory locks and no separate database for a subprocess",
)

# Row count and MD5 of the rows in a stable order: the content checksum of a table.
AGGREGATE = "count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '')"
HOUSEHOLDS = 1500
BATCH = 20

SETUP = """
import sys
from spie.app import create_app
from spie.db import Base, db, unit_of_work
import spie.models  # noqa: F401
app = create_app({"ENV": "development", "DATABASE_URL": sys.argv[1]})
with app.app_context():
    from alembic import command
    from spie.cli import alembic_config
    command.upgrade(alembic_config(sys.argv[1]), "head")
    Base.metadata.create_all(db.engine, checkfirst=True)
    from spie.clocks.services import seed_delay_policies
    from spie.territories.services import load_reference_data
    with unit_of_work():
        load_reference_data()
        seed_delay_policies()
"""


def _fresh_database(suffix: str) -> str:
    assert TEST_DATABASE_URL is not None
    url = make_url(TEST_DATABASE_URL)
    name = f"{url.database}_{suffix}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :n AND pid <> pg_backend_pid()"
            ),
            {"n": name},
        )
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    target = url.set(database=name).render_as_string(hide_password=False)
    subprocess.run(
        [sys.executable, "-c", SETUP, target],
        cwd=ROOT,
        check=True,
        env=_env(target),
        capture_output=True,
    )
    return target


def _env(database_url: str, redis_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SPIE_", "PYTEST_")) and key != "SECRET_KEY"
    }
    env.update(SPIE_ENV="development", SPIE_DATABASE_URL=database_url, **extra)
    if redis_url:
        env["SPIE_REDIS_URL"] = redis_url
    return env


def _flask(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "wsgi", "spie", *args]


def _import(database_url: str, path: Path, **env: str) -> dict[str, Any]:
    """Run the CLI import to its end (retrying while the killed session's lock lingers)."""
    for _ in range(20):
        done = subprocess.run(
            _flask("import", "caf", str(path), "--batch-size", str(BATCH), "--json"),
            cwd=ROOT,
            env=_env(database_url, **env),
            capture_output=True,
            text=True,
            timeout=600,
        )
        report: dict[str, Any] = json.loads(done.stdout)
        if report["status"] == "done":
            return report
        assert report.get("error", {}).get("code") == "ImportBusyError", done.stdout + done.stderr
        time.sleep(0.5)
    raise AssertionError("the import never got its lock back")


def _scalar(url: str, sql: str, **params: Any) -> Any:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.scalar(text(sql), params)
    finally:
        engine.dispose()


def _wait_for_checkpoint(url: str, process: subprocess.Popen[Any], at_least: int) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, "the import ended before it could be killed"
        position = _scalar(url, "SELECT max(last_committed_position) FROM import_runs") or 0
        if position >= at_least:
            return int(position)
        time.sleep(0.02)
    raise AssertionError("no checkpoint appeared")


def _empty_imports_queue(redis_url: str | None) -> None:
    """Jobs left by an earlier run of this test would run against our new database."""
    from redis import Redis
    from rq import Queue

    connection = Redis.from_url(redis_url or "")
    try:
        Queue("imports", connection=connection).empty()
    finally:
        connection.close()


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:  # not a group leader (or gone): the process alone
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in children.read_text().split()] if children.exists() else []


def _tables(url: str) -> dict[str, Any]:
    """Counts and content checksums of the imported tables, by natural keys."""
    engine = create_engine(url)
    result: dict[str, Any] = {}
    try:
        with engine.connect() as connection:
            for name, sql in SNAPSHOT_QUERIES.items():
                checksum = f"SELECT {AGGREGATE} FROM ({sql}) AS t"  # noqa: S608 - constant queries
                result[name] = connection.scalar(text(checksum))
            for table in (
                "persons",
                "households",
                "sdd_periods",
                "orientation_cases",
                "import_rejects",
                "audit_events",
            ):
                statement = f"SELECT count(*) FROM {table}"  # noqa: S608 - our constants
                result[f"count:{table}"] = connection.scalar(text(statement))
    finally:
        engine.dispose()
    return result


@pytest.fixture(scope="module")
def flow_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bench.caf_flowgen import write_flow

    path = tmp_path_factory.mktemp("resume") / "RSABEM_vrsb0801_2026-10-31.xml"
    write_flow(path, HOUSEHOLDS, seed=7)
    return path


@pytest.fixture(scope="module")
def prefix(worker_id: str) -> str:
    """Database names per xdist worker (two workers never share one)."""
    return "" if worker_id == "master" else f"{worker_id}_"


@pytest.fixture(scope="module")
def clean(flow_file: Path, prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    url = _fresh_database(f"{prefix}clean")
    report = _import(url, flow_file)
    return report, _tables(url)


def test_overlapped_commits_give_what_committing_each_batch_in_turn_gives(flow_file, clean, prefix):
    """The clean import commits each batch while it reads the next, the foreign keys checked at
    those commits; this one waits for each commit and checks at each statement."""
    url = _fresh_database(f"{prefix}sequential")
    report = _import(url, flow_file, SPIE_IMPORT_OVERLAP_COMMITS="0")
    clean_report, clean_tables = clean
    assert report["counts"] == clean_report["counts"]
    assert report["counts"]["created"] > 0
    assert _tables(url) == clean_tables


def _flow_of_parts(path: Path, parts: list[tuple[int, int, int]], dtref: dt.date) -> None:
    """One flow made of households ``(first, count, seed)`` of the generator, in that order."""
    from bench.caf_flowgen import iter_flow

    head = ""
    bodies: list[str] = []
    for first, count, seed in parts:
        text = "".join(iter_flow(count, seed=seed, first=first, dtref=dtref))
        start = text.index("<InfosFoyerRSA>")
        end = text.rindex("</InfosFoyerRSA>") + len("</InfosFoyerRSA>")
        head = head or text[:start]
        bodies.append(text[start:end] + "\n")
    total = sum(count for _first, count, _seed in parts)
    trailer = (
        f"<TransmissionFlux>\n<NBTOTDOSRSATRANSM>{total}</NBTOTDOSRSATRANSM>\n"
        "</TransmissionFlux>\n</Racine>\n"
    )
    path.write_bytes((head + "".join(bodies) + trailer).encode("iso-8859-1"))


def test_overlapped_commits_with_in_process_parsing_and_fingerprint_bumps(prefix, tmp_path_factory):
    """More households than a window of the byte scanner (2,000), so that its fingerprint
    lookups and date bumps for the second window come between two batches, while a COMMIT is
    in flight: a stock parsed in the importing process (its lookups on the importer's
    connection wait for the COMMIT), then a newer flow through the child whose first window
    changed (batches committed) and whose second window has the same bytes (skipped, their
    date bumped by the importer on receiving the child's message)."""
    households, changed = 2_600, 1_300
    folder = tmp_path_factory.mktemp("bumps")
    stock = folder / "RSABEM_vrsb0801_2026-10-31.xml"
    _flow_of_parts(stock, [(1, households, 11)], dt.date(2026, 10, 31))
    url = _fresh_database(f"{prefix}bumps")
    first = _import(url, stock, SPIE_IMPORT_PARSE_PROCESS="0")
    assert first["counts"]["read"] == households
    assert first["counts"]["created"] == households
    day = dt.date(2026, 11, 30)
    newer = folder / "RSABEM_vrsb0801_2026-11-30.xml"
    _flow_of_parts(newer, [(1, changed, 12), (changed + 1, households - changed, 11)], day)
    report = _import(url, newer, SPIE_IMPORT_PARSE_PROCESS="1")
    assert report["status"] == "done"
    assert report["counts"]["updated"] == changed
    assert report["counts"]["unchanged"] == households - changed
    # Every household carries the new date: written, or skipped and bumped.
    dated = _scalar(url, "SELECT count(*) FROM households WHERE last_flow_on = :d", d=day)
    assert dated == households


def test_a_scanner_mismatch_while_a_commit_is_in_flight_restarts_cleanly(prefix, tmp_path_factory):
    """Household 300 holds a processing instruction that the byte scanner takes for a
    household: the reader and the parser disagree on the keys (``ScanMismatchError``) after
    many batches were committed, one of them in flight. The run waits for that COMMIT,
    rolls back and goes on from its checkpoint without the scanner: every household once."""
    households = 400
    folder = tmp_path_factory.mktemp("mismatch")
    path = folder / "RSABEM_vrsb0801_2026-10-31.xml"
    _flow_of_parts(path, [(1, households, 13)], dt.date(2026, 10, 31))
    data = path.read_bytes()
    at = -1
    for _ in range(300):
        at = data.index(b"<InfosFoyerRSA>", at + 1)
    at += len(b"<InfosFoyerRSA>")
    # The scanner cuts a household 301 out of the instruction (matricule 9999999...), the
    # parser sees none there: their 301st households differ.
    fake = b"<?pi </InfosFoyerRSA><InfosFoyerRSA><MATRICULE>999999900000000</MATRICULE>"
    path.write_bytes(data[:at] + b"\n" + fake + b"</InfosFoyerRSA>?>" + data[at:])
    url = _fresh_database(f"{prefix}mismatch")
    report = _import(url, path)
    assert report["counts"]["read"] == households
    assert report["counts"]["created"] == households
    assert _scalar(url, "SELECT count(*) FROM households") == households
    assert _scalar(url, "SELECT count(DISTINCT caf_matricule) FROM households") == households
    # It did go through the mismatch: the run finished without the scanner.
    assert _scalar(url, "SELECT details::jsonb->>'no_scan' FROM import_runs") == "true"


def test_an_import_killed_mid_file_then_restarted_equals_a_clean_import(flow_file, clean, prefix):
    url = _fresh_database(f"{prefix}resume")
    process = subprocess.Popen(
        _flask("import", "caf", str(flow_file), "--batch-size", str(BATCH), "--json"),
        cwd=ROOT,
        env=_env(url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        position = _wait_for_checkpoint(url, process, BATCH)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert 0 < position < HOUSEHOLDS
    assert _scalar(url, "SELECT status FROM import_runs") == "running"
    killed_at = _scalar(url, "SELECT last_committed_position FROM import_runs")
    assert killed_at < HOUSEHOLDS

    report = _import(url, flow_file)
    assert report["run_id"] == 1  # the same run, resumed
    clean_report, clean_tables = clean
    assert report["counts"] == clean_report["counts"]
    assert _tables(url) == clean_tables


@pytest.mark.skipif(not TEST_REDIS_URL, reason="needs Redis (SPIE_TEST_REDIS_URL) for rq")
def test_a_killed_rq_worker_then_requeued_job_equals_a_clean_import(flow_file, clean, prefix):
    url = _fresh_database(f"{prefix}rq")
    redis_url = TEST_REDIS_URL
    _empty_imports_queue(redis_url)
    enqueued = subprocess.run(
        _flask("import", "caf", str(flow_file), "--batch-size", str(BATCH), "--enqueue", "--json"),
        cwd=ROOT,
        env=_env(url, redis_url),
        capture_output=True,
        text=True,
        check=True,
    )
    run_id = json.loads(enqueued.stdout)["run_id"]
    worker = subprocess.Popen(
        _flask("worker", "--queue", "imports"),
        cwd=ROOT,
        env=_env(url, redis_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for_checkpoint(url, worker, BATCH)
        # rq runs the job in a forked work horse with its own process group: kill both,
        # as when the machine dies.
        for pid in _children(worker.pid):
            _kill_group(pid)
    finally:
        _kill_group(worker.pid)
        worker.wait(timeout=30)
    assert _scalar(url, "SELECT status FROM import_runs WHERE id = :id", id=run_id) == "running"

    stale_env = _env(url, redis_url, SPIE_IMPORT_STALE_SECONDS="0")
    for _ in range(20):  # until PostgreSQL has dropped the dead session's lock
        requeued = subprocess.run(
            _flask("import", "resume-stale", "--json"),
            cwd=ROOT,
            env=stale_env,
            capture_output=True,
            text=True,
            check=True,
        )
        if json.loads(requeued.stdout)["requeued"] == [run_id]:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("the dead run was never requeued")
    subprocess.run(
        _flask("worker", "--queue", "imports", "--burst"),
        cwd=ROOT,
        env=_env(url, redis_url),
        check=True,
        capture_output=True,
        timeout=600,
    )
    assert _scalar(url, "SELECT status FROM import_runs WHERE id = :id", id=run_id) == "done"
    clean_report, clean_tables = clean
    counts = _scalar(
        url,
        "SELECT json_build_object('read', read_count, 'created', created_count, 'updated', "
        "updated_count, 'unchanged', unchanged_count, 'rejected', rejected_count, "
        "'warnings', warning_count)::text FROM import_runs WHERE id = :id",
        id=run_id,
    )
    assert json.loads(counts) == clean_report["counts"]
    assert _tables(url) == clean_tables
