"""Orientation indicators: every figure against a value computed by hand on the fixture of
``indicator_fixtures`` (its docstring lists the cases; durations t are running days).

Definitions: docs/indicators.md. Percentiles use linear interpolation (percentile_cont):
position h = p (n − 1) over the sorted délais x[0..n-1], value = x[⌊h⌋] + (h − ⌊h⌋)
(x[⌊h⌋+1] − x[⌊h⌋]).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, text

from spie.agents.models import Role
from spie.db import db
from spie.orientation.models import Parcours
from tests.conftest import ON_POSTGRES
from tests.factories import AgentFactory
from tests.helpers import ApiClient, api_as
from tests.orientation.indicator_fixtures import (
    AS_OF,
    CASES,
    EARLY_AS_OF,
    LYON,
    RHONE_AMONT,
    VILLEURBANNE,
    CaseSpec,
    IndicatorWorld,
    add_case,
    build_world,
)

BASE = "/api/v1/indicators/orientation"
COHORT = {"cohort_from": "2025-03", "cohort_to": "2025-05", "as_of": AS_OF.isoformat()}
PERIOD = {"period_from": "2025-03", "period_to": "2025-06", "as_of": AS_OF.isoformat()}


@pytest.fixture
def world(app: Any) -> IndicatorWorld:
    built = build_world()
    # Release the test's savepoint: a request answering >= 400 rolls its session back, which
    # must not take the fixture with it (the outer transaction still ends in a rollback).
    db.session.commit()
    return built


def fetch(client: Any, agent: Any, path: str = "", **params: Any) -> Any:
    """GET an indicator as ``agent`` (an Agent, or an ApiClient built beforehand)."""
    caller = agent if isinstance(agent, ApiClient) else api_as(client, agent)
    response = call(caller, path, **params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def call(caller: Any, path: str, **params: Any) -> Any:
    """One request in its own application context: flask-login caches the current user in
    ``g``, which the test's long-lived app context would otherwise share between callers."""
    with caller.client.application.app_context():
        return caller.get(BASE + path, query_string=params)


def by_key(report: dict[str, Any]) -> dict[Any, dict[str, Any]]:
    return {group["key"]: group for group in report["groups"]}


def approx(value: float) -> Any:
    return pytest.approx(value, abs=1e-6)


# --- délai d'orientation -------------------------------------------------------------------


def test_delay_figures_of_the_whole_cohort(client, world):
    report = fetch(client, world.manager, **COHORT)
    assert report["cohort_from"] == "2025-03-01"
    assert report["cohort_to"] == "2025-05-31"
    assert report["as_of"] == "2025-06-30"
    [group] = report["groups"]
    assert group["key"] is None
    # Cohort March-May 2025 of Villeurbanne + Rhône Amont: A1-A8, B1-B7 = 15 cases
    # (A9, B8 started in June; L1 is Lyon; D1 is a duplicate).
    assert group["cases"] == 15
    assert group["oriented"] == 8  # A1 A2 A3 A6 A7 B1 B3 B7
    assert group["closed_other"] == 3  # A5 B2 B5
    assert group["waiting"] == 4  # A4 A8 B4 B6
    # 6 weeks: mature = started on or before 2025-05-19, minus those who left before day
    # 42 (A5 at 20, B5 at 35); B6 (05-25) is not mature: 15 - 1 - 2 = 12.
    assert group["mature_6w"] == 12
    # t <= 42: A1 28, A2 42, A6 0, B3 21, B7 18.
    assert group["oriented_within_6w"] == 5
    assert group["share_6w"] == approx(5 / 12)
    # 2 months: start + 2 months <= 06-30: B6 and B7 are not mature; A5, B5 left before;
    # B2 left at 69 >= 61 and stays as "not within": 15 - 2 - 2 = 11.
    assert group["mature_2m"] == 11
    # t <= days of the case's 2 months (61 for every start here): A1 A2 A6 A7(60) B1(49) B3.
    assert group["oriented_within_2m"] == 6
    assert group["share_2m"] == approx(6 / 11)
    # Percentiles over the oriented of the 2-month mature cohort (B7 excluded):
    # 0 21 28 42 49 60 70 (n = 7): median h = 3 → 42; p75 h = 4.5 → 49 + .5 × 11 = 54.5;
    # p90 h = 5.4 → 60 + .4 × 10 = 64; mean 270 / 7.
    assert group["delay"] == {
        "count": 7,
        "mean": 38.57,
        "median": 42.0,
        "p75": 54.5,
        "p90": 64.0,
    }
    # Kaplan-Meier over the 15 cases (see test_km_curve_of_the_whole_cohort):
    # S(42) = 13/21, S(60) = 26/63 (S(61) = S(60)); S first <= .5 at t = 60; never <= .25.
    assert group["km"] == {
        "median": 60,
        "p75": None,
        "p90": None,
        "share_6w": approx(8 / 21),
        "share_2m": approx(37 / 63),
    }


