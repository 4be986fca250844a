"""Read-side queries on persons, always scoped to what the calling agent may see."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload

from spie.agents.models import Agent
from spie.auth.scope import persons_visible_to
from spie.common.nir import split_nir
from spie.db import db
from spie.errors import NotFound
from spie.persons.models import Household, Person


def scoped_persons(agent: Agent) -> Select[Person]:
    return select(Person).where(persons_visible_to(agent))


def get_visible_person(agent: Agent, person_id: int) -> Person:
    """The person if ``agent`` may see them; 404 otherwise (existence is not disclosed)."""
    person = db.session.scalar(
        scoped_persons(agent)
        .where(Person.id == person_id)
        .options(selectinload(Person.sdd_periods), selectinload(Person.household))
    )
    if person is None:
        raise NotFound(f"Personne {person_id} introuvable.")
    return person


SORTS = {
    "name": (Person.search_name, Person.id),
    "-created_at": (Person.created_at.desc(), Person.id.desc()),
    "birth_date": (Person.birth_date, Person.id),
}


def list_persons(agent: Agent, filters: dict[str, Any]) -> Select[Person]:
    query = scoped_persons(agent).options(selectinload(Person.territory))
    if "public" in filters:
        query = query.where(Person.public == filters["public"])
    if "territory_id" in filters:
        query = query.where(Person.territory_id == filters["territory_id"])
    if "bound_by_duties" in filters:
        query = query.where(Person.bound_by_duties.is_(filters["bound_by_duties"]))
    return query.order_by(*SORTS[filters.get("sort", "name")])


def search_persons(agent: Agent, criteria: dict[str, Any]) -> Select[Person]:
    from spie.common.nir import normalize_name

    query = scoped_persons(agent).options(selectinload(Person.territory))
    if "nir" in criteria:
        nir13, _key = split_nir(criteria["nir"])
        query = query.where(Person.nir == nir13)
    if "caf_matricule" in criteria:
        query = query.join(Household, Person.household_id == Household.id).where(
            Household.caf_matricule == criteria["caf_matricule"].strip()
        )
    if "france_travail_id" in criteria:
        query = query.where(Person.france_travail_id == criteria["france_travail_id"].upper())
    if "name" in criteria:
        # Prefix search on the normalised "LAST FIRST" key (index-friendly LIKE 'x%').
        key = normalize_name(criteria["name"])
        query = query.where(Person.search_name.like(_escape_like(key) + "%", escape="\\"))
    if "birth_date" in criteria:
        query = query.where(Person.birth_date == criteria["birth_date"])
    return query.order_by(Person.search_name, Person.id)


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
