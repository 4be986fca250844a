"""Write side of the pathway: opening on decision, steps, contracts, appointments, diagnostic
partagé, équipe pluridisciplinaire cases (services flush, audit, never commit).

Entry points for other packages:

- :func:`open_parcours_for_decision` ``(decision)`` — called when an orientation decision is
  taken (registered in ``spie.orientation.services.DECISION_HOOKS`` when that list exists);
  idempotent;
- :func:`record_notification` ``(decision)`` — the decision was notified: the entry and
  contract clocks start (the daily scan does it too, from ``decision.notified_on``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import func, or_, select

from spie.agents.models import Agent, Role
from spie.audit.models import AuditAction
from spie.audit.service import changed_fields, record
from spie.clocks.calendar import paris_date
from spie.clocks.models import ClockKind
from spie.clocks.policies import LOI_PLEIN_EMPLOI
from spie.db import db
from spie.errors import Conflict, NotFound, ValidationFailed
from spie.orientation.models import OrientationDecision, Parcours
from spie.parcours import clock
from spie.parcours.alerts import raise_alert
from spie.parcours.clocks import meet_clocks, start_clock, stop_clocks
from spie.parcours.models import (
    HISTORICAL_CONTRACT_KINDS,
    SENSITIVE_THEMES,
    AlertKind,
    Appointment,
    AppointmentChannel,
    AppointmentStatus,
    AppointmentTheme,
    Assessment,
    AssessmentGrid,
    Contract,
    ContractKind,
    EpCase,
    EpDecision,
    EpOrigin,
    EpStatus,
    Offer,
    OfferTheme,
    Pathway,
    PathwayCloseReason,
    PathwaySetting,
    ReductionReason,
    ReviewExtensionReason,
    SanctionLevel,
    Step,
    StepStatus,
    StepTransition,
)
from spie.persons.models import Person
from spie.referent.models import ReferentAssignment
from spie.structures.models import Structure

EP_MISSED_APPOINTMENTS = "ep_missed_appointments"
MIN_WEEKLY_HOURS = "contract_min_weekly_hours"
CONTRACT_MIN_MONTHS = "contract_min_months"
CONTRACT_MAX_MONTHS = "contract_max_months"


def setting(key: str, on: dt.date) -> int | None:
    """A threshold in force on ``on`` (``PathwaySetting``), ``None`` when none is."""
    return db.session.scalar(
        select(PathwaySetting.value)
        .where(
            PathwaySetting.key == key,
            PathwaySetting.valid_from <= on,
            or_(PathwaySetting.valid_until.is_(None), PathwaySetting.valid_until > on),
        )
        .order_by(PathwaySetting.valid_from.desc())
        .limit(1)
    )


def active_pathway(person_id: int, *, lock: bool = False) -> Pathway | None:
    query = select(Pathway).where(Pathway.person_id == person_id, Pathway.closed_on.is_(None))
    if lock:
        query = query.with_for_update()
    return db.session.scalar(query)


def require_active_pathway(person_id: int, *, lock: bool = False) -> Pathway:
    pathway = active_pathway(person_id, lock=lock)
    if pathway is None:
        raise Conflict(
            "La personne n'a pas de parcours actif (aucune orientation décidée).",
            code="no_active_pathway",
        )
    return pathway


# --------------------------------------------------------------------------------------------
# Opening on decision, notification, closing
# --------------------------------------------------------------------------------------------


def _start_notified_clocks(pathway: Pathway) -> None:
    if pathway.notified_on is None:
        return
    start_clock(
        ClockKind.PATHWAY_ENTRY,
        pathway.person_id,
        pathway.notified_on,
        pathway_id=pathway.id,
    )
    start_clock(
        ClockKind.CONTRACT,
        pathway.person_id,
        pathway.notified_on,
        pathway_id=pathway.id,
        parcours=pathway.parcours,
    )
    if pathway.entered_on is not None:
        meet_clocks(pathway.person_id, {ClockKind.PATHWAY_ENTRY}, pathway.entered_on, pathway.id)


def close_pathway(pathway: Pathway, on: dt.date, reason: PathwayCloseReason) -> None:
    pathway.closed_on = max(on, pathway.opened_on)
    pathway.close_reason = reason
    # A new decision is the end event of the social review (DOMAIN §3).
    if reason == PathwayCloseReason.REORIENTED:
        meet_clocks(pathway.person_id, {ClockKind.SOCIAL_REVIEW}, on, pathway.id)
    stop_clocks(pathway.person_id, None, on, reason.value, pathway_id=pathway.id)
    # Contract renewal clocks hang on the contract: stop them with the pathway.
    for contract_id in db.session.scalars(
        select(Contract.id).where(Contract.pathway_id == pathway.id)
    ):
        stop_clocks(pathway.person_id, None, on, reason.value, contract_id=contract_id)
    db.session.flush()
    record(
        AuditAction.UPDATE,
        "pathway",
        pathway.id,
        person_id=pathway.person_id,
        reason="pathway_closed",
        details={"close_reason": reason.value, "on": pathway.closed_on.isoformat()},
    )


def open_parcours_for_decision(decision: OrientationDecision) -> Pathway:
    """Open the pathway an orientation decision sets (closing the previous one).

    Idempotent: a second call for the same decision returns the same pathway. The entry and
    contract clocks start when the decision is notified (now if ``notified_on`` is set);
    without an active référent of the chosen structure the person runs the gap clock."""
    existing = db.session.scalar(select(Pathway).where(Pathway.decision_id == decision.id))
    if existing is not None:
        if decision.notified_on and existing.notified_on is None:
            record_notification(decision)
        return existing
    person = db.session.get(Person, decision.person_id)
    if person is None:
        raise NotFound(f"Personne {decision.person_id} introuvable.")
    current = active_pathway(person.id, lock=True)
    if current is not None:
        close_pathway(current, decision.decided_on, PathwayCloseReason.REORIENTED)
        db.session.flush()
    pathway = Pathway(
        person_id=person.id,
        decision_id=decision.id,
        parcours=decision.parcours,
        structure_id=decision.structure_id,
        territory_id=person.territory_id,
        public=person.public,
        opened_on=decision.decided_on,
        notified_on=decision.notified_on,
    )
    db.session.add(pathway)
    db.session.flush()
    if pathway.notified_on is not None:
        _start_notified_clocks(pathway)
    active = db.session.scalar(
        select(ReferentAssignment).where(
            ReferentAssignment.person_id == person.id, ReferentAssignment.ended_at.is_(None)
        )
    )
    if active is None or active.structure_id != decision.structure_id:
        start_clock(
            ClockKind.REFERENT_GAP,
            person.id,
            decision.decided_on,
            pathway_id=pathway.id,
        )
    record(
        AuditAction.CREATE,
        "pathway",
        pathway.id,
        person_id=person.id,
        reason="pathway_opened",
        details={
            "decision_id": decision.id,
            "parcours": decision.parcours.value,
            "structure_id": decision.structure_id,
        },
    )
    return pathway


def record_notification(decision: OrientationDecision) -> Pathway | None:
    """The decision was notified on ``decision.notified_on``: start the entry and contract
    clocks of its pathway (idempotent)."""
    if decision.notified_on is None:
        return None
    pathway = db.session.scalar(select(Pathway).where(Pathway.decision_id == decision.id))
    if pathway is None:
        return None
    if pathway.notified_on is None:
        pathway.notified_on = decision.notified_on
        db.session.flush()
    if pathway.closed_on is None:
        _start_notified_clocks(pathway)
    return pathway


def update_pathway(pathway: Pathway, changes: dict[str, Any], by: Agent) -> Pathway:
    """Typology and the social review (``reviewed_on`` meets the social review clock)."""
    fields = []
    if "typology" in changes and changes["typology"] != pathway.typology:
        pathway.typology = changes["typology"]
        fields.append("typology")
    reviewed_on: dt.date | None = changes.get("reviewed_on")
    if reviewed_on is not None:
        if reviewed_on > clock.today() or reviewed_on < pathway.opened_on:
            raise ValidationFailed(
                "Date de réexamen invalide.",
                errors={"reviewed_on": ["Entre l'ouverture du parcours et aujourd'hui."]},
            )
        pathway.last_review_on = reviewed_on
        meet_clocks(pathway.person_id, {ClockKind.SOCIAL_REVIEW}, reviewed_on, pathway.id)
        fields.append("last_review_on")
    if fields:
        db.session.flush()
        record(
            AuditAction.UPDATE,
            "pathway",
            pathway.id,
            person_id=pathway.person_id,
            reason="pathway",
            details={"fields": fields},
        )
    return pathway


# --------------------------------------------------------------------------------------------
# Offers
# --------------------------------------------------------------------------------------------


def _structure(structure_id: int, field_name: str) -> Structure:
    structure = db.session.get(Structure, structure_id)
    if structure is None:
        raise ValidationFailed(
            "Structure inconnue.", errors={field_name: [f"Aucune structure {structure_id}."]}
        )
    return structure


def save_offer(offer: Offer | None, data: dict[str, Any]) -> Offer:
    from spie.territories.models import Territory

    creating = offer is None
    data = dict(data)
    if creating:
        clash = db.session.scalar(select(Offer.id).where(Offer.code == data["code"]))
        if clash is not None:
            raise Conflict(
                "Une offre porte déjà ce code.",
                code="offer_code_taken",
                errors={"code": ["Code déjà utilisé."]},
            )
    offer = offer or Offer(publics=[], parcours_types=[])
    if "provider_structure_id" in data:
        offer.provider_structure = _structure(
            data.pop("provider_structure_id"), "provider_structure_id"
        )
    territory_ids = data.pop("territory_ids", None)
    if territory_ids is not None:
        found = list(db.session.scalars(select(Territory).where(Territory.id.in_(territory_ids))))
        missing = sorted(set(territory_ids) - {t.id for t in found})
        if missing:
            raise ValidationFailed(
                "Territoire inconnu.", errors={"territory_ids": [f"Inconnus : {missing}"]}
            )
        offer.territories = found
    for key in ("publics", "parcours_types"):
        if key in data:
            data[key] = [v.value if hasattr(v, "value") else v for v in data[key]]
    before = {k: getattr(offer, k, None) for k in data}
    for key, value in data.items():
        setattr(offer, key, value)
    offer.sensitive = bool(offer.sensitive) or offer.theme in SENSITIVE_THEMES
    if offer.ends_on is not None and offer.ends_on < offer.starts_on:
        raise ValidationFailed(
            "Période de l'offre invalide.",
            errors={"ends_on": ["La fin précède le début de l'offre."]},
        )
    if creating:
        db.session.add(offer)
    db.session.flush()
    record(
        AuditAction.CREATE if creating else AuditAction.UPDATE,
        "offer",
        offer.id,
        reason="offer",
        details={"fields": changed_fields(before, data)},
    )
    return offer


# --------------------------------------------------------------------------------------------
# Steps and their state machine
# --------------------------------------------------------------------------------------------

STEP_TRANSITIONS: dict[StepStatus, frozenset[StepStatus]] = {
    StepStatus.PROPOSEE: frozenset(
        {StepStatus.PLANIFIEE, StepStatus.EN_COURS, StepStatus.ABANDONNEE}
    ),
    StepStatus.PLANIFIEE: frozenset({StepStatus.EN_COURS, StepStatus.ABANDONNEE}),
    StepStatus.EN_COURS: frozenset({StepStatus.TERMINEE, StepStatus.ABANDONNEE}),
    StepStatus.TERMINEE: frozenset(),
    StepStatus.ABANDONNEE: frozenset(),
}
OCCUPYING = (StepStatus.PLANIFIEE, StepStatus.EN_COURS)


def _check_offer_for(offer: Offer, person: Person, pathway: Pathway, on: dt.date) -> None:
    errors: list[str] = []
    if not offer.active:
        errors.append("L'offre n'est plus active.")
    if offer.ends_on is not None and offer.ends_on < on:
        errors.append(f"L'offre a pris fin le {offer.ends_on.isoformat()}.")
    if offer.territories and person.territory_id not in {t.id for t in offer.territories}:
        errors.append("L'offre n'est pas proposée sur le territoire de la personne.")
    if offer.publics and person.public.value not in offer.publics:
        errors.append("L'offre n'est pas ouverte au public de la personne.")
    if offer.parcours_types and pathway.parcours.value not in offer.parcours_types:
        errors.append("L'offre ne correspond pas au type de parcours.")
    if errors:
        raise ValidationFailed("Offre non mobilisable.", errors={"offer_id": errors})


def _check_capacity(step: Step) -> None:
    if step.offer_id is None:
        return
    offer = db.session.get(Offer, step.offer_id)
    if offer is None:
        return
    if offer.capacity is None:
        return
    taken = db.session.scalar(
        select(func.count())
        .select_from(Step)
        .where(Step.offer_id == offer.id, Step.status.in_(OCCUPYING), Step.id != step.id)
    )
    if (taken or 0) >= offer.capacity:
        raise Conflict(
            f"L'offre {offer.id} est complète ({taken} / {offer.capacity} places).",
            code="offer_full",
            errors={"offer_id": ["Plus de place disponible sur cette offre."]},
        )


def _transition_row(
    step: Step, from_status: StepStatus | None, on: dt.date, by: Agent | None
) -> None:
    db.session.add(
        StepTransition(
            step_id=step.id,
            person_id=step.person_id,
            from_status=from_status,
            to_status=step.status,
            on=on,
            by_agent_id=by.id if by else None,
        )
    )


def create_step(person: Person, data: dict[str, Any], by: Agent) -> Step:
    """A step of the person's active pathway, from an offer or free (status proposée)."""
    data = _coerce(data, {"theme": OfferTheme})
    pathway = require_active_pathway(person.id)
    today = clock.today()
    step = Step(
        pathway_id=pathway.id,
        person_id=person.id,
        status=StepStatus.PROPOSEE,
        proposed_on=data.get("proposed_on") or today,
        planned_start_on=data.get("planned_start_on"),
        planned_end_on=data.get("planned_end_on"),
        notes=data.get("notes"),
        created_by_id=by.id,
    )
    if data.get("offer_id") is not None:
        offer = db.session.get(Offer, data["offer_id"])
        if offer is None:
            raise ValidationFailed(
                "Offre inconnue.", errors={"offer_id": [f"Aucune offre {data['offer_id']}."]}
            )
        _check_offer_for(offer, person, pathway, step.proposed_on)
        step.offer_id = offer.id
        step.title = data.get("title") or offer.title
        step.theme = offer.theme
        step.provider_structure_id = offer.provider_structure_id
        step.sensitive = offer.sensitive
    else:
        missing = [f for f in ("title", "theme") if not data.get(f)]
        if missing:
            raise ValidationFailed(
                "Une étape libre demande un intitulé et un thème.",
                errors={f: ["Obligatoire pour une étape hors catalogue."] for f in missing},
            )
        step.title = data["title"]
        step.theme = data["theme"]
        provider_id = data.get("provider_structure_id") or pathway.structure_id
        step.provider_structure_id = _structure(provider_id, "provider_structure_id").id
        step.sensitive = bool(data.get("sensitive")) or step.theme in SENSITIVE_THEMES
    if step.proposed_on > today:
        raise ValidationFailed(
            "Date de proposition invalide.",
            errors={"proposed_on": ["Une étape ne peut pas être proposée dans le futur."]},
        )
    _check_planned(step.planned_start_on, step.planned_end_on)
    db.session.add(step)
    db.session.flush()
    _transition_row(step, None, step.proposed_on, by)
    db.session.flush()
    record(
        AuditAction.CREATE,
        "step",
        step.id,
        person_id=person.id,
        reason="step",
        details={"offer_id": step.offer_id, "theme": step.theme.value},
    )
    return step


