"""Today and now for the pathway rules, read in one place.

Every pathway and référent module asks this module (``clock.today()``, ``clock.now()``)
rather than the system clock directly, so that a scenario can be replayed on exact dates
(tests move time here with ``monkeypatch``) and so that a batch can run "as of" a date.
"""

from __future__ import annotations

import datetime as dt

from spie.clocks import today as _today
from spie.db import utcnow


def today() -> dt.date:
    """Today in Europe/Paris (legal day counts)."""
    return _today.paris_today()


def now() -> dt.datetime:
    """Now, timezone-aware UTC."""
    return utcnow()
