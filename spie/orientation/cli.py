"""``flask --app wsgi spie orientation ...``: seed the rules, run the daily jobs by cron.

Register with ``spie_cli.add_command(orientation_cli)`` (``spie/cli/__init__.py``).
"""

from __future__ import annotations

import datetime as dt
import json

import click
from flask.cli import AppGroup, with_appcontext

from spie.db import unit_of_work

orientation_cli = AppGroup("orientation", help="Orientation: rules, reminders, clocks.")


def _day(value: str | None) -> dt.date:
    from spie.clocks.today import paris_today

    return dt.date.fromisoformat(value) if value else paris_today()


@orientation_cli.command("seed")
@with_appcontext
def seed() -> None:
    """Insert the delay policies and référentiel version 1 that are missing (idempotent)."""
    from spie.clocks.services import seed_delay_policies
    from spie.orientation.referentiel_admin import seed_referentiel

    with unit_of_work():
        policies = seed_delay_policies()
        referentiel = seed_referentiel()
    click.echo(json.dumps({"delay_policies": policies, "referentiel_versions": referentiel}))


@orientation_cli.command("send-reminders")
@click.option("--date", "as_of", default=None, help="Reference day (ISO), default today.")
@with_appcontext
def send_reminders(as_of: str | None) -> None:
    """Queue the RIO reminders due (sessions two working days ahead). Run daily by cron;
    idempotent: a reminder is never sent twice."""
    from spie.orientation.jobs import schedule_rio_reminders

    with unit_of_work():
        result = schedule_rio_reminders(_day(as_of))
    click.echo(json.dumps(result))


@orientation_cli.command("close-paused")
@click.option("--date", "as_of", default=None, help="Reference day (ISO), default today.")
@with_appcontext
def close_paused(as_of: str | None) -> None:
    """Close the cases paused longer than SPIE_ORIENTATION_PAUSE_CLOSE_AFTER (default 12m)."""
    from spie.orientation.jobs import close_paused_cases

    with unit_of_work():
        result = close_paused_cases(_day(as_of))
    click.echo(json.dumps(result))