def _check_planned(start: dt.date | None, end: dt.date | None) -> None:
    if start is not None and end is not None and end < start:
        raise ValidationFailed(
            "Dates prévues invalides.",
            errors={"planned_end_on": ["La fin prévue précède le début prévu."]},
        )


def transition_step(step: Step, to: StepStatus, data: dict[str, Any], by: Agent | None) -> Step:
    """Move a step along the state machine; every refused move answers 409 and changes
    nothing. Terminating needs an outcome and a bilan, abandoning a reason."""
    allowed = STEP_TRANSITIONS[step.status]
    if to not in allowed:
        names = ", ".join(sorted(s.value for s in allowed)) or "aucune (état final)"
        raise Conflict(
            f"Transition interdite : une étape « {step.status.value} » ne peut pas passer à "
            f"« {to.value} » (transitions permises : {names}).",
            code="step_transition_forbidden",
            errors={"status": [f"{step.status.value} → {to.value} interdit."]},
            extra={
                "current_status": step.status.value,
                "allowed": sorted(a.value for a in allowed),
            },
        )
    on: dt.date = data.get("on") or clock.today()
    if on > clock.today():
        raise ValidationFailed(
            "Date de transition invalide.",
            errors={"on": ["Une transition ne peut pas être datée dans le futur."]},
        )
    errors: dict[str, list[str]] = {}
    previous = step.status
    if to == StepStatus.PLANIFIEE:
        start = data.get("planned_start_on") or step.planned_start_on
        end = data.get("planned_end_on") or step.planned_end_on
        if start is None:
            errors["planned_start_on"] = ["Obligatoire pour planifier une étape."]
        _check_planned(start, end)
        step.planned_start_on, step.planned_end_on = start, end
    elif to == StepStatus.EN_COURS:
        step.started_on = on
    elif to == StepStatus.TERMINEE:
        if not data.get("outcome"):
            errors["outcome"] = ["Le résultat de l'étape est obligatoire pour la terminer."]
        if not (data.get("bilan") or "").strip():
            errors["bilan"] = ["Le bilan de fin d'étape est obligatoire pour la terminer."]
        if step.started_on is not None and on < step.started_on:
            errors["on"] = ["La fin précède le début de l'étape."]
        step.outcome = data.get("outcome")
        step.bilan = data.get("bilan")
        step.ended_on = on
    elif to == StepStatus.ABANDONNEE:
        if not (data.get("abandon_reason") or "").strip():
            errors["abandon_reason"] = ["Le motif d'abandon est obligatoire."]
        if step.started_on is not None and on < step.started_on:
            errors["on"] = ["L'abandon précède le début de l'étape."]
        step.abandon_reason = data.get("abandon_reason")
        step.bilan = data.get("bilan") or step.bilan
        step.ended_on = on
    if errors:
        raise ValidationFailed("Transition incomplète.", errors=errors)
    if to in OCCUPYING and previous not in OCCUPYING:
        _check_capacity(step)
    step.status = to
    db.session.flush()
    _transition_row(step, previous, on, by)
    db.session.flush()
    record(
        AuditAction.UPDATE,
        "step",
        step.id,
        person_id=step.person_id,
        reason="step_transition",
        details={"from": previous.value, "to": to.value},
    )
    return step


