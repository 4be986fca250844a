"""CAF bénéficiaires import: samples, clocks over a month, idempotency, bad input, matching."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from spie.audit.models import AuditAction, AuditEvent
from spie.clocks.services import seed_delay_policies
from spie.db import commit, db
from spie.integrations.models import (
    CafHouseholdEvent,
    ImportReject,
    ImportRun,
    ImportStatus,
    ProbableMatch,
    ProbableMatchStatus,
    RejectStatus,
)
from spie.integrations.runs import execute_run
from spie.integrations.services import (
    confirm_match,
    correct_reject,
    reject_match,
    replay_open_rejects,
)
from spie.orientation.models import CaseStatus, ClockStartBasis, OrientationCase
from spie.parcours.models import Alert, AlertKind
from spie.persons.models import CafRole, Household, Person, Public, SddPeriod
from tests.factories import AgentFactory, AssignmentFactory, PersonFactory, territory
from tests.integrations.caf_builders import (
    Address,
    flow_bytes,
    person,
)
from tests.integrations.caf_builders import (
    Household as CafHousehold,
)
from tests.integrations.import_helpers import (
    DAILY_B,
    DAILY_D,
    MONTHLY,
    codes,
    count,
    nir13,
    run_import,
    snapshot,
    start,
    write,
)

D = dt.date
requires_samples = pytest.mark.skipif(not MONTHLY.is_file(), reason="shared samples not found")


@pytest.fixture(autouse=True)
def _policies(app):
    seed_delay_policies()


def person_by_nir(nir: str) -> Person:
    found = db.session.scalar(select(Person).where(Person.nir == nir))
    assert found is not None, nir
    return found


def case_of(nir: str) -> OrientationCase:
    found = db.session.scalars(
        select(OrientationCase).where(OrientationCase.person_id == person_by_nir(nir).id)
    ).all()
    assert len(found) == 1, (nir, found)
    db.session.refresh(found[0])
    return found[0]


def hh(n: int, *persons: person, **kw: object) -> CafHousehold:
    """Household ``n`` (distinct matricule and NUMDEMRSA)."""
    return replace(
        CafHousehold(),
        matricule=f"{n:07d}00000000",
        numdemrsa=f"{n:011d}",
        persons=list(persons),
        **kw,  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------- the samples


@requires_samples
def test_shared_samples_give_the_persons_sdd_histories_and_cases(tmp_path):
    monthly = run_import(tmp_path, MONTHLY)
    daily_b = run_import(tmp_path, DAILY_B)
    daily_d = run_import(tmp_path, DAILY_D)

    assert [r["status"] for r in (monthly, daily_b, daily_d)] == ["done"] * 3
    assert monthly["flow"]["initial_stock"] is True
    assert daily_b["flow"]["initial_stock"] is False
    assert [r["counts"]["created"] for r in (monthly, daily_b, daily_d)] == [12, 5, 6]
    assert [r["counts"]["rejected"] for r in (monthly, daily_b, daily_d)] == [0, 0, 0]
    assert count(Household) == 23
    assert count(Person) == 70

    # The first monthly stock: people already SDD start at DTDEMRSA, flagged estimated.
    haddad = case_of("2671042299060")
    assert (haddad.clock_started_on, haddad.start_basis, haddad.clock_estimated) == (
        D(2025, 12, 27),
        ClockStartBasis.RSA_REQUEST,
        True,
    )
    assert haddad.legal_deadline == D(2026, 2, 7)  # 6 weeks (2025 rule)
    assert haddad.status == CaseStatus.A_ORIENTER
    # A daily vrsb0801 flow: the DTREF of the first flow showing SDD.
    richard = case_of("2000801260215")
    assert (richard.clock_started_on, richard.start_basis, richard.clock_estimated) == (
        D(2026, 11, 16),
        ClockStartBasis.FLOW_ENTRY,
        False,
    )
    # vrsd0301 gives DDSOUDRODEV: the clock starts there (2024: the two-month rule).
    girard = case_of("2000813310083")
    assert (girard.clock_started_on, girard.start_basis, girard.legal_deadline) == (
        D(2024, 11, 3),
        ClockStartBasis.DDSOUDRODEV,
        D(2025, 1, 3),
    )
    assert count(OrientationCase) == 25  # 12 + 6 + 7 SDD people

    # Not SDD: children, a closed right (mutation), a pending demand.
    for nir in ("1141099069297", "2760969226796", "2070699283195"):
        assert person_by_nir(nir).bound_by_duties is False
        assert not db.session.scalars(
            select(OrientationCase).where(OrientationCase.person_id == person_by_nir(nir).id)
        ).all()
    # A suspended right (ETATDOSRSA 3) keeps duties.
    assert person_by_nir("2990513332130").bound_by_duties is True

    # SDD history: one open period per person, the state of the first flow showing it.
    haddad_person = person_by_nir("2671042299060")
    periods = db.session.scalars(
        select(SddPeriod).where(SddPeriod.person_id == haddad_person.id)
    ).all()
    assert [(p.rsa_state, p.bound_by_duties, p.started_on, p.ended_on) for p in periods] == [
        ("2", True, D(2026, 10, 31), None)
    ]
    assert count(SddPeriod) == 70
    # Identity, household role, address and territory, France Travail id.
    assert haddad_person.caf_role == CafRole.DEM
    assert haddad_person.nir_verified is True
    assert haddad_person.nir_key is not None
    assert haddad_person.commune_insee == "69387"
    assert haddad_person.territory_id == territory("LYON").id
    assert haddad_person.public == Public.BRSA
    assert person_by_nir("1141099069297").france_travail_id == "9071203D"
    household = db.session.get(Household, haddad_person.household_id)
    assert household is not None
    assert (household.caf_matricule, household.rsa_state, household.last_flow_on) == (
        "543301300000000",
        "2",
        D(2026, 10, 31),
    )


@requires_samples
def test_creations_are_audited_per_batch_and_updates_per_person(tmp_path):
    report = run_import(tmp_path, MONTHLY)
    created = db.session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == AuditAction.CREATE,
            AuditEvent.actor_label == f"import:caf:{report['run_id']}",
        )
    ).all()
    persons = [e for e in created if e.resource_type == "person"]
    cases = [e for e in created if e.resource_type == "orientation_case"]
    person_ids = set(db.session.scalars(select(Person.id)))
    assert len(persons) == 1  # one batch
    assert persons[0].person_id is None
    assert set(persons[0].details["ids"]) == person_ids
    assert persons[0].details["count"] == len(person_ids)
    assert persons[0].resource_id == f"{min(person_ids)}..{max(person_ids)}"
    case_rows = db.session.execute(select(OrientationCase.id, OrientationCase.person_id)).all()
    assert sorted(cases[0].details["ids"]) == sorted(row.id for row in case_rows)
    assert sorted(cases[0].details["person_ids"]) == sorted(row.person_id for row in case_rows)

    # A later flow changing a person: one row for that person, naming the fields only.
    text = MONTHLY.read_bytes().replace(b"<DTREF>2026-10-31<", b"<DTREF>2026-11-30<")
    assert text != MONTHLY.read_bytes()
    newer = tmp_path / "newer.xml"
    newer.write_bytes(text.replace(b"<NOM>HADDAD<", b"<NOM>HADDAD-MARTIN<", 1))
    second = run_import(tmp_path, newer)
    (renamed,) = db.session.scalars(select(Person).where(Person.last_name == "HADDAD-MARTIN"))
    updates = db.session.scalars(
        select(AuditEvent).where(
            AuditEvent.actor_label == f"import:caf:{second['run_id']}",
            AuditEvent.resource_type == "person",
        )
    ).all()
    assert [(e.action, e.person_id, e.details["fields"]) for e in updates] == [
        (AuditAction.UPDATE, renamed.id, ["last_name", "search_name"])
    ]


@requires_samples
def test_the_cli_prints_the_run_report(app, tmp_path):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["spie", "import", "caf", str(MONTHLY), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "done"
    assert report["counts"] == {
        "read": 12,
        "created": 12,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
        "warnings": 0,
    }
    again = runner.invoke(args=["spie", "import", "caf", str(MONTHLY), "--json"])
    assert again.exit_code == 0
    assert json.loads(again.stdout)["status"] == "duplicate"


# --------------------------------------------------------------------------- a month of flows


def test_monthly_stock_then_a_month_of_daily_files_gives_the_right_clock_starts(tmp_path):
    a, b, c = nir13(1), nir13(2), nir13(3)
    d, e, f = nir13(4), nir13(5), nir13(6)

    def alpha(sdd: bool = True) -> person:
        return person(nom="ALPHA", prenom="ANNE", nir=a, sdd=sdd)

    stock = [
        hh(1, alpha(), dtdemrsa="2026-09-01"),
        hh(2, person(nom="BRAVO", nir=b, sdd=False)),
        hh(3, person(nom="CHARLIE", nir=c)),
    ]
    assert (
        run_import(tmp_path, flow_bytes(stock, typeflux="M", dtref="2026-10-31"))["status"]
        == "done"
    )
    days = [
        ("2026-11-05", "vrsb0801", [hh(2, person(nom="BRAVO", nir=b, sdd=True))]),
        (
            "2026-11-10",
            "vrsd0301",
            [hh(4, person(nom="DELTA", nir=d, sdd=True, sdd_start="2026-11-03"))],
        ),
        (
            "2026-11-12",
            "vrsd0301",
            [hh(5, person(nom="ECHO", nir=e, sdd=False, entering_sdd=True))],
        ),
        (
            "2026-11-15",
            "vrsb0801",
            [hh(6, person(nom="FOXTROT", nir=f, sdd=None), events=[("2026-11-14", ["ENTDED"])])],
        ),
        ("2026-11-20", "vrsb0801", [hh(1, alpha(sdd=False), dtdemrsa="2026-09-01")]),
        ("2026-11-25", "vrsb0801", [hh(1, alpha(sdd=True), dtdemrsa="2026-09-01")]),
        (
            "2026-11-28",
            "vrsb0801",
            [
                hh(
                    3,
                    person(nom="CHARLIE", nir=c),
                    etat="5",
                    moticlorsa="PCG",
                    dtclorsa="2026-11-27",
                )
            ],
        ),
    ]
    for dtref, schema, households in days:
        report = run_import(tmp_path, flow_bytes(households, dtref=dtref, schema=schema))
        assert report["status"] == "done", report
        assert report["counts"]["rejected"] == 0, report

    case_a = case_of(a)
    assert (case_a.clock_started_on, case_a.start_basis, case_a.clock_estimated) == (
        D(2026, 9, 1),
        ClockStartBasis.RSA_REQUEST,
        True,
    )
    assert case_a.paused_since is None
    assert case_a.paused_days == 5
    assert [(p.paused_on, p.resumed_on, p.reason) for p in case_a.pauses] == [
        (D(2026, 11, 20), D(2026, 11, 25), "left_sdd")
    ]
    assert (case_of(b).clock_started_on, case_of(b).start_basis) == (
        D(2026, 11, 5),
        ClockStartBasis.FLOW_ENTRY,
    )
    assert (case_of(d).clock_started_on, case_of(d).start_basis) == (
        D(2026, 11, 3),
        ClockStartBasis.DDSOUDRODEV,
    )
    assert case_of(e).clock_started_on == D(2026, 11, 12)
    assert case_of(f).clock_started_on == D(2026, 11, 15)
    case_c = case_of(c)
    assert (case_c.paused_since, case_c.legal_deadline) == (D(2026, 11, 27), None)
    assert [p.reason for p in case_c.pauses] == ["right_closed"]
    assert person_by_nir(c).bound_by_duties is False
    assert count(OrientationCase) == 6
    history_a = db.session.scalars(
        select(SddPeriod)
        .where(SddPeriod.person_id == person_by_nir(a).id)
        .order_by(SddPeriod.started_on)
    ).all()
    assert [(p.bound_by_duties, p.started_on, p.ended_on) for p in history_a] == [
        (True, D(2026, 10, 31), D(2026, 11, 20)),
        (False, D(2026, 11, 20), D(2026, 11, 25)),
        (True, D(2026, 11, 25), None),
    ]
    events = db.session.scalars(select(CafHouseholdEvent)).all()
    assert [(e.liquidated_on, e.motifs) for e in events] == [(D(2026, 11, 14), "ENTDED")]


# --------------------------------------------------------------------------- idempotency


def _small_flow(dtref: str = "2026-11-16", **kw: object) -> bytes:
    return flow_bytes(
        [
            hh(1, person(nom="ALPHA", nir=nir13(1)), **kw),  # type: ignore[arg-type]
            hh(
                2,
                person(nom="BRAVO", nir=nir13(2)),
                person(nom="BRAVO", prenom="LÉO", role="ENF", sdd=False, nir=nir13(3)),
            ),
            hh(3, person(nom="CHARLIE", nir=nir13(4), sdd=False)),
        ],
        dtref=dtref,
    )


def test_a_followed_person_leaving_sdd_pauses_the_pathway_clocks_until_they_return(tmp_path):
    from spie.orientation.models import Parcours
    from spie.parcours.models import PathwayClock
    from tests.parcours.factories import decide, seed_rules, structure

    seed_rules()
    a = nir13(7)

    def flow(dtref: str, **kw: object) -> bytes:
        return flow_bytes([hh(7, person(nom="GOLF", nir=a), **kw)], dtref=dtref)

    assert run_import(tmp_path, flow("2026-10-01"))["status"] == "done"
    followed = person_by_nir(a)
    decide(
        followed,
        structure("LYON"),
        parcours=Parcours.EMPLOI,
        decided_on=D(2026, 10, 10),
        notified_on=D(2026, 10, 10),
    )

    def clocks() -> dict[str, tuple[object, ...]]:
        rows = db.session.scalars(
            select(PathwayClock).where(PathwayClock.person_id == followed.id)
        ).all()
        for row in rows:
            db.session.refresh(row)
        return {c.kind.value: (c.due_on, c.stopped_on, c.stop_reason) for c in rows}

    before = clocks()
    assert before["pathway_entry"][1:] == (None, None)
    closed = run_import(
        tmp_path, flow("2026-10-20", etat="5", moticlorsa="PCG", dtclorsa="2026-10-15")
    )
    assert closed["details"]["caf"]["pathway_clocks_paused"] == len(before)
    paused = clocks()
    assert paused["pathway_entry"][1:] == (D(2026, 10, 15), "paused:right_closed")
    back = run_import(tmp_path, flow("2026-11-04"))
    assert back["details"]["caf"]["pathway_clocks_resumed"] == len(before)
    resumed = clocks()
    assert resumed["pathway_entry"] == (
        before["pathway_entry"][0] + dt.timedelta(days=20),  # 15 October → 4 November
        None,
        None,
    )


def test_the_same_file_twice_changes_nothing(tmp_path):
    data = _small_flow()
    first = run_import(tmp_path, data, name="a.xml")
    before = snapshot()
    second = run_import(tmp_path, data, name="b.xml")
    assert first["status"] == "done"
    assert first["counts"]["created"] == 3
    assert second["status"] == "duplicate"
    assert second["duplicate_of"] == first["run_id"]
    assert snapshot() == before
    # Even forced (the file is read again), every household is unchanged: skipped on its
    # fingerprint before parsing, nothing written.
    forced = run_import(tmp_path, data, name="c.xml", force=True)
    assert forced["status"] == "done"
    assert forced["counts"]["unchanged"] == 3
    assert forced["counts"]["read"] == 3
    assert forced["counts"]["created"] == forced["counts"]["updated"] == 0
    assert snapshot() == before


def test_forced_reimport_without_prefilter_is_unchanged_too(tmp_path):
    # A comment inside a household: the byte-level filter steps aside, the parser reads all.
    data = _small_flow().replace(b"<Personne>", b"<!-- note --><Personne>", 1)
    assert run_import(tmp_path, data)["counts"]["created"] == 3
    before = snapshot()
    forced = run_import(tmp_path, data, force=True, name="again.xml")
    assert forced["counts"]["unchanged"] == 3
    assert snapshot() == before


def test_an_older_file_after_a_newer_one_changes_nothing(tmp_path):
    newer = _small_flow("2026-11-16")
    older = flow_bytes(
        [
            hh(
                1,
                person(nom="ALPHA", nir=nir13(1), sdd=False),
                addresses=[Address(numcom="69266", codepos="69100")],
            ),
            hh(9, person(nom="NEW", nir=nir13(9))),
        ],
        dtref="2026-11-10",
    )
    run_import(tmp_path, newer)
    alpha = person_by_nir(nir13(1))
    before = (alpha.bound_by_duties, alpha.commune_insee, alpha.version)
    report = run_import(tmp_path, older)
    assert report["counts"]["unchanged"] == 1  # household 1: the newer data wins
    assert report["counts"]["created"] == 1  # household 9 is new: nothing newer exists
    db.session.refresh(alpha)
    assert (alpha.bound_by_duties, alpha.commune_insee, alpha.version) == before
    assert case_of(nir13(1)).paused_since is None


def test_an_unchanged_household_in_a_newer_file_still_protects_it_from_older_ones(tmp_path):
    run_import(tmp_path, _small_flow("2026-11-16"))
    # Same bytes for every household, newer date: skipped, but the date is remembered.
    same_later = _small_flow("2026-11-20")
    assert run_import(tmp_path, same_later)["counts"]["unchanged"] == 3
    household = db.session.scalar(
        select(Household).where(Household.caf_matricule == f"{1:07d}00000000")
    )
    assert household is not None
    assert household.last_flow_on == D(2026, 11, 20)
    in_between = flow_bytes(
        [hh(1, person(nom="ALPHA", nir=nir13(1), sdd=False))], dtref="2026-11-18"
    )
    assert run_import(tmp_path, in_between)["counts"]["unchanged"] == 1
    assert person_by_nir(nir13(1)).bound_by_duties is True


# --------------------------------------------------------------------------- resume


@pytest.mark.parametrize("prefilter", [True, False])
def test_a_run_resumes_after_its_last_committed_position(tmp_path, prefilter):
    households = [hh(n, person(nom=f"P{n}", nir=nir13(n))) for n in range(1, 8)]
    path = write(tmp_path, flow_bytes(households))
    run = start(path, batch_size=2)
    # An earlier attempt committed households 1-3 and died (their rows are absent here,
    # which shows that the resumed run does not read them again).
    run.last_committed_position = 3
    run.read_count = 3
    run.status = ImportStatus.FAILED
    run.flow_dtref = D(2026, 11, 16)
    run.flow_type = "I"
    run.flow_schema = "vrsb0801"
    if not prefilter:
        run.details = {"no_scan": True}
    commit()
    report = execute_run(run.id)
    assert report["status"] == "done"
    assert report["counts"]["read"] == 7
    assert report["counts"]["created"] == 4
    assert sorted(p.last_name for p in db.session.scalars(select(Person))) == [
        "P4",
        "P5",
        "P6",
        "P7",
    ]


def test_batches_checkpoint_their_position(tmp_path):
    households = [hh(n, person(nom=f"P{n}", nir=nir13(n))) for n in range(1, 6)]
    report = run_import(tmp_path, flow_bytes(households), batch_size=2)
    assert report["last_committed_position"] == 5
    assert report["counts"]["created"] == 5


# --------------------------------------------------------------------------- bad input


def test_truncated_xml_imports_every_complete_household_and_rejects_the_rest(tmp_path):
    households = [hh(n, person(nom=f"P{n}", nir=nir13(n))) for n in range(1, 4)]
    data = flow_bytes(households)
    cut = data.index(b"<InfosFoyerRSA>", data.index(b"<InfosFoyerRSA>") + 1)
    cut = data.index(b"<InfosFoyerRSA>", cut + 1) + 200  # inside the third household
    report = run_import(tmp_path, data[:cut])
    assert report["status"] == "partial"
    assert report["counts"]["created"] == 2
    assert codes(report, "error") == [(3, "xml_syntax")]
    assert "line" in report["rejects"][0]["message"]
    assert count(Person) == 2


def test_utf8_bytes_declared_iso_8859_1_are_rejected_per_household(tmp_path):
    households = [
        hh(1, person(nom="ALPHA", nir=nir13(1))),
        hh(2, person(nom="HÉLÈNE", nir=nir13(2))),
        hh(3, person(nom="CHARLIE", nir=nir13(3))),
    ]
    report = run_import(tmp_path, flow_bytes(households, byte_encoding="utf-8"))
    assert report["status"] == "done"
    assert codes(report, "error") == [(2, "bad_encoding")]
    assert report["counts"]["created"] == 2


@pytest.mark.parametrize("declared", ["UTF-8", None])
def test_latin1_bytes_declared_utf8_or_undeclared_stop_at_the_first_bad_byte(tmp_path, declared):
    households = [
        hh(1, person(nom="ALPHA", nir=nir13(1))),
        hh(2, person(nom="HÉLÈNE", nir=nir13(2))),
        hh(3, person(nom="CHARLIE", nir=nir13(3))),
    ]
    report = run_import(tmp_path, flow_bytes(households, encoding=declared))
    assert report["status"] == "partial"
    assert codes(report, "error") == [(2, "encoding")]
    assert report["counts"]["created"] == 1
    assert "ISO-8859-1" in report["rejects"][0]["message"]


def test_unknown_codes_and_missing_tags_are_precise_rejects(tmp_path):
    households = [
        hh(1, person(nom="ALPHA", nir=nir13(1)), etat="9"),
        hh(2, person(nom=None, nir=nir13(2))),
        hh(3, person(nom="CHARLIE", nir=nir13(3))),
    ]
    report = run_import(tmp_path, flow_bytes(households))
    assert report["status"] == "done"
    assert codes(report, "error") == [(1, "unknown_code"), (2, "missing_tag")]
    messages = [r["message"] for r in report["rejects"]]
    assert "ETATDOSRSA" in messages[0]
    assert "NOM" in messages[1]
    assert report["rejects"][0]["keys"] == {
        "matricule": f"{1:07d}00000000",
        "numdemrsa": f"{1:011d}",
    }
    assert count(Person) == 1
    reject = db.session.scalar(select(ImportReject).where(ImportReject.position == 1))
    assert reject is not None
    assert "<ETATDOSRSA>9</ETATDOSRSA>" in (reject.raw_fragment or "")


def test_a_nir_with_a_bad_key_is_kept_unverified_and_never_matched_alone(tmp_path):
    good = nir13(1)
    bad_key = (97 - int(good) % 97) % 97 + 1  # another key than the right one
    existing = PersonFactory(nir=good, birth_date=D(1980, 1, 15), last_name="AUTRE", first_name="X")
    report = run_import(
        tmp_path,
        flow_bytes([hh(1, person(nom="DUPONT", nir=f"{good}{bad_key:02d}", dtnai="1980-01-15"))]),
    )
    assert report["status"] == "done"
    assert codes(report, "warning") == [(1, "bad_nir_key")]
    created = db.session.scalars(select(Person).where(Person.id != existing.id)).all()
    assert len(created) == 1
    assert (created[0].nir, created[0].nir_verified) == (good, False)


@pytest.mark.parametrize("announced", [5, None])
def test_a_transmission_count_that_does_not_match_flags_the_run(tmp_path, announced):
    households = [hh(n, person(nom=f"P{n}", nir=nir13(n))) for n in range(1, 4)]
    report = run_import(tmp_path, flow_bytes(households, count=announced))
    assert report["status"] == "done"
    assert report["counts"]["created"] == 3
    assert report["flow"]["count_mismatch"] is True
    assert codes(report, "warning") == [(None, "count_mismatch")]


UNSAFE = {
    "doctype": "<!DOCTYPE Racine [<!ELEMENT Racine ANY>]>\n",
    "billion_laughs": (
        '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>\n'
    ),
    "xxe": '<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n',
}


@pytest.mark.parametrize("payload", sorted(UNSAFE))
def test_unsafe_xml_is_refused_whole(tmp_path, payload):
    households = [hh(n, person(nom=f"P{n}", nir=nir13(n))) for n in range(1, 3)]
    report = run_import(tmp_path, flow_bytes(households, prolog=UNSAFE[payload]))
    assert report["status"] == "refused"
    assert report["counts"]["created"] == 0
    assert count(Person) == 0
    assert count(Household) == 0
    assert report["rejects"][0]["code"].startswith("unsafe_")


def test_a_rejected_household_is_replayed_after_a_fix(tmp_path):
    households = [
        hh(1, person(nom="ALPHA", nir=nir13(1)), sitfam="XXX"),
        hh(2, person(nom="BRAVO", nir=nir13(2))),
    ]
    report = run_import(tmp_path, flow_bytes(households))
    assert codes(report, "error") == [(1, "unknown_code")]
    reject = db.session.get(ImportReject, report["rejects"][0]["id"])
    assert reject is not None
    # Replaying as is rejects it again; after a correction it imports, with the flow's date.
    assert replay_open_rejects(report["run_id"], None)["replayed"] == 0
    correct_reject(reject, (reject.raw_fragment or "").replace("XXX", "CEL"), agent_id=0)
    outcome = replay_open_rejects(report["run_id"], None)
    assert outcome["replayed"] == 1
    db.session.refresh(reject)
    assert reject.status == RejectStatus.REPLAYED
    assert reject.replay_run_id == outcome["replay_run_id"]
    alpha = person_by_nir(nir13(1))
    assert case_of(nir13(1)).clock_started_on == D(2026, 11, 16)
    assert alpha.household is not None
    assert alpha.household.family_situation == "CEL"


# --------------------------------------------------------------------------- matching


def test_a_known_person_is_matched_on_nir_and_birth_date(tmp_path):
    known = PersonFactory(
        nir=nir13(1), birth_date=D(1980, 1, 15), public=Public.RSJ, bound_by_duties=False
    )
    run_import(
        tmp_path, flow_bytes([hh(1, person(nom="DUPONT", nir=nir13(1), dtnai="1980-01-15"))])
    )
    assert count(Person) == 1
    db.session.refresh(known)
    assert (known.public, known.caf_role, known.bound_by_duties) == (Public.BRSA, CafRole.DEM, True)


def test_a_household_member_without_nir_is_matched_on_matricule_and_role(tmp_path):
    run_import(tmp_path, flow_bytes([hh(1, person(nom="DUPONT", nir=None))], dtref="2026-11-10"))
    run_import(
        tmp_path,
        flow_bytes([hh(1, person(nom="DUPONT", prenom="JEANNOT", nir=None))], dtref="2026-11-16"),
    )
    people = db.session.scalars(select(Person)).all()
    assert [(p.first_name, p.caf_role) for p in people] == [("JEANNOT", CafRole.DEM)]


def _held(tmp_path: Path) -> tuple[Person, ProbableMatch]:
    candidate = PersonFactory(
        nir=None,
        nir_key=None,
        last_name="Dupré",
        first_name="Hélène",
        birth_date=D(1985, 4, 12),
        public=Public.RSJ,
        bound_by_duties=False,
    )
    report = run_import(
        tmp_path,
        flow_bytes(
            [hh(1, person(nom="DUPRE", prenom="HELENE", dtnai="1985-04-12", nir=None, sexe="2"))],
            typeflux="I",
        ),
    )
    assert report["counts"]["created"] == 1
    assert report["details"]["caf"]["probable_matches"] == 1
    match = db.session.scalar(select(ProbableMatch))
    assert match is not None
    assert match.status == ProbableMatchStatus.PENDING
    assert (match.candidate_person_id, match.reason) == (candidate.id, "no_nir")
    assert count(Person) == 1  # held, never merged silently
    return candidate, match


def test_a_name_and_birth_date_match_is_held_for_review_and_confirmed(tmp_path):
    candidate, match = _held(tmp_path)
    # Importing the same flow again does not duplicate the review.
    run_import(
        tmp_path,
        flow_bytes(
            [hh(1, person(nom="DUPRE", prenom="HELENE", dtnai="1985-04-12", nir=None, sexe="2"))],
            dtref="2026-11-17",
        ),
    )
    assert count(ProbableMatch) == 1
    person_ = confirm_match(match, agent_id=AgentFactory().id)
    assert person_.id == candidate.id
    assert (candidate.caf_role, candidate.public, candidate.bound_by_duties) == (
        CafRole.DEM,
        Public.BRSA,
        True,
    )
    assert case_of_person(candidate).clock_started_on == D(2026, 11, 16)
    assert match.status == ProbableMatchStatus.CONFIRMED


def test_a_rejected_probable_match_creates_another_person(tmp_path):
    candidate, match = _held(tmp_path)
    created = reject_match(match, agent_id=AgentFactory().id)
    assert created.id != candidate.id
    assert (created.last_name, created.caf_role, created.bound_by_duties) == (
        "DUPRE",
        CafRole.DEM,
        True,
    )
    assert case_of_person(created).clock_started_on == D(2026, 11, 16)
    assert candidate.household_id is None


def case_of_person(someone: Person) -> OrientationCase:
    found = db.session.scalar(
        select(OrientationCase).where(OrientationCase.person_id == someone.id)
    )
    assert found is not None
    return found


# --------------------------------------------------------------------------- domain effects


def test_moving_to_another_ctm_flags_the_referent_assignment_for_review(tmp_path):
    run_import(
        tmp_path, flow_bytes([hh(1, person(nom="DUPONT", nir=nir13(1)))], dtref="2026-11-10")
    )
    dupont = person_by_nir(nir13(1))
    AssignmentFactory(person=dupont, agent=AgentFactory())
    moved = flow_bytes(
        [
            hh(
                1,
                person(nom="DUPONT", nir=nir13(1)),
                addresses=[Address(numcom="69266", codepos="69100", nomcom="VILLEURBANNE")],
            )
        ],
        dtref="2026-11-16",
    )
    report = run_import(tmp_path, moved)
    assert report["details"]["caf"]["reviews_flagged"] == 1
    db.session.refresh(dupont)
    assert dupont.territory_id == territory("CTM-VILLEURBANNE").id
    alert = db.session.scalar(select(Alert).where(Alert.person_id == dupont.id))
    assert alert is not None
    assert (alert.kind, alert.details, alert.due_on) == (
        AlertKind.ASSIGNMENT_REVIEW,
        {"reason": "moved_to_other_ctm"},
        D(2026, 11, 16),
    )


def test_a_member_missing_from_the_new_flow_is_detached_and_leaves_sdd(tmp_path):
    dem, cjt = (
        person(nom="DUPONT", nir=nir13(1)),
        person(nom="DURAND", prenom="ANNE", role="CJT", nir=nir13(2, "2")),
    )
    run_import(tmp_path, flow_bytes([hh(1, dem, cjt)], dtref="2026-11-10"))
    report = run_import(tmp_path, flow_bytes([hh(1, dem)], dtref="2026-11-16"))
    assert report["details"]["caf"]["persons_detached"] == 1
    durand = person_by_nir(nir13(2, "2"))
    assert (durand.household_id, durand.caf_role, durand.bound_by_duties) == (None, None, False)
    assert case_of(nir13(2, "2")).paused_since == D(2026, 11, 16)


def test_a_transfer_away_pauses_the_clock(tmp_path):
    run_import(
        tmp_path, flow_bytes([hh(1, person(nom="DUPONT", nir=nir13(1)))], dtref="2026-11-10")
    )
    report = run_import(
        tmp_path,
        flow_bytes(
            [hh(1, person(nom="DUPONT", nir=nir13(1)), prenant=("CAF", "381", "2026-11-14"))],
            dtref="2026-11-16",
        ),
    )
    assert report["counts"]["updated"] == 1
    case = case_of(nir13(1))
    assert (case.paused_since, [p.reason for p in case.pauses]) == (D(2026, 11, 14), ["moved_away"])


def test_runs_are_listed_with_their_rejects(tmp_path):
    report = run_import(tmp_path, flow_bytes([hh(1, person(nom=None, nir=nir13(1)))]))
    run = db.session.get(ImportRun, report["run_id"])
    assert run is not None
    assert run.rejected_count == 1
    assert run.status == ImportStatus.DONE
