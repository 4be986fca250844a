"""France Travail monthly files: registrations and history, alerts, idempotency, bad lines."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from spie.clocks.services import seed_delay_policies
from spie.common.nir import nir_key
from spie.db import db
from spie.integrations.france_travail.importer import review_long_radiations
from spie.integrations.models import (
    FtEventKind,
    FtRegistration,
    FtRegistrationEvent,
    FtRegistrationState,
    ImportSource,
)
from spie.parcours.models import Alert, AlertKind
from spie.persons.models import Person
from tests.factories import PersonFactory
from tests.integrations.import_helpers import FT_SAMPLES, MONTHLY, codes, count, run_import

D = dt.date
FT = ImportSource.FRANCE_TRAVAIL
HEADER = "nir;identifiantpe;nom;prenom;dtnai;date;code;nir2;codeinsee;localite;adresse;ale"
HEADER_MOTIF = (
    "nir;identifiantpe;nom;prenom;dtnai;date;code;motif;nir2;codeinsee;localite;adresse;ale"
)
requires_samples = pytest.mark.skipif(not FT_SAMPLES.is_dir(), reason="shared samples not found")


@pytest.fixture(autouse=True)
def _policies(app):
    seed_delay_policies()


def line(
    nir: str,
    ft_id: str,
    date: str,
    code: str,
    *,
    motif: str | None = None,
    dtnai: str = "15/01/1980",
    nir2: str | None = None,
) -> str:
    middle = [code] if motif is None else [code, motif]
    return ";".join(
        [
            nir,
            ft_id,
            "DUPONT",
            "JEAN",
            dtnai,
            date,
            *middle,
            nir2 or nir,
            "69381",
            "LYON 1ER",
            "1 RUE X",
            "ALE LYON",
        ]
    )


def csv(header: str, *lines: str) -> bytes:
    return ("\n".join([header, *lines]) + "\n").encode("utf-8")


def registration(nir: str) -> FtRegistration:
    found = db.session.scalar(select(FtRegistration).where(FtRegistration.nir == nir))
    assert found is not None
    db.session.refresh(found)
    return found


@requires_samples
def test_the_shared_samples_give_registrations_history_and_alerts(tmp_path):
    run_import(tmp_path, MONTHLY)  # the CAF people, some of them bound by duties
    reports = {
        kind: run_import(tmp_path, FT_SAMPLES / f"{kind}_2026-10.csv", source=FT, kind=kind)
        for kind in ("stock", "inscriptions", "cessations", "radiations")
    }
    assert all(r["status"] == "done" and r["counts"]["rejected"] == 0 for r in reports.values())
    assert reports["stock"]["counts"]["created"] == 19
    assert reports["inscriptions"]["counts"]["unchanged"] == 19  # same inscriptions as the stock
    haddad = registration("2671042299060")
    # Inscribed and radiated the same day: the radiation wins, whatever the file order.
    assert (haddad.state, haddad.state_since, haddad.reason_code) == (
        FtRegistrationState.RADIATION,
        D(2026, 10, 12),
        "72",
    )
    person = db.session.scalar(select(Person).where(Person.nir == "2671042299060"))
    assert person is not None
    assert haddad.person_id == person.id
    assert person.france_travail_id == "9130651C378"  # France Travail's own id is authoritative
    kinds = [
        e.kind
        for e in db.session.scalars(
            select(FtRegistrationEvent)
            .where(FtRegistrationEvent.nir == haddad.nir)
            .order_by(FtRegistrationEvent.id)
        )
    ]
    assert kinds == [FtEventKind.INSCRIPTION, FtEventKind.CESSATION, FtEventKind.RADIATION]
    # A radiation of an SDD person alerts their référent; a child's does not.
    alerts = db.session.scalars(select(Alert).where(Alert.kind == AlertKind.FT_RADIATION)).all()
    alerted = {a.person_id for a in alerts}
    assert person.id in alerted
    child = db.session.scalar(select(Person).where(Person.nir == "1091099272569"))
    assert child is not None
    assert child.id not in alerted
    assert len(alerts) == 5
    assert all(a.details and set(a.details) == {"motif"} for a in alerts)
    assert reports["radiations"]["details"]["france_travail"]["alerts"] == 5


def test_lines_with_the_wrong_column_count_or_nir2_are_rejected_precisely(tmp_path):
    good = "1800169000001"
    other = "1800169000002"
    data = csv(
        HEADER,
        line(good, "1234567A001", "01/10/2026", "1"),
        line(other, "1234567A002", "01/10/2026", "1") + ";extra",
        line(other, "1234567A002", "01/10/2026", "1", nir2="1800169000003"),
        line("1800169000004", "1234567A004", "01/10/2026", "9"),
        line("1800169000005", "1234567A005", "31/02/2026", "2"),
        line("1800169000006", "1234567A006", "01/10/2026", "2"),
    )
    report = run_import(tmp_path, data, source=FT, kind="inscriptions", name="inscriptions.csv")
    assert report["status"] == "done"
    assert codes(report, "error") == [
        (3, "wrong_column_count"),
        (4, "nir_mismatch"),
        (5, "unknown_code"),
        (6, "bad_date"),
    ]
    assert report["counts"]["created"] == 2
    assert all("1800169" not in r["message"] for r in report["rejects"])
    assert count(FtRegistration) == 2


def test_a_15_character_nir_with_a_wrong_key_is_rejected(tmp_path):
    nir = "1800169000001"
    wrong = (nir_key(nir) % 97) + 1
    data = csv(HEADER, line(f"{nir}{wrong:02d}", "1234567A001", "01/10/2026", "1"))
    report = run_import(tmp_path, data, source=FT, kind="stock", name="stock.csv")
    assert codes(report, "error") == [(2, "bad_nir_key")]


def test_an_unusable_header_refuses_the_file(tmp_path):
    report = run_import(tmp_path, b"foo;bar\n1;2\n", source=FT, kind="stock", name="stock.csv")
    assert report["status"] == "refused"
    assert report["rejects"][0]["code"] == "missing_header"


def test_the_same_file_twice_or_an_older_one_changes_nothing(tmp_path):
    nir = "1800169000001"
    newer = csv(
        HEADER_MOTIF, line(nir, "1234567A001", "20/10/2026", "72", motif="REPRISE D'EMPLOI")
    )
    older = csv(HEADER, line(nir, "1234567A001", "01/10/2026", "3"))
    first = run_import(tmp_path, newer, source=FT, kind="radiations", name="r1.csv")
    again = run_import(tmp_path, newer, source=FT, kind="radiations", name="r2.csv")
    assert (first["counts"]["created"], again["status"]) == (1, "duplicate")
    forced = run_import(tmp_path, newer, source=FT, kind="radiations", name="r3.csv", force=True)
    assert forced["counts"]["unchanged"] == 1
    report = run_import(tmp_path, older, source=FT, kind="inscriptions", name="i.csv")
    assert report["counts"]["updated"] == 1  # the history gains the older inscription...
    reg = registration(nir)
    assert (reg.state, reg.state_since) == (FtRegistrationState.RADIATION, D(2026, 10, 20))
    assert count(FtRegistrationEvent) == 2  # ...but the newer state stays


def test_a_person_is_linked_by_nir_and_birth_date_else_by_france_travail_id(tmp_path):
    by_nir = PersonFactory(nir="1800169000001", birth_date=D(1980, 1, 15), france_travail_id=None)
    by_id = PersonFactory(nir=None, nir_key=None, france_travail_id="7654321B002")
    data = csv(
        HEADER,
        line("1800169000001", "1234567A001", "01/10/2026", "1"),
        line("1800169000002", "7654321B002", "01/10/2026", "1"),
        line("1800169000003", "1111111C003", "01/10/2026", "1"),
    )
    report = run_import(tmp_path, data, source=FT, kind="stock", name="stock.csv")
    assert report["details"]["france_travail"]["persons_linked"] == 2
    assert registration("1800169000001").person_id == by_nir.id
    assert registration("1800169000002").person_id == by_id.id
    assert registration("1800169000003").person_id is None
    db.session.refresh(by_nir)
    assert by_nir.france_travail_id == "1234567A001"


def test_a_long_radiation_of_an_sdd_person_is_flagged_for_review(tmp_path):
    person = PersonFactory(nir="1800169000001", birth_date=D(1980, 1, 15), bound_by_duties=True)
    data = csv(
        HEADER_MOTIF, line("1800169000001", "1234567A001", "10/08/2026", "41", motif="ABSENCE")
    )
    run_import(tmp_path, data, source=FT, kind="radiations", name="radiations.csv")
    assert review_long_radiations(today=D(2026, 10, 9)) == 0
    assert review_long_radiations(today=D(2026, 10, 10)) == 1
    assert review_long_radiations(today=D(2026, 10, 11)) == 1  # idempotent: same review
    reviews = db.session.scalars(
        select(Alert).where(Alert.person_id == person.id, Alert.kind == AlertKind.ASSIGNMENT_REVIEW)
    ).all()
    assert [(a.due_on, a.details) for a in reviews] == [
        (D(2026, 10, 10), {"reason": "ft_radiation_no_reregistration"})
    ]


def test_the_cli_takes_the_kind_from_the_option(app, tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(csv(HEADER, line("1800169000001", "1234567A001", "01/10/2026", "1")))
    runner = app.test_cli_runner()
    missing = runner.invoke(args=["spie", "import", "france-travail", str(path)])
    assert missing.exit_code != 0
    assert "--kind" in missing.output
    result = runner.invoke(
        args=["spie", "import", "france-travail", "--kind", "stock", str(path), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["kind"], report["status"], report["counts"]["created"]) == ("stock", "done", 1)