STEP_EDITABLE_BY_CONTRIBUTOR = frozenset({"planned_start_on", "planned_end_on", "bilan"})


def update_step(step: Step, changes: dict[str, Any], *, contributor: bool) -> Step:
    if contributor:
        refused = sorted(set(changes) - STEP_EDITABLE_BY_CONTRIBUTOR)
        if refused:
            raise ValidationFailed(
                "Le prestataire ne peut modifier que les dates prévues et le bilan.",
                code="contributor_field",
                errors={name: ["Réservé au référent."] for name in refused},
            )
    if "bilan" in changes and step.status not in (StepStatus.TERMINEE, StepStatus.ABANDONNEE):
        raise ValidationFailed(
            "Le bilan se rédige à la fin de l'étape.",
            errors={"bilan": ["L'étape n'est ni terminée ni abandonnée."]},
        )
    if "title" in changes and step.offer_id is not None:
        raise ValidationFailed(
            "L'intitulé d'une étape du catalogue vient de l'offre.",
            errors={"title": ["Non modifiable pour une étape issue d'une offre."]},
        )
    before = {k: getattr(step, k) for k in changes}
    for key, value in changes.items():
        setattr(step, key, value)
    _check_planned(step.planned_start_on, step.planned_end_on)
    fields = changed_fields(before, changes)
    if fields:
        db.session.flush()
        record(
            AuditAction.UPDATE,
            "step",
            step.id,
            person_id=step.person_id,
            reason="step",
            details={"fields": fields},
        )
    return step