def test_km_curve_of_the_whole_cohort(client, world):
    report = fetch(client, world.manager, "/km", **COHORT)
    [curve] = report["groups"]
    # (t, at risk = durations >= t, orientations at t, censored at t, S(t))
    s0 = 14 / 15
    s18 = s0 * 13 / 14
    s21 = s18 * 11 / 12
    s28 = s21 * 10 / 11
    s42 = s28 * 6 / 7
    s49 = s42 * 5 / 6
    s60 = s49 * 4 / 5
    s70 = s60 * 2 / 3
    expected = [
        (0, 15, 1, 0, s0),  # A6 oriented the day the clock started
        (18, 14, 1, 0, s18),  # B7
        (20, 13, 0, 1, s18),  # A5 left SDD: censored
        (21, 12, 1, 0, s21),  # B3
        (28, 11, 1, 0, s28),  # A1
        (35, 10, 0, 1, s28),  # B5 abandoned: censored
        (36, 9, 0, 2, s28),  # A8 (paused) and B6 still waiting
        (42, 7, 1, 0, s42),  # A2 (49 days minus 7 paused)
        (49, 6, 1, 0, s49),  # B1
        (60, 5, 1, 0, s60),  # A7
        (69, 4, 0, 1, s60),  # B2 moved away
        (70, 3, 1, 0, s70),  # A3
        (84, 2, 0, 1, s70),  # B4 waiting
        (98, 1, 0, 1, s70),  # A4 waiting
    ]
    got = [
        (p["t"], p["at_risk"], p["events"], p["censored"], p["survival"]) for p in curve["points"]
    ]
    assert [row[:4] for row in got] == [row[:4] for row in expected]
    assert [row[4] for row in got] == [approx(row[4]) for row in expected]
    assert s42 == pytest.approx(13 / 21)
    assert s60 == pytest.approx(26 / 63)
    assert (curve["median"], curve["p75"], curve["p90"]) == (60, None, None)
    assert curve["share_6w"] == approx(1 - 13 / 21)
    assert curve["share_2m"] == approx(1 - 26 / 63)


def test_delay_by_ctm(client, world):
    groups = by_key(fetch(client, world.manager, group_by="ctm", **COHORT))
    v, r = str(world.territory_id(VILLEURBANNE)), str(world.territory_id(RHONE_AMONT))
    assert set(groups) == {v, r}
    assert groups[v]["label"] == "Villeurbanne"
    villeurbanne = groups[v]
    # A1-A8: oriented A1 A2 A3 A6 A7, A5 left, A4 A8 waiting.
    assert (villeurbanne["cases"], villeurbanne["oriented"]) == (8, 5)
    assert (villeurbanne["closed_other"], villeurbanne["waiting"]) == (1, 2)
    # mature 6w: all 8 minus A5 (left at 20); within: A1 A2 A6.
    assert (villeurbanne["mature_6w"], villeurbanne["oriented_within_6w"]) == (7, 3)
    assert villeurbanne["share_6w"] == approx(3 / 7)
    # mature 2m: all 8 (A8: 04-30 + 2 months = 06-30) minus A5; within: A1 A2 A6 A7.
    assert (villeurbanne["mature_2m"], villeurbanne["oriented_within_2m"]) == (7, 4)
    # 0 28 42 60 70: median 42; p75 h = 3 → 60; p90 h = 3.6 → 60 + .6 × 10 = 66; mean 40.
    assert villeurbanne["delay"] == {
        "count": 5,
        "mean": 40.0,
        "median": 42.0,
        "p75": 60.0,
        "p90": 66.0,
    }
    # KM: 0 (n 8, 1 event) 7/8; 20 censored; 28 (n 6) × 5/6 = 35/48; 36 censored;
    # 42 (n 4) × 3/4 = 35/64; 60 (n 3) × 2/3 = 35/96; 70 (n 2) × 1/2 = 35/192; 98 censored.
    assert villeurbanne["km"] == {
        "median": 60,
        "p75": 70,
        "p90": None,
        "share_6w": approx(1 - 35 / 64),
        "share_2m": approx(1 - 35 / 96),
    }
    rhone = groups[r]
    # B1-B7: oriented B1 B3 B7, B2 B5 closed, B4 B6 waiting.
    assert (rhone["cases"], rhone["oriented"], rhone["closed_other"], rhone["waiting"]) == (
        7,
        3,
        2,
        2,
    )
    # mature 6w: B1 B2 B3 B4 B7 (B5 left at 35, B6 too recent); within: B3 B7.
    assert (rhone["mature_6w"], rhone["oriented_within_6w"]) == (5, 2)
    # mature 2m: B1 B2 B3 B4 (B7 and B6 too recent, B5 left); within: B1 B3.
    assert (rhone["mature_2m"], rhone["oriented_within_2m"]) == (4, 2)
    assert rhone["share_2m"] == approx(0.5)
    # 21 49: median h = .5 → 35; p75 h = .75 → 21 + .75 × 28 = 42; p90 → 21 + .9 × 28 = 46.2.
    assert rhone["delay"] == {"count": 2, "mean": 35.0, "median": 35.0, "p75": 42.0, "p90": 46.2}
    # KM: 18 (n 7) 6/7; 21 (n 6) 5/7; 35, 36 censored; 49 (n 3) × 2/3 = 10/21; 69, 84 cens.
    assert rhone["km"] == {
        "median": 49,
        "p75": None,
        "p90": None,
        "share_6w": approx(2 / 7),
        "share_2m": approx(11 / 21),
    }


