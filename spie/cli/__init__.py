"""``flask --app wsgi spie ...``: commands grouped per domain, imported lazily."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from spie.db import unit_of_work

spie_cli = AppGroup("spie", help="spie administration commands.")

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(url: str | None = None) -> object:
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option(
        "sqlalchemy.url", (url or current_app.config["SPIE_DATABASE_URL"]).replace("%", "%%")
    )
    return config


@spie_cli.group("db")
def db_group() -> None:
    """Database migrations (Alembic)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Migrate the database to REVISION (default: head)."""
    from alembic import command

    _ensure_sqlite_dir()
    command.upgrade(alembic_config(), revision)  # type: ignore[arg-type]
    click.echo(f"database at {revision}")


@db_group.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Migrate the database down to REVISION."""
    from alembic import command

    command.downgrade(alembic_config(), revision)  # type: ignore[arg-type]


@db_group.command("check")
@with_appcontext
def db_check() -> None:
    """Fail if the models and the migrations differ."""
    from alembic import command

    command.check(alembic_config())  # type: ignore[arg-type]
    click.echo("models and migrations agree")


def _ensure_sqlite_dir() -> None:
    url = current_app.config["SPIE_DATABASE_URL"]
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


@spie_cli.command("load-reference")
@with_appcontext
def load_reference() -> None:
    """Load territories and communes (idempotent)."""
    from spie.territories.services import load_reference_data

    with unit_of_work():
        counts = load_reference_data()
    click.echo(json.dumps(counts))


@spie_cli.command("create-admin")
@click.option("--email", required=True)
@click.option("--first-name", default="Admin")
@click.option("--last-name", default="spie")
@click.option("--structure", "structure_name", default="Direction de l'insertion et de l'emploi")
@click.option("--password", envvar="SPIE_ADMIN_PASSWORD", default=None, help="Prompted if absent.")
@with_appcontext
def create_admin_command(
    email: str, first_name: str, last_name: str, structure_name: str, password: str | None
) -> None:
    """Create the first administrator (and their structure if missing)."""
    from sqlalchemy import select

    from spie.agents.services import create_admin
    from spie.db import db
    from spie.errors import SpieError
    from spie.structures.models import Structure, StructureType

    if password is None:
        password = getpass.getpass("Mot de passe (12 caractères minimum) : ")
    try:
        with unit_of_work():
            structure = db.session.scalar(select(Structure).where(Structure.name == structure_name))
            if structure is None:
                structure = Structure(name=structure_name, type=StructureType.MDM)
                db.session.add(structure)
                db.session.flush()
            agent = create_admin(email, password, structure, first_name, last_name)
    except (SpieError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"admin {agent.email} created (id {agent.id})")


@spie_cli.command("worker")
@click.option("--queue", "queues", multiple=True, help="Queues to listen to (default: all).")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@with_appcontext
def worker(queues: tuple[str, ...], burst: bool) -> None:
    """Run an rq worker for spie's queues (needs SPIE_REDIS_URL)."""
    from spie.jobs.worker import run_worker

    run_worker(current_app._get_current_object(), list(queues) or None, burst)  # type: ignore[attr-defined]


@spie_cli.group("demo")
def demo_group() -> None:
    """Fictitious demonstration data."""


@demo_group.command("load")
@click.option("--persons", default=3000, show_default=True)
@click.option("--seed", default=42, show_default=True)
@click.option("--if-empty", is_flag=True, help="Skip quietly when persons already exist.")
@with_appcontext
def demo_load(persons: int, seed: int, if_empty: bool) -> None:
    """Fill an empty database with a fictitious Métropole and print the demo logins."""
    from sqlalchemy import func, select

    from spie.db import db
    from spie.demo.generator import DEMO_PASSWORD, load_demo
    from spie.persons.models import Person

    if if_empty and db.session.scalar(select(func.count(Person.id))):
        click.echo("demo data already loaded")
    else:
        with unit_of_work():
            summary = load_demo(persons=persons, seed=seed)
        click.echo(json.dumps(summary["counts"], ensure_ascii=False))
    click.echo("")
    click.echo("spie runs on http://127.0.0.1:5000 — API page: http://127.0.0.1:5000/api/v1/docs")
    click.echo(f"Demo logins (password for all: {DEMO_PASSWORD}):")
    for label, email in demo_logins():
        click.echo(f"  {label:<28} {email}")


def demo_logins() -> list[tuple[str, str]]:
    """One active agent per role, read from the database (works on every later start too)."""
    from sqlalchemy import func, select

    from spie.agents.models import ROLE_LABELS, Agent, AgentRole
    from spie.db import db
    from spie.referent.models import ReferentAssignment

    caseload = (
        select(func.count(ReferentAssignment.id))
        .where(ReferentAssignment.agent_id == Agent.id, ReferentAssignment.ended_at.is_(None))
        .scalar_subquery()
    )
    logins = []
    for role, label in ROLE_LABELS.items():
        # The référent shown is the one with the largest caseload: something to look at.
        email = db.session.scalar(
            select(Agent.email)
            .join(AgentRole, AgentRole.agent_id == Agent.id)
            .where(AgentRole.role == role, Agent.active_until.is_(None))
            .order_by(caseload.desc(), Agent.id)
            .limit(1)
        )
        if email:
            logins.append((label, email))
    return logins


from spie.integrations.cli import import_group  # noqa: E402 - CAF / France Travail imports

spie_cli.add_command(import_group)

from spie.orientation.cli import orientation_cli  # noqa: E402 - RIO reminders, long pauses, seeds

spie_cli.add_command(orientation_cli)

from spie.parcours.cli import parcours_cli  # noqa: E402 - offers seed, deadline scans

spie_cli.add_command(parcours_cli)
