"""Alerts: something an agent must act on for one person (stable API for other packages).

Other packages call:

- :func:`raise_alert` ``(person, kind, *, due_on=None, details=None, ...)`` — e.g. the France
  Travail import for a radiation: ``raise_alert(person, AlertKind.FT_RADIATION,
  due_on=radiation_date, details={"motif": "code"})``;
- :func:`flag_for_review` ``(person, reason)`` — e.g. the CAF import when the address moved to
  another CTM: ``flag_for_review(person, "moved_to_other_ctm")``.

Both are services (flush, never commit), idempotent (one alert per person, kind and due
date: calling twice returns the first alert) and address the alert to the person's active
référent and their structure (whose managers see it), or to the structure the person was
oriented to when they have no référent. ``details`` and ``reason`` carry codes and ids only,
never personal data or free text.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import select

from spie.audit.models import AuditAction
from spie.audit.service import record
from spie.db import db
from spie.errors import NotFound, ValidationFailed
from spie.parcours import clock
from spie.parcours.models import Alert, AlertKind
from spie.persons.models import Person
from spie.referent.models import ReferentAssignment

__all__ = ["Alert", "AlertKind", "flag_for_review", "raise_alert", "resolve_alert"]

_CODE_RE = re.compile(r"^[a-z0-9_.:\-]{1,60}$")


def _recipients(person_id: int, current_structure_id: int | None) -> tuple[int | None, int | None]:
    row = db.session.execute(
        select(ReferentAssignment.agent_id, ReferentAssignment.structure_id).where(
            ReferentAssignment.person_id == person_id, ReferentAssignment.ended_at.is_(None)
        )
    ).first()
    if row is not None:
        return row[0], row[1]
    return None, current_structure_id


def _check_details(details: dict[str, Any] | None) -> None:
    for key, value in (details or {}).items():
        if not isinstance(key, str) or not _CODE_RE.match(key):
            raise ValueError(f"clé de détail d'alerte invalide : {key!r}")
        if isinstance(value, str) and not _CODE_RE.match(value) and len(value) > 60:
            raise ValueError("les détails d'alerte sont des codes courts, pas du texte libre")


def raise_alert(
    person: Person,
    kind: AlertKind | str,
    *,
    due_on: dt.date | None = None,
    details: dict[str, Any] | None = None,
    agent_id: int | None = None,
    structure_id: int | None = None,
    source_type: str | None = None,
    source_id: int | None = None,
    notify_referent: bool = True,
) -> Alert:
    """Raise (or return the existing) alert ``kind`` for ``person`` due on ``due_on``
    (default: today in Paris). Recipients default to the active référent and their
    structure, else the structure of the person's last orientation; ``notify_referent=False``
    addresses it to the structure's managers only."""
    kind = AlertKind(kind)
    due_on = due_on or clock.today()
    _check_details(details)
    existing = db.session.scalar(
        select(Alert).where(
            Alert.person_id == person.id, Alert.kind == kind, Alert.due_on == due_on
        )
    )
    if existing is not None:
        return existing
    default_agent, default_structure = _recipients(person.id, person.current_structure_id)
    alert = Alert(
        person_id=person.id,
        kind=kind,
        due_on=due_on,
        raised_at=clock.now(),
        agent_id=agent_id if agent_id is not None else (default_agent if notify_referent else None),
        structure_id=structure_id if structure_id is not None else default_structure,
        source_type=source_type,
        source_id=source_id,
        details=details,
    )
    db.session.add(alert)
    db.session.flush()
    record(
        AuditAction.CREATE,
        "alert",
        alert.id,
        person_id=person.id,
        reason="alert",
        details={"kind": kind.value, "due_on": due_on.isoformat()},
    )
    return alert


def flag_for_review(person: Person, reason: str, on: dt.date | None = None) -> Alert:
    """Flag the person's référent assignment for review (``reason`` is a short code such as
    ``moved_to_other_ctm``). Idempotent per day."""
    if not _CODE_RE.match(reason):
        raise ValueError("reason doit être un code court (lettres minuscules, chiffres, _)")
    return raise_alert(person, AlertKind.ASSIGNMENT_REVIEW, due_on=on, details={"reason": reason})


def resolve_alert(alert: Alert, by_agent_id: int | None, resolution: str) -> Alert:
    if alert.resolved_at is not None:
        raise ValidationFailed(
            "Alerte déjà traitée.", errors={"resolution": ["Cette alerte est déjà traitée."]}
        )
    alert.resolved_at = clock.now()
    alert.resolved_by_id = by_agent_id
    alert.resolution = resolution
    db.session.flush()
    record(
        AuditAction.UPDATE,
        "alert",
        alert.id,
        person_id=alert.person_id,
        reason="alert_resolved",
        details={"kind": alert.kind.value},
    )
    return alert


def resolve_open_alerts(person_id: int, kinds: set[AlertKind], resolution: str) -> int:
    """Close the person's open alerts of ``kinds`` (system resolution, e.g. a référent was
    assigned so the gap alert is over). Returns how many."""
    alerts = db.session.scalars(
        select(Alert).where(
            Alert.person_id == person_id,
            Alert.kind.in_(kinds),
            Alert.resolved_at.is_(None),
        )
    ).all()
    for alert in alerts:
        alert.resolved_at = clock.now()
        alert.resolution = resolution
    if alerts:
        db.session.flush()
    return len(alerts)


def get_alert(alert_id: int) -> Alert:
    alert = db.session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"Alerte {alert_id} introuvable.")
    return alert
