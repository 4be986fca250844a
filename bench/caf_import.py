"""Benchmark of the CAF bénéficiaires import on PostgreSQL (QUALITY.md, "CAF flow import").

    .venv/bin/python -m bench.caf_import --households 100000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/spie_bench5

The database is **reset** (schema ``public`` dropped and rebuilt by the migrations) before
each measured import. Each measure runs in its own process (``flask spie import caf``, as in
production), so that its peak memory (``ru_maxrss``) is its own. Printed:

- generation of the synthetic monthly files (``bench.caf_flowgen``: 1.5 persons/household);
- **baseline**, measured in the same run on the same file: lxml ``iterparse`` of the file
  extracting the person rows + ``COPY`` of those rows into a bare table (no index, no key);
- **first import** of the big file (fresh database): time, persons/s, ratio to the baseline;
- **re-import**: the same file again (a ``duplicate`` by checksum: nothing read), and the same
  file forced (``--force``: read again, every household skipped on its fingerprint);
- **peak memory** of the first import for a small and the big file (flat = same order): the
  ``ru_maxrss`` of the process tree, and each process's own peak sampled from /proc.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import ensure_database

ROOT = Path(__file__).resolve().parents[1]

SETUP = """
import sys
from spie.app import create_app
from spie.db import Base, db, unit_of_work
import spie.models  # noqa: F401
from sqlalchemy import create_engine, text
url = sys.argv[1]
engine = create_engine(url, isolation_level="AUTOCOMMIT")
with engine.connect() as connection:
    connection.execute(text("DROP SCHEMA public CASCADE"))
    connection.execute(text("CREATE SCHEMA public"))
engine.dispose()
app = create_app({"ENV": "development", "DATABASE_URL": url})
with app.app_context():
    from alembic import command
    from spie.cli import alembic_config
    command.upgrade(alembic_config(url), "head")
    Base.metadata.create_all(db.engine, checkfirst=True)
    from spie.clocks.services import seed_delay_policies
    from spie.territories.services import load_reference_data
    with unit_of_work():
        load_reference_data()
        seed_delay_policies()
"""

BASELINE = """
import sys, time, datetime as dt
import psycopg
from lxml import etree
path, url = sys.argv[1], sys.argv[2]
started = time.perf_counter()
rows = 0
with psycopg.connect(url) as connection:
    connection.execute("DROP TABLE IF EXISTS bench_baseline")
    connection.execute(
        "CREATE TABLE bench_baseline (matricule text, nir text, last_name text, "
        "first_name text, birth_date date, role text, sdd boolean, commune text)"
    )
    with connection.cursor() as cursor:
        with cursor.copy("COPY bench_baseline FROM STDIN") as copy:
            for _event, household in etree.iterparse(
                path, events=("end",), tag="InfosFoyerRSA", resolve_entities=False,
                no_network=True, load_dtd=False, huge_tree=False,
            ):
                matricule = household.findtext("IdentificationRSA/Organisme/MATRICULE")
                commune = household.findtext(
                    "DonneesAdministratives/Adresse/AdresseDetailleeFrance/NUMCOM"
                )
                for person in household.iterfind("Personne"):
                    ident = person.find("Identification")
                    copy.write_row((
                        matricule,
                        ident.findtext("NIR"),
                        ident.findtext("NOM"),
                        ident.findtext("PRENOM"),
                        dt.date.fromisoformat(ident.findtext("DTNAI")),
                        person.findtext("Prestations/ROLEPERS"),
                        person.findtext("MontantCalculDroitRSAPersonne/TOPPERSDRODEVORSA") == "1",
                        commune,
                    ))
                    rows += 1
                household.clear()
                while household.getprevious() is not None:
                    del household.getparent()[0]
    connection.commit()
print(rows, time.perf_counter() - started)
"""


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


PARSE_PROCESS: str | None = None  # --parse-process: SPIE_IMPORT_PARSE_PROCESS for the imports


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPIE_")}
    env.update(SPIE_ENV="development", SPIE_DATABASE_URL=url)
    if PARSE_PROCESS is not None:
        env["SPIE_IMPORT_PARSE_PROCESS"] = PARSE_PROCESS
    return env


def _rss_mb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def _children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except OSError:
        return []


def _sample_rss(pid: int, peaks: dict[str, int], done: threading.Event) -> None:
    """Peak resident memory of the process and of its children (the parsing process), read
    from /proc every 0.1 s: ``ru_maxrss`` gives only the largest of the tree."""
    while not done.wait(0.1):
        peaks["importing"] = max(peaks.get("importing", 0), _rss_mb(pid))
        for child in _children_of(pid):
            peaks["parsing"] = max(peaks.get("parsing", 0), _rss_mb(child))


def _measure(
    command: list[str], env: dict[str, str], peaks: dict[str, int] | None = None
) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in MB, stdout) of a child process; ``peaks``: filled with the
    peak of the process and of its own children, sampled."""
    started = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    if process.stdout is None:  # pragma: no cover - stdout=PIPE
        raise RuntimeError("no stdout")
    done = threading.Event()
    sampler = None
    if peaks is not None:
        sampler = threading.Thread(target=_sample_rss, args=(process.pid, peaks, done))
        sampler.start()
    output = process.stdout.read()
    done.set()
    if sampler is not None:
        sampler.join()
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise RuntimeError(f"{command} failed: {output[-2000:]}")
    return elapsed, usage.ru_maxrss // 1024, output


