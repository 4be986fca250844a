"""The pathway's clocks (DOMAIN §3), judged by the :class:`DelayPolicy` in force on their start.

=================  ===================================  ==================================
clock              starts                               ends (``met_on``)
=================  ===================================  ==================================
pathway_entry      orientation notified                 first honoured appointment
contract           orientation notified                 first contract signed
social_review      contract signed (parcours social)    joint review or new decision
contract_renewal   contract end − policy target         next contract signed
referent_gap       référent ended / person queued       a référent assigned
=================  ===================================  ==================================

``due_on`` is the policy's legal limit when it sets one, else its target. Two policy
extensions, both data: the *contract* clock of a social pathway uses ``extended_limit``
when the policy has one (pre-2025 CER social: 2 months), and the *social review* uses
``extended_limit`` (12 months) when the contract gives one of the listed reasons. For the
contract renewal the policy target is the warning period: the clock starts ``target``
before the end and is due on the end date; its policy is the one in force on signature.

Creating a clock is idempotent (``key``); a missing policy creates nothing and is logged,
the daily scan creates the clock once an administrator has added the policy.

**Leaving SDD pauses** (DOMAIN §3): when the person leaves SDD, their right closes or they
move away (CAF flows), their open clocks stop with ``stop_reason`` ``paused:<reason>`` — not
open, so never overdue nor in anybody's queue; when they are bound by duties again, the
paused clocks run again, their deadlines pushed back by the paused days (the time used before
the pause still counts). A paused clock is still met by its end event, and closing the
pathway or cancelling the contract ends it like an open one.
"""

from __future__ import annotations

import datetime as dt
import logging

from dateutil.relativedelta import relativedelta
from sqlalchemy import or_, select

from spie.clocks.calendar import Duration, add_duration
from spie.clocks.models import ClockKind, DelayPolicy
from spie.clocks.services import policy_in_force
from spie.db import db
from spie.errors import NotFound
from spie.orientation.models import Parcours
from spie.parcours.models import PathwayClock

log = logging.getLogger(__name__)


def subtract_duration(day: dt.date, duration: Duration) -> dt.date:
    if duration.unit == "m":
        return day - relativedelta(months=duration.amount)
    days = duration.amount * 7 if duration.unit == "w" else duration.amount
    return day - dt.timedelta(days=days)


def policy_or_none(kind: ClockKind, on: dt.date) -> DelayPolicy | None:
    try:
        return policy_in_force(kind, on)
    except NotFound:
        log.warning("no delay policy %s in force on %s: clock not started", kind.value, on)
        return None


def clock_key(
    kind: ClockKind,
    *,
    pathway_id: int | None = None,
    contract_id: int | None = None,
    person_id: int | None = None,
    started_on: dt.date | None = None,
) -> str:
    if contract_id is not None:
        return f"c{contract_id}:{kind.value}"
    if kind == ClockKind.REFERENT_GAP:
        if person_id is None or started_on is None:
            raise ValueError("a référent gap clock needs the person and its start")
        return f"r{person_id}:{kind.value}:{started_on.isoformat()}"
    if pathway_id is None:
        raise ValueError("a pathway clock needs its pathway")
    return f"p{pathway_id}:{kind.value}"


def _limit(policy: DelayPolicy, extended: bool) -> str:
    if extended and policy.extended_limit:
        return policy.extended_limit
    limit = policy.legal_limit or policy.target
    if limit is None:  # a policy always has one (checked on creation)
        raise ValueError(f"policy {policy.id} has neither a legal limit nor a target")
    return limit


def start_clock(
    kind: ClockKind,
    person_id: int,
    started_on: dt.date,
    *,
    pathway_id: int | None = None,
    contract_id: int | None = None,
    parcours: Parcours | None = None,
    extended: bool = False,
    ends_on: dt.date | None = None,
    policy_day: dt.date | None = None,
) -> PathwayClock | None:
    """Start ``kind`` for the person (idempotent). ``ends_on`` is the contract end for the
    renewal clock; ``policy_day`` overrides the day the policy is looked up on."""
    key = clock_key(
        kind,
        pathway_id=pathway_id,
        contract_id=contract_id,
        person_id=person_id,
        started_on=started_on,
    )
    existing = db.session.scalar(select(PathwayClock).where(PathwayClock.key == key))
    if existing is not None:
        return existing
    policy = policy_or_none(kind, policy_day or started_on)
    if policy is None:
        return None
    target_on: dt.date | None = None
    if kind == ClockKind.CONTRACT_RENEWAL:
        if ends_on is None:
            raise ValueError("the contract renewal clock needs the contract end")
        warning = Duration.parse(policy.target or policy.legal_limit or "0d")
        started_on = max(min(subtract_duration(ends_on, warning), ends_on), started_on)
        due_on = ends_on
    else:
        if kind == ClockKind.CONTRACT:
            extended = parcours == Parcours.SOCIAL and bool(policy.extended_limit)
        due_on = add_duration(started_on, Duration.parse(_limit(policy, extended)))
        if policy.target and policy.legal_limit:
            target_on = add_duration(started_on, Duration.parse(policy.target))
    clock = PathwayClock(
        key=key,
        person_id=person_id,
        pathway_id=pathway_id,
        contract_id=contract_id,
        kind=kind,
        policy_id=policy.id,
        started_on=started_on,
        due_on=max(due_on, started_on),
        target_on=target_on,
        extended=extended and bool(policy.extended_limit),
    )
    db.session.add(clock)
    db.session.flush()
    return clock