# --------------------------------------------------------------------------------------------
# Contracts
# --------------------------------------------------------------------------------------------


def _contract_rules(data: dict[str, Any], pathway: Pathway, today: dt.date) -> None:
    kind: ContractKind = data["kind"]
    signed_on: dt.date = data["signed_on"]
    starts_on: dt.date = data["starts_on"]
    ends_on: dt.date = data["ends_on"]
    errors: dict[str, list[str]] = {}
    if ends_on <= starts_on:
        errors["ends_on"] = ["La fin du contrat doit suivre son début."]
    else:
        min_months = setting(CONTRACT_MIN_MONTHS, starts_on) or 3
        max_months = setting(CONTRACT_MAX_MONTHS, starts_on) or 12
        if ends_on < starts_on + relativedelta(months=min_months):
            errors["ends_on"] = [f"Un contrat dure au moins {min_months} mois."]
        elif ends_on > starts_on + relativedelta(months=max_months):
            errors["ends_on"] = [f"Un contrat dure au plus {max_months} mois."]
    if signed_on > today:
        errors["signed_on"] = ["La date de signature ne peut pas être dans le futur."]
    elif signed_on > ends_on:
        errors["signed_on"] = ["La signature suit la fin du contrat."]
    if kind == ContractKind.ENGAGEMENT and signed_on < LOI_PLEIN_EMPLOI:
        errors["kind"] = [
            "Le contrat d'engagement existe depuis le 1er janvier 2025 ; avant, CER ou PPAE."
        ]
    if kind in HISTORICAL_CONTRACT_KINDS and signed_on >= LOI_PLEIN_EMPLOI:
        errors["kind"] = [
            "Depuis le 1er janvier 2025, le contrat signé est le contrat d'engagement."
        ]
    hours = data.get("weekly_hours")
    if kind == ContractKind.ENGAGEMENT:
        minimum = setting(MIN_WEEKLY_HOURS, signed_on) or 15
        if hours is None:
            errors["weekly_hours"] = ["Nombre d'heures d'activité hebdomadaires obligatoire."]
        elif hours < minimum and not data.get("reduction_reason"):
            errors["reduction_reason"] = [
                f"Motif de réduction obligatoire en dessous de {minimum} h par semaine."
            ]
    if data.get("review_extension_reason") and pathway.parcours != Parcours.SOCIAL:
        errors["review_extension_reason"] = ["Réservé au parcours social."]
    if errors:
        raise ValidationFailed("Contrat invalide.", errors=errors)


def _check_overlap(
    person_id: int, starts_on: dt.date, ends_on: dt.date, exclude_id: int | None = None
) -> None:
    query = select(Contract.id, Contract.starts_on, Contract.ends_on).where(
        Contract.person_id == person_id,
        Contract.cancelled_on.is_(None),
        Contract.starts_on <= ends_on,
        Contract.ends_on >= starts_on,
    )
    if exclude_id is not None:
        query = query.where(Contract.id != exclude_id)
    other = db.session.execute(query.order_by(Contract.starts_on).limit(1)).first()
    if other is not None:
        raise Conflict(
            f"Le contrat chevauche le contrat {other.id} (du {other.starts_on.isoformat()} au "
            f"{other.ends_on.isoformat()}) : un seul contrat à la fois.",
            code="contract_overlap",
            errors={"starts_on": [f"Chevauche le contrat {other.id}."]},
            extra={"conflicting_contract_id": other.id},
        )


