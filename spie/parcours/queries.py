"""Read side of the pathway, always scoped (``persons_visible_to``) and masked per audience
(``spie.parcours.access``): the pathway file, steps, contracts, appointments, alerts,
diagnostics, EP cases. Every function issues a fixed number of queries."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from sqlalchemy import Select, and_, or_, select

from spie.agents.models import Agent, Role
from spie.auth.scope import persons_visible_to
from spie.db import db
from spie.errors import NotFound
from spie.parcours import access, clock
from spie.parcours.models import (
    Alert,
    Appointment,
    AppointmentStatus,
    Assessment,
    AssessmentGrid,
    Contract,
    EpCase,
    Offer,
    Pathway,
    PathwayClock,
    Step,
)
from spie.parcours.services import STEP_TRANSITIONS
from spie.persons.models import Person
from spie.referent.models import ReferentAssignment
from spie.structures.models import Structure

MASKED_TITLE = "Étape confidentielle"

_T = TypeVar("_T")


def visible_person(agent: Agent, person_id: int) -> Person:
    person = db.session.scalar(
        select(Person).where(Person.id == person_id, persons_visible_to(agent))
    )
    if person is None:
        raise NotFound(f"Personne {person_id} introuvable.")
    return person


def _person_ref(person: Person) -> dict[str, Any]:
    return {
        "id": person.id,
        "last_name": person.last_name,
        "first_name": person.first_name,
        "birth_date": person.birth_date,
    }


# --- views (masking) ------------------------------------------------------------------------


def step_view(step: Step, agent: Agent, person: Person | None, *, contributor: bool) -> dict:
    shown = (
        access.sees_step_details(agent, person, step)
        if person is not None
        else access.is_contributor(agent, step)
    )
    view: dict[str, Any] = {
        "id": step.id,
        "version": step.version,
        "pathway_id": step.pathway_id,
        "person_id": step.person_id,
        "offer_id": step.offer_id if shown else None,
        "title": step.title if shown else MASKED_TITLE,
        "theme": step.theme if shown else None,
        "provider_structure_id": step.provider_structure_id,
        "sensitive": step.sensitive,
        "masked": not shown,
        "status": step.status,
        "proposed_on": step.proposed_on,
        "planned_start_on": step.planned_start_on,
        "planned_end_on": step.planned_end_on,
        "started_on": step.started_on,
        "ended_on": step.ended_on,
        "outcome": step.outcome if shown else None,
        "bilan": step.bilan if shown and (contributor or access.sees_notes(agent)) else None,
        "abandon_reason": step.abandon_reason if shown and access.sees_notes(agent) else None,
        "notes": step.notes if shown and not contributor and access.sees_notes(agent) else None,
        "allowed_transitions": sorted(s.value for s in STEP_TRANSITIONS[step.status]),
        "contributor_view": contributor,
    }
    return view


def contract_view(contract: Contract, agent: Agent, person: Person) -> dict[str, Any]:
    today = clock.today()
    if contract.cancelled_on is not None:
        status = "cancelled"
    elif contract.starts_on > today:
        status = "upcoming"
    elif contract.ends_on < today:
        status = "ended"
    else:
        status = "active"
    notes = access.sees_notes(agent)
    return {
        "id": contract.id,
        "version": contract.version,
        "person_id": contract.person_id,
        "pathway_id": contract.pathway_id,
        "kind": contract.kind,
        "status": status,
        "signed_on": contract.signed_on,
        "starts_on": contract.starts_on,
        "ends_on": contract.ends_on,
        "objectives": contract.objectives if notes else None,
        "weekly_hours": contract.weekly_hours,
        "reduction_reason": (
            contract.reduction_reason if access.sees_health(agent, person) else None
        ),
        "reduced": contract.reduction_reason is not None,
        "review_extension_reason": (
            contract.review_extension_reason if access.sees_health(agent, person) else None
        ),
        "cancelled_on": contract.cancelled_on,
        "cancel_reason": contract.cancel_reason if notes else None,
    }


def appointment_view(appointment: Appointment, agent: Agent) -> dict[str, Any]:
    notes = access.sees_notes(agent)
    return {
        "id": appointment.id,
        "version": appointment.version,
        "person_id": appointment.person_id,
        "pathway_id": appointment.pathway_id,
        "agent_id": appointment.agent_id,
        "structure_id": appointment.structure_id,
        "step_id": appointment.step_id,
        "scheduled_at": appointment.scheduled_at,
        "duration_minutes": appointment.duration_minutes,
        "theme": appointment.theme,
        "channel": appointment.channel,
        "status": appointment.status,
        "status_changed_at": appointment.status_changed_at,
        "cancel_reason": appointment.cancel_reason if notes else None,
        "notes": appointment.notes if notes else None,
    }


def alert_view(alert: Alert, agent: Agent) -> dict[str, Any]:
    return {
        "id": alert.id,
        "version": alert.version,
        "person_id": alert.person_id,
        "kind": alert.kind,
        "due_on": alert.due_on,
        "raised_at": alert.raised_at,
        "agent_id": alert.agent_id,
        "structure_id": alert.structure_id,
        "source_type": alert.source_type,
        "source_id": alert.source_id,
        "details": alert.details,
        "resolved_at": alert.resolved_at,
        "resolved_by_id": alert.resolved_by_id,
        "resolution": alert.resolution if access.sees_notes(agent) else None,
    }


def clock_view(clock: PathwayClock, today: dt.date) -> dict[str, Any]:
    open_ = clock.met_on is None and clock.stopped_on is None
    return {
        "id": clock.id,
        "kind": clock.kind,
        "contract_id": clock.contract_id,
        "started_on": clock.started_on,
        "due_on": clock.due_on,
        "target_on": clock.target_on,
        "extended": clock.extended,
        "met_on": clock.met_on,
        "stopped_on": clock.stopped_on,
        "stop_reason": clock.stop_reason,
        "overdue": open_ and clock.due_on < today,
        "met_late": clock.met_on is not None and clock.met_on > clock.due_on,
        "policy_id": clock.policy_id,
    }


def ep_case_view(case: EpCase, agent: Agent) -> dict[str, Any]:
    notes = access.sees_notes(agent)
    return {
        "id": case.id,
        "version": case.version,
        "person_id": case.person_id,
        "pathway_id": case.pathway_id,
        "structure_id": case.structure_id,
        "origin": case.origin,
        "status": case.status,
        "opened_on": case.opened_on,
        "missed_appointments": case.missed_appointments,
        "referral_on": case.referral_on,
        "referral_reason": case.referral_reason if notes else None,
        "person_observations": case.person_observations if notes else None,
        "observations_on": case.observations_on,
        "opinion": case.opinion if notes else None,
        "opinion_on": case.opinion_on,
        "decision": case.decision,
        "sanction_level_id": case.sanction_level_id,
        "decided_on": case.decided_on,
        "decided_by_id": case.decided_by_id,
        "closed_on": case.closed_on,
        "close_reason": case.close_reason if notes else None,
    }


# --- the pathway file -----------------------------------------------------------------------


def pathway_file(agent: Agent, person: Person) -> dict[str, Any]:
    """Everything about the person's current pathway, in a fixed number of queries."""
    today = clock.today()
    pathways = list(
        db.session.scalars(
            select(Pathway)
            .where(Pathway.person_id == person.id)
            .order_by(Pathway.opened_on.desc(), Pathway.id.desc())
        )
    )
    current = next((p for p in pathways if p.closed_on is None), None)
    referent_row = db.session.execute(
        select(
            ReferentAssignment.agent_id,
            ReferentAssignment.structure_id,
            ReferentAssignment.started_at,
            Agent.first_name,
            Agent.last_name,
        )
        .join(Agent, Agent.id == ReferentAssignment.agent_id)
        .where(ReferentAssignment.person_id == person.id, ReferentAssignment.ended_at.is_(None))
    ).first()
    structure_names = (
        dict(
            db.session.execute(
                select(Structure.id, Structure.name).where(
                    Structure.id.in_({p.structure_id for p in pathways})
                )
            ).all()
        )
        if pathways
        else {}
    )
    result: dict[str, Any] = {
        "person": _person_ref(person),
        "pathway": None,
        "referent": None,
        "clocks": [],
        "steps": [],
        "contracts": [],
        "appointments": [],
        "open_alerts": [],
        "previous_pathways": [
            {
                "id": p.id,
                "parcours": p.parcours,
                "structure_id": p.structure_id,
                "opened_on": p.opened_on,
                "closed_on": p.closed_on,
                "close_reason": p.close_reason,
            }
            for p in pathways
            if p is not current
        ],
    }
    if referent_row is not None:
        result["referent"] = {
            "agent_id": referent_row.agent_id,
            "name": f"{referent_row.first_name} {referent_row.last_name}",
            "structure_id": referent_row.structure_id,
            "since": referent_row.started_at,
        }
    if current is None:
        return result
    result["pathway"] = {
        "id": current.id,
        "version": current.version,
        "decision_id": current.decision_id,
        "parcours": current.parcours,
        "structure_id": current.structure_id,
        "structure_name": structure_names.get(current.structure_id),
        "typology": current.typology,
        "opened_on": current.opened_on,
        "notified_on": current.notified_on,
        "entered_on": current.entered_on,
        "last_review_on": current.last_review_on,
    }
    clocks = db.session.scalars(
        select(PathwayClock)
        .where(
            PathwayClock.person_id == person.id,
            or_(PathwayClock.pathway_id == current.id, PathwayClock.pathway_id.is_(None)),
        )
        .order_by(PathwayClock.started_on, PathwayClock.id)
    )
    result["clocks"] = [clock_view(c, today) for c in clocks]
    steps = db.session.scalars(
        select(Step).where(Step.pathway_id == current.id).order_by(Step.proposed_on, Step.id)
    )
    result["steps"] = [step_view(s, agent, person, contributor=False) for s in steps]
    contracts = db.session.scalars(
        select(Contract)
        .where(Contract.person_id == person.id)
        .order_by(Contract.starts_on.desc(), Contract.id.desc())
    )
    result["contracts"] = [contract_view(c, agent, person) for c in contracts]
    appointments = db.session.scalars(
        select(Appointment)
        .where(Appointment.person_id == person.id, Appointment.pathway_id == current.id)
        .order_by(Appointment.scheduled_at.desc(), Appointment.id.desc())
        .limit(50)
    )
    result["appointments"] = [appointment_view(a, agent) for a in appointments]
    alerts = db.session.scalars(
        select(Alert)
        .where(Alert.person_id == person.id, Alert.resolved_at.is_(None))
        .order_by(Alert.due_on, Alert.id)
    )
    result["open_alerts"] = [alert_view(a, agent) for a in alerts]
    return result


