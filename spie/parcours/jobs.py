"""Background jobs of the pathway (rq, ``spie.jobs``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from spie.jobs import job
from spie.parcours import clock


@job(queue="default", timeout=1800, retries=3)
def scan_deadlines(as_of: str | None = None) -> dict[str, Any]:
    """Daily: bring the pathway clocks up to date and raise the alerts that are due.
    Idempotent; ``as_of`` (ISO date) defaults to today in Europe/Paris."""
    from spie.parcours.scan import scan_deadlines as run

    day = dt.date.fromisoformat(as_of) if as_of else clock.today()
    return run(day)