def _start_contract_clocks(contract: Contract, pathway: Pathway) -> None:
    start_clock(
        ClockKind.CONTRACT_RENEWAL,
        contract.person_id,
        contract.signed_on,
        pathway_id=pathway.id,
        contract_id=contract.id,
        ends_on=contract.ends_on,
        policy_day=contract.signed_on,
    )
    if pathway.parcours == Parcours.SOCIAL:
        open_review = [
            c
            for c in _open(contract.person_id, ClockKind.SOCIAL_REVIEW)
            if c.pathway_id == pathway.id
        ]
        if not open_review:
            start_clock(
                ClockKind.SOCIAL_REVIEW,
                contract.person_id,
                contract.signed_on,
                pathway_id=pathway.id,
                contract_id=contract.id,
                extended=contract.review_extension_reason is not None,
            )


def _open(person_id: int, kind: ClockKind) -> list[Any]:
    from spie.parcours.clocks import open_clocks

    return open_clocks(person_id, {kind})


def _coerce(data: dict[str, Any], enums: dict[str, Any]) -> dict[str, Any]:
    """Enum fields given as their values (callers other than the API schemas)."""
    data = dict(data)
    for name, enum_cls in enums.items():
        if data.get(name) is not None and not isinstance(data[name], enum_cls):
            data[name] = enum_cls(data[name])
    return data


def create_contract(person: Person, data: dict[str, Any], by: Agent) -> Contract:
    data = _coerce(
        data,
        {
            "kind": ContractKind,
            "reduction_reason": ReductionReason,
            "review_extension_reason": ReviewExtensionReason,
        },
    )
    pathway = require_active_pathway(person.id, lock=True)  # serialises concurrent creations
    today = clock.today()
    _contract_rules(data, pathway, today)
    _check_overlap(person.id, data["starts_on"], data["ends_on"])
    contract = Contract(
        person_id=person.id,
        pathway_id=pathway.id,
        kind=data["kind"],
        signed_on=data["signed_on"],
        starts_on=data["starts_on"],
        ends_on=data["ends_on"],
        objectives=data["objectives"],
        weekly_hours=data.get("weekly_hours"),
        reduction_reason=data.get("reduction_reason"),
        review_extension_reason=data.get("review_extension_reason"),
        created_by_id=by.id,
    )
    db.session.add(contract)
    db.session.flush()
    # The contract clock ends with the first signature; a renewal clock with the next one.
    meet_clocks(person.id, {ClockKind.CONTRACT}, contract.signed_on, pathway.id)
    meet_clocks(person.id, {ClockKind.CONTRACT_RENEWAL}, contract.signed_on)
    _start_contract_clocks(contract, pathway)
    record(
        AuditAction.CREATE,
        "contract",
        contract.id,
        person_id=person.id,
        reason="contract",
        details={"kind": contract.kind.value},
    )
    return contract


def update_contract(contract: Contract, changes: dict[str, Any], by: Agent) -> Contract:
    """Objectives, hours, end date (extension, 3-12 months still), review extension reason,
    or cancellation (``cancelled: true`` + ``cancel_reason``)."""
    if contract.cancelled_on is not None:
        raise Conflict("Le contrat est annulé : il ne se modifie plus.", code="contract_cancelled")
    pathway = db.session.get(Pathway, contract.pathway_id, with_for_update=True)
    if pathway is None:
        raise NotFound(f"Parcours {contract.pathway_id} introuvable.")
    changes = dict(changes)
    cancel = changes.pop("cancelled", False)
    if cancel:
        if not (changes.get("cancel_reason") or "").strip():
            raise ValidationFailed(
                "Motif d'annulation obligatoire.",
                errors={"cancel_reason": ["Obligatoire pour annuler un contrat."]},
            )
        contract.cancelled_on = clock.today()
        contract.cancel_reason = changes["cancel_reason"]
        stop_clocks(
            contract.person_id,
            None,
            contract.cancelled_on,
            "contract_cancelled",
            contract_id=contract.id,
        )
        db.session.flush()
        record(
            AuditAction.UPDATE,
            "contract",
            contract.id,
            person_id=contract.person_id,
            reason="contract_cancelled",
            details={"fields": ["cancelled_on", "cancel_reason"]},
        )
        return contract
    changes.pop("cancel_reason", None)
    merged = {
        "kind": contract.kind,
        "signed_on": contract.signed_on,
        "starts_on": contract.starts_on,
        "ends_on": contract.ends_on,
        "weekly_hours": contract.weekly_hours,
        "reduction_reason": contract.reduction_reason,
        "review_extension_reason": contract.review_extension_reason,
        **changes,
    }
    # A contract signed in the past keeps its rules: validate against its own signature day.
    _contract_rules(merged, pathway, max(clock.today(), contract.signed_on))
    if "ends_on" in changes:
        _check_overlap(contract.person_id, contract.starts_on, changes["ends_on"], contract.id)
    before = {k: getattr(contract, k) for k in changes}
    for key, value in changes.items():
        setattr(contract, key, value)
    fields = changed_fields(before, changes)
    if "ends_on" in fields:
        # Move the renewal clock with the end date (a new clock key per contract end).
        stop_clocks(
            contract.person_id,
            {ClockKind.CONTRACT_RENEWAL},
            clock.today(),
            "contract_extended",
            contract_id=contract.id,
        )
        from spie.parcours.models import PathwayClock

        old = db.session.scalar(
            select(PathwayClock).where(
                PathwayClock.contract_id == contract.id,
                PathwayClock.kind == ClockKind.CONTRACT_RENEWAL,
            )
        )
        if old is not None:
            db.session.delete(old)
            db.session.flush()
        _start_contract_clocks(contract, pathway)
    if "review_extension_reason" in fields:
        _reextend_review(contract)
    if fields:
        db.session.flush()
        record(
            AuditAction.UPDATE,
            "contract",
            contract.id,
            person_id=contract.person_id,
            reason="contract",
            details={"fields": fields},
        )
    return contract


