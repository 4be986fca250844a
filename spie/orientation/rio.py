"""RIO sessions: planning, convening, attendance (services flush only).

- **Convene** fills a planned session, not yet started, with the people of its territory who
  have waited longest (oldest clock start first, then case id): open cases whose clock runs,
  status ``a_orienter``, not flagged for the EP procedure, and with no *pending* convocation
  (to a planned session, attendance not yet recorded, not cancelled) — so nobody is ever
  convened to two future sessions. Never beyond the session's capacity. Each convocation
  sends its e-mail from a job after the commit.
- **Attendance** is recorded in bulk once the session has started: ``present`` keeps the case
  waiting for its diagnostic, ``absent`` and ``excuse`` put it back in the pool to be convened
  again; after ``SPIE_RIO_MAX_ABSENCES`` absences (default 2) the case is flagged for the
  référent/EP procedure and is no longer convened automatically.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import Select, exists, func, select

from spie.agents.models import Agent
from spie.audit.models import AuditAction
from spie.audit.service import record
from spie.auth.scope import persons_visible_to, territory_ids_of
from spie.db import db
from spie.errors import Conflict, Forbidden, ValidationFailed
from spie.orientation.models import (
    Attendance,
    CaseStatus,
    Convocation,
    OrientationCase,
    RioSession,
    RioStatus,
)
from spie.persons.models import Person
from spie.structures.models import Structure
from spie.territories.models import Territory

DEFAULT_MAX_ABSENCES = 2


def max_absences() -> int:
    """Absences after which a case is flagged for the EP procedure (``SPIE_RIO_MAX_ABSENCES``)."""
    value: Any = None
    if has_app_context():
        value = current_app.config.get("SPIE_RIO_MAX_ABSENCES")
    if value is None:
        value = os.environ.get("SPIE_RIO_MAX_ABSENCES", DEFAULT_MAX_ABSENCES)
    return max(1, int(value))


def _check_territory(agent: Agent, territory_id: int) -> None:
    if db.session.get(Territory, territory_id) is None:
        raise ValidationFailed(
            "Territoire inconnu.", errors={"territory_id": [f"Aucun territoire {territory_id}."]}
        )
    allowed = territory_ids_of(agent)
    if allowed is not None and territory_id not in allowed:
        raise Forbidden(
            "Ce territoire ne fait pas partie des vôtres : vous ne pouvez pas y organiser de RIO.",
            code="territory_out_of_scope",
        )


def _check_structure(structure_id: int) -> None:
    structure = db.session.get(Structure, structure_id)
    if structure is None or not structure.active:
        raise ValidationFailed(
            "Structure animatrice invalide.",
            errors={"animator_structure_id": ["Structure inconnue ou inactive."]},
        )


def _check_times(starts_at: dt.datetime, ends_at: dt.datetime | None) -> None:
    if ends_at is not None and ends_at <= starts_at:
        raise ValidationFailed(
            "Horaires invalides.", errors={"ends_at": ["La fin doit suivre le début."]}
        )


def create_session(agent: Agent, data: dict[str, Any]) -> RioSession:
    _check_territory(agent, data["territory_id"])
    _check_structure(data["animator_structure_id"])
    _check_times(data["starts_at"], data.get("ends_at"))
    session = RioSession(
        starts_at=data["starts_at"],
        ends_at=data.get("ends_at"),
        place=data["place"],
        territory_id=data["territory_id"],
        animator_structure_id=data["animator_structure_id"],
        capacity=data["capacity"],
        status=RioStatus.PLANNED,
    )
    db.session.add(session)
    db.session.flush()
    record(
        AuditAction.CREATE,
        "rio_session",
        session.id,
        reason="rio",
        details={"territory_id": session.territory_id, "capacity": session.capacity},
    )
    return session


def active_convocation_count(session: RioSession) -> int:
    return int(
        db.session.scalar(
            select(func.count(Convocation.id)).where(
                Convocation.session_id == session.id, Convocation.cancelled_at.is_(None)
            )
        )
        or 0
    )


def update_session(session: RioSession, changes: dict[str, Any]) -> RioSession:
    """Change place, times, capacity, animator, or cancel (``status = cancelled``).

    Capacity never goes below the convocations already sent; a cancelled session cancels
    its pending convocations and puts those cases back in the pool.
    """
    if session.status != RioStatus.PLANNED:
        raise Conflict(
            "Seule une session planifiée peut être modifiée.",
            code="session_not_planned",
            extra={"status": session.status.value},
        )
    if "capacity" in changes:
        convened = active_convocation_count(session)
        if changes["capacity"] < convened:
            raise Conflict(
                f"{convened} personnes sont déjà convoquées : la capacité ne peut pas descendre "
                "en dessous.",
                code="capacity_below_convened",
                errors={"capacity": [f"Au moins {convened}."]},
            )
    if "animator_structure_id" in changes:
        _check_structure(changes["animator_structure_id"])
    _check_times(
        changes.get("starts_at", session.starts_at), changes.get("ends_at", session.ends_at)
    )
    if "starts_at" in changes and changes["starts_at"] != session.starts_at:
        # Moved: the reminder is due again two working days before the new date.
        session.reminder_sent_at = None
        for convocation in db.session.scalars(
            select(Convocation).where(Convocation.session_id == session.id)
        ):
            convocation.reminder_sent_at = None
    for field in ("starts_at", "ends_at", "place", "capacity", "animator_structure_id"):
        if field in changes:
            setattr(session, field, changes[field])
    if changes.get("status") == RioStatus.CANCELLED:
        _cancel_session(session)
    db.session.flush()
    record(
        AuditAction.UPDATE,
        "rio_session",
        session.id,
        reason="rio",
        details={"fields": sorted(changes)},
    )
    return session


def _cancel_session(session: RioSession) -> None:
    from spie.db import utcnow

    session.status = RioStatus.CANCELLED
    pending = db.session.scalars(
        select(Convocation).where(
            Convocation.session_id == session.id,
            Convocation.cancelled_at.is_(None),
            Convocation.attendance.is_(None),
        )
    ).all()
    case_ids = [c.case_id for c in pending]
    for convocation in pending:
        convocation.cancelled_at = utcnow()
    if case_ids:
        for case in db.session.scalars(
            select(OrientationCase).where(OrientationCase.id.in_(case_ids))
        ):
            if case.status == CaseStatus.CONVOQUE_RIO:
                case.status = CaseStatus.A_ORIENTER


def pending_convocation_exists() -> Any:
    """EXISTS clause (correlated on ``OrientationCase``): the case has a convocation to a
    planned session, not cancelled, attendance not yet recorded — it must not be convened
    to another session."""
    return exists(
        select(Convocation.id)
        .join(RioSession, RioSession.id == Convocation.session_id)
        .where(
            Convocation.case_id == OrientationCase.id,
            Convocation.cancelled_at.is_(None),
            Convocation.attendance.is_(None),
            RioSession.status == RioStatus.PLANNED,
        )
    )


def eligible_cases(agent: Agent, territory_id: int) -> Select[OrientationCase]:
    """Cases that may be convened to a session of ``territory_id``, longest wait first."""
    return (
        select(OrientationCase)
        .join(Person, Person.id == OrientationCase.person_id)
        .where(
            OrientationCase.closed_on.is_(None),
            OrientationCase.paused_since.is_(None),
            OrientationCase.status == CaseStatus.A_ORIENTER,
            OrientationCase.flagged_for_ep.is_(False),
            Person.territory_id == territory_id,
            Person.deceased_on.is_(None),
            persons_visible_to(agent),
            ~pending_convocation_exists(),
        )
        .order_by(OrientationCase.clock_started_on, OrientationCase.id)
    )


def convene(
    session: RioSession,
    agent: Agent,
    now: dt.datetime,
    count: int | None = None,
    person_ids: Sequence[int] | None = None,
) -> list[Convocation]:
    """Convene people to ``session``: ``person_ids`` if given (each must be eligible), else
    the ``count`` longest-waiting eligible people (default: fill the remaining places).

    Raises :class:`Conflict` (``capacity_exceeded``, ``session_full``, ``session_not_planned``,
    ``session_started``) or :class:`ValidationFailed` (a person who cannot be convened), and
    then changes nothing.
    """
    if session.status != RioStatus.PLANNED:
        raise Conflict(
            "Cette session n'est plus planifiée : impossible d'y convoquer.",
            code="session_not_planned",
            extra={"status": session.status.value},
        )
    if session.starts_at <= now:
        raise Conflict(
            "Cette session a déjà commencé : impossible d'y convoquer.", code="session_started"
        )
    remaining = session.capacity - active_convocation_count(session)
    wanted = len(person_ids) if person_ids else (count if count is not None else remaining)
    if remaining <= 0:
        raise Conflict(
            f"La session est complète ({session.capacity} places).",
            code="session_full",
            extra={"capacity": session.capacity, "remaining": 0},
        )
    if wanted > remaining:
        raise Conflict(
            f"Convoquer {wanted} personnes dépasserait la capacité de la session : il reste "
            f"{remaining} place(s) sur {session.capacity}.",
            code="capacity_exceeded",
            errors={"person_ids" if person_ids else "count": [f"{remaining} place(s) au plus."]},
            extra={"capacity": session.capacity, "remaining": remaining},
        )
    query = eligible_cases(agent, session.territory_id)
    if person_ids:
        if len(set(person_ids)) != len(person_ids):
            raise ValidationFailed(
                "Une personne figure deux fois.",
                errors={"person_ids": ["Chaque personne ne peut figurer qu'une fois."]},
            )
        cases = db.session.scalars(
            query.where(OrientationCase.person_id.in_(person_ids)).with_for_update(
                of=OrientationCase
            )
        ).all()
        found = {case.person_id for case in cases}
        missing = [pid for pid in person_ids if pid not in found]
        if missing:
            raise ValidationFailed(
                "Certaines personnes ne peuvent pas être convoquées à cette session.",
                errors={
                    "person_ids": {
                        str(pid): [
                            "Pas de dossier à orienter sur le territoire de la session, déjà "
                            "convoquée à une session à venir, horloge suspendue ou signalée "
                            "pour la procédure EP."
                        ]
                        for pid in missing
                    }
                },
            )
        by_person = {case.person_id: case for case in cases}
        cases = [by_person[pid] for pid in person_ids]
    else:
        cases = list(
            db.session.scalars(
                query.limit(wanted).with_for_update(of=OrientationCase, skip_locked=True)
            ).all()
        )
    return _create_convocations(session, agent, cases)


def _create_convocations(
    session: RioSession, agent: Agent, cases: Sequence[OrientationCase]
) -> list[Convocation]:
    from spie.orientation.jobs import send_convocation_email

    previous = {
        c.person_id: c
        for c in db.session.scalars(
            select(Convocation).where(
                Convocation.session_id == session.id,
                Convocation.person_id.in_([case.person_id for case in cases]),
            )
        )
    }
    created: list[Convocation] = []
    for case in cases:
        convocation = previous.get(case.person_id)
        if convocation is not None:  # convened earlier then cancelled: convene again
            convocation.cancelled_at = None
            convocation.email_sent_at = None
            convocation.reminder_sent_at = None
            convocation.convened_by_id = agent.id
        else:
            convocation = Convocation(
                session_id=session.id,
                case_id=case.id,
                person_id=case.person_id,
                convened_by_id=agent.id,
            )
            db.session.add(convocation)
        case.status = CaseStatus.CONVOQUE_RIO
        created.append(convocation)
    db.session.flush()
    for convocation in created:
        record(
            AuditAction.CREATE,
            "rio_convocation",
            convocation.id,
            person_id=convocation.person_id,
            reason="rio",
            details={"session_id": session.id},
        )
        send_convocation_email.delay(convocation.id)
    return created


def record_attendance(
    session: RioSession, items: Sequence[dict[str, Any]], now: dt.datetime
) -> list[Convocation]:
    """Record ``present`` / ``absent`` / ``excuse`` for people convened to ``session``.

    Every item is checked before anything is written: someone not convened (or whose
    convocation was cancelled), a person listed twice, a session not started or cancelled
    each raise a precise error and nothing changes.
    """
    if session.status == RioStatus.CANCELLED:
        raise Conflict("Cette session a été annulée.", code="session_cancelled")
    if session.starts_at > now:
        raise Conflict(
            "La session n'a pas encore eu lieu : la présence ne peut pas être saisie.",
            code="session_not_started",
        )
    convocations = {
        c.person_id: c
        for c in db.session.scalars(
            select(Convocation).where(
                Convocation.session_id == session.id, Convocation.cancelled_at.is_(None)
            )
        )
    }
    errors: dict[str, Any] = {}
    seen: set[int] = set()
    for index, item in enumerate(items):
        person_id = item["person_id"]
        if person_id in seen:
            errors[str(index)] = {"person_id": ["Personne déjà présente dans la liste."]}
        elif person_id not in convocations:
            errors[str(index)] = {
                "person_id": [f"La personne {person_id} n'est pas convoquée à cette session."]
            }
        seen.add(person_id)
    if errors:
        raise ValidationFailed(
            "Présences refusées : certaines lignes ne correspondent à aucune convocation.",
            code="not_convened",
            errors={"items": errors},
        )
    changed: list[Convocation] = []
    for item in items:
        convocation = convocations[item["person_id"]]
        convocation.attendance = item["attendance"]
        convocation.attendance_recorded_at = now
        changed.append(convocation)
    session.status = RioStatus.HELD
    db.session.flush()
    _apply_attendance_to_cases([c.case_id for c in changed])
    for convocation in changed:
        record(
            AuditAction.UPDATE,
            "rio_convocation",
            convocation.id,
            person_id=convocation.person_id,
            reason="attendance",
            details={
                "attendance": convocation.attendance.value if convocation.attendance else None
            },
        )
    return changed


def _apply_attendance_to_cases(case_ids: Sequence[int]) -> None:
    """Recompute absences (one aggregate query), the EP flag and the case status."""
    absences = dict(
        db.session.execute(
            select(Convocation.case_id, func.count(Convocation.id))
            .where(
                Convocation.case_id.in_(case_ids),
                Convocation.attendance == Attendance.ABSENT,
                Convocation.cancelled_at.is_(None),
            )
            .group_by(Convocation.case_id)
        ).all()
    )
    pending = set(
        db.session.scalars(
            select(OrientationCase.id).where(
                OrientationCase.id.in_(case_ids), pending_convocation_exists()
            )
        )
    )
    present = set(
        db.session.scalars(
            select(Convocation.case_id).where(
                Convocation.case_id.in_(case_ids),
                Convocation.attendance == Attendance.PRESENT,
                Convocation.cancelled_at.is_(None),
            )
        )
    )
    threshold = max_absences()
    for case in db.session.scalars(select(OrientationCase).where(OrientationCase.id.in_(case_ids))):
        case.rio_absences = int(absences.get(case.id, 0))
        case.flagged_for_ep = case.rio_absences >= threshold
        if case.closed_on is not None or case.status not in (
            CaseStatus.A_ORIENTER,
            CaseStatus.CONVOQUE_RIO,
        ):
            continue
        # Attended (waiting for the diagnostic) or convened again: convoqué; else back in
        # the pool of people to convene.
        if case.id in present or case.id in pending:
            case.status = CaseStatus.CONVOQUE_RIO
        else:
            case.status = CaseStatus.A_ORIENTER
    db.session.flush()
