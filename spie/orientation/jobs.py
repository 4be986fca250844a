"""Orientation jobs: convocation and reminder e-mails, reminder scheduling, long pauses.

Every job is idempotent (guarded by a timestamp on the row it acts on, read under a row
lock) and takes ids and ISO dates only. Schedules (cron, once a day, e.g. 07:00 Europe/Paris):

- ``flask --app wsgi spie orientation send-reminders``: reminders two working days before
  each planned session (a session missed by one run is caught by the next, until it starts);
- ``flask --app wsgi spie orientation close-paused``: closes cases paused for longer than
  ``SPIE_ORIENTATION_PAUSE_CLOSE_AFTER`` (default ``12m``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from flask import current_app, has_app_context, render_template
from sqlalchemy import select

from spie.clocks.calendar import Duration, add_duration, paris_date, working_days_before
from spie.clocks.today import paris_today
from spie.db import db, utcnow
from spie.jobs import job
from spie.notifications.letters import french_datetime
from spie.notifications.mailer import OutgoingMail, get_mailer
from spie.orientation.models import (
    CloseReason,
    Convocation,
    OrientationCase,
    RioSession,
    RioStatus,
)
from spie.orientation.services import close_case
from spie.persons.models import Person

log = logging.getLogger(__name__)

REMINDER_WORKING_DAYS = 2
DEFAULT_PAUSE_CLOSE_AFTER = "12m"


def _config(name: str, default: Any) -> Any:
    if has_app_context() and current_app.config.get(name) is not None:
        return current_app.config[name]
    return os.environ.get(name, default)


def pause_close_after() -> Duration:
    return Duration.parse(
        str(_config("SPIE_ORIENTATION_PAUSE_CLOSE_AFTER", DEFAULT_PAUSE_CLOSE_AFTER))
    )


def _mail(convocation: Convocation, person: Person, address: str, kind: str) -> OutgoingMail:
    session = convocation.session
    context = {
        "session": session,
        "when": french_datetime(session.starts_at),
        "animator": session.animator_structure.name,
    }
    subject = (
        "Rappel : votre Rencontre Information et Orientation"
        if kind == "reminder"
        else "Convocation à une Rencontre Information et Orientation (RSA)"
    )
    return OutgoingMail(
        recipient_ref=f"person:{person.id}",
        to_address=address,
        subject=f"{subject} — {context['when']}",
        text=render_template(f"orientation/{kind}_email.txt", **context),
    )


def _locked_convocation(convocation_id: int) -> Convocation | None:
    return db.session.scalar(
        select(Convocation).where(Convocation.id == convocation_id).with_for_update()
    )


@job(queue="notifications")
def send_convocation_email(convocation_id: int) -> dict[str, Any]:
    """E-mail one convocation (once: ``email_sent_at`` guards it). People without an e-mail
    address receive the printed letter only."""
    convocation = _locked_convocation(convocation_id)
    if convocation is None:
        return {"status": "missing"}
    if convocation.cancelled_at is not None:
        return {"status": "cancelled"}
    if convocation.email_sent_at is not None:
        return {"status": "already_sent"}
    person = db.session.get(Person, convocation.person_id)
    if person is None or not person.email:
        return {"status": "no_email"}
    get_mailer().send(_mail(convocation, person, person.email, "convocation"))
    convocation.email_sent_at = utcnow()
    return {"status": "sent"}


@job(queue="notifications")
def send_reminder_email(convocation_id: int) -> dict[str, Any]:
    """E-mail the reminder of one convocation (once: ``reminder_sent_at`` guards it)."""
    convocation = _locked_convocation(convocation_id)
    if convocation is None:
        return {"status": "missing"}
    if (
        convocation.cancelled_at is not None
        or convocation.attendance is not None
        or convocation.session.status != RioStatus.PLANNED
    ):
        return {"status": "not_needed"}
    if convocation.reminder_sent_at is not None:
        return {"status": "already_sent"}
    person = db.session.get(Person, convocation.person_id)
    if person is None or not person.email:
        return {"status": "no_email"}
    get_mailer().send(_mail(convocation, person, person.email, "reminder"))
    convocation.reminder_sent_at = utcnow()
    return {"status": "sent"}


def sessions_due_for_reminder(as_of: dt.date) -> list[RioSession]:
    """Planned sessions without reminder, starting after ``as_of`` and at most
    ``REMINDER_WORKING_DAYS`` working days later (locked: two schedulers never both take
    one; the second skips it)."""
    horizon = dt.datetime.combine(as_of + dt.timedelta(days=15), dt.time(), tzinfo=dt.UTC)
    since = dt.datetime.combine(as_of, dt.time(), tzinfo=dt.UTC)
    candidates = db.session.scalars(
        select(RioSession)
        .where(
            RioSession.status == RioStatus.PLANNED,
            RioSession.reminder_sent_at.is_(None),
            RioSession.starts_at >= since,
            RioSession.starts_at < horizon,
        )
        .order_by(RioSession.starts_at, RioSession.id)
        .with_for_update(skip_locked=True)
    ).all()
    due = []
    for session in candidates:
        day = paris_date(session.starts_at)
        if day > as_of and working_days_before(day, REMINDER_WORKING_DAYS) <= as_of:
            due.append(session)
    return due


def schedule_rio_reminders(as_of: dt.date) -> dict[str, int]:
    """Mark the due sessions as reminded and enqueue one reminder e-mail per pending
    convocation (after the commit). Running it twice sends nothing more."""
    sessions = sessions_due_for_reminder(as_of)
    enqueued = 0
    for session in sessions:
        session.reminder_sent_at = utcnow()
        pending = db.session.scalars(
            select(Convocation.id).where(
                Convocation.session_id == session.id,
                Convocation.cancelled_at.is_(None),
                Convocation.attendance.is_(None),
                Convocation.reminder_sent_at.is_(None),
            )
        ).all()
        for convocation_id in pending:
            send_reminder_email.delay(convocation_id)
            enqueued += 1
    db.session.flush()
    return {"sessions": len(sessions), "reminders": enqueued}


@job(queue="notifications")
def send_rio_reminders(as_of: str | None = None) -> dict[str, int]:
    """Job form of :func:`schedule_rio_reminders` (``as_of``: ISO date, default today)."""
    day = dt.date.fromisoformat(as_of) if as_of else paris_today()
    return schedule_rio_reminders(day)


def close_paused_cases(as_of: dt.date) -> dict[str, int]:
    """Close the cases paused for longer than ``SPIE_ORIENTATION_PAUSE_CLOSE_AFTER``: the
    close reason is the pause's (left SDD, right closed, moved away); a later entry into
    SDD opens a new case with a new clock."""
    limit = pause_close_after()
    closed = 0
    cases = db.session.scalars(
        select(OrientationCase)
        .where(OrientationCase.closed_on.is_(None), OrientationCase.paused_since.is_not(None))
        .order_by(OrientationCase.id)
        .with_for_update(skip_locked=True)
    ).all()
    for case in cases:
        if case.paused_since is None or add_duration(case.paused_since, limit) > as_of:
            continue
        reason = next((p.reason for p in reversed(case.pauses) if p.resumed_on is None), "left_sdd")
        if close_case(case, as_of, CloseReason(reason)):
            closed += 1
    return {"closed": closed}


@job(queue="default")
def close_long_paused_cases(as_of: str | None = None) -> dict[str, int]:
    """Job form of :func:`close_paused_cases` (``as_of``: ISO date, default today)."""
    day = dt.date.fromisoformat(as_of) if as_of else paris_today()
    return close_paused_cases(day)