def test_delay_by_structure_of_the_first_decision(client, world):
    groups = by_key(fetch(client, world.manager, group_by="structure", **COHORT))
    s1, s2, s3 = (str(world.structures[k].id) for k in ("S1", "S2", "S3"))
    assert list(groups) == [s1, s2, s3, None]  # sorted by name, "not oriented" last
    assert groups[s1]["label"] == "Indicateurs S1"
    # S1: A1 28, A2 42, B1 49, B7 18 — all oriented (B3's reorientation to S1 does not
    # count: the first decision decides the group).
    one = groups[s1]
    assert (one["cases"], one["mature_6w"], one["oriented_within_6w"]) == (4, 4, 3)
    assert (one["mature_2m"], one["oriented_within_2m"]) == (3, 3)  # B7 not mature
    # 28 42 49: median 42; p75 h = 1.5 → 45.5; p90 h = 1.8 → 42 + .8 × 7 = 47.6.
    assert one["delay"] == {"count": 3, "mean": 39.67, "median": 42.0, "p75": 45.5, "p90": 47.6}
    # KM: 18 → 3/4; 28 → 1/2 (exactly: the median is 28); 42 → 1/4; 49 → 0 (d = n).
    assert one["km"] == {
        "median": 28,
        "p75": 42,
        "p90": 49,
        "share_6w": approx(0.75),
        "share_2m": approx(1.0),
    }
    # S2: A6 0, B3 21, A3 70 — the last orientation empties the risk set: S = 0.
    two = groups[s2]
    assert two["delay"] == {"count": 3, "mean": 30.33, "median": 21.0, "p75": 45.5, "p90": 60.2}
    assert two["km"] == {
        "median": 21,
        "p75": 70,
        "p90": 70,
        "share_6w": approx(2 / 3),
        "share_2m": approx(2 / 3),
    }
    assert groups[s3]["delay"]["median"] == 60.0
    # Not oriented: A4 A5 A8 B2 B4 B5 B6, all censored: S stays 1.
    none = groups[None]
    assert none["label"] == "Non orienté"
    assert (none["cases"], none["oriented"], none["share_6w"]) == (7, 0, 0.0)
    assert none["delay"]["median"] is None
    assert none["km"] == {
        "median": None,
        "p75": None,
        "p90": None,
        "share_6w": 0.0,
        "share_2m": 0.0,
    }


