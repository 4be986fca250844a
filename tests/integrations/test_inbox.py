"""The watched inbox: files stored in the database, imported, archived; safe to scan twice."""

from __future__ import annotations

import os
import time

import pytest
from sqlalchemy import select

from spie.clocks.services import seed_delay_policies
from spie.db import db
from spie.integrations.inbox import scan_inbox
from spie.integrations.models import ImportRun, ImportStatus, ImportTrigger
from spie.persons.models import Household
from tests.integrations.caf_builders import flow_bytes, numbered_households

CSV = (
    "nir;identifiantpe;nom;prenom;dtnai;date;code;nir2;codeinsee;localite;adresse;ale\n"
    "1800169000001;1234567A001;DUPONT;JEAN;15/01/1980;01/10/2026;1;1800169000001;69381;LYON;"
    "1 RUE;ALE\n"
)


@pytest.fixture(autouse=True)
def _policies(app):
    seed_delay_policies()


def _settled(path):
    old = time.time() - 60
    os.utime(path, (old, old))


def test_inbox_files_are_stored_imported_and_archived(tmp_path):
    caf = tmp_path / "RSABEI_vrsb0801_2026-11-16.xml"
    caf.write_bytes(flow_bytes(numbered_households(2)))
    ft = tmp_path / "stock_2026-10.csv"
    ft.write_bytes(CSV.encode())
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    fresh = tmp_path / "radiations_2026-11.csv"
    fresh.write_bytes(CSV.encode())  # still being written: left for the next scan
    for path in (caf, ft, junk):
        _settled(path)

    report = scan_inbox(tmp_path, enqueue=True, settle_seconds=30)
    assert sorted(item["file"] for item in report["queued"]) == [caf.name, ft.name]
    assert report["ignored"] == [junk.name]
    assert report["waiting"] == [fresh.name]
    runs = db.session.scalars(select(ImportRun).order_by(ImportRun.id)).all()
    # In-process jobs (no Redis): imported right after the commit.
    assert [(r.kind, r.trigger, r.status) for r in runs] == [
        ("beneficiaires", ImportTrigger.INBOX, ImportStatus.DONE),
        ("stock", ImportTrigger.INBOX, ImportStatus.DONE),
    ]
    assert all(r.file_id is not None and r.local_path is None for r in runs)
    assert len(db.session.scalars(select(Household)).all()) == 2
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == [caf.name, ft.name]
    assert not caf.exists()

    # The same file dropped again is recognised by its checksum: nothing changes.
    again = tmp_path / "RSABEI_vrsb0801_2026-11-16-bis.xml"
    again.write_bytes((tmp_path / "done" / caf.name).read_bytes())
    _settled(again)
    second = scan_inbox(tmp_path, enqueue=True, settle_seconds=30)
    assert [item["file"] for item in second["queued"]] == [again.name]
    last = db.session.scalars(select(ImportRun).order_by(ImportRun.id.desc())).first()
    assert last is not None
    assert last.status == ImportStatus.DUPLICATE
    assert len(db.session.scalars(select(Household)).all()) == 2


def test_an_unconfigured_or_missing_inbox_is_reported(app, tmp_path):
    from spie.integrations.inbox import scan_configured_inbox

    assert "not set" in scan_configured_inbox()["skipped"]
    assert "does not exist" in scan_inbox(tmp_path / "nope")["skipped"]
