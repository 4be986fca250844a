"""Benchmark of the France Travail CSV import on PostgreSQL (QUALITY.md: ≥ 20,000 lines/s).

    .venv/bin/python -m bench.ft_import --lines 200000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/spie_bench5

Resets the database, generates a ``stock`` file and a ``radiations`` file of ``--lines`` lines
(ISO-8859-1, real-shaped: 13-character NIRs, France Travail ids, accents), imports the stock
(every line creates a registration and an event) then the radiations (every line updates a
registration), each in its own process (``flask spie import france-travail``), and prints
lines/s and peak memory. The baseline of the same run is the bare parse of the stock file
(``iter_ft_file``, no database).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.caf_import import ROOT, _env, _measure, reset
from bench.common import ensure_database

LAST_NAMES = ("MARTIN", "BERNARD", "DUBOIS", "LEFÈVRE", "MÜLLER", "NGUYEN", "DA SILVA", "FRANÇOIS")
FIRST_NAMES = ("JEAN", "LÉA", "CHLOÉ", "LOÏC", "THÉO", "AÏCHA", "HÉLÈNE", "KARIM")
HEADER = "nir;identifiantpe;nom;prenom;dtnai;date;code;nir2;codeinsee;localite;adresse;ale"
HEADER_MOTIF = (
    "nir;identifiantpe;nom;prenom;dtnai;date;code;motif;nir2;codeinsee;localite;adresse;ale"
)


def write_file(path: Path, lines: int, kind: str, seed: int = 1) -> None:
    rng = random.Random(seed)
    motif = kind in ("cessations", "radiations")
    out = [HEADER_MOTIF if motif else HEADER]
    for index in range(lines):
        sex = "1" if index % 2 else "2"
        year = 1960 + index % 45
        month = 1 + index % 12
        nir = f"{sex}{year % 100:02d}{month:02d}69{index % 999 + 1:03d}{index // 999 % 1000:03d}"
        birth = f"{1 + index % 28:02d}/{month:02d}/{year}"
        ft_id = f"{index % 10_000_000:07d}{'ABCDEFGHJK'[index % 10]}{index % 1000:03d}"
        if motif:
            fields = [
                nir,
                ft_id,
                rng.choice(LAST_NAMES),
                rng.choice(FIRST_NAMES),
                birth,
                f"{1 + index % 28:02d}/11/2026",
                "72",
                "REPRISE D'EMPLOI",
                nir,
            ]
        else:
            fields = [
                nir,
                ft_id,
                rng.choice(LAST_NAMES),
                rng.choice(FIRST_NAMES),
                birth,
                f"{1 + index % 28:02d}/10/2026",
                str(1 + index % 8),
                nir,
            ]
        fields += ["69381", "LYON 1ER", f"{index % 200} RUE GARIBALDI", "ALE LYON 1ER"]
        out.append(";".join(fields))
    path.write_bytes(("\n".join(out) + "\n").encode("iso-8859-1"))


def import_file(url: str, path: Path, kind: str) -> tuple[float, int, dict[str, Any]]:
    elapsed, peak, output = _measure(
        [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "wsgi",
            "spie",
            "import",
            "france-travail",
            "--kind",
            kind,
            str(path),
            "--json",
        ],
        _env(url),
    )
    return elapsed, peak, json.loads(output)


def _run_seconds(report: dict[str, Any]) -> float:
    """From the run's start to its end, as the run report gives them (no process start-up)."""
    if not (report.get("started_at") and report.get("finished_at")):
        return 0.0
    started = dt.datetime.fromisoformat(report["started_at"])
    return (dt.datetime.fromisoformat(report["finished_at"]) - started).total_seconds()


def parse_only(path: Path, kind: str) -> float:
    code = (
        "import sys, time\n"
        "from spie.integrations.france_travail.files import iter_ft_file\n"
        "t = time.perf_counter()\n"
        "with open(sys.argv[1], 'rb') as f:\n"
        "    n = sum(1 for _ in iter_ft_file(f, sys.argv[2]))\n"
        "print(time.perf_counter() - t)\n"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", code, str(path), kind],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="spie-bench-ft-"))
    workdir.mkdir(parents=True, exist_ok=True)
    stock = workdir / f"stock_{args.lines}.csv"
    radiations = workdir / f"radiations_{args.lines}.csv"
    started = time.perf_counter()
    write_file(stock, args.lines, "stock")
    write_file(radiations, args.lines, "radiations")
    print(f"generated 2 x {args.lines} lines in {time.perf_counter() - started:.1f} s")

    parse_s = parse_only(stock, "stock")
    print(
        f"baseline: parse only (iter_ft_file): {parse_s:.1f} s = {args.lines / parse_s:.0f} lines/s"
    )
    ensure_database(args.database_url)
    reset(args.database_url)
    results: dict[str, Any] = {"lines": args.lines, "parse_only_s": round(parse_s, 2)}
    for kind, path in (("stock", stock), ("radiations", radiations)):
        elapsed, peak, report = import_file(args.database_url, path, kind)
        if report["status"] != "done":
            raise SystemExit(f"{kind}: {report}")
        run_s = _run_seconds(report)
        results[kind] = {
            "seconds": round(elapsed, 2),
            "lines_per_s": round(args.lines / elapsed),
            "run_seconds": round(run_s, 2),
            "lines_per_s_run": round(args.lines / run_s) if run_s else None,
            "peak_mb": peak,
            "counts": report["counts"],
        }
        print(
            f"{kind}: {args.lines} lines in {elapsed:.1f} s wall = {args.lines / elapsed:.0f} "
            f"lines/s ({run_s:.1f} s in the run = {args.lines / max(run_s, 0.001):.0f} lines/s), "
            f"peak {peak} MB, counts {report['counts']}"
        )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
