"""Orientation decisions (append-only, ranked per person) and their notification.

- A human decides, following the proposal of a diagnostic of the case or not: a decision
  whose parcours differs from the proposal needs ``divergence_reason``.
- Every decision of a person has the next rank. A decision on a case that already has one
  is a **réorientation** (or a correction before notification) and needs
  ``reorientation_reason``; from Emploi to Social it also needs the opinion of the équipe
  pluridisciplinaire (``ep_opinion``). The first decision of a *new* case (the person came
  back into SDD after an earlier orientation) gets a generated reason.
- The decision hands the person to the chosen structure's queue
  (``spie.referent.queue.hand_over_to_structure``) and, once committed, is offered to the
  :data:`DECISION_COMMITTED_HOOKS` (the France Travail integration registers there; the
  decision waits with ``ft_sync_status = pending``).
- **Notification** records the date and channel; it ends the orientation clock: the case
  becomes ``notifiee`` with ``closed_on`` = notification date and ``close_reason`` =
  ``oriented``. A réorientation of a notified case does not reopen any clock.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import exists, select

from spie.agents.models import Agent
from spie.audit.models import AuditAction
from spie.audit.service import record
from spie.db import db, on_commit
from spie.errors import Conflict, ValidationFailed
from spie.orientation.models import (
    Attendance,
    CaseStatus,
    CloseReason,
    Convocation,
    Diagnostic,
    FtSyncStatus,
    OrientationCase,
    OrientationDecision,
    Parcours,
)
from spie.orientation.services import latest_case_of
from spie.referent.queue import hand_over_to_structure
from spie.structures.models import Structure

log = logging.getLogger(__name__)

DecisionHook = Callable[[int], None]
DECISION_COMMITTED_HOOKS: list[DecisionHook] = []
"""Called with the decision id after the transaction that created it committed (e.g. the
France Travail integration enqueues its sending job). A failing hook is logged and does not
prevent the others."""

NEW_ENTRY_REASON = "Nouvelle orientation après une nouvelle entrée dans les droits et devoirs"
NOTIFICATION_CHANNELS = ("letter", "email")


def _run_hooks(decision_id: int) -> None:
    for hook in list(DECISION_COMMITTED_HOOKS):
        try:
            hook(decision_id)
        except Exception:
            log.exception("decision hook %s failed for decision %s", hook, decision_id)


def last_decision_of(person_id: int) -> OrientationDecision | None:
    return db.session.scalar(
        select(OrientationDecision)
        .where(OrientationDecision.person_id == person_id)
        .order_by(OrientationDecision.rank.desc())
        .limit(1)
    )


def _check_case(case: OrientationCase) -> None:
    if case.status == CaseStatus.CLOSED:
        raise Conflict(
            f"Le dossier d'orientation {case.id} est clos "
            f"({case.close_reason.value if case.close_reason else 'motif inconnu'}) : "
            "aucune décision ne peut y être prise.",
            code="case_closed",
            extra={"case_id": case.id},
        )
    latest = latest_case_of(case.person_id)
    if latest is not None and latest.id != case.id:
        raise Conflict(
            f"Le dossier {case.id} a été remplacé par le dossier {latest.id} : décidez sur "
            "le dossier le plus récent.",
            code="case_superseded",
            extra={"case_id": case.id, "latest_case_id": latest.id},
        )
    if case.paused_since is not None:
        raise Conflict(
            f"L'horloge du dossier {case.id} est suspendue depuis le "
            f"{case.paused_since.isoformat()} : la personne n'est plus à orienter.",
            code="case_paused",
            extra={"case_id": case.id},
        )


def _diagnostic(case: OrientationCase, diagnostic_id: int | None) -> Diagnostic:
    if diagnostic_id is not None:
        diagnostic = db.session.get(Diagnostic, diagnostic_id)
        if diagnostic is None or diagnostic.case_id != case.id:
            raise ValidationFailed(
                "Diagnostic invalide.",
                errors={"diagnostic_id": ["Ce diagnostic n'appartient pas à ce dossier."]},
            )
        return diagnostic
    diagnostic = db.session.scalar(
        select(Diagnostic)
        .where(Diagnostic.case_id == case.id)
        .order_by(Diagnostic.recorded_at.desc(), Diagnostic.id.desc())
        .limit(1)
    )
    if diagnostic is None:
        raise ValidationFailed(
            "Enregistrez d'abord le diagnostic : la décision s'appuie sur la proposition du "
            "référentiel.",
            code="diagnostic_required",
            errors={"diagnostic_id": ["Aucun diagnostic pour ce dossier."]},
        )
    return diagnostic


def decide(
    case: OrientationCase, agent: Agent, data: dict[str, Any], today: dt.date
) -> OrientationDecision:
    """Record a human decision on ``case``; every check runs before anything is written."""
    _check_case(case)
    errors: dict[str, list[str]] = {}
    decided_on: dt.date = data.get("decided_on") or today
    if decided_on > today:
        errors["decided_on"] = ["La date de décision ne peut pas être dans le futur."]
    if decided_on < case.clock_started_on:
        errors["decided_on"] = ["La date de décision précède le démarrage de l'horloge."]
    structure = db.session.get(Structure, data["structure_id"])
    if structure is None or not structure.active:
        errors["structure_id"] = ["Structure inconnue ou inactive."]
    if errors or structure is None:
        raise ValidationFailed("Décision invalide.", errors=errors)
    diagnostic = _diagnostic(case, data.get("diagnostic_id"))
    parcours: Parcours = data["parcours"]
    follows = parcours == diagnostic.proposed_parcours
    divergence_reason = data.get("divergence_reason")
    if not follows and not divergence_reason:
        errors["divergence_reason"] = [
            f"La décision ({parcours.value}) s'écarte de la proposition du référentiel "
            f"({diagnostic.proposed_parcours.value}) : indiquez pourquoi."
        ]
    previous = last_decision_of(case.person_id)
    reorientation_reason = data.get("reorientation_reason")
    if previous is not None and previous.case_id == case.id:
        if not reorientation_reason:
            errors["reorientation_reason"] = [
                "Une réorientation (nouvelle décision sur ce dossier) doit indiquer son motif."
            ]
        if (
            previous.parcours == Parcours.EMPLOI
            and parcours == Parcours.SOCIAL
            and not data.get("ep_opinion")
        ):
            errors["ep_opinion"] = [
                "Une réorientation du parcours Emploi vers le parcours Social requiert l'avis "
                "de l'équipe pluridisciplinaire."
            ]
    elif previous is not None and not reorientation_reason:
        reorientation_reason = NEW_ENTRY_REASON
    if errors:
        raise ValidationFailed("Décision invalide.", errors=errors)

    via_rio = (
        bool(
            db.session.scalar(
                select(
                    exists().where(
                        Convocation.case_id == case.id,
                        Convocation.attendance == Attendance.PRESENT,
                        Convocation.cancelled_at.is_(None),
                    )
                )
            )
        )
        or diagnostic.rio_session_id is not None
    )
    decision = OrientationDecision(
        case_id=case.id,
        person_id=case.person_id,
        rank=(previous.rank + 1) if previous else 1,
        decided_on=decided_on,
        decided_by_id=agent.id,
        parcours=parcours,
        structure_id=structure.id,
        diagnostic_id=diagnostic.id,
        follows_proposal=follows,
        divergence_reason=None if follows else divergence_reason,
        via_rio=via_rio,
        direct=diagnostic.direct_orientation and not via_rio,
        reorientation_reason=reorientation_reason if previous else None,
        ep_opinion=data.get("ep_opinion"),
        ep_opinion_on=data.get("ep_opinion_on"),
        ft_sync_status=FtSyncStatus.PENDING,
    )
    decision.structure = structure
    db.session.add(decision)
    if case.status != CaseStatus.NOTIFIEE:
        case.status = CaseStatus.DECIDEE
        case.decided_on = decided_on
    db.session.flush()
    hand_over_to_structure(
        case.person,
        structure,
        decided_on,
        "réorientation" if decision.rank > 1 else "orientation",
    )
    record(
        AuditAction.CREATE,
        "orientation_decision",
        decision.id,
        person_id=case.person_id,
        reason="orientation",
        details={
            "case_id": case.id,
            "rank": decision.rank,
            "parcours": parcours.value,
            "structure_id": structure.id,
            "follows_proposal": follows,
        },
    )
    decision_id = decision.id
    on_commit(lambda: _run_hooks(decision_id))
    return decision


def notify(
    decision: OrientationDecision, notified_on: dt.date, channel: str, today: dt.date
) -> OrientationDecision:
    """Record that the decision was notified; the first notification of a case's current
    decision ends its clock."""
    if decision.notified_on is not None:
        raise Conflict(
            f"La décision {decision.id} a déjà été notifiée le {decision.notified_on.isoformat()}.",
            code="already_notified",
        )
    latest = last_decision_of(decision.person_id)
    if latest is not None and latest.id != decision.id:
        raise Conflict(
            f"La décision {decision.id} a été remplacée par la décision {latest.id} : "
            "notifiez la plus récente.",
            code="decision_superseded",
            extra={"latest_decision_id": latest.id},
        )
    errors: dict[str, list[str]] = {}
    if notified_on < decision.decided_on:
        errors["notified_on"] = ["La notification ne peut pas précéder la décision."]
    if notified_on > today:
        errors["notified_on"] = ["La date de notification ne peut pas être dans le futur."]
    if channel not in NOTIFICATION_CHANNELS:
        errors["channel"] = [f"Canal inconnu (attendu : {', '.join(NOTIFICATION_CHANNELS)})."]
    if errors:
        raise ValidationFailed("Notification invalide.", errors=errors)
    decision.notified_on = notified_on
    decision.notification_channel = channel
    case = decision.case
    if case.closed_on is None:
        for pause in case.pauses:
            if pause.resumed_on is None:
                pause.resumed_on = max(notified_on, pause.paused_on)
                case.paused_days += (pause.resumed_on - pause.paused_on).days
        case.paused_since = None
        case.status = CaseStatus.NOTIFIEE
        case.notified_on = notified_on
        case.closed_on = notified_on
        case.close_reason = CloseReason.ORIENTED
    db.session.flush()
    record(
        AuditAction.UPDATE,
        "orientation_decision",
        decision.id,
        person_id=decision.person_id,
        reason="notification",
        details={"notified_on": notified_on.isoformat(), "channel": channel},
    )
    return decision