def reset(url: str) -> None:
    subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", SETUP, url], cwd=ROOT, env=_env(url), check=True, capture_output=True
    )


def import_file(url: str, path: Path, *, force: bool = False) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "flask",
        "--app",
        "wsgi",
        "spie",
        "import",
        "caf",
        str(path),
        "--json",
    ]
    if force:
        command.append("--force")
    peaks: dict[str, int] = {}
    elapsed, peak_mb, output = _measure(command, _env(url), peaks)
    report = json.loads(output)
    started = report["started_at"] and dt.datetime.fromisoformat(report["started_at"])
    finished = report["finished_at"] and dt.datetime.fromisoformat(report["finished_at"])
    run_seconds = (finished - started).total_seconds() if started and finished else 0.0
    return {
        "wall": elapsed,
        "run": run_seconds,
        "peak_mb": peak_mb,
        "peaks": peaks,
        "report": report,
    }


def _peaks(measure: dict[str, Any]) -> str:
    peaks = measure["peaks"]
    return f"{peaks.get('importing', '?')} / {peaks.get('parsing', '?')} MB"


def baseline(url: str, path: Path) -> dict[str, Any]:
    elapsed, peak_mb, output = _measure(
        [sys.executable, "-c", BASELINE, str(path), _psycopg_url(url)], _env(url)
    )
    rows, inner = output.split()
    return {"wall": elapsed, "inner": float(inner), "rows": int(rows), "peak_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=20_000, help="size for the memory check")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--parse-process",
        choices=("0", "1"),
        default=None,
        help="parse in a child process (1) or in the importing process (0); default: spie's",
    )
    args = parser.parse_args()
    global PARSE_PROCESS
    PARSE_PROCESS = args.parse_process
    from bench.caf_flowgen import write_flow

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="spie-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    url = args.database_url
    results: dict[str, Any] = {"households": args.households, "small": args.small}

    files = {}
    for size in (args.small, args.households):
        path = workdir / f"RSABEM_vrsb0801_{size}.xml"
        started = time.perf_counter()
        persons = write_flow(path, size, seed=args.seed)
        files[size] = (path, persons)
        print(
            f"generated {size} households / {persons} persons, "
            f"{path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - started:.1f} s"
        )
    big, persons = files[args.households]
    results["persons"] = persons
    results["file_mb"] = round(big.stat().st_size / 1e6, 1)

    ensure_database(url)
    reset(url)
    base = baseline(url, big)
    results["baseline_s"] = round(base["wall"], 2)
    print(
        f"baseline (lxml iterparse + COPY {base['rows']} rows into a bare table): "
        f"{base['wall']:.1f} s (inner {base['inner']:.1f} s), peak {base['peak_mb']} MB"
    )

    reset(url)
    small = import_file(url, files[args.small][0])
    results["small_peak_mb"] = small["peak_mb"]
    results["small_s"] = round(small["wall"], 2)
    print(
        f"first import, {args.small} households: {small['wall']:.1f} s, peak {small['peak_mb']} MB"
    )

    reset(url)
    first = import_file(url, big)
    after = baseline(url, big)  # the machine may be busier now: the baseline again
    print(f"baseline again after the import: {after['wall']:.1f} s")
    base_wall = (base["wall"] + after["wall"]) / 2
    results["baseline_after_s"] = round(after["wall"], 2)
    counts = first["report"]["counts"]
    if first["report"]["status"] != "done":
        raise SystemExit(f"first import: {first['report']}")
    results.update(
        first_s=round(first["wall"], 2),
        first_run_s=round(first["run"], 2),
        persons_per_s=round(persons / first["wall"]),
        persons_per_s_run=round(persons / first["run"]) if first["run"] else None,
        peak_mb=first["peak_mb"],
        ratio_to_baseline=round(first["wall"] / base_wall, 2),
        counts=counts,
        details=first["report"]["details"],
    )
    print(
        f"first import, {args.households} households ({persons} persons): "
        f"{first['wall']:.1f} s wall ({first['run']:.1f} s in the run) = "
        f"{persons / first['wall']:.0f} persons/s, peak {first['peak_mb']} MB, "
        f"{first['wall'] / base_wall:.2f}x the baseline (mean of before and after)"
    )

    duplicate = import_file(url, big)
    forced = import_file(url, big, force=True)
    if duplicate["report"]["status"] != "duplicate" or (
        forced["report"]["counts"]["unchanged"] != args.households
    ):
        raise SystemExit(f"re-import: {duplicate['report']} / {forced['report']}")
    results.update(
        duplicate_s=round(duplicate["wall"], 2),
        reimport_forced_s=round(forced["wall"], 2),
        reimport_speedup=round(first["wall"] / forced["wall"], 1),
        reimport_peak_mb=forced["peak_mb"],
    )
    print(
        f"re-import, same file: duplicate in {duplicate['wall']:.1f} s; forced (read again, "
        f"every household skipped on its fingerprint): {forced['wall']:.1f} s = "
        f"{first['wall'] / forced['wall']:.1f}x faster than the first, peak "
        f"{forced['peak_mb']} MB"
    )
    print(
        f"peak memory: {small['peak_mb']} MB ({args.small} households) vs "
        f"{first['peak_mb']} MB ({args.households} households); sampled per process "
        f"(importing / parsing): {_peaks(small)} vs {_peaks(first)}"
    )
    results["peaks_small"], results["peaks"] = small["peaks"], first["peaks"]
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