# --- steps ----------------------------------------------------------------------------------


def get_step_for(agent: Agent, step_id: int) -> tuple[Step, Person | None, bool]:
    """(step, person if the agent sees the person, contributor view?) or 404."""
    step = db.session.get(Step, step_id)
    if step is None:
        raise NotFound(f"Étape {step_id} introuvable.")
    person = db.session.scalar(
        select(Person).where(Person.id == step.person_id, persons_visible_to(agent))
    )
    if person is not None:
        return step, person, False
    if access.is_contributor(agent, step):
        return step, None, True
    raise NotFound(f"Étape {step_id} introuvable.")


def list_steps(agent: Agent, filters: dict[str, Any]) -> Select[Step, Person]:
    """Steps of persons the agent sees, plus (référents) the steps their structure runs —
    those in the contributor view."""
    visible = select(Person.id).where(persons_visible_to(agent))
    condition = or_(Step.person_id.in_(visible), access.contributor_clause(agent))
    query = select(Step, Person).join(Person, Person.id == Step.person_id).where(condition)
    if "person_id" in filters:
        query = query.where(Step.person_id == filters["person_id"])
    if "status" in filters:
        query = query.where(Step.status == filters["status"])
    if "offer_id" in filters:
        query = query.where(Step.offer_id == filters["offer_id"])
    if filters.get("provided_by_my_structure"):
        query = query.where(Step.provider_structure_id == agent.structure_id)
    return query.order_by(Step.proposed_on.desc(), Step.id.desc())