def _reextend_review(contract: Contract) -> None:
    from spie.parcours.models import PathwayClock

    clock = db.session.scalar(
        select(PathwayClock).where(
            PathwayClock.contract_id == contract.id,
            PathwayClock.kind == ClockKind.SOCIAL_REVIEW,
            PathwayClock.met_on.is_(None),
            PathwayClock.stopped_on.is_(None),
        )
    )
    if clock is None:
        return
    db.session.delete(clock)
    db.session.flush()
    start_clock(
        ClockKind.SOCIAL_REVIEW,
        contract.person_id,
        clock.started_on,
        pathway_id=contract.pathway_id,
        contract_id=contract.id,
        extended=contract.review_extension_reason is not None,
    )


# --------------------------------------------------------------------------------------------
# Appointments
# --------------------------------------------------------------------------------------------

APPOINTMENT_FINAL = frozenset(
    {AppointmentStatus.HONOURED, AppointmentStatus.MISSED, AppointmentStatus.CANCELLED}
)


def create_appointment(person: Person, data: dict[str, Any], by: Agent) -> Appointment:
    """Plan an appointment (in the future) or record one that took place (honoured/missed,
    in the past)."""
    data = _coerce(
        data,
        {"status": AppointmentStatus, "theme": AppointmentTheme, "channel": AppointmentChannel},
    )
    now = clock.now()
    status: AppointmentStatus = data.get("status") or AppointmentStatus.PLANNED
    scheduled_at: dt.datetime = data["scheduled_at"]
    if status == AppointmentStatus.PLANNED and scheduled_at <= now:
        raise ValidationFailed(
            "Un rendez-vous planifié doit être dans le futur.",
            errors={
                "scheduled_at": ["Date passée : enregistrez le rendez-vous comme honoré ou manqué."]
            },
        )
    if status in (AppointmentStatus.HONOURED, AppointmentStatus.MISSED) and scheduled_at > now:
        raise ValidationFailed(
            "Un rendez-vous futur ne peut pas être honoré ou manqué.",
            errors={"status": ["Le rendez-vous n'a pas encore eu lieu."]},
        )
    if status == AppointmentStatus.CANCELLED:
        raise ValidationFailed(
            "On n'enregistre pas un rendez-vous annulé.",
            errors={"status": ["planned, honoured ou missed."]},
        )
    agent = by
    if data.get("agent_id") is not None and data["agent_id"] != by.id:
        found = db.session.get(Agent, data["agent_id"])
        if found is None or found.structure_id != by.structure_id:
            raise ValidationFailed(
                "Agent inconnu.",
                errors={"agent_id": ["Un agent de votre structure est attendu."]},
            )
        agent = found
    if not agent.has_role(Role.REFERENT):
        raise ValidationFailed(
            "Le rendez-vous se tient avec un référent.",
            errors={"agent_id": ["L'agent n'a pas le rôle référent."]},
        )
    pathway = active_pathway(person.id)
    step_id = data.get("step_id")
    if step_id is not None:
        step = db.session.get(Step, step_id)
        if step is None or step.person_id != person.id:
            raise ValidationFailed(
                "Étape inconnue.", errors={"step_id": ["Étape d'une autre personne."]}
            )
    appointment = Appointment(
        person_id=person.id,
        pathway_id=pathway.id if pathway else None,
        agent_id=agent.id,
        structure_id=agent.structure_id,
        step_id=step_id,
        scheduled_at=scheduled_at,
        duration_minutes=data.get("duration_minutes") or 45,
        theme=data["theme"],
        channel=data.get("channel") or AppointmentChannel.IN_PERSON,
        status=AppointmentStatus.PLANNED,
        notes=data.get("notes"),
        created_by_id=by.id,
    )
    db.session.add(appointment)
    db.session.flush()
    record(
        AuditAction.CREATE,
        "appointment",
        appointment.id,
        person_id=person.id,
        reason="appointment",
        details={"status": status.value},
    )
    if status != AppointmentStatus.PLANNED:
        set_appointment_status(appointment, status, {}, by)
    return appointment


def set_appointment_status(
    appointment: Appointment, status: AppointmentStatus, data: dict[str, Any], by: Agent | None
) -> Appointment:
    if appointment.status in APPOINTMENT_FINAL:
        raise Conflict(
            f"Le rendez-vous est déjà « {appointment.status.value} » : son statut ne change plus.",
            code="appointment_final",
            errors={"status": [f"{appointment.status.value} est un état final."]},
        )
    now = clock.now()
    if status == AppointmentStatus.PLANNED:
        raise Conflict(
            "Le rendez-vous est déjà planifié.",
            code="appointment_unchanged",
            errors={"status": ["Déjà planifié."]},
        )
    if status in (AppointmentStatus.HONOURED, AppointmentStatus.MISSED) and (
        appointment.scheduled_at > now
    ):
        raise ValidationFailed(
            "Un rendez-vous futur ne peut pas être honoré ou manqué.",
            errors={"status": ["Le rendez-vous n'a pas encore eu lieu."]},
        )
    if status == AppointmentStatus.CANCELLED and not (data.get("cancel_reason") or "").strip():
        raise ValidationFailed(
            "Motif d'annulation obligatoire.",
            errors={"cancel_reason": ["Obligatoire pour annuler un rendez-vous."]},
        )
    appointment.status = status
    appointment.status_changed_at = now
    if status == AppointmentStatus.CANCELLED:
        appointment.cancel_reason = data["cancel_reason"]
    db.session.flush()
    record(
        AuditAction.UPDATE,
        "appointment",
        appointment.id,
        person_id=appointment.person_id,
        reason="appointment_status",
        details={"status": status.value},
    )
    day = paris_date(appointment.scheduled_at)
    if status == AppointmentStatus.HONOURED:
        _mark_entry(appointment, day)
    elif status == AppointmentStatus.MISSED:
        _signal_absence(appointment, day)
    return appointment


