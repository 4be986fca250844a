from spie.agents.models import Role
from tests.factories import AgentFactory, PersonFactory
from tests.helpers import api_as


def test_admin_reads_a_person_and_the_read_is_audited(client):
    admin = AgentFactory(roles=[Role.ADMIN])
    person = PersonFactory()
    response = api_as(client, admin).get(f"/api/v1/persons/{person.id}?reason=search")
    assert response.status_code == 200, response.json
    assert response.json["id"] == person.id
    assert response.headers["ETag"] == f'"{person.version}"'
    audit = api_as(client, admin).get(f"/api/v1/admin/audit?person_id={person.id}").json
    assert [(e["action"], e["reason"], e["actor_agent_id"]) for e in audit["items"]] == [
        ("read", "search", admin.id)
    ]
