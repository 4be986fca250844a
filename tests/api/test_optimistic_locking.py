"""Optimistic locking: ETag = version, If-Match required on writes, 409 on a stale write."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from spie.agents.models import Agent, Role
from spie.db import db
from spie.persons.models import Person
from spie.structures.models import Structure
from tests.factories import AgentFactory, PersonFactory, StructureFactory, territory
from tests.helpers import api_as


@dataclass(frozen=True)
class Resource:
    model: type[Any]
    create: Callable[[], Any]
    read_url: str
    write_url: str
    field: str
    first: Any
    second: Any


RESOURCES = {
    "person": Resource(
        Person,
        lambda: PersonFactory(),
        "/api/v1/persons/{id}",
        "/api/v1/persons/{id}/contacts",
        "phone",
        "04 72 11 11 11",
        "04 72 22 22 22",
    ),
    "structure": Resource(
        Structure,
        lambda: StructureFactory(),
        "/api/v1/structures/{id}",
        "/api/v1/structures/{id}",
        "capacity",
        11,
        22,
    ),
    "agent": Resource(
        Agent,
        lambda: AgentFactory(),
        "/api/v1/agents/{id}",
        "/api/v1/agents/{id}",
        "caseload_capacity",
        11,
        22,
    ),
}


@pytest.fixture
def admin(app) -> Agent:
    return AgentFactory(roles=[Role.ADMIN])


def _stored(resource: Resource, obj: Any) -> Any:
    db.session.expire_all()
    return db.session.get(resource.model, obj.id)


@pytest.mark.parametrize("name", sorted(RESOURCES))
def test_read_gives_the_version_as_etag(client, admin, name):
    resource = RESOURCES[name]
    obj = resource.create()
    response = api_as(client, admin).get(resource.read_url.format(id=obj.id))
    assert response.status_code == 200
    assert response.headers["ETag"] == f'"{obj.version}"'


@pytest.mark.parametrize("name", sorted(RESOURCES))
def test_write_without_if_match_is_428(client, admin, name):
    resource = RESOURCES[name]
    obj = resource.create()
    before = getattr(obj, resource.field)
    response = api_as(client, admin).patch(
        resource.write_url.format(id=obj.id), json={resource.field: resource.first}
    )
    assert response.status_code == 428
    assert response.json["code"] == "precondition_required"
    assert response.json["current_version"] == obj.version
    assert getattr(_stored(resource, obj), resource.field) == before


@pytest.mark.parametrize("name", sorted(RESOURCES))
def test_write_with_a_stale_etag_is_409_with_the_current_version(client, admin, name):
    resource = RESOURCES[name]
    obj = resource.create()
    before, version = getattr(obj, resource.field), obj.version
    response = api_as(client, admin).patch(
        resource.write_url.format(id=obj.id),
        json={resource.field: resource.first},
        headers={"If-Match": f'"{version + 5}"'},
    )
    assert response.status_code == 409
    assert response.json["code"] == "stale_version"
    assert response.json["current_version"] == version
    stored = _stored(resource, obj)
    assert getattr(stored, resource.field) == before
    assert stored.version == version


@pytest.mark.parametrize("name", sorted(RESOURCES))
def test_write_with_the_current_etag_succeeds_and_bumps_the_version(client, admin, name):
    resource = RESOURCES[name]
    obj = resource.create()
    version = obj.version
    response = api_as(client, admin).patch(
        resource.write_url.format(id=obj.id),
        json={resource.field: resource.first},
        headers={"If-Match": f'W/"{version}"'},  # a weak tag names the same version
    )
    assert response.status_code == 200, response.json
    assert response.headers["ETag"] == f'"{version + 1}"'
    assert response.json[resource.field] == resource.first
    stored = _stored(resource, obj)
    assert stored.version == version + 1
    assert getattr(stored, resource.field) == resource.first


@pytest.mark.parametrize("name", sorted(RESOURCES))
def test_second_of_two_concurrent_writers_gets_409_and_the_first_write_stays(client, admin, name):
    resource = RESOURCES[name]
    obj = resource.create()
    url_read, url_write = resource.read_url.format(id=obj.id), resource.write_url.format(id=obj.id)
    alice, bob = api_as(client, admin), api_as(client, AgentFactory(roles=[Role.ADMIN]))
    etag_alice = alice.get(url_read).headers["ETag"]
    etag_bob = bob.get(url_read).headers["ETag"]
    assert etag_alice == etag_bob

    first = alice.patch(
        url_write, json={resource.field: resource.first}, headers={"If-Match": etag_alice}
    )
    assert first.status_code == 200
    second = bob.patch(
        url_write, json={resource.field: resource.second}, headers={"If-Match": etag_bob}
    )
    assert second.status_code == 409
    assert second.json["current_version"] == int(first.headers["ETag"].strip('"'))
    assert getattr(_stored(resource, obj), resource.field) == resource.first

    # Bob reloads and retries: now it goes through.
    fresh = bob.get(url_read).headers["ETag"]
    retry = bob.patch(
        url_write, json={resource.field: resource.second}, headers={"If-Match": fresh}
    )
    assert retry.status_code == 200
    assert getattr(_stored(resource, obj), resource.field) == resource.second


def test_agent_role_change_bumps_the_version(client, admin):
    agent = AgentFactory(roles=[Role.REFERENT])
    version = agent.version
    response = api_as(client, admin).patch(
        f"/api/v1/agents/{agent.id}",
        json={"roles": ["referent", "manager"]},
        headers={"If-Match": f'"{version}"'},
    )
    assert response.status_code == 200, response.json
    assert response.json["roles"] == ["manager", "referent"]
    assert response.headers["ETag"] == f'"{version + 1}"'
    # The stale tag no longer writes.
    stale = api_as(client, admin).patch(
        f"/api/v1/agents/{agent.id}",
        json={"roles": ["referent"]},
        headers={"If-Match": f'"{version}"'},
    )
    assert stale.status_code == 409
    assert _stored(RESOURCES["agent"], agent).roles == {Role.REFERENT, Role.MANAGER}


def test_agent_territory_change_bumps_the_version(client, admin):
    agent = AgentFactory(roles=[Role.MANAGER])
    version = agent.version
    response = api_as(client, admin).patch(
        f"/api/v1/agents/{agent.id}",
        json={"territory_ids": [territory("LYON").id]},
        headers={"If-Match": f'"{version}"'},
    )
    assert response.status_code == 200, response.json
    assert response.headers["ETag"] == f'"{version + 1}"'


def test_structure_territory_change_bumps_the_version(client, admin):
    """Territories live in an association table: the structure row itself must still change,
    or a second admin's stale write would silently undo this one."""
    structure = StructureFactory()
    version = structure.version
    response = api_as(client, admin).patch(
        f"/api/v1/structures/{structure.id}",
        json={"territory_ids": [territory("LYON").id]},
        headers={"If-Match": f'"{version}"'},
    )
    assert response.status_code == 200, response.json
    assert response.json["territory_ids"] == [territory("LYON").id]
    assert response.headers["ETag"] == f'"{version + 1}"'


