"""The adviser's caseload: figures per person, filters, sorting, counts, and a constant number
of SQL statements whatever the page size."""

from __future__ import annotations

import datetime as dt

from spie.parcours.alerts import raise_alert
from spie.parcours.models import AppointmentStatus, AppointmentTheme, ContractKind, StepStatus
from spie.parcours.services import (
    create_appointment,
    create_contract,
    create_step,
    set_appointment_status,
    transition_step,
)
from spie.referent.services import assign_referent
from tests.factories import PersonFactory
from tests.parcours.api import api_as
from tests.parcours.factories import (
    StatementCounter,
    decide,
    manager,
    offer,
    paris,
    referent,
    structure,
)

D = dt.date


def _person(mdm, main, boss, clock, name: str, decided_on: D):
    person = PersonFactory(last_name=name)
    clock.set(decided_on)
    decide(person, mdm, decided_on=decided_on, notified_on=decided_on)
    assign_referent(person, main, reason="Affectation", handover_note=None, by=boss)
    return person


def test_caseload_figures_filters_sorting_and_counts(client, rules, clock):
    mdm = structure("LYON")
    boss = manager(mdm, "LYON")
    main = referent(mdm, "LYON")
    # Alpha: notified 3 March, entered 10 March, contract 20 March - 19 September, a step.
    alpha = _person(mdm, main, boss, clock, "Alpha", D(2025, 3, 3))
    clock.set(D(2025, 3, 10), 9)
    appointment = create_appointment(
        alpha,
        {"scheduled_at": paris(2025, 3, 10, 10), "theme": AppointmentTheme.DIAGNOSTIC},
        main,
    )
    clock.set(D(2025, 3, 10), 12)
    set_appointment_status(appointment, AppointmentStatus.HONOURED, {}, main)
    clock.set(D(2025, 3, 20))
    create_contract(
        alpha,
        {
            "kind": ContractKind.ENGAGEMENT,
            "signed_on": D(2025, 3, 20),
            "starts_on": D(2025, 3, 20),
            "ends_on": D(2025, 9, 19),
            "weekly_hours": 15,
            "objectives": "Plan",
        },
        main,
    )
    step = create_step(alpha, {"offer_id": offer("NUM-DEMARCHES").id}, main)
    transition_step(step, StepStatus.EN_COURS, {}, main)
    # Bravo: notified 1 March, nothing since: entry and contract clocks overdue on 15 April.
    bravo = _person(mdm, main, boss, clock, "Bravo", D(2025, 3, 1))
    # Charlie: notified 10 April, an alert (France Travail radiation).
    charlie = _person(mdm, main, boss, clock, "Charlie", D(2025, 4, 10))
    raise_alert(charlie, "ft_radiation", due_on=D(2025, 4, 12))
    clock.set(D(2025, 4, 15))

    api = api_as(client, main)
    page = api.get("/api/v1/caseload").json
    assert page["agent"] == {
        "id": main.id,
        "name": main.full_name,
        "structure_id": mdm.id,
        "capacity": 150,
        "load": 3,
    }
    assert page["counts"] == {
        "overdue": 1,
        "with_alerts": 1,
        "without_contract": 2,
        "contract_expiring": 0,
        "not_entered": 2,
        "never_contacted": 2,
    }
    rows = {r["person"]["id"]: r for r in page["items"]}
    assert [r["person"]["last_name"] for r in page["items"]] == ["Alpha", "Bravo", "Charlie"]
    a, b, c = rows[alpha.id], rows[bravo.id], rows[charlie.id]
    assert a["next_deadline"] == {"on": "2025-09-19", "kind": "contract_renewal"}
    assert a["contract"]["status"] == "active"
    assert a["contract"]["ends_on"] == "2025-09-19"
    assert a["last_contact_at"] == "2025-03-10T09:00:00+00:00"
    assert a["current_step"]["status"] == "en_cours"
    assert a["current_step"]["title"] == "Atelier numérique : autonomie dans les démarches en ligne"
    assert (a["overdue"], a["open_alerts"]) == (0, 0)
    assert b["next_deadline"] == {"on": "2025-03-16", "kind": "pathway_entry"}
    assert (b["overdue"], b["contract"]["status"], b["last_contact_at"]) == (2, "none", None)
    assert c["open_alerts"] == 1
    assert c["next_deadline"] == {"on": "2025-04-25", "kind": "pathway_entry"}

    def names(query: str) -> list[str]:
        return [
            r["person"]["last_name"] for r in api.get(f"/api/v1/caseload?{query}").json["items"]
        ]

    assert names("overdue=true") == ["Bravo"]
    assert names("has_alerts=true") == ["Charlie"]
    assert names("contract_status=none") == ["Bravo", "Charlie"]
    assert names("contract_status=active&contract_status=expiring") == ["Alpha"]
    assert names("entered=false") == ["Bravo", "Charlie"]
    assert names("q=cha") == ["Charlie"]
    assert names("sort=next_deadline") == ["Bravo", "Charlie", "Alpha"]
    assert names("sort=-overdue") == ["Bravo", "Charlie", "Alpha"]
    assert names("sort=last_contact") == ["Bravo", "Charlie", "Alpha"]
    filtered = api.get("/api/v1/caseload?overdue=true&per_page=1").json
    assert (filtered["total"], filtered["counts"]["overdue"]) == (1, 1)
    # Past the last page, the counts are still there (a second, aggregate statement).
    beyond = api.get("/api/v1/caseload?overdue=true&page=3&per_page=1").json
    assert (beyond["items"], beyond["total"], beyond["counts"], beyond["agent"]["load"]) == (
        [],
        1,
        page["counts"],
        3,
    )
    # The answer (serialised by hand) has the documented shape.
    from spie.parcours.schemas import CaseloadSchema

    assert CaseloadSchema().validate(page) == {}


