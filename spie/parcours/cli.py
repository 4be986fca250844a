"""``flask --app wsgi spie parcours ...``: pathway commands (register ``parcours_cli`` in
``spie/cli/__init__.py``)."""

from __future__ import annotations

import datetime as dt
import json

import click
from flask.cli import AppGroup, with_appcontext

from spie.db import unit_of_work
from spie.parcours import clock

parcours_cli = AppGroup("parcours", help="Parcours, référents, échéances.")


@parcours_cli.command("seed")
@with_appcontext
def seed() -> None:
    """Seed the offer catalogue, the diagnostic grid, the sanction scale and the pathway
    thresholds (idempotent, never overwrites)."""
    from spie.parcours.seeds import seed_all

    with unit_of_work():
        counts = seed_all()
    click.echo(json.dumps(counts))


@parcours_cli.command("scan-deadlines")
@click.option("--as-of", default=None, help="Date ISO (défaut : aujourd'hui, Europe/Paris).")
@click.option("--enqueue", is_flag=True, help="Run as a background job instead of now.")
@with_appcontext
def scan_deadlines(as_of: str | None, enqueue: bool) -> None:
    """Bring pathway clocks up to date and raise due alerts (idempotent; run daily)."""
    day = dt.date.fromisoformat(as_of) if as_of else clock.today()
    if enqueue:
        from spie.parcours.jobs import scan_deadlines as job

        with unit_of_work():
            run_id = job.delay(day.isoformat())
        click.echo(json.dumps({"enqueued": run_id}))
        return
    from spie.parcours.scan import scan_deadlines as run

    with unit_of_work():
        summary = run(day)
    click.echo(json.dumps(summary))