def test_patch_keeps_the_fields_it_does_not_send(client, admin):
    lyon = territory("LYON")
    structure = StructureFactory(territories=[lyon])
    agent = AgentFactory(roles=[Role.MANAGER], territory_codes=["LYON"])
    api = api_as(client, admin)
    response = api.patch(
        f"/api/v1/structures/{structure.id}", json={"capacity": 7}, headers={"If-Match": "*"}
    )
    assert response.status_code == 200, response.json
    assert response.json["territory_ids"] == [lyon.id]
    assert response.json["active"] is True
    response = api.patch(
        f"/api/v1/agents/{agent.id}", json={"caseload_capacity": 7}, headers={"If-Match": "*"}
    )
    assert response.status_code == 200, response.json
    assert response.json["territory_ids"] == [lyon.id]
    assert response.json["roles"] == ["manager"]
    assert response.json["active_from"] == "2020-01-01"


def test_person_contact_patch_keeps_other_contacts(client, admin):
    person = PersonFactory(email="contact@example.org", phone="0472000000")
    response = api_as(client, admin).patch(
        f"/api/v1/persons/{person.id}/contacts",
        json={"phone": "0472999999"},
        headers={"If-Match": f'"{person.version}"'},
    )
    assert response.status_code == 200
    stored = _stored(RESOURCES["person"], person)
    assert (stored.email, stored.phone) == ("contact@example.org", "0472999999")