def test_delay_by_month_public_and_parcours(client, world):
    months = by_key(fetch(client, world.manager, group_by="month", **COHORT))
    assert {k: g["cases"] for k, g in months.items()} == {"2025-03": 8, "2025-04": 5, "2025-05": 2}
    assert months["2025-03"]["label"] == "mars 2025"
    # May: B6 waiting (36, not mature), B7 oriented at 18 (mature for 6 weeks only).
    may = months["2025-05"]
    assert (may["mature_6w"], may["oriented_within_6w"], may["mature_2m"]) == (1, 1, 0)
    assert may["share_2m"] is None
    assert may["delay"]["count"] == 0
    publics = by_key(fetch(client, world.manager, group_by="public", **COHORT))
    assert {k: g["cases"] for k, g in publics.items()} == {"brsa": 14, "rsj": 1}
    assert publics["rsj"]["label"] == "Revenu Solidarité Jeunes"
    parcours = by_key(fetch(client, world.manager, group_by="parcours", **COHORT))
    assert {k: g["cases"] for k, g in parcours.items()} == {
        Parcours.EMPLOI.value: 5,  # A1 A6 A7 B1 B7
        Parcours.SOCIAL.value: 2,  # A2 B3 (first decision)
        Parcours.SOCIO_PROFESSIONNEL.value: 1,  # A3
        None: 7,
    }
    only_rsj = fetch(client, world.manager, public="rsj", **COHORT)
    assert [g["cases"] for g in only_rsj["groups"]] == [1]


def test_as_of_rewinds_the_clocks(client, world):
    """On 2025-04-30: A3 (notified 05-26) still waits, B2 and B5 have not left yet, the
    decisions after 04-30 do not exist, cases started later are not in the cohort."""
    params = {**COHORT, "as_of": EARLY_AS_OF.isoformat()}
    report = fetch(client, world.manager, **params)
    assert report["cohort_to"] == "2025-04-30"  # clamped to as_of
    [group] = report["groups"]
    # started <= 04-30: A1-A8, B1-B5 = 13; oriented A1 A2 A6 B1 B3; left A5.
    assert (group["cases"], group["oriented"], group["closed_other"], group["waiting"]) == (
        13,
        5,
        1,
        7,
    )
    # mature 6w = started <= 03-19: A1 A2 A3 A5 B1 B2, minus A5 (left at 20) = 5;
    # within: A1 (28), A2 (42).
    assert (group["mature_6w"], group["oriented_within_6w"]) == (5, 2)
    assert group["share_6w"] == approx(0.4)
    # Nobody started two months before 04-30 in this cohort.
    assert (group["mature_2m"], group["share_2m"]) == (0, None)
    assert group["delay"] == {"count": 0, "mean": None, "median": None, "p75": None, "p90": None}
    curve = fetch(client, world.manager, "/km", **params)["groups"][0]
    # 0: A6 oriented, A8 censored (started that day, 5 paused days clamp t to 0), n = 13;
    # 15 B5, 16 A7, 20 A5 censored; 21 B3 (n 8); 23 B4 cens.; 28 A1 (n 6); 37 A4 cens.;
    # 42 A2 (n 4); 44 A3 cens.; 49 B1 oriented and B2 censored (n 2).
    s0 = 12 / 13
    s21 = s0 * 7 / 8
    s28 = s21 * 5 / 6
    s42 = s28 * 3 / 4
    s49 = s42 * 1 / 2
    got = [(p["t"], p["at_risk"], p["events"], p["censored"]) for p in curve["points"]]
    assert got == [
        (0, 13, 1, 1),
        (15, 11, 0, 1),
        (16, 10, 0, 1),
        (20, 9, 0, 1),
        (21, 8, 1, 0),
        (23, 7, 0, 1),
        (28, 6, 1, 0),
        (37, 5, 0, 1),
        (42, 4, 1, 0),
        (44, 3, 0, 1),
        (49, 2, 1, 1),
    ]
    assert [p["survival"] for p in curve["points"] if p["events"]] == [
        approx(s0),
        approx(s21),
        approx(s28),
        approx(s42),
        approx(s49),
    ]
    assert s42 == pytest.approx(105 / 208)
    assert curve["median"] == 49  # S(42) = 0.5048 > .5, S(49) = 0.2524
    assert curve["share_6w"] == approx(1 - 105 / 208)


# --- stock ------------------------------------------------------------------------------


