"""Admin API of the imports: upload, runs, rejects (replay), probable matches, authorization."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import replace

import pytest
from sqlalchemy import select

from spie.agents.models import Role
from spie.clocks.services import seed_delay_policies
from spie.db import db
from spie.integrations.models import ImportFile, ImportRun, ProbableMatch
from spie.persons.models import Person, Public
from tests.factories import AgentFactory, PersonFactory
from tests.helpers import api_as
from tests.integrations.caf_builders import Household, flow_bytes, person

URL = "/api/v1/imports"


@pytest.fixture(autouse=True)
def _policies(app):
    seed_delay_policies()


@pytest.fixture
def admin(client):
    return api_as(client, AgentFactory(roles=[Role.ADMIN]))


def hh(n: int, *persons: person, **kw: object) -> Household:
    return replace(
        Household(),
        matricule=f"{n:07d}00000000",
        numdemrsa=f"{n:011d}",
        persons=list(persons),
        **kw,  # type: ignore[arg-type]
    )


def upload(api, data: bytes, name: str, **form: str):
    return api.post(
        f"{URL}/uploads",
        data={**form, "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def flow(*households: Household, **kw: object) -> bytes:
    return flow_bytes(list(households), **kw)  # type: ignore[arg-type]


def test_an_admin_uploads_a_caf_flow_and_follows_its_run(admin):
    data = flow(hh(1, person(nom="ALPHA", nir="1800169000001")), hh(2, person(nom=None)))
    response = upload(admin, data, "RSABEI_vrsb0801_2026-11-16.xml", source="caf")
    assert response.status_code == 202, response.json
    run_id = response.json["id"]
    assert response.json["source"] == "caf"
    assert response.json["trigger"] == "upload"
    # The file lives in the database (no local disk between requests).
    stored = db.session.scalar(
        select(ImportFile).where(ImportFile.checksum == response.json["checksum"])
    )
    assert stored is not None
    assert stored.size_bytes == len(data)

    run = admin.get(f"{URL}/runs/{run_id}")
    assert run.status_code == 200
    assert run.json["status"] == "done"
    assert run.json["counts"] == {
        "read": 2,
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "rejected": 1,
        "warnings": 0,
    }
    listing = admin.get(f"{URL}/runs", query_string={"source": "caf"})
    assert [item["id"] for item in listing.json["items"]] == [run_id]

    rejects = admin.get(f"{URL}/runs/{run_id}/rejects")
    assert rejects.status_code == 200
    [reject] = rejects.json["items"]
    assert (reject["position"], reject["code"], reject["severity"]) == (2, "missing_tag", "error")
    assert "raw_fragment" not in reject
    detail = admin.get(f"{URL}/rejects/{reject['id']}")
    assert "<InfosFoyerRSA" in detail.json["raw_fragment"]

    again = upload(admin, data, "copie.xml", source="caf")
    assert again.status_code == 202
    assert admin.get(f"{URL}/runs/{again.json['id']}").json["status"] == "duplicate"


def test_a_reject_is_corrected_and_replayed_through_the_api(admin):
    data = flow(hh(1, person(nom="ALPHA", nir="1800169000001"), sitfam="XXX"))
    run_id = upload(admin, data, "flow.xml", source="caf").json["id"]
    [reject] = admin.get(f"{URL}/runs/{run_id}/rejects").json["items"]
    raw = admin.get(f"{URL}/rejects/{reject['id']}").json["raw_fragment"]
    corrected = admin.patch(
        f"{URL}/rejects/{reject['id']}", json={"raw_fragment": raw.replace("XXX", "CEL")}
    )
    assert corrected.status_code == 200
    replay = admin.post(f"{URL}/runs/{run_id}/replay-rejects", json={})
    assert replay.status_code == 202
    assert replay.json["rejects"] == 1
    assert admin.get(f"{URL}/rejects/{reject['id']}").json["status"] == "replayed"
    assert db.session.scalar(select(Person).where(Person.nir == "1800169000001")) is not None


def test_a_france_travail_file_kind_comes_from_the_form_or_the_name(admin):
    line = (
        "1800169000001;1234567A001;DUPONT;JEAN;15/01/1980;01/10/2026;1;1800169000001;"
        "69381;LYON;1 RUE;ALE"
    )
    data = (
        "nir;identifiantpe;nom;prenom;dtnai;date;code;nir2;codeinsee;localite;adresse;ale\n"
        + line
        + "\n"
    ).encode()
    by_name = upload(admin, data, "stock_2026-10.csv", source="france_travail")
    assert by_name.status_code == 202
    assert by_name.json["kind"] == "stock"
    unknown = upload(admin, data, "export.csv", source="france_travail")
    assert unknown.status_code == 422
    assert "kind" in unknown.json["errors"]
    given = upload(admin, data, "export.csv", source="france_travail", kind="inscriptions")
    assert given.status_code == 202
    assert given.json["kind"] == "inscriptions"


def test_an_empty_or_missing_file_is_refused(admin):
    assert upload(admin, b"", "vide.xml", source="caf").status_code == 422
    missing = admin.post(
        f"{URL}/uploads", data={"source": "caf"}, content_type="multipart/form-data"
    )
    assert missing.status_code == 422


def test_probable_matches_are_reviewed_by_an_admin(admin):
    candidate = PersonFactory(
        nir=None,
        nir_key=None,
        last_name="Dupré",
        first_name="Hélène",
        birth_date=dt.date(1985, 4, 12),
        public=Public.RSJ,
        bound_by_duties=False,
    )
    data = flow(hh(1, person(nom="DUPRE", prenom="HELENE", dtnai="1985-04-12", nir=None)))
    upload(admin, data, "flow.xml", source="caf")
    listing = admin.get(f"{URL}/probable-matches", query_string={"status": "pending"})
    [match] = listing.json["items"]
    assert match["candidate_person_id"] == candidate.id
    assert "payload" not in match
    detail = admin.get(f"{URL}/probable-matches/{match['id']}")
    assert detail.json["payload"]["person"]["last_name"] == "DUPRE"
    confirmed = admin.post(f"{URL}/probable-matches/{match['id']}/confirm")
    assert confirmed.status_code == 200
    assert confirmed.json["person_id"] == candidate.id
    assert confirmed.json["match"]["status"] == "confirmed"
    twice = admin.post(f"{URL}/probable-matches/{match['id']}/reject")
    assert twice.status_code == 409
    stored = db.session.get(ProbableMatch, match["id"])
    assert stored is not None
    assert stored.resulting_person_id == candidate.id


ENDPOINTS = [
    ("get", f"{URL}/runs"),
    ("get", f"{URL}/runs/1"),
    ("get", f"{URL}/runs/1/rejects"),
    ("post", f"{URL}/runs/1/resume"),
    ("post", f"{URL}/runs/1/replay-rejects"),
    ("get", f"{URL}/rejects/1"),
    ("post", f"{URL}/rejects/1/ignore"),
    ("get", f"{URL}/probable-matches"),
    ("get", f"{URL}/probable-matches/1"),
    ("post", f"{URL}/probable-matches/1/confirm"),
    ("post", f"{URL}/probable-matches/1/reject"),
    ("post", f"{URL}/uploads"),
]


@pytest.mark.parametrize("role", [Role.REFERENT, Role.CHARGE_ORIENTATION, Role.MANAGER])
def test_only_admins_may_use_the_imports_api(client, role):
    api = api_as(client, AgentFactory(roles=[role]))
    for method, url in ENDPOINTS:
        response = getattr(api, method)(url, json={}) if method == "post" else api.get(url)
        assert response.status_code == 403, (method, url, response.status_code)


def test_anonymous_callers_are_refused(client):
    api = api_as(client, None)
    for method, url in ENDPOINTS:
        response = getattr(api, method)(url)
        assert response.status_code in (401, 403), (method, url)


def test_unknown_ids_answer_404(admin):
    assert admin.get(f"{URL}/runs/999999").status_code == 404
    assert admin.get(f"{URL}/rejects/999999").status_code == 404
    assert admin.post(f"{URL}/probable-matches/999999/confirm").status_code == 404


def test_a_finished_run_cannot_be_resumed(admin):
    data = flow(hh(1, person(nom="ALPHA", nir="1800169000001")))
    run_id = upload(admin, data, "flow.xml", source="caf").json["id"]
    assert db.session.get(ImportRun, run_id) is not None
    assert admin.post(f"{URL}/runs/{run_id}/resume").status_code == 409
