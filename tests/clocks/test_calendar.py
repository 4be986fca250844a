"""Legal day counting: durations, Paris dates, paused clocks, French working days."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spie.clocks.calendar import (
    Duration,
    Pause,
    add_duration,
    business_days_between,
    deadline,
    elapsed_days,
    is_working_day,
    paris_date,
    parse_duration,
    working_days_before,
)

D = dt.date
UTC = dt.UTC

settings.register_profile("spie-clocks", database=None, deadline=None, max_examples=200)
settings.load_profile("spie-clocks")


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("6w", Duration(6, "w")),
        ("2m", Duration(2, "m")),
        ("1m", Duration(1, "m")),
        ("15d", Duration(15, "d")),
        ("12m", Duration(12, "m")),
        ("0d", Duration(0, "d")),
    ],
)
def test_parse_duration(text: str, expected: Duration) -> None:
    assert Duration.parse(text) == expected
    assert parse_duration(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize("text", ["", "6", "w", "6W", "-1d", "6y", "1.5m", " 6w", "6w ", "6 w"])
def test_parse_duration_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="durée invalide"):
        Duration.parse(text)


def test_duration_rejects_bad_fields() -> None:
    with pytest.raises(ValueError, match="durée invalide"):
        Duration(-1, "d")
    with pytest.raises(ValueError, match="unité"):
        Duration(1, "y")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        (D(2025, 1, 10), "6w", D(2025, 2, 21)),
        (D(2024, 12, 31), "2m", D(2025, 2, 28)),
        (D(2024, 1, 31), "1m", D(2024, 2, 29)),
        (D(2024, 2, 29), "12m", D(2025, 2, 28)),
        (D(2025, 1, 20), "15d", D(2025, 2, 4)),
        (D(2025, 3, 15), "0d", D(2025, 3, 15)),
    ],
)
def test_add_duration(start: dt.date, duration: str, expected: dt.date) -> None:
    assert add_duration(start, Duration.parse(duration)) == expected


# --------------------------------------------------------------------------- Paris dates


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (dt.datetime(2025, 3, 30, 22, 30, tzinfo=UTC), D(2025, 3, 31)),  # summer time: UTC+2
        (dt.datetime(2025, 3, 29, 22, 30, tzinfo=UTC), D(2025, 3, 29)),  # winter time: UTC+1
        (dt.datetime(2025, 1, 15, 23, 0, tzinfo=UTC), D(2025, 1, 16)),
        (dt.datetime(2025, 10, 25, 22, 0, tzinfo=UTC), D(2025, 10, 26)),
        (dt.datetime(2025, 10, 26, 22, 59, tzinfo=UTC), D(2025, 10, 26)),
        (dt.datetime(2025, 6, 1, 8, 0, tzinfo=ZoneInfo("America/Cayenne")), D(2025, 6, 1)),
        (dt.datetime(2025, 6, 1, 23, 0, tzinfo=ZoneInfo("America/Cayenne")), D(2025, 6, 2)),
    ],
)
def test_paris_date(moment: dt.datetime, expected: dt.date) -> None:
    assert paris_date(moment) == expected


def test_paris_date_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="fuseau"):
        paris_date(dt.datetime(2025, 3, 30, 22, 30))  # noqa: DTZ001


# --------------------------------------------------------------------------- paused clocks

SIX_WEEKS = Duration(6, "w")
START = D(2025, 1, 10)
DUE = D(2025, 2, 21)


def test_deadline_without_pause() -> None:
    assert deadline(START, SIX_WEEKS, []) == DUE
    assert deadline(START, SIX_WEEKS) == DUE


def test_pause_extends_the_deadline_by_its_length() -> None:
    ten_days: Pause = (D(2025, 1, 20), D(2025, 1, 30))
    assert deadline(START, SIX_WEEKS, [ten_days]) == DUE + dt.timedelta(days=10)


def test_several_pauses_add_up_and_overlaps_count_once() -> None:
    pauses: list[Pause] = [
        (D(2025, 2, 1), D(2025, 2, 4)),  # 3 days
        (D(2025, 1, 20), D(2025, 1, 30)),  # 10 days (unsorted on purpose)
        (D(2025, 1, 25), D(2025, 2, 2)),  # overlaps both: union 20/01 → 04/02 = 15 days
    ]
    assert deadline(START, SIX_WEEKS, pauses) == DUE + dt.timedelta(days=15)


def test_pause_before_start_is_ignored_and_straddling_pause_is_clipped() -> None:
    assert deadline(START, SIX_WEEKS, [(D(2024, 12, 1), D(2025, 1, 5))]) == DUE
    # paused from 2025-01-01 to 2025-01-15: only 10..14 January (5 days) were clock days
    assert deadline(START, SIX_WEEKS, [(D(2025, 1, 1), D(2025, 1, 15))]) == D(2025, 2, 26)


def test_pause_after_the_deadline_does_not_move_it() -> None:
    assert deadline(START, SIX_WEEKS, [(DUE, D(2025, 3, 10))]) == DUE
    assert deadline(START, SIX_WEEKS, [(D(2025, 3, 1), D(2025, 3, 10))]) == DUE


def test_pause_running_past_the_original_deadline() -> None:
    # 5 running days (10..14 Jan), paused until 1 March, then the 37 remaining days
    assert deadline(START, SIX_WEEKS, [(D(2025, 1, 15), D(2025, 3, 1))]) == D(2025, 4, 7)


def test_open_pause_means_no_deadline() -> None:
    assert deadline(START, SIX_WEEKS, [(D(2025, 1, 20), None)]) is None
    assert deadline(START, SIX_WEEKS, [(D(2025, 1, 20), D(2025, 1, 25)), (DUE, None)]) is None


def test_inverted_pause_is_rejected() -> None:
    with pytest.raises(ValueError, match="pause invalide"):
        deadline(START, SIX_WEEKS, [(D(2025, 1, 20), D(2025, 1, 19))])
    with pytest.raises(ValueError, match="pause invalide"):
        elapsed_days(START, DUE, [(D(2025, 1, 20), D(2025, 1, 19))])


def test_elapsed_days_counts_running_days_only() -> None:
    assert elapsed_days(START, START) == 0
    assert elapsed_days(START, D(2025, 1, 1)) == 0
    assert elapsed_days(START, DUE) == 42
    pauses: list[Pause] = [(D(2025, 1, 20), D(2025, 1, 30))]
    assert elapsed_days(START, D(2025, 1, 25), pauses) == 10
    assert elapsed_days(START, D(2025, 1, 30), pauses) == 10
    assert elapsed_days(START, D(2025, 2, 1), pauses) == 12
    assert elapsed_days(START, D(2025, 2, 1), [(D(2025, 1, 20), None)]) == 10


# --------------------------------------------------------------------------- properties

dates = st.dates(min_value=D(2015, 1, 1), max_value=D(2035, 12, 31))
durations = st.builds(
    Duration, st.integers(min_value=0, max_value=24), st.sampled_from(["d", "w", "m"])
)


@st.composite
def closed_pauses(draw: st.DrawFn, start: dt.date) -> list[Pause]:
    pauses: list[Pause] = []
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        begin = start + dt.timedelta(days=draw(st.integers(min_value=-60, max_value=400)))
        length = draw(st.integers(min_value=0, max_value=120))
        pauses.append((begin, begin + dt.timedelta(days=length)))
    return pauses


@given(data=st.data(), start=dates, limit=durations)
def test_deadline_is_never_before_the_unpaused_deadline(
    data: st.DataObject, start: dt.date, limit: Duration
) -> None:
    pauses = data.draw(closed_pauses(start))
    due = deadline(start, limit, pauses)
    assert due is not None
    assert due >= add_duration(start, limit)
    # the clock has run exactly the limit's days on its deadline
    assert elapsed_days(start, due, pauses) == (add_duration(start, limit) - start).days


@given(data=st.data(), start=dates, offsets=st.lists(st.integers(0, 800), min_size=2, max_size=6))
def test_elapsed_days_is_monotonic(data: st.DataObject, start: dt.date, offsets: list[int]) -> None:
    pauses = data.draw(closed_pauses(start))
    if data.draw(st.booleans()):
        pauses.append((start + dt.timedelta(days=data.draw(st.integers(0, 500))), None))
    days = [elapsed_days(start, start + dt.timedelta(days=o), pauses) for o in sorted(offsets)]
    assert days == sorted(days)
    assert all(0 <= n <= o for n, o in zip(days, sorted(offsets), strict=True))


# --------------------------------------------------------------------------- working days


def test_working_days_skip_weekends_and_public_holidays() -> None:
    assert working_days_before(D(2025, 5, 12), 2) == D(2025, 5, 7)  # 8 May is a holiday
    assert working_days_before(D(2025, 5, 12), 1) == D(2025, 5, 9)
    assert working_days_before(D(2025, 5, 12), 0) == D(2025, 5, 12)
    assert working_days_before(D(2025, 7, 15), 1) == D(2025, 7, 11)  # 14 July, weekend
    assert working_days_before(D(2026, 1, 2), 1) == D(2025, 12, 31)  # across the year


def test_working_days_before_rejects_negative_counts() -> None:
    with pytest.raises(ValueError, match="positif"):
        working_days_before(D(2025, 5, 12), -1)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (D(2025, 5, 7), True),
        (D(2025, 5, 8), False),  # Victoire 1945
        (D(2025, 5, 10), False),  # Saturday
        (D(2025, 5, 11), False),  # Sunday
        (D(2025, 6, 9), False),  # lundi de Pentecôte
        (D(2025, 7, 14), False),
        (D(2025, 12, 25), False),
        (D(2025, 12, 26), True),  # Saint-Étienne is only a holiday in Alsace-Moselle
    ],
)
def test_is_working_day(day: dt.date, working: bool) -> None:
    assert is_working_day(day) is working


def test_business_days_between() -> None:
    # Monday 5 May → Monday 12 May 2025: 5, 6, 7, 9 (8 May is a holiday)
    assert business_days_between(D(2025, 5, 5), D(2025, 5, 12)) == 4
    assert business_days_between(D(2025, 5, 12), D(2025, 5, 5)) == -4
    assert business_days_between(D(2025, 5, 10), D(2025, 5, 12)) == 0
    assert business_days_between(D(2025, 5, 12), D(2025, 5, 12)) == 0


@given(day=dates, n=st.integers(min_value=1, max_value=30))
def test_working_days_before_is_consistent_with_counting(day: dt.date, n: int) -> None:
    earlier = working_days_before(day, n)
    assert is_working_day(earlier)
    assert earlier < day
    assert business_days_between(earlier, day) == n
