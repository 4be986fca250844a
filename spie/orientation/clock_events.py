"""Events that start, pause, restart and stop orientation clocks.

Called by the CAF import (entries into and exits from SDD, deaths), by the manual referral of
a non-BRSA person (``spie.persons.services.REFERRAL_HOOKS``) and by the demo data. Every
function is a service: it flushes, records the audit trail, and never commits.

Rules (details in docs/orientation.md):

- **entry into SDD** opens a case judged by the orientation policy in force on the entry
  date, unless the person already has an open case or was oriented since that entry; a
  *paused* open case is **resumed** instead: the pause ends on the new entry date and the
  paused days push both deadlines back (the clock does not restart from zero);
- **leaving SDD / right closed / moving away** pauses the open case (the clock stops and the
  deadlines become NULL); a case paused longer than ``SPIE_ORIENTATION_PAUSE_CLOSE_AFTER``
  (default ``12m``) is closed by the job ``close_long_paused_cases``, and a later entry then
  opens a new case with a new clock;
- **death** closes the open case (``deceased``).

All functions are idempotent for repeated observations (the same flow imported twice) and
ignore observations older than the case's own history.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import exists, or_, select

from spie.db import db
from spie.orientation.models import (
    ClockStartBasis,
    CloseReason,
    OrientationCase,
    OrientationDecision,
)
from spie.orientation.services import (
    close_case,
    open_case,
    open_case_of,
    pause_case,
    resume_case,
)
from spie.persons.models import Person

__all__ = [
    "manual_referral_opened",
    "person_deceased",
    "sdd_entered",
    "sdd_left",
]


def _oriented_or_known_since(person: Person, started_on: dt.date) -> bool:
    """True when the person was oriented on or after ``started_on``, or a case for that
    entry (or a later one) already exists: the entry needs no new case."""
    decided_since = exists(
        select(OrientationDecision.id).where(
            OrientationDecision.person_id == person.id,
            OrientationDecision.decided_on >= started_on,
        )
    )
    case_since = exists(
        select(OrientationCase.id).where(
            OrientationCase.person_id == person.id,
            or_(
                OrientationCase.clock_started_on >= started_on,
                OrientationCase.closed_on > started_on,
            ),
        )
    )
    return bool(db.session.scalar(select(decided_since | case_since)))


def sdd_entered(
    person: Person,
    started_on: dt.date,
    basis: ClockStartBasis,
    estimated: bool = False,
) -> OrientationCase | None:
    """The person entered SDD on ``started_on``: open their orientation case, or resume it.

    Returns the new or resumed case, or ``None`` when there is nothing to do (an open case
    already runs, the person was oriented since that entry, the observation is older than
    what the case already knows, or the person is deceased).
    """
    if person.deceased_on is not None:
        return None
    case = open_case_of(person.id)
    if case is not None:
        if case.paused_since is not None and resume_case(case, started_on):
            return case
        return None
    if _oriented_or_known_since(person, started_on):
        return None
    return open_case(person, started_on, basis, estimated)


def sdd_left(person: Person, on: dt.date, reason: str) -> None:
    """The person left SDD (``left_sdd``), the right closed (``right_closed``) or they moved
    out of the territory (``moved_away``) on ``on``: the open case's clock pauses.

    Unknown reasons raise ``ValueError`` (a programming error of the caller).
    """
    case = open_case_of(person.id)
    if case is None:
        if reason not in ("left_sdd", "right_closed", "moved_away"):
            raise ValueError(f"motif inconnu : {reason!r}")
        return
    pause_case(case, on, reason)


def person_deceased(person: Person, on: dt.date) -> None:
    """The person died on ``on``: record it and close the open case (``deceased``)."""
    if person.deceased_on is None:
        person.deceased_on = on
    case = open_case_of(person.id)
    if case is not None:
        close_case(case, on, CloseReason.DECEASED)
    db.session.flush()


def manual_referral_opened(person: Person, referred_on: dt.date) -> OrientationCase:
    """A non-BRSA person was referred by hand on ``referred_on``: open their case (the
    clock starts on the referral date). Returns the already open case if there is one."""
    case = open_case_of(person.id)
    if case is not None:
        return case
    return open_case(person, referred_on, ClockStartBasis.MANUAL_REFERRAL, estimated=False)
