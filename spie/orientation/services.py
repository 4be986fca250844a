"""The orientation case and its clock: open, pause, resume, close (services flush only).

Clock rules (DOMAIN §3, docs/orientation.md):

- a case opens with a clock start (date, how it was determined, whether it is estimated) and
  the orientation :class:`DelayPolicy` in force on that date, kept for the case's whole life;
- ``legal_deadline`` and ``target_date`` are ``start + limit`` pushed back by every paused
  day (``spie.clocks.calendar.deadline``); both are NULL while the clock is paused;
- a pause is ``[paused_on, resumed_on)``: the clock does not run on those days;
- the clock ends when the decision is notified (status ``notifiee``, ``closed_on`` =
  notification date, ``close_reason`` = ``oriented``); other closes (death, long pause,
  duplicate...) set status ``closed``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from spie.audit.models import AuditAction
from spie.audit.service import record
from spie.clocks.calendar import Pause
from spie.clocks.models import ClockKind
from spie.clocks.services import due_dates, policy_in_force
from spie.db import db, utcnow
from spie.errors import Conflict, ValidationFailed
from spie.orientation.models import (
    CasePause,
    CaseStatus,
    ClockStartBasis,
    CloseReason,
    Convocation,
    OrientationCase,
    RioSession,
    RioStatus,
)
from spie.persons.models import Person

PAUSE_REASONS = ("left_sdd", "right_closed", "moved_away")
# Statuses in which the clock may still run (the orientation is not notified yet).
RUNNING_STATUSES = (
    CaseStatus.A_ORIENTER,
    CaseStatus.CONVOQUE_RIO,
    CaseStatus.PROPOSEE,
    CaseStatus.DECIDEE,
)


def open_case_of(person_id: int) -> OrientationCase | None:
    """The person's open case (at most one: a partial unique index guarantees it)."""
    return db.session.scalar(
        select(OrientationCase)
        .where(OrientationCase.person_id == person_id, OrientationCase.closed_on.is_(None))
        .options(selectinload(OrientationCase.pauses), selectinload(OrientationCase.policy))
    )


def latest_case_of(person_id: int) -> OrientationCase | None:
    return db.session.scalar(
        select(OrientationCase)
        .where(OrientationCase.person_id == person_id)
        .order_by(OrientationCase.clock_started_on.desc(), OrientationCase.id.desc())
        .limit(1)
    )


def case_pauses(case: OrientationCase) -> list[Pause]:
    return [(pause.paused_on, pause.resumed_on) for pause in case.pauses]


def recompute_deadlines(case: OrientationCase) -> None:
    """Legal deadline and target date from the case's own policy and its pauses."""
    case.legal_deadline, case.target_date = due_dates(
        case.policy, case.clock_started_on, case_pauses(case)
    )


def open_case(
    person: Person,
    started_on: dt.date,
    basis: ClockStartBasis,
    estimated: bool = False,
) -> OrientationCase:
    """Open a case whose clock started on ``started_on``, judged by the policy in force then.

    Raises :class:`Conflict` if the person already has an open case, :class:`NotFound`
    (``no_delay_policy``) if no orientation policy covers ``started_on``.
    """
    existing = open_case_of(person.id)
    if existing is not None:
        raise Conflict(
            f"La personne a déjà un dossier d'orientation ouvert ({existing.id}).",
            code="case_already_open",
            extra={"case_id": existing.id},
        )
    if person.deceased_on is not None:
        raise Conflict(
            "La personne est décédée : aucun dossier ne peut être ouvert.", code="person_deceased"
        )
    policy = policy_in_force(ClockKind.ORIENTATION, started_on)
    case = OrientationCase(
        person_id=person.id,
        status=CaseStatus.A_ORIENTER,
        clock_started_on=started_on,
        start_basis=basis,
        clock_estimated=estimated,
        policy=policy,
        policy_id=policy.id,
        territory_id=person.territory_id,
        public=person.public,
        paused_days=0,
        rio_absences=0,
        flagged_for_ep=False,
    )
    case.pauses = []
    recompute_deadlines(case)
    db.session.add(case)
    db.session.flush()
    record(
        AuditAction.CREATE,
        "orientation_case",
        case.id,
        person_id=person.id,
        reason="orientation",
        details={
            "clock_started_on": started_on.isoformat(),
            "start_basis": basis.value,
            "estimated": estimated,
            "policy_id": policy.id,
        },
    )
    return case