def test_constant_number_of_queries_whatever_the_page_size(client, rules, clock):
    mdm = structure("LYON")
    boss = manager(mdm, "LYON")
    main = referent(mdm, "LYON")
    fle = offer("FLE-ASL")
    for n in range(60):
        person = _person(mdm, main, boss, clock, f"Personne{n:02d}", D(2025, 3, 3))
        clock.set(D(2025, 3, 20), 9)
        if n % 2:
            create_contract(
                person,
                {
                    "kind": ContractKind.ENGAGEMENT,
                    "signed_on": D(2025, 3, 20),
                    "starts_on": D(2025, 3, 20),
                    "ends_on": D(2025, 9, 19),
                    "weekly_hours": 15,
                    "objectives": "Plan",
                },
                main,
            )
        create_step(person, {"offer_id": fle.id}, main)
        create_appointment(
            person, {"scheduled_at": paris(2025, 3, 27), "theme": AppointmentTheme.SUIVI}, main
        )
        if n % 3 == 0:
            raise_alert(person, "ft_radiation", due_on=D(2025, 3, 20))
    clock.set(D(2025, 3, 21))
    api = api_as(client, main)
    counts, mine = {}, {}
    for size in (5, 50):
        api.get("/api/v1/caseload?per_page=1")  # warm-up (token touch, caches)
        with StatementCounter() as counter:
            response = api.get(f"/api/v1/caseload?per_page={size}&sort=next_deadline")
        assert response.status_code == 200, response.json
        assert len(response.json["items"]) == size
        counts[size] = counter.count
        mine[size] = [s for s in counter.statements if "caseload_assignment" in s]
    assert counts[5] == counts[50], counts
    # The caseload itself: one statement (page, counts and filtered total).
    assert len(mine[5]) == len(mine[50]) == 1
    # The rest is the savepoint, authentication (token, agent, session state, roles,
    # territories) and its release: independent of the caseload.
    assert counts[50] <= 10, counts
