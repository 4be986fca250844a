"""Handing a person over to a structure after an orientation decision.

The decision names the organisme référent; the person then waits in that structure's queue
until a responsible agent confirms a référent (``spie.referent.services``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from spie.audit.models import AuditAction
from spie.audit.service import record
from spie.db import db, utcnow
from spie.persons.models import Person
from spie.referent.models import ReferentAssignment
from spie.structures.models import Structure


def hand_over_to_structure(person: Person, structure: Structure, on: dt.date, reason: str) -> None:
    """Put ``person`` in ``structure``'s queue.

    A référent of another structure stops being the référent (the new structure assigns its
    own); a référent of the same structure stays.
    """
    active = db.session.scalar(
        select(ReferentAssignment).where(
            ReferentAssignment.person_id == person.id, ReferentAssignment.ended_at.is_(None)
        )
    )
    if active is not None and active.structure_id != structure.id:
        active.ended_at = utcnow()
        active.end_reason = f"orientation vers {structure.name}"
    person.current_structure_id = structure.id
    db.session.flush()
    record(
        AuditAction.UPDATE,
        "person",
        person.id,
        person_id=person.id,
        reason="orientation",
        details={"current_structure_id": structure.id, "on": on.isoformat(), "why": reason},
    )