PAUSED = "paused:"  # stop_reason prefix of a clock paused by an exit from SDD
_running_or_paused = or_(
    PathwayClock.stopped_on.is_(None), PathwayClock.stop_reason.startswith(PAUSED)
)


def open_clocks(
    person_id: int,
    kinds: set[ClockKind],
    pathway_id: int | None = None,
    *,
    with_paused: bool = False,
) -> list[PathwayClock]:
    query = select(PathwayClock).where(
        PathwayClock.person_id == person_id,
        PathwayClock.kind.in_(kinds),
        PathwayClock.met_on.is_(None),
        _running_or_paused if with_paused else PathwayClock.stopped_on.is_(None),
    )
    if pathway_id is not None:
        query = query.where(PathwayClock.pathway_id == pathway_id)
    return list(db.session.scalars(query.order_by(PathwayClock.id)))


def meet_clocks(
    person_id: int, kinds: set[ClockKind], on: dt.date, pathway_id: int | None = None
) -> int:
    """The end event happened on ``on``: every open (or paused) clock of ``kinds`` is met."""
    clocks = open_clocks(person_id, kinds, pathway_id, with_paused=True)
    for clock in clocks:
        clock.stopped_on = None
        clock.stop_reason = None
        clock.met_on = on
    if clocks:
        db.session.flush()
    return len(clocks)


def pause_clocks(person_id: int, on: dt.date, reason: str) -> int:
    """The person left SDD (``left_sdd``), their right closed (``right_closed``) or they
    moved away (``moved_away``) on ``on``: their open clocks pause (see the module)."""
    return stop_clocks(person_id, None, on, f"{PAUSED}{reason}"[:60])


def resume_clocks(person_id: int, on: dt.date) -> int:
    """The person is bound by duties again from ``on``: their paused clocks run again, each
    deadline pushed back by the days of the pause. An observation older than the pause
    changes nothing. Audited (who: the caller's actor)."""
    from spie.audit.models import AuditAction
    from spie.audit.service import record

    clocks = db.session.scalars(
        select(PathwayClock).where(
            PathwayClock.person_id == person_id,
            PathwayClock.met_on.is_(None),
            PathwayClock.stop_reason.startswith(PAUSED),
        )
    ).all()
    resumed = 0
    for clock in clocks:
        paused_on = clock.stopped_on
        if paused_on is None or on < paused_on:
            continue
        pause = on - paused_on
        clock.due_on += pause
        if clock.target_on is not None:
            clock.target_on += pause
        reason = (clock.stop_reason or "")[len(PAUSED) :]
        clock.stopped_on = None
        clock.stop_reason = None
        record(
            AuditAction.UPDATE,
            "pathway_clock",
            clock.id,
            person_id=person_id,
            reason="sdd_return",
            details={
                "kind": clock.kind.value,
                "paused_on": paused_on.isoformat(),
                "paused_days": pause.days,
                "pause_reason": reason,
            },
        )
        resumed += 1
    if resumed:
        db.session.flush()
    return resumed


def stop_clocks(
    person_id: int,
    kinds: set[ClockKind] | None,
    on: dt.date,
    reason: str,
    *,
    pathway_id: int | None = None,
    contract_id: int | None = None,
) -> int:
    """End open clocks without meeting them (pathway closed, contract cancelled). A paused
    clock ends too (it keeps the day it stopped counting), unless ``reason`` is itself a
    pause."""
    pausing = reason.startswith(PAUSED)
    query = select(PathwayClock).where(
        PathwayClock.person_id == person_id,
        PathwayClock.met_on.is_(None),
        PathwayClock.stopped_on.is_(None) if pausing else _running_or_paused,
    )
    if kinds is not None:
        query = query.where(PathwayClock.kind.in_(kinds))
    if pathway_id is not None:
        query = query.where(PathwayClock.pathway_id == pathway_id)
    if contract_id is not None:
        query = query.where(PathwayClock.contract_id == contract_id)
    clocks = list(db.session.scalars(query))
    for clock in clocks:
        if clock.stopped_on is None:
            clock.stopped_on = on
        clock.stop_reason = reason
    if clocks:
        db.session.flush()
    return len(clocks)
