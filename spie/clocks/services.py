"""Delay policies as data: lookup of the policy in force, creation without overlap, seed.

Services flush, never commit. A clock is always judged by the policy in force on the day it
started: :func:`policy_in_force` answers that, and callers keep the policy id on the clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, or_, select

from spie.audit.models import AuditAction
from spie.audit.service import record
from spie.clocks.calendar import Duration, Pause, deadline
from spie.clocks.models import ClockKind, DelayPolicy
from spie.clocks.policies import SEED_POLICIES
from spie.db import db
from spie.errors import Conflict, NotFound, ValidationFailed

DURATION_FIELDS = ("legal_limit", "target", "extended_limit")


def policy_in_force(clock: ClockKind, on: dt.date) -> DelayPolicy:
    """The policy of ``clock`` valid on ``on`` (``valid_from <= on < valid_until``).

    Raises :class:`NotFound` (code ``no_delay_policy``) when none is: a clock must never be
    computed with a guessed rule.
    """
    policy = db.session.scalar(
        select(DelayPolicy)
        .where(
            DelayPolicy.clock == clock,
            DelayPolicy.valid_from <= on,
            or_(DelayPolicy.valid_until.is_(None), DelayPolicy.valid_until > on),
        )
        .order_by(DelayPolicy.valid_from.desc(), DelayPolicy.id.desc())
        .limit(1)
    )
    if policy is None:
        raise NotFound(
            f"Aucune politique de délai « {clock.value} » n'est en vigueur le "
            f"{on.isoformat()} : un administrateur doit la créer (ou lancer "
            "« flask spie orientation seed »).",
            code="no_delay_policy",
            extra={"clock": clock.value, "on": on.isoformat()},
        )
    return policy


def due_dates(
    policy: DelayPolicy, started_on: dt.date, pauses: Sequence[Pause] = ()
) -> tuple[dt.date | None, dt.date | None]:
    """(legal deadline, target date) of a clock started on ``started_on`` under ``policy``,
    pushed back by the paused days; ``None`` for a limit the policy does not set or while
    the clock is paused (an open pause)."""
    legal = (
        deadline(started_on, Duration.parse(policy.legal_limit), pauses)
        if policy.legal_limit
        else None
    )
    target = deadline(started_on, Duration.parse(policy.target), pauses) if policy.target else None
    return legal, target


def _check_durations(data: dict[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    for field in DURATION_FIELDS:
        value = data.get(field)
        if value is None:
            continue
        try:
            Duration.parse(value)
        except ValueError as exc:
            errors[field] = [str(exc)]
    if not data.get("legal_limit") and not data.get("target"):
        errors.setdefault("legal_limit", []).append(
            "Indiquez au moins un délai légal (legal_limit) ou une cible (target)."
        )
    if errors:
        raise ValidationFailed("Durée de politique invalide.", errors=errors)


def _overlapping(
    clock: ClockKind,
    valid_from: dt.date,
    valid_until: dt.date | None,
    exclude_id: int | None = None,
) -> DelayPolicy | None:
    """A policy of ``clock`` whose validity overlaps ``[valid_from, valid_until)``."""
    query = select(DelayPolicy).where(
        DelayPolicy.clock == clock,
        or_(DelayPolicy.valid_until.is_(None), DelayPolicy.valid_until > valid_from),
    )
    if valid_until is not None:
        query = query.where(DelayPolicy.valid_from < valid_until)
    if exclude_id is not None:
        query = query.where(DelayPolicy.id != exclude_id)
    return db.session.scalar(query.order_by(DelayPolicy.valid_from).limit(1))


def _raise_overlap(other: DelayPolicy) -> None:
    until = other.valid_until.isoformat() if other.valid_until else "sans fin"
    raise Conflict(
        f"La période de validité chevauche la politique {other.id} « {other.label} » "
        f"(du {other.valid_from.isoformat()} au {until}) : fermez d'abord celle-ci "
        "(valid_until) ou choisissez une autre période.",
        code="policy_overlap",
        errors={"valid_from": ["Période de validité en chevauchement avec une autre politique."]},
        extra={"conflicting_policy_id": other.id},
    )


def create_policy(data: dict[str, Any]) -> DelayPolicy:
    """Add a policy (admin). Durations must parse; validity must not overlap another
    policy of the same clock."""
    valid_from: dt.date = data["valid_from"]
    valid_until: dt.date | None = data.get("valid_until")
    if valid_until is not None and valid_until <= valid_from:
        raise ValidationFailed(
            "Période de validité invalide.",
            errors={"valid_until": ["valid_until doit être postérieure à valid_from."]},
        )
    _check_durations(data)
    other = _overlapping(data["clock"], valid_from, valid_until)
    if other is not None:
        _raise_overlap(other)
    policy = DelayPolicy(
        clock=data["clock"],
        legal_limit=data.get("legal_limit"),
        target=data.get("target"),
        extended_limit=data.get("extended_limit"),
        valid_from=valid_from,
        valid_until=valid_until,
        label=data["label"],
        legal_source=data.get("legal_source"),
    )
    db.session.add(policy)
    db.session.flush()
    record(
        AuditAction.CREATE,
        "delay_policy",
        policy.id,
        reason="policy",
        details={"clock": policy.clock.value, "valid_from": valid_from.isoformat()},
    )
    return policy


def update_policy(policy: DelayPolicy, changes: dict[str, Any]) -> DelayPolicy:
    """Change the label, the legal source or close the validity (``valid_until``).

    Durations are never edited: clocks already judged by a policy keep it; a new rule is a
    new policy. Closing a period before clocks that use it started is refused.
    """
    if "valid_until" in changes:
        valid_until = changes["valid_until"]
        if valid_until is not None and valid_until <= policy.valid_from:
            raise ValidationFailed(
                "Période de validité invalide.",
                errors={"valid_until": ["valid_until doit être postérieure à valid_from."]},
            )
        other = _overlapping(policy.clock, policy.valid_from, valid_until, exclude_id=policy.id)
        if other is not None:
            _raise_overlap(other)
        if valid_until is not None:
            _refuse_if_used_after(policy, valid_until)
        policy.valid_until = valid_until
    for field in ("label", "legal_source"):
        if field in changes:
            setattr(policy, field, changes[field])
    db.session.flush()
    record(
        AuditAction.UPDATE,
        "delay_policy",
        policy.id,
        reason="policy",
        details={"fields": sorted(changes)},
    )
    return policy


def _refuse_if_used_after(policy: DelayPolicy, valid_until: dt.date) -> None:
    from spie.orientation.models import OrientationCase

    used = db.session.scalar(
        select(OrientationCase.id)
        .where(
            and_(
                OrientationCase.policy_id == policy.id,
                OrientationCase.clock_started_on >= valid_until,
            )
        )
        .limit(1)
    )
    if used is not None:
        raise Conflict(
            "Des dossiers dont l'horloge a démarré après cette date sont jugés par cette "
            "politique : la période ne peut pas être raccourcie avant leur démarrage.",
            code="policy_in_use",
            errors={"valid_until": ["Date antérieure au démarrage de dossiers existants."]},
        )


def seed_delay_policies() -> dict[str, int]:
    """Insert the shipped policies whose period is still free (no policy of the same clock
    overlaps it); idempotent, never changes an existing row, so an administrator's own
    policies win. Returns ``{"created": n, "kept": m}``."""
    created = 0
    for seed in SEED_POLICIES:
        if _overlapping(seed.clock, seed.valid_from, seed.valid_until) is not None:
            continue
        db.session.add(
            DelayPolicy(
                clock=seed.clock,
                legal_limit=seed.legal_limit,
                target=seed.target,
                extended_limit=seed.extended_limit,
                valid_from=seed.valid_from,
                valid_until=seed.valid_until,
                label=seed.label,
                legal_source=seed.legal_source,
            )
        )
        created += 1
        db.session.flush()
    return {"created": created, "kept": len(SEED_POLICIES) - created}