def _mark_entry(appointment: Appointment, day: dt.date) -> None:
    """The first honoured appointment with the référent after orientation is the entry
    into the pathway (ends the pathway_entry clock)."""
    pathway = active_pathway(appointment.person_id)
    if pathway is None or pathway.entered_on is not None or day < pathway.opened_on:
        return
    if appointment.structure_id != pathway.structure_id:
        return  # an appointment with another structure's adviser is not the entry
    pathway.entered_on = day
    db.session.flush()
    meet_clocks(appointment.person_id, {ClockKind.PATHWAY_ENTRY}, day, pathway.id)
    record(
        AuditAction.UPDATE,
        "pathway",
        pathway.id,
        person_id=pathway.person_id,
        reason="pathway_entered",
        details={"entered_on": day.isoformat(), "appointment_id": appointment.id},
    )


def _signal_absence(appointment: Appointment, day: dt.date) -> None:
    """A missed appointment is a signalement (alert to the référent); reaching the threshold
    of missed appointments (``PathwaySetting`` ``ep_missed_appointments``) opens an équipe
    pluridisciplinaire case to instruct — its referral and decision are human acts."""
    person = db.session.get(Person, appointment.person_id)
    if person is None:
        return
    raise_alert(
        person,
        AlertKind.MISSED_APPOINTMENT,
        due_on=day,
        source_type="appointment",
        source_id=appointment.id,
    )
    threshold = setting(EP_MISSED_APPOINTMENTS, day)
    if not threshold or appointment.pathway_id is None:
        return
    open_case = db.session.scalar(
        select(EpCase.id).where(EpCase.person_id == person.id, EpCase.closed_on.is_(None))
    )
    if open_case is not None:
        return
    since = db.session.scalar(
        select(func.max(EpCase.opened_on)).where(
            EpCase.person_id == person.id, EpCase.pathway_id == appointment.pathway_id
        )
    )
    query = select(Appointment.scheduled_at).where(
        Appointment.person_id == appointment.person_id,
        Appointment.pathway_id == appointment.pathway_id,
        Appointment.status == AppointmentStatus.MISSED,
    )
    missed = [paris_date(at) for at in db.session.scalars(query)]
    count = sum(1 for d in missed if since is None or d > since)
    if count < threshold:
        return
    pathway = db.session.get(Pathway, appointment.pathway_id)
    if pathway is None:
        return
    case = EpCase(
        person_id=person.id,
        pathway_id=pathway.id,
        structure_id=pathway.structure_id,
        origin=EpOrigin.MISSED_APPOINTMENTS,
        status=EpStatus.OPENED,
        opened_on=max(day, clock.today()),
        missed_appointments=count,
    )
    db.session.add(case)
    db.session.flush()
    raise_alert(
        person,
        AlertKind.EP_THRESHOLD,
        due_on=case.opened_on,
        source_type="ep_case",
        source_id=case.id,
        details={"missed": count, "threshold": threshold},
    )
    record(
        AuditAction.CREATE,
        "ep_case",
        case.id,
        person_id=person.id,
        reason="ep_threshold",
        details={"missed": count, "threshold": threshold},
    )


def update_appointment(appointment: Appointment, changes: dict[str, Any], by: Agent) -> Appointment:
    changes = dict(changes)
    status = changes.pop("status", None)
    cancel_reason = changes.pop("cancel_reason", None)
    if changes:
        if appointment.status in APPOINTMENT_FINAL and set(changes) - {"notes"}:
            raise Conflict(
                "Un rendez-vous passé ou annulé ne se replanifie pas.",
                code="appointment_final",
                errors={k: ["Rendez-vous terminé."] for k in sorted(set(changes) - {"notes"})},
            )
        if "scheduled_at" in changes and changes["scheduled_at"] <= clock.now():
            raise ValidationFailed(
                "Un rendez-vous planifié doit être dans le futur.",
                errors={"scheduled_at": ["Date passée."]},
            )
        before = {k: getattr(appointment, k) for k in changes}
        for key, value in changes.items():
            setattr(appointment, key, value)
        fields = changed_fields(before, changes)
        if fields:
            db.session.flush()
            record(
                AuditAction.UPDATE,
                "appointment",
                appointment.id,
                person_id=appointment.person_id,
                reason="appointment",
                details={"fields": fields},
            )
    if status is not None:
        set_appointment_status(appointment, status, {"cancel_reason": cancel_reason}, by)
    return appointment


# --------------------------------------------------------------------------------------------
# Diagnostic partagé
# --------------------------------------------------------------------------------------------


def grid_in_force(on: dt.date, code: str | None = None) -> AssessmentGrid:
    query = select(AssessmentGrid).where(
        AssessmentGrid.valid_from <= on,
        or_(AssessmentGrid.valid_until.is_(None), AssessmentGrid.valid_until > on),
    )
    if code is not None:
        query = query.where(AssessmentGrid.code == code)
    grid = db.session.scalar(query.order_by(AssessmentGrid.valid_from.desc()).limit(1))
    if grid is None:
        raise NotFound(
            "Aucune grille de diagnostic n'est en vigueur à cette date.",
            code="no_assessment_grid",
        )
    return grid


def create_assessment(person: Person, data: dict[str, Any], by: Agent) -> Assessment:
    assessed_on: dt.date = data.get("assessed_on") or clock.today()
    if assessed_on > clock.today():
        raise ValidationFailed(
            "Date de diagnostic invalide.",
            errors={"assessed_on": ["Un diagnostic ne peut pas être daté dans le futur."]},
        )
    grid = grid_in_force(assessed_on, data.get("grid_code"))
    scores: dict[str, int] = data["scores"]
    items = {item["code"]: item for item in grid.items}
    errors: dict[str, list[str]] = {}
    for code in sorted(set(scores) - set(items)):
        errors[code] = [f"Critère inconnu de la grille {grid.code}."]
    for code in sorted(set(items) - set(scores)):
        errors[code] = ["Critère non évalué : chaque critère de la grille est attendu."]
    for code, value in scores.items():
        if code in items and not (0 <= value <= int(items[code]["max"])):
            errors[code] = [f"Niveau entre 0 et {items[code]['max']} attendu."]
    if errors:
        raise ValidationFailed("Diagnostic invalide.", errors={"scores": [errors]})
    pathway = active_pathway(person.id)
    assessment = Assessment(
        person_id=person.id,
        pathway_id=pathway.id if pathway else None,
        grid_id=grid.id,
        assessed_on=assessed_on,
        assessed_by_id=by.id,
        scores=dict(scores),
        comment=data.get("comment"),
    )
    db.session.add(assessment)
    db.session.flush()
    record(
        AuditAction.CREATE,
        "assessment",
        assessment.id,
        person_id=person.id,
        reason="assessment",
        details={"grid": grid.code},
    )
    return assessment


