"""Sending orientation decisions to France Travail, against the local fake over real HTTP:
500, 429, S002, S003, R001, timeouts — no orientation lost, none sent twice."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from spie.common.nir import nir_with_key
from spie.db import db
from spie.integrations import ft_sync, wiring
from spie.integrations.ft_sync import sync_decision, sync_pending
from spie.integrations.models import FtOrientationSync, FtSyncState
from spie.orientation.decisions import DECISION_COMMITTED_HOOKS
from spie.orientation.models import FtSyncStatus, OrientationDecision, Parcours
from spie.persons.models import Person
from tests.factories import PersonFactory, StructureFactory
from tests.orientation.factories import open_case_for, seed_orientation

from .ft_fake_server import ORIENTATION, READ_ORIENTATION, SEARCH, FakeFranceTravail

D = dt.date
BIRTH = D(1980, 1, 15)
SETTINGS = (
    "SPIE_FT_AUTH_URL",
    "SPIE_FT_API_URL",
    "SPIE_FT_CLIENT_ID",
    "SPIE_FT_CLIENT_SECRET",
    "SPIE_FT_TIMEOUT",
    "SPIE_FT_RETRY_BASE_SECONDS",
)


class ReflectingFranceTravail(FakeFranceTravail):
    """The fake, whose lectureOrientation also shows the orientations it accepted (as France
    Travail does once it has recorded ours)."""

    def _do_orientation(
        self, method: str, query: str, headers: Any, body: bytes
    ) -> tuple[int, Any]:
        status, payload = super()._do_orientation(method, query, headers, body)
        if status == 201:
            data = json.loads(body)
            self.set_orientation(
                headers["ft-jeton-usager"],
                {
                    "parcours": data["parcours"],
                    "statut": "ORIENTE",
                    "date_entree_parcours": dt.date.today().isoformat(),  # noqa: DTZ011
                },
            )
        return status, payload


@pytest.fixture
def ft(app) -> Iterator[ReflectingFranceTravail]:
    seed_orientation()
    with ReflectingFranceTravail() as server:
        app.config.update(
            SPIE_FT_AUTH_URL=server.auth_base_url,
            SPIE_FT_API_URL=server.api_base_url,
            SPIE_FT_CLIENT_ID=server.client_id,
            SPIE_FT_CLIENT_SECRET=server.client_secret,
            SPIE_FT_TIMEOUT="0.5",
            SPIE_FT_RETRY_BASE_SECONDS="0.01",
        )
        try:
            yield server
        finally:
            for name in SETTINGS:
                app.config.pop(name, None)
            for client in ft_sync._clients.values():
                client.close()  # type: ignore[attr-defined]
            ft_sync._clients.clear()


_numbers = iter(range(1, 10_000))


def decision_for(
    ft: FakeFranceTravail | None = None, parcours: Parcours = Parcours.EMPLOI, *, known: bool = True
) -> OrientationDecision:
    nir = f"1800169{next(_numbers):06d}"
    person = PersonFactory(nir=nir, birth_date=BIRTH)
    if ft is not None and known:
        ft.add_user(BIRTH, nir_with_key(nir))
    case = open_case_for(person)
    decision = OrientationDecision(
        case_id=case.id,
        person_id=person.id,
        rank=1,
        decided_on=D(2025, 3, 20),
        parcours=parcours,
        structure_id=StructureFactory().id,
        follows_proposal=True,
        ft_sync_status=FtSyncStatus.PENDING,
    )
    db.session.add(decision)
    db.session.flush()
    return decision


def status_of(decision: OrientationDecision) -> tuple[FtSyncStatus, FtSyncState | None]:
    db.session.refresh(decision)
    marker = db.session.scalar(
        select(FtOrientationSync).where(FtOrientationSync.decision_id == decision.id)
    )
    return decision.ft_sync_status, marker.state if marker is not None else None


def test_a_committed_decision_is_sent_once_by_the_registered_hook(ft):
    assert wiring._send_decision in DECISION_COMMITTED_HOOKS
    decision = decision_for(ft, Parcours.SOCIO_PROFESSIONNEL)
    wiring._send_decision(decision.id)  # what decide() runs after its commit
    assert status_of(decision) == (FtSyncStatus.SENT, FtSyncState.SENT)
    assert [(o.parcours, o.organisme) for o in ft.orientations] == [("PSO", "CD")]
    assert ft.orientations[0].headers["pa-identifiant-agent"] == "BATCH"
    # Again (a duplicate job, a retry after success): nothing more is sent.
    wiring._send_decision(decision.id)
    assert sync_decision(decision.id, ft_sync.ft_client()) == "sent"
    assert len(ft.orientations) == 1
    # France Travail's own orientation was read and kept (codes only).
    marker = db.session.scalar(
        select(FtOrientationSync).where(FtOrientationSync.decision_id == decision.id)
    )
    assert marker is not None
    assert marker.ft_read_at is not None


def test_unconfigured_decisions_stay_pending(app):
    seed_orientation()
    decision = decision_for()
    wiring._send_decision(decision.id)
    assert status_of(decision) == (FtSyncStatus.PENDING, None)
    result = app.test_cli_runner().invoke(args=["spie", "import", "ft-sync"])
    assert result.exit_code != 0
    assert "configuré" in result.output


def test_a_500_on_the_send_is_retried_without_sending_twice(ft):
    decision = decision_for(ft)
    ft.fail_next(ORIENTATION, 500)
    report = sync_pending()
    assert report["counts"]["sent"] == 0
    assert report["counts"]["retry_later"] == 1
    # The 500 may have been applied: the next run reads France Travail first.
    assert status_of(decision) == (FtSyncStatus.PENDING, FtSyncState.SENDING)
    report = sync_pending()
    assert report["counts"]["sent"] == 1
    assert len(ft.orientations) == 1
    assert len(ft.requests_to(ORIENTATION)) == 2


def test_a_500_or_429_on_the_search_is_retried_with_backoff(ft):
    decision = decision_for(ft)
    ft.fail_next(SEARCH, 500)
    ft.fail_next(SEARCH, 429, retry_after=0)
    report = sync_pending()
    assert report["counts"]["sent"] == 1
    assert status_of(decision) == (FtSyncStatus.SENT, FtSyncState.SENT)
    assert len(ft.requests_to(SEARCH)) == 3
    assert len(ft.orientations) == 1


def test_s002_means_not_found(ft):
    decision = decision_for(ft, known=False)
    assert sync_pending()["counts"]["not_found"] == 1
    assert status_of(decision) == (FtSyncStatus.NOT_FOUND, FtSyncState.NOT_FOUND)
    assert ft.requests_to(ORIENTATION) == []


def test_s003_means_not_found_and_is_flagged(ft):
    decision = decision_for(ft, known=False)
    person = db.session.get(Person, decision.person_id)
    assert person is not None
    assert person.nir is not None
    ft.add_duplicate(BIRTH, nir_with_key(person.nir))
    report = sync_pending()
    assert (report["counts"]["not_found"], report["counts"]["several"]) == (1, 1)
    assert status_of(decision) == (FtSyncStatus.NOT_FOUND, FtSyncState.SEVERAL)
    assert ft.requests_to(ORIENTATION) == []


def test_r001_is_a_permanent_failure_never_retried(ft):
    decision = decision_for(ft, known=False)
    person = db.session.get(Person, decision.person_id)
    assert person is not None
    assert person.nir is not None
    ft.forbid_nir(nir_with_key(person.nir))
    report = sync_pending()
    assert report["counts"]["failed"] == 1
    assert status_of(decision) == (FtSyncStatus.FAILED, FtSyncState.FAILED)
    assert len(ft.requests_to(SEARCH)) == 1


def _wait_for(predicate: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_send_that_timed_out_but_was_applied_is_not_sent_again(ft):
    decision = decision_for(ft)
    ft.hang_next(ORIENTATION, 1.0, process_after=True)  # answered after the 0.5 s timeout
    first = sync_pending()
    assert first["decisions"][0]["code"] == "timeout"
    assert status_of(decision) == (FtSyncStatus.PENDING, FtSyncState.SENDING)
    _wait_for(lambda: len(ft.orientations) == 1)  # France Travail processed it late
    second = sync_pending()
    assert second["counts"]["sent"] == 1
    assert len(ft.orientations) == 1  # read first, not sent twice
    assert len(ft.requests_to(READ_ORIENTATION)) == 2


def test_a_send_that_timed_out_unprocessed_is_sent_once_later(ft):
    decision = decision_for(ft)
    ft.hang_next(ORIENTATION, 1.0, process_after=False)
    assert sync_pending()["counts"]["retry_later"] == 1
    assert sync_pending()["counts"]["sent"] == 1
    assert status_of(decision) == (FtSyncStatus.SENT, FtSyncState.SENT)
    assert len(ft.orientations) == 1


def test_the_cli_sends_pending_decisions_with_a_report(app, ft):
    sent = decision_for(ft)
    unknown = decision_for(ft, known=False)
    result = app.test_cli_runner().invoke(args=["spie", "import", "ft-sync", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["counts"]["pending"] == 2
    assert (report["counts"]["sent"], report["counts"]["not_found"]) == (1, 1)
    assert {d["decision_id"]: d["outcome"] for d in report["decisions"]} == {
        sent.id: "sent",
        unknown.id: "not_found",
    }
    # Nothing is logged or stored that identifies the person.
    markers = db.session.scalars(select(FtOrientationSync)).all()
    for marker in markers:
        assert marker.last_error_code in (None, "S002")


def test_a_person_without_a_verified_nir_is_not_found_without_calling(ft):
    decision = decision_for(ft)
    person = db.session.get(Person, decision.person_id)
    assert person is not None
    person.nir_verified = False
    db.session.flush()
    assert sync_decision(decision.id, ft_sync.ft_client()) == "not_found"
    assert ft.requests_to(SEARCH) == []