def pause_case(case: OrientationCase, on: dt.date, reason: str) -> bool:
    """Stop the clock from ``on`` (the person left SDD, the right closed, they moved away).

    Future convocations are cancelled. Returns False when there was nothing to do (already
    paused, closed or notified).
    """
    if reason not in PAUSE_REASONS:
        raise ValueError(f"motif de pause inconnu : {reason!r} ({', '.join(PAUSE_REASONS)})")
    if case.closed_on is not None or case.paused_since is not None:
        return False
    if case.status not in RUNNING_STATUSES:
        return False
    on = max(on, case.clock_started_on)
    case.pauses.append(CasePause(paused_on=on, reason=reason))
    case.paused_since = on
    case.legal_deadline = None
    case.target_date = None
    cancel_pending_convocations(case)
    db.session.flush()
    record(
        AuditAction.UPDATE,
        "orientation_case",
        case.id,
        person_id=case.person_id,
        reason="clock_paused",
        details={"on": on.isoformat(), "why": reason},
    )
    return True


def resume_case(case: OrientationCase, on: dt.date) -> bool:
    """Restart a paused clock on ``on``: the paused days push both deadlines back.

    Returns False when the case is not paused or ``on`` is before the pause (an older
    observation never rewrites newer history).
    """
    if case.paused_since is None or case.closed_on is not None:
        return False
    if on < case.paused_since:
        return False
    open_pause = next(p for p in case.pauses if p.resumed_on is None)
    open_pause.resumed_on = on
    case.paused_days += (on - open_pause.paused_on).days
    case.paused_since = None
    recompute_deadlines(case)
    db.session.flush()
    record(
        AuditAction.UPDATE,
        "orientation_case",
        case.id,
        person_id=case.person_id,
        reason="clock_resumed",
        details={"on": on.isoformat(), "paused_days": case.paused_days},
    )
    return True


def close_case(case: OrientationCase, on: dt.date, reason: CloseReason) -> bool:
    """Close a case that will not be oriented (death, long pause, duplicate, abandon)."""
    if case.closed_on is not None:
        return False
    on = max(on, case.clock_started_on)
    for pause in case.pauses:
        if pause.resumed_on is None:
            pause.resumed_on = max(on, pause.paused_on)
    case.status = CaseStatus.CLOSED
    case.closed_on = on
    case.close_reason = reason
    cancel_pending_convocations(case)
    db.session.flush()
    record(
        AuditAction.UPDATE,
        "orientation_case",
        case.id,
        person_id=case.person_id,
        reason="case_closed",
        details={"on": on.isoformat(), "close_reason": reason.value},
    )
    return True


def cancel_pending_convocations(case: OrientationCase, keep_session_id: int | None = None) -> int:
    """Cancel the case's convocations to planned sessions whose attendance is not recorded
    (the person no longer needs to come). Returns how many were cancelled."""
    pending = db.session.scalars(
        select(Convocation)
        .join(RioSession, Convocation.session_id == RioSession.id)
        .where(
            Convocation.case_id == case.id,
            Convocation.cancelled_at.is_(None),
            Convocation.attendance.is_(None),
            RioSession.status == RioStatus.PLANNED,
        )
    ).all()
    count = 0
    for convocation in pending:
        if convocation.session_id == keep_session_id:
            continue
        convocation.cancelled_at = utcnow()
        count += 1
    if count and case.status == CaseStatus.CONVOQUE_RIO:
        case.status = CaseStatus.A_ORIENTER
    return count


def open_case_manually(
    person: Person, started_on: dt.date, basis: ClockStartBasis, estimated: bool
) -> OrientationCase:
    """An agent opens a case (until the CAF import exists, and for corrections)."""
    if basis == ClockStartBasis.MANUAL_REFERRAL and person.referral_source is None:
        raise ValidationFailed(
            "Base de démarrage incohérente.",
            errors={"basis": ["manual_referral est réservé aux personnes orientées à la main."]},
        )
    return open_case(person, started_on, basis, estimated)