def step_rows_view(agent: Agent, rows: list[Any]) -> list[dict[str, Any]]:
    """Views for a page of (step, person) rows: one query to know which persons the agent
    sees in full."""
    person_ids = {person.id for _step, person in rows}
    seen = (
        set(
            db.session.scalars(
                select(Person.id).where(Person.id.in_(person_ids), persons_visible_to(agent))
            )
        )
        if person_ids
        else set()
    )
    views = []
    for step, person in rows:
        if person.id in seen:
            view = step_view(step, agent, person, contributor=False)
        else:
            view = step_view(step, agent, None, contributor=True)
        view["person"] = _person_ref(person)
        views.append(view)
    return views


# --- other lists ----------------------------------------------------------------------------


def list_contracts(agent: Agent, filters: dict[str, Any]) -> Select[Contract, Person]:
    query = (
        select(Contract, Person)
        .join(Person, Person.id == Contract.person_id)
        .where(persons_visible_to(agent))
    )
    if "person_id" in filters:
        query = query.where(Contract.person_id == filters["person_id"])
    if filters.get("active_on"):
        day = filters["active_on"]
        query = query.where(
            Contract.starts_on <= day,
            Contract.ends_on >= day,
            or_(Contract.cancelled_on.is_(None), Contract.cancelled_on > day),
        )
    return query.order_by(Contract.starts_on.desc(), Contract.id.desc())