# --------------------------------------------------------------------------------------------
# Équipe pluridisciplinaire
# --------------------------------------------------------------------------------------------


def open_ep_case(person: Person, data: dict[str, Any], by: Agent) -> EpCase:
    existing = db.session.scalar(
        select(EpCase.id).where(EpCase.person_id == person.id, EpCase.closed_on.is_(None))
    )
    if existing is not None:
        raise Conflict(
            f"Un dossier d'équipe pluridisciplinaire est déjà ouvert ({existing}).",
            code="ep_case_open",
            extra={"ep_case_id": existing},
        )
    pathway = active_pathway(person.id)
    case = EpCase(
        person_id=person.id,
        pathway_id=pathway.id if pathway else None,
        structure_id=pathway.structure_id if pathway else person.current_structure_id,
        origin=data["origin"],
        status=EpStatus.OPENED,
        opened_on=clock.today(),
        missed_appointments=0,
        referral_reason=data.get("referral_reason"),
    )
    db.session.add(case)
    db.session.flush()
    record(
        AuditAction.CREATE,
        "ep_case",
        case.id,
        person_id=person.id,
        reason="ep_case",
        details={"origin": case.origin.value},
    )
    return case


def update_ep_case(case: EpCase, changes: dict[str, Any], by: Agent) -> EpCase:
    """Record the EP steps in order: referral → person's observations → opinion → decision
    (or close without follow-up). Every step is a human record; nothing is decided by spie."""
    if case.closed_on is not None:
        raise Conflict("Le dossier est clos.", code="ep_case_closed")
    today = clock.today()
    errors: dict[str, list[str]] = {}
    for name in ("referral_on", "observations_on", "opinion_on", "decided_on"):
        value = changes.get(name)
        if value is not None and (value > today or value < case.opened_on):
            errors[name] = ["Date entre l'ouverture du dossier et aujourd'hui."]
    if errors:
        raise ValidationFailed("Dossier EP invalide.", errors=errors)
    fields: list[str] = []
    if changes.get("close_reason"):
        if case.status not in (EpStatus.OPENED, EpStatus.REFERRED):
            raise Conflict(
                "Un dossier qui a reçu un avis se clôt par une décision.",
                code="ep_transition_forbidden",
            )
        case.status = EpStatus.CLOSED
        case.close_reason = changes["close_reason"]
        case.closed_on = today
        fields += ["status", "close_reason"]
    else:
        if "referral_on" in changes:
            if case.status != EpStatus.OPENED:
                raise Conflict("L'EP est déjà saisie.", code="ep_transition_forbidden")
            if not (changes.get("referral_reason") or case.referral_reason):
                raise ValidationFailed(
                    "Motif de saisine obligatoire.",
                    errors={"referral_reason": ["Obligatoire pour saisir l'EP."]},
                )
            case.referral_on = changes["referral_on"]
            case.referral_reason = changes.get("referral_reason") or case.referral_reason
            case.status = EpStatus.REFERRED
            fields += ["referral_on", "referral_reason"]
        if "person_observations" in changes:
            if case.status != EpStatus.REFERRED:
                raise Conflict(
                    "Les observations de la personne suivent la saisine de l'EP.",
                    code="ep_transition_forbidden",
                )
            case.person_observations = changes["person_observations"]
            case.observations_on = changes.get("observations_on") or today
            fields += ["person_observations"]
        if "opinion" in changes:
            if case.status != EpStatus.REFERRED:
                raise Conflict("L'avis de l'EP suit sa saisine.", code="ep_transition_forbidden")
            case.opinion = changes["opinion"]
            case.opinion_on = changes.get("opinion_on") or today
            case.status = EpStatus.OPINION_GIVEN
            fields += ["opinion"]
        if "decision" in changes:
            if case.status != EpStatus.OPINION_GIVEN:
                raise Conflict(
                    "La décision suit l'avis de l'équipe pluridisciplinaire.",
                    code="ep_transition_forbidden",
                )
            decision: EpDecision = changes["decision"]
            decided_on = changes.get("decided_on") or today
            level_id = changes.get("sanction_level_id")
            if decision == EpDecision.SANCTION:
                level = db.session.get(SanctionLevel, level_id) if level_id else None
                if level is None or not (
                    level.valid_from <= decided_on
                    and (level.valid_until is None or decided_on < level.valid_until)
                ):
                    raise ValidationFailed(
                        "Niveau de sanction invalide.",
                        errors={
                            "sanction_level_id": [
                                "Un niveau de l'échelle en vigueur à la date de décision est "
                                "obligatoire."
                            ]
                        },
                    )
            elif level_id is not None:
                raise ValidationFailed(
                    "Pas de niveau de sanction sans sanction.",
                    errors={"sanction_level_id": ["Seulement pour une décision de sanction."]},
                )
            case.decision = decision
            case.sanction_level_id = level_id
            case.decided_on = decided_on
            case.decided_by_id = by.id
            case.status = EpStatus.DECIDED
            case.closed_on = decided_on
            fields += ["decision", "sanction_level_id"]
    if not fields:
        raise ValidationFailed("Rien à enregistrer.", errors={"_schema": ["Aucun changement."]})
    db.session.flush()
    record(
        AuditAction.UPDATE,
        "ep_case",
        case.id,
        person_id=case.person_id,
        reason="ep_case",
        details={"fields": fields, "status": case.status.value},
    )
    return case
