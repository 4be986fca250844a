"""Recording a diagnostic and the référentiel's proposal (services flush only).

The diagnostic is evaluated by the newest published référentiel version; the diagnostic
keeps that version, the normalised criteria, the proposal (parcours, France Travail code,
rule that fired, plain-French explanation) and the suggested structure, so that a past
proposal can always be explained (CRPA L311-3-1) whatever versions are published later.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select

from spie.agents.models import Agent
from spie.audit.models import AuditAction
from spie.audit.service import record
from spie.db import db
from spie.errors import Conflict, ValidationFailed
from spie.orientation.models import (
    Attendance,
    CaseStatus,
    Convocation,
    Diagnostic,
    OrientationCase,
    Parcours,
)
from spie.orientation.referentiel import (
    DiagnosticError,
    StructureCandidate,
    evaluate,
    suggest_structure,
    validate_diagnostic,
)
from spie.orientation.referentiel_admin import current_version
from spie.orientation.services import cancel_pending_convocations, latest_case_of
from spie.persons.models import Person
from spie.structures.models import Structure, structure_territories


def structure_candidates(person: Person) -> list[StructureCandidate]:
    """Active structures serving the person's territory, with their remaining capacity
    (capacity − persons whose organisme référent they are), in one aggregate query."""
    if person.territory_id is None or person.commune_insee is None:
        return []
    rows = db.session.execute(
        select(Structure.id, Structure.type, Structure.capacity, func.count(Person.id))
        .join(structure_territories, structure_territories.c.structure_id == Structure.id)
        .outerjoin(Person, Person.current_structure_id == Structure.id)
        .where(
            structure_territories.c.territory_id == person.territory_id,
            Structure.active.is_(True),
        )
        .group_by(Structure.id, Structure.type, Structure.capacity)
    )
    commune = frozenset({person.commune_insee})
    return [
        StructureCandidate(
            id=structure_id,
            type=structure_type.value,
            communes=commune,
            remaining_capacity=capacity - followed,
        )
        for structure_id, structure_type, capacity, followed in rows
    ]


def case_for_orientation_work(person: Person) -> OrientationCase:
    """The person's latest case, if work on it is still possible (open and running, or
    notified: a réorientation). Precise conflicts otherwise."""
    case = latest_case_of(person.id)
    if case is None:
        raise Conflict(
            "Aucun dossier d'orientation pour cette personne : ouvrez-en un d'abord.",
            code="no_orientation_case",
        )
    if case.status == CaseStatus.CLOSED:
        raise Conflict(
            f"Le dossier d'orientation {case.id} est clos "
            f"({case.close_reason.value if case.close_reason else 'motif inconnu'}).",
            code="case_closed",
            extra={"case_id": case.id},
        )
    if case.paused_since is not None:
        raise Conflict(
            f"L'horloge du dossier {case.id} est suspendue depuis le "
            f"{case.paused_since.isoformat()} (sortie des droits et devoirs, droit clos ou "
            "déménagement).",
            code="case_paused",
            extra={"case_id": case.id},
        )
    return case


def record_diagnostic(
    person: Person,
    agent: Agent,
    criteria: dict[str, Any],
    rio_session_id: int | None,
    now: dt.datetime,
) -> Diagnostic:
    """Evaluate ``criteria`` with the current référentiel version and store the result.

    Unknown criteria or values raise :class:`ValidationFailed` with one message per field
    (``errors = {"criteria": {"santee": ["critère inconnu : 'santee'"]}}``) and store nothing.
    """
    case = case_for_orientation_work(person)
    version = current_version()
    try:
        values = validate_diagnostic(version.data, criteria)
        proposal = evaluate(version.data, values)
    except DiagnosticError as exc:
        raise ValidationFailed(
            "Diagnostic invalide pour la version "
            f"{version.number} du référentiel : corrigez les critères signalés.",
            code="invalid_diagnostic",
            errors={"criteria": exc.errors},
            extra={"referentiel_version": version.number},
        ) from exc
    if rio_session_id is not None:
        _attended(case, rio_session_id, now)
    suggested = suggest_structure(
        proposal.structure_types, structure_candidates(person), person.commune_insee or ""
    )
    diagnostic = Diagnostic(
        case_id=case.id,
        person_id=person.id,
        recorded_at=now,
        recorded_by_id=agent.id,
        rio_session_id=rio_session_id,
        referentiel_version_id=version.id,
        criteria=dict(values),
        proposal=proposal.as_dict(),
        proposed_parcours=Parcours(proposal.parcours),
        suggested_structure_id=suggested.id if suggested else None,
        direct_orientation=proposal.direct,
    )
    diagnostic.referentiel_version = version
    db.session.add(diagnostic)
    if case.status in (CaseStatus.A_ORIENTER, CaseStatus.CONVOQUE_RIO):
        case.status = CaseStatus.PROPOSEE
        # Oriented without (another) RIO: the person no longer needs to come.
        cancel_pending_convocations(case, keep_session_id=rio_session_id)
    db.session.flush()
    record(
        AuditAction.CREATE,
        "orientation_diagnostic",
        diagnostic.id,
        person_id=person.id,
        reason="orientation",
        details={"case_id": case.id, "referentiel_version": version.number},
    )
    return diagnostic


def _attended(case: OrientationCase, rio_session_id: int, now: dt.datetime) -> None:
    """The interview happened at that RIO: the person must have been convened to it and not
    be recorded absent or excused; attendance not yet recorded becomes ``present``."""
    convocation = db.session.scalar(
        select(Convocation).where(
            Convocation.session_id == rio_session_id,
            Convocation.case_id == case.id,
            Convocation.cancelled_at.is_(None),
        )
    )
    if convocation is None:
        raise ValidationFailed(
            "La personne n'était pas convoquée à cette session.",
            errors={"rio_session_id": ["Aucune convocation de ce dossier à cette session."]},
        )
    if convocation.attendance in (Attendance.ABSENT, Attendance.EXCUSE):
        raise ValidationFailed(
            "La personne est enregistrée absente ou excusée à cette session.",
            errors={"rio_session_id": ["Présence non enregistrée pour cette session."]},
        )
    if convocation.attendance is None:
        convocation.attendance = Attendance.PRESENT
        convocation.attendance_recorded_at = now
