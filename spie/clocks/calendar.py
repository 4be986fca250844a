"""Legal day counting (DOMAIN §3): durations, Paris dates, paused clocks, working days.

Rules:

- legal day counts use Europe/Paris calendar dates;
- "N months" means calendar months (dateutil ``relativedelta``: 31 January + 1 month is
  28/29 February), "N weeks" means 7N days, "N days" means N calendar days;
- a clock runs every calendar day from its start except during pauses; a pause is the
  half-open interval ``[from, to)`` of dates on which the clock does not run (``to`` is the day
  it runs again), ``to = None`` meaning the clock is paused now;
- working days are Monday to Friday except the French public holidays (``holidays`` package,
  national calendar).

All functions are pure.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal
from zoneinfo import ZoneInfo

import holidays
from dateutil.relativedelta import relativedelta

PARIS: Final = ZoneInfo("Europe/Paris")

DurationUnit = Literal["d", "w", "m"]
Pause = tuple[dt.date, dt.date | None]
"""``(from, to)``: the clock does not run on ``from <= day < to``; ``to = None``: still paused."""

_DURATION_RE = re.compile(r"^(\d{1,4})([dwm])$")


@dataclass(frozen=True)
class Duration:
    """A legal duration as written in data: ``"15d"`` (days), ``"6w"`` (weeks = 7N days),
    ``"2m"`` (calendar months)."""

    amount: int
    unit: DurationUnit

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount < 0:
            raise ValueError(f"durée invalide : {self.amount!r} (entier positif ou nul attendu)")
        if self.unit not in ("d", "w", "m"):
            raise ValueError(f"unité de durée invalide : {self.unit!r} (d, w ou m)")

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse ``"<N><unit>"`` with unit ``d``, ``w`` or ``m`` (e.g. ``"6w"``, ``"12m"``)."""
        found = _DURATION_RE.match(text) if isinstance(text, str) else None
        if found is None:
            raise ValueError(
                f"durée invalide : {text!r} (attendu : un entier suivi de d, w ou m, ex. '6w')"
            )
        unit: DurationUnit = "d"
        if found.group(2) == "w":
            unit = "w"
        elif found.group(2) == "m":
            unit = "m"
        return cls(int(found.group(1)), unit)

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


def parse_duration(text: str) -> Duration:
    """Same as ``Duration.parse``."""
    return Duration.parse(text)


def add_duration(start: dt.date, duration: Duration) -> dt.date:
    """``start`` + ``duration``: days and weeks (7N days) are calendar days; months are
    calendar months, clamped to the end of a shorter month (2024-12-31 + 2m = 2025-02-28)."""
    if duration.unit == "m":
        return start + relativedelta(months=duration.amount)
    days = duration.amount * 7 if duration.unit == "w" else duration.amount
    return start + dt.timedelta(days=days)


def paris_date(moment: dt.datetime) -> dt.date:
    """The Europe/Paris calendar date of a timezone-aware instant (DST handled by zoneinfo).
    Naive datetimes are ambiguous and rejected with ``ValueError``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetime sans fuseau horaire : impossible d'en déduire la date à Paris")
    return moment.astimezone(PARIS).date()


def _normalise_pauses(start: dt.date, pauses: Sequence[Pause]) -> list[Pause]:
    """Pauses clipped to ``start`` (days before the clock started do not count), sorted and
    merged so overlapping pauses are counted once. Raises ``ValueError`` if ``to < from``."""
    clipped: list[Pause] = []
    for begin, end in pauses:
        if end is not None and end < begin:
            raise ValueError(f"pause invalide : fin {end} avant début {begin}")
        if end is not None and end <= start:
            continue
        clipped.append((max(begin, start), end))
    clipped.sort(key=lambda pause: pause[0])
    merged: list[Pause] = []
    for begin, end in clipped:
        if merged:
            last_begin, last_end = merged[-1]
            if last_end is None:
                break  # an open pause swallows everything after it
            if begin <= last_end:
                merged[-1] = (last_begin, None if end is None else max(last_end, end))
                continue
        merged.append((begin, end))
    return merged


def deadline(start: dt.date, limit: Duration, pauses: Sequence[Pause] = ()) -> dt.date | None:
    """The date a clock started on ``start`` reaches ``limit``, pushed back by its paused days.

    The clock needs ``(start + limit) - start`` running days; running days are the days from
    ``start`` outside the pauses. A pause that starts once the limit is already reached does
    not move the deadline (the clock had run out). Any open pause (``to = None``) means the
    clock is paused now and has no deadline: ``None``.
    """
    merged = _normalise_pauses(start, pauses)
    if any(end is None for _, end in merged):
        return None
    due = add_duration(start, limit)
    for begin, end in merged:
        if end is None or begin >= due:
            break  # (open pauses were handled above)
        due += end - begin
    return due


def elapsed_days(start: dt.date, as_of: dt.date, pauses: Sequence[Pause] = ()) -> int:
    """Running days of a clock from ``start`` (included) to ``as_of`` (excluded): calendar
    days minus the paused ones; 0 when ``as_of <= start``. Non-decreasing in ``as_of``."""
    if as_of <= start:
        return 0
    total = (as_of - start).days
    for begin, end in _normalise_pauses(start, pauses):
        stop = as_of if end is None else min(end, as_of)
        if stop > begin:
            total -= (stop - begin).days
    return total


@lru_cache(maxsize=64)
def _public_holidays(year: int) -> frozenset[dt.date]:
    return frozenset(holidays.country_holidays("FR", years=year))


def is_working_day(day: dt.date) -> bool:
    """Monday to Friday and not a French public holiday."""
    return day.weekday() < 5 and day not in _public_holidays(day.year)


def business_days_between(start: dt.date, end: dt.date) -> int:
    """Working days in ``[start, end)`` (numpy ``busday_count`` convention); negative
    (minus the working days of ``[end, start)``) when ``end < start``."""
    if end < start:
        return -business_days_between(end, start)
    count = 0
    day = start
    while day < end:
        if is_working_day(day):
            count += 1
        day += dt.timedelta(days=1)
    return count


def working_days_before(day: dt.date, n: int) -> dt.date:
    """The n-th working day strictly before ``day`` (``day`` itself when ``n == 0``): two
    working days before Monday 2025-05-12 is Wednesday 2025-05-07 (8 May is a holiday)."""
    if n < 0:
        raise ValueError("n doit être positif ou nul")
    current = day
    remaining = n
    while remaining:
        current -= dt.timedelta(days=1)
        if is_working_day(current):
            remaining -= 1
    return current
