"""Printable letters: HTML documents rendered from ``spie/templates`` (print to PDF from the
browser; the stylesheet is inline and sets an A4 page)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import render_template

from spie.clocks.calendar import PARIS

FRENCH_MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
FRENCH_DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


def french_date(day: dt.date) -> str:
    """``lundi 17 mars 2025``."""
    first = "1er" if day.day == 1 else str(day.day)
    return f"{FRENCH_DAYS[day.weekday()]} {first} {FRENCH_MONTHS[day.month - 1]} {day.year}"


def french_datetime(moment: dt.datetime) -> str:
    """``lundi 17 mars 2025 à 10 h 30`` in Europe/Paris time."""
    local = moment.astimezone(PARIS)
    return f"{french_date(local.date())} à {local.hour} h {local.minute:02d}"


def render_letter(template: str, **context: Any) -> str:
    """Render a letter template with the French date helpers available."""
    return render_template(
        template, french_date=french_date, french_datetime=french_datetime, **context
    )