def _get_with_person(agent: Agent, model: type[_T], row_id: int, label: str) -> tuple[_T, Person]:
    """A row of ``model`` (which has ``person_id``) and its person, if the person is in the
    agent's scope; 404 otherwise, exactly as for an id that does not exist."""
    row = db.session.execute(
        select(model, Person)
        .join(Person, Person.id == model.person_id)  # type: ignore[attr-defined]
        .where(model.id == row_id, persons_visible_to(agent))  # type: ignore[attr-defined]
    ).first()
    if row is None:
        raise NotFound(f"{label} {row_id} introuvable.")
    return row[0], row[1]


def get_contract_for(agent: Agent, contract_id: int) -> tuple[Contract, Person]:
    return _get_with_person(agent, Contract, contract_id, "Contrat")


def list_appointments(agent: Agent, filters: dict[str, Any]) -> Select[Any]:
    query = (
        select(Appointment)
        .join(Person, Person.id == Appointment.person_id)
        .where(persons_visible_to(agent))
    )
    if "person_id" in filters:
        query = query.where(Appointment.person_id == filters["person_id"])
    if filters.get("mine"):
        query = query.where(Appointment.agent_id == agent.id)
    if "status" in filters:
        query = query.where(Appointment.status == filters["status"])
    if "from" in filters:
        query = query.where(Appointment.scheduled_at >= filters["from"])
    if "to" in filters:
        query = query.where(Appointment.scheduled_at < filters["to"])
    if filters.get("upcoming"):
        query = query.where(
            Appointment.status == AppointmentStatus.PLANNED, Appointment.scheduled_at >= clock.now()
        )
    return query.order_by(Appointment.scheduled_at, Appointment.id)


def get_appointment_for(agent: Agent, appointment_id: int) -> tuple[Appointment, Person]:
    return _get_with_person(agent, Appointment, appointment_id, "Rendez-vous")


def list_alerts(agent: Agent, filters: dict[str, Any]) -> Select[Any]:
    query = (
        select(Alert).join(Person, Person.id == Alert.person_id).where(persons_visible_to(agent))
    )
    if filters.get("mine"):
        # Mine: addressed to me, or to my structure's managers when I manage it.
        mine = Alert.agent_id == agent.id
        if agent.has_role(Role.MANAGER):
            mine = or_(
                mine, and_(Alert.agent_id.is_(None), Alert.structure_id == agent.structure_id)
            )
        query = query.where(mine)
    if "person_id" in filters:
        query = query.where(Alert.person_id == filters["person_id"])
    if "kind" in filters:
        query = query.where(Alert.kind == filters["kind"])
    if "structure_id" in filters:
        query = query.where(Alert.structure_id == filters["structure_id"])
    state = filters.get("state", "open")
    if state == "open":
        query = query.where(Alert.resolved_at.is_(None))
    elif state == "resolved":
        query = query.where(Alert.resolved_at.is_not(None))
    return query.order_by(Alert.due_on, Alert.id)


