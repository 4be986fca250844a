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
"""

from __future__ import annotations

import datetime as dt
import logging

from dateutil.relativedelta import relativedelta
from sqlalchemy import select

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


def open_clocks(
    person_id: int, kinds: set[ClockKind], pathway_id: int | None = None
) -> list[PathwayClock]:
    query = select(PathwayClock).where(
        PathwayClock.person_id == person_id,
        PathwayClock.kind.in_(kinds),
        PathwayClock.met_on.is_(None),
        PathwayClock.stopped_on.is_(None),
    )
    if pathway_id is not None:
        query = query.where(PathwayClock.pathway_id == pathway_id)
    return list(db.session.scalars(query.order_by(PathwayClock.id)))


def meet_clocks(
    person_id: int, kinds: set[ClockKind], on: dt.date, pathway_id: int | None = None
) -> int:
    """The end event happened on ``on``: every open clock of ``kinds`` is met."""
    clocks = open_clocks(person_id, kinds, pathway_id)
    for clock in clocks:
        clock.met_on = on
    if clocks:
        db.session.flush()
    return len(clocks)


def stop_clocks(
    person_id: int,
    kinds: set[ClockKind] | None,
    on: dt.date,
    reason: str,
    *,
    pathway_id: int | None = None,
    contract_id: int | None = None,
) -> int:
    """End open clocks without meeting them (pathway closed, contract cancelled)."""
    query = select(PathwayClock).where(
        PathwayClock.person_id == person_id,
        PathwayClock.met_on.is_(None),
        PathwayClock.stopped_on.is_(None),
    )
    if kinds is not None:
        query = query.where(PathwayClock.kind.in_(kinds))
    if pathway_id is not None:
        query = query.where(PathwayClock.pathway_id == pathway_id)
    if contract_id is not None:
        query = query.where(PathwayClock.contract_id == contract_id)
    clocks = list(db.session.scalars(query))
    for clock in clocks:
        clock.stopped_on = on
        clock.stop_reason = reason
    if clocks:
        db.session.flush()
    return len(clocks)