def test_stock_by_age_and_overdue(client, world):
    [total] = fetch(client, world.manager, "/stock", as_of=AS_OF.isoformat())["groups"]
    # Waiting SDD on 06-30: A4 98, A8 36 (paused since 06-10), A9 14, B4 84, B6 36;
    # B8 waits too but is not SDD (RSJ).
    assert total["total"] == 5
    assert total["by_age"] == {"0-29": 1, "30-59": 2, "60-89": 1, "90+": 1}
    # legal deadlines: A4 05-05, B4 05-19 passed; B6 07-06, A9 07-28 not; A8 paused (none).
    assert (total["overdue"], total["past_target"], total["paused"]) == (2, 2, 1)
    groups = by_key(fetch(client, world.manager, "/stock", as_of=AS_OF.isoformat(), group_by="ctm"))
    v, r = str(world.territory_id(VILLEURBANNE)), str(world.territory_id(RHONE_AMONT))
    assert groups[v]["by_age"] == {"0-29": 1, "30-59": 1, "60-89": 0, "90+": 1}
    assert groups[r]["by_age"] == {"0-29": 0, "30-59": 1, "60-89": 1, "90+": 0}
    assert (groups[v]["overdue"], groups[r]["overdue"]) == (1, 1)


def test_stock_as_of_an_earlier_date(client, world):
    [total] = fetch(client, world.manager, "/stock", as_of=EARLY_AS_OF.isoformat())["groups"]
    # Open and not notified on 04-30: A3 44, A4 37, A7 16, A8 0, B2 49, B4 23 (B5 not SDD).
    assert total["total"] == 6
    assert total["by_age"] == {"0-29": 3, "30-59": 3, "60-89": 0, "90+": 0}
    # Legal deadlines before 04-30: A3 (04-28), B2 (04-23).
    assert total["overdue"] == 2


# --- RIO ----------------------------------------------------------------------------------


def test_rio_figures(client, world):
    [total] = fetch(client, world.manager, "/rio", **PERIOD)["groups"]
    # Sessions held March-June in V + R: R1 (4 convened), R2 (3: A5's was cancelled), R3 (3);
    # R4 is cancelled, R5 after as_of, R6 in Lyon.
    assert total["convocations"] == 10
    assert total["convened"] == 8  # A1 A2 A3 A4 A8 B1 B3 B4 (A3 and A4 came twice)
    assert (total["present"], total["absent"], total["excused"]) == (5, 3, 1)
    assert (total["recorded"], total["not_recorded"]) == (9, 1)
    assert total["attendance_rate"] == approx(5 / 9)
    assert total["no_show_rate"] == approx(3 / 9)
    # First decisions decided March-June: A1 A2 A3 A6 A7 B1 B3 B7 (8); via RIO: A1 A2 B1 B3
    # B7; direct: A6; B3's rank 2 is the only reorientation; B5 (RSJ) abandoned.
    assert (total["orientations"], total["via_rio"], total["direct"]) == (8, 5, 1)
    assert total["share_via_rio"] == approx(5 / 8)
    assert total["share_direct"] == approx(1 / 8)
    assert (total["reorientations"], total["abandonments"]) == (1, 1)


def test_rio_by_ctm_and_month(client, world):
    groups = by_key(fetch(client, world.manager, "/rio", group_by="ctm", **PERIOD))
    v = groups[str(world.territory_id(VILLEURBANNE))]
    r = groups[str(world.territory_id(RHONE_AMONT))]
    assert (v["convocations"], v["convened"], v["present"], v["absent"], v["excused"]) == (
        7,
        5,
        3,
        2,
        1,
    )
    assert v["attendance_rate"] == approx(3 / 6)
    assert (v["orientations"], v["via_rio"], v["direct"], v["reorientations"]) == (5, 2, 1, 0)
    assert v["share_via_rio"] == approx(0.4)
    assert (r["convocations"], r["present"], r["absent"]) == (3, 2, 1)
    assert r["no_show_rate"] == approx(1 / 3)
    assert (r["orientations"], r["via_rio"], r["reorientations"], r["abandonments"]) == (
        3,
        3,
        1,
        1,
    )
    months = by_key(fetch(client, world.manager, "/rio", group_by="month", **PERIOD))
    # March: R1; decisions A1 (03-28). April: R2, R3; A2 A6 B1 B3. May: A3 B7, B3's
    # reorientation, B5's abandonment. June: A7.
    assert {k: m["convocations"] for k, m in months.items()} == {
        "2025-03": 4,
        "2025-04": 6,
        "2025-05": 0,
        "2025-06": 0,
    }
    assert {k: m["orientations"] for k, m in months.items()} == {
        "2025-03": 1,
        "2025-04": 4,
        "2025-05": 2,
        "2025-06": 1,
    }
    assert months["2025-05"]["reorientations"] == months["2025-05"]["abandonments"] == 1