def get_alert_for(agent: Agent, alert_id: int) -> tuple[Alert, Person]:
    return _get_with_person(agent, Alert, alert_id, "Alerte")


def list_ep_cases(agent: Agent, filters: dict[str, Any]) -> Select[Any]:
    query = (
        select(EpCase).join(Person, Person.id == EpCase.person_id).where(persons_visible_to(agent))
    )
    if "person_id" in filters:
        query = query.where(EpCase.person_id == filters["person_id"])
    if "status" in filters:
        query = query.where(EpCase.status == filters["status"])
    if filters.get("open"):
        query = query.where(EpCase.closed_on.is_(None))
    return query.order_by(EpCase.opened_on.desc(), EpCase.id.desc())


def get_ep_case_for(agent: Agent, case_id: int) -> tuple[EpCase, Person]:
    return _get_with_person(agent, EpCase, case_id, "Dossier EP")


# --- offers ---------------------------------------------------------------------------------


def list_offers(filters: dict[str, Any]) -> Select[Any]:
    from spie.parcours.models import offer_territories

    query = select(Offer)
    if "theme" in filters:
        query = query.where(Offer.theme == filters["theme"])
    if "active" in filters:
        query = query.where(Offer.active.is_(filters["active"]))
    if "provider_structure_id" in filters:
        query = query.where(Offer.provider_structure_id == filters["provider_structure_id"])
    if "territory_id" in filters:
        covered = select(offer_territories.c.offer_id).where(
            offer_territories.c.territory_id == filters["territory_id"]
        )
        uncovered = (
            ~select(offer_territories.c.offer_id)
            .where(offer_territories.c.offer_id == Offer.id)
            .exists()
        )
        query = query.where(or_(Offer.id.in_(covered), uncovered))
    if "available_on" in filters:
        day = filters["available_on"]
        query = query.where(
            Offer.starts_on <= day, or_(Offer.ends_on.is_(None), Offer.ends_on >= day)
        )
    return query.order_by(Offer.theme, Offer.title, Offer.id)


def get_offer(offer_id: int) -> Offer:
    offer = db.session.get(Offer, offer_id)
    if offer is None:
        raise NotFound(f"Offre {offer_id} introuvable.")
    return offer


# --- diagnostic partagé ---------------------------------------------------------------------


def assessments_with_progression(agent: Agent, person: Person) -> dict[str, Any]:
    """The person's diagnostics, oldest first, each with its progression since the previous
    one on the same grid: for every item the change of level, signed so that a positive
    number is progress (a barrier that weighs less, a potential or skill that grew)."""
    rows = list(
        db.session.scalars(
            select(Assessment)
            .where(Assessment.person_id == person.id)
            .order_by(Assessment.assessed_on, Assessment.id)
        )
    )
    grids = (
        {
            g.id: g
            for g in db.session.scalars(
                select(AssessmentGrid).where(AssessmentGrid.id.in_({a.grid_id for a in rows}))
            )
        }
        if rows
        else {}
    )
    health = access.sees_health(agent, person)
    notes = access.sees_notes(agent)
    previous: dict[int, Assessment] = {}
    items_out = []
    for assessment in rows:
        grid = grids[assessment.grid_id]
        hidden = {i["code"] for i in grid.items if i.get("sensitive") and not health}
        before = previous.get(grid.id)
        progression = None
        if before is not None:
            progression = {}
            for item in grid.items:
                code = item["code"]
                if code in hidden or code not in before.scores:
                    continue
                delta = assessment.scores[code] - before.scores[code]
                progression[code] = -delta if item["dimension"] == "barrier" else delta
        items_out.append(
            {
                "id": assessment.id,
                "version": assessment.version,
                "grid_code": grid.code,
                "assessed_on": assessment.assessed_on,
                "assessed_by_id": assessment.assessed_by_id,
                "scores": {k: v for k, v in assessment.scores.items() if k not in hidden},
                "comment": assessment.comment if notes else None,
                "previous_id": before.id if before else None,
                "progression": progression,
                "progress_total": sum(progression.values()) if progression else None,
            }
        )
        previous[grid.id] = assessment
    return {"person": _person_ref(person), "items": items_out}
