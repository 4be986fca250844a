"""Bulk write helpers of the imports, on both backends (COPY paths from 50 rows on PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import Table, select

from spie.db import db
from spie.integrations import bulk
from spie.integrations.models import FtRegistration, FtRegistrationState
from spie.persons.models import Household

REG = cast(Table, FtRegistration.__table__)
H = cast(Table, Household.__table__)


def _registration(n: int) -> dict[str, Any]:
    return {
        "nir": f"1800169{n:06d}",
        "birth_date": dt.date(1980, 1, 1),
        "person_id": None,
        "france_travail_id": f"{n:07d}A001",
        "state": FtRegistrationState.INSCRIT,
        "state_since": dt.date(2026, 10, 1),
        "category": "1",
        "reason_code": None,
        "reason_label": "motif « accentué »\tavec tabulation",
        "agency": None,
        "commune_insee": None,
        "updated_run_id": None,
        "updated_at": dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    }


def test_insert_returning_ids_then_update_many_rows(app):
    rows = [_registration(n) for n in range(120)]
    ids = bulk.insert_returning_ids(REG, rows)
    assert len(set(ids)) == 120
    assert [row["id"] for row in rows] == ids
    stored = {
        r.id: r
        for r in db.session.scalars(select(FtRegistration).where(FtRegistration.id.in_(ids)))
    }
    assert stored[ids[7]].nir == "1800169000007"
    assert stored[ids[7]].reason_label == "motif « accentué »\tavec tabulation"
    bulk.update_rows(
        REG,
        [
            {"id": new_id, "state": FtRegistrationState.RADIATION, "reason_code": str(n)}
            for n, new_id in enumerate(ids)
        ],
    )
    db.session.expire_all()
    after = {
        r.id: r
        for r in db.session.scalars(select(FtRegistration).where(FtRegistration.id.in_(ids)))
    }
    assert {r.state for r in after.values()} == {FtRegistrationState.RADIATION}
    assert after[ids[42]].reason_code == "42"
    assert after[ids[42]].category == "1"  # untouched columns stay


def test_versioned_updates_bump_the_version(app):
    rows = [
        {
            "caf_fonorg": "CAF",
            "caf_numorg": "691",
            "caf_matricule": f"{n:07d}00000000",
            "rsa_request_number": None,
            "rsa_requested_on": None,
            "rsa_state": "2",
            "family_situation": None,
            "last_flow_on": None,
            "version": 1,
            "created_at": dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
            "updated_at": dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        }
        for n in range(60)
    ]
    ids = bulk.insert_returning_ids(H, rows)
    bulk.update_rows(H, [{"id": i, "rsa_state": "5"} for i in ids], versioned=True)
    db.session.expire_all()
    households = db.session.scalars(select(Household).where(Household.id.in_(ids))).all()
    assert {(h.rsa_state, h.version) for h in households} == {("5", 2)}


def test_pairs_and_any_filters_select_exact_matches(app):
    rows = [_registration(n) for n in range(60)]
    bulk.insert_returning_ids(REG, rows)
    wanted = {("1800169000003", dt.date(1980, 1, 1)), ("1800169000004", dt.date(1999, 1, 1))}
    found = db.session.execute(
        bulk.select_matching_pairs(select(REG.c.nir), REG.c.nir, REG.c.birth_date, wanted)
    ).scalars()
    assert list(found) == ["1800169000003"]
    any_of = db.session.scalars(
        select(REG.c.nir).where(bulk.in_values(REG.c.nir, ["1800169000005", "nope"]))
    )
    assert list(any_of) == ["1800169000005"]


def test_any_filters_with_every_kind_of_value(app):
    """Strings, integers and dates go as one split text parameter on PostgreSQL; values that
    cannot (the separator inside, an empty string, a None) still select exactly."""
    rows = [_registration(n) for n in range(60)]
    ids = bulk.insert_returning_ids(REG, rows)

    def nirs(where: Any) -> list[str]:
        return sorted(db.session.scalars(select(REG.c.nir).where(where)))

    assert nirs(bulk.in_values(REG.c.id, [ids[1], ids[2], 10**9])) == [
        "1800169000001",
        "1800169000002",
    ]
    assert nirs(bulk.in_values(REG.c.id, [ids[3], None])) == ["1800169000003"]
    assert nirs(bulk.in_values(REG.c.nir, ["1800169000004", ""])) == ["1800169000004"]
    assert nirs(bulk.in_values(REG.c.nir, ["1800169000005", "x\x1f1800169000006"])) == [
        "1800169000005"
    ]
    assert len(nirs(bulk.in_values(REG.c.state_since, [dt.date(2026, 10, 1)]))) == 60
    assert nirs(bulk.in_values(REG.c.birth_date, [dt.date(1999, 1, 1)])) == []
    bulk.update_rows(REG, [{"id": ids[7], "reason_label": "a\x1fb"}])
    bulk.update_rows(REG, [{"id": ids[8], "reason_label": ""}])
    assert nirs(bulk.in_values(REG.c.reason_label, ["a\x1fb", ""])) == [
        "1800169000007",
        "1800169000008",
    ]
    wanted = {("1800169000009", dt.date(1980, 1, 1)), ("x\x1fy", dt.date(1980, 1, 1))}
    found = db.session.scalars(
        bulk.select_matching_pairs(select(REG.c.nir), REG.c.nir, REG.c.birth_date, wanted)
    )
    assert list(found) == ["1800169000009"]