# --- CSV ----------------------------------------------------------------------------------


def _csv(client: Any, agent: Any, path: str, **params: Any) -> tuple[Any, list[list[str]]]:
    response = call(api_as(client, agent), path, **params, format="csv")
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/csv"
    assert response.data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for Excel
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig")), delimiter=";"))
    return response, rows


def test_csv_exports(client, world):
    response, rows = _csv(client, world.manager, "", group_by="ctm", **COHORT)
    assert "attachment" in response.headers["Content-Disposition"]
    assert "2025-06-30" in response.headers["Content-Disposition"]
    header = rows[0]
    assert header[:5] == ["arrêté au", "cohorte du", "cohorte au", "groupe", "libellé"]
    lines = {row[header.index("libellé")]: dict(zip(header, row, strict=True)) for row in rows[1:]}
    villeurbanne = lines["Villeurbanne"]
    assert villeurbanne["arrêté au"] == "2025-06-30"
    assert villeurbanne["dossiers"] == "8"
    assert villeurbanne["part en 6 semaines"] == "0,428571"  # 3 / 7, decimal comma
    assert villeurbanne["délai 90e centile (j)"] == "66"
    assert villeurbanne["KM 75e centile (j)"] == "70"
    assert lines["Rhône Amont"]["KM 75e centile (j)"] == ""

    _response, km_rows = _csv(client, world.manager, "/km", **COHORT)
    assert km_rows[0][-5:] == [
        "jour",
        "à risque",
        "orientés ce jour",
        "censurés ce jour",
        "part encore en attente",
    ]
    assert len(km_rows) == 1 + 14
    assert km_rows[1][-5:] == ["0", "15", "1", "0", "0,933333"]

    _response, stock_rows = _csv(client, world.manager, "/stock", as_of=AS_OF.isoformat())
    assert stock_rows[0][:2] == ["arrêté au", "groupe"]
    assert stock_rows[1][stock_rows[0].index("90+ jours")] == "1"

    _response, rio_rows = _csv(client, world.manager, "/rio", **PERIOD)
    assert rio_rows[1][rio_rows[0].index("taux de présence")] == "0,555556"


# --- scope, roles, arguments ----------------------------------------------------------------


def test_scope_by_territory(client, world):
    # Tokens are made before the first request: a request ends the test's session.
    lyon_manager = api_as(client, AgentFactory(roles=[Role.MANAGER], territory_codes=[LYON]))
    charge = api_as(
        client, AgentFactory(roles=[Role.CHARGE_ORIENTATION], territory_codes=[VILLEURBANNE])
    )
    lost = api_as(client, AgentFactory(roles=[Role.MANAGER]))
    manager, admin = api_as(client, world.manager), api_as(client, world.admin)
    db.session.commit()
    [lyon] = fetch(client, lyon_manager, **COHORT)["groups"]
    assert (lyon["cases"], lyon["oriented"], lyon["delay"]["median"]) == (1, 1, 22.0)
    assert [g["convocations"] for g in fetch(client, lyon_manager, "/rio", **PERIOD)["groups"]] == [
        1
    ]
    assert fetch(client, lyon_manager, "/stock", as_of=AS_OF.isoformat())["groups"] == []
    # A territory outside one's scope is refused, whatever the endpoint.
    villeurbanne = world.territory_id(VILLEURBANNE)
    for path in ("", "/km", "/stock", "/rio"):
        response = call(lyon_manager, path, territory_id=villeurbanne)
        assert response.status_code == 403, path
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["code"] == "territory_out_of_scope"
    # A chargé d'orientation of Villeurbanne sees Villeurbanne only.
    [own] = fetch(client, charge, **COHORT)["groups"]
    assert own["cases"] == 8
    [filtered] = fetch(client, manager, territory_id=villeurbanne, **COHORT)["groups"]
    assert filtered["cases"] == 8
    # The admin sees every territory, Lyon included.
    [everything] = fetch(client, admin, **COHORT)["groups"]
    assert everything["cases"] == 16
    # An agent without territories sees nothing (not everything).
    assert fetch(client, lost, **COHORT)["groups"] == []


def test_referents_and_anonymous_are_refused(client, world):
    referent = api_as(client, AgentFactory(roles=[Role.REFERENT]))
    db.session.commit()
    for path in ("", "/km", "/stock", "/rio"):
        assert call(referent, path).status_code == 403
        assert call(api_as(client, None), path).status_code == 401


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("", {"unknown": "1"}, "unknown"),
        ("", {"cohort_from": "2025-13"}, "cohort_from"),
        ("", {"cohort_from": "2025-05", "cohort_to": "2025-03"}, "cohort_to"),
        ("", {"group_by": "agent"}, "group_by"),
        ("", {"as_of": "2999-01-01"}, "as_of"),
        ("", {"format": "xlsx"}, "format"),
        ("/stock", {"group_by": "structure"}, "group_by"),
        ("/stock", {"cohort_from": "2025-03"}, "cohort_from"),
        ("/rio", {"period_from": "2025-06-01", "period_to": "2025-05-31"}, "period_to"),
    ],
)
def test_arguments_are_validated(client, world, path, params, field):
    response = call(api_as(client, world.manager), path, **params)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_default_cohort_is_the_last_twelve_months(client, world):
    report = fetch(client, world.manager, as_of="2025-06-30")
    assert (report["cohort_from"], report["cohort_to"]) == ("2024-07-01", "2025-06-30")
    # A1-A9, B1-B8 (June cases included now).
    assert report["groups"][0]["cases"] == 17


def test_endpoints_are_in_the_openapi_document(client, world):
    spec = client.get("/api/v1/openapi.json").get_json()
    for path in ("", "/km", "/stock", "/rio"):
        operation = spec["paths"][f"/api/v1/indicators/orientation{path}"]["get"]
        assert "text/csv" in operation["responses"]["200"]["content"]
        assert "application/json" in operation["responses"]["200"]["content"]
        names = {p["name"] for p in operation["parameters"]}
        assert {"as_of", "territory_id", "public", "format"} <= names


# --- one statement per indicator ---------------------------------------------------------


@pytest.fixture
def statements(app: Any) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    assert db.engine is not None
    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def _count_statements(client: Any, agent: Any, statements: list[str]) -> dict[str, tuple[int, int]]:
    """(all statements, statements reading orientation data) of one request per endpoint."""
    counts = {}
    caller = api_as(client, agent)
    for path, params in (
        ("", {**COHORT, "group_by": "month"}),
        ("/km", {**COHORT, "group_by": "structure"}),
        ("/stock", {"as_of": AS_OF.isoformat(), "group_by": "ctm"}),
        ("/rio", {**PERIOD, "group_by": "ctm"}),
    ):
        statements.clear()
        assert call(caller, path, **params).status_code == 200
        figures = [s for s in statements if "orientation_cases" in s or "rio_" in s]
        counts[path] = (len(statements), len(figures))
    return counts


def test_the_number_of_sql_statements_does_not_depend_on_the_data(client, world, statements):
    before = _count_statements(client, world.admin, statements)
    # Many more cases, months, territories and structures.
    for month in range(1, 6):
        for code in (VILLEURBANNE, RHONE_AMONT, LYON, "CTM-VAL-DE-SAONE"):
            for spec in list(CASES.values())[:8]:
                started = spec.started.replace(month=month, day=min(spec.started.day, 28))
                moved = CaseSpec(
                    code,
                    started,
                    started + (spec.notified - spec.started) if spec.notified else None,
                    public=spec.public,
                    decision=spec.decision,
                )
                add_case(moved, world.policy, world.structures)
    after = _count_statements(client, world.admin, statements)
    assert after == before
    # One statement computes the figures of each endpoint, whatever the groups.
    assert {figures for _total, figures in after.values()} == {1}


# --- PostgreSQL: the portable percentiles equal percentile_cont ------------------------------


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="percentile_cont is a PostgreSQL aggregate")
def test_percentiles_equal_postgresql_percentile_cont(client, world):
    ids = [world.cases[name].id for name in ("A1", "A2", "A3", "A6", "A7", "B1", "B3")]
    expected = db.session.execute(
        text(
            "SELECT percentile_cont(ARRAY[0.5, 0.75, 0.9]) WITHIN GROUP "
            "(ORDER BY notified_on - clock_started_on - paused_days) "
            "FROM orientation_cases WHERE id = ANY(:ids)"
        ),
        {"ids": ids},
    ).scalar_one()
    [group] = fetch(client, world.manager, **COHORT)["groups"]
    assert [group["delay"][k] for k in ("median", "p75", "p90")] == pytest.approx(expected)
