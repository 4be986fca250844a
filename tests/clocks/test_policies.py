"""Delay policies as data: the seed, the policy in force, overlaps."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from spie.clocks.models import ClockKind, DelayPolicy
from spie.clocks.policies import SEED_POLICIES
from spie.clocks.services import (
    create_policy,
    due_dates,
    policy_in_force,
    seed_delay_policies,
    update_policy,
)
from spie.db import db
from spie.errors import Conflict, NotFound, ValidationFailed

D = dt.date


@pytest.fixture
def seeded(app):
    return seed_delay_policies()


def test_seed_creates_every_regime_once(seeded):
    assert seeded == {"created": len(SEED_POLICIES), "kept": 0}
    assert seed_delay_policies() == {"created": 0, "kept": len(SEED_POLICIES)}
    assert db.session.scalar(select(func.count(DelayPolicy.id))) == len(SEED_POLICIES)
    clocks = set(db.session.scalars(select(DelayPolicy.clock)))
    assert clocks == set(ClockKind)


@pytest.mark.parametrize(
    ("clock", "on", "legal", "target", "extended"),
    [
        (ClockKind.ORIENTATION, D(2024, 12, 31), "2m", "2m", None),
        (ClockKind.ORIENTATION, D(2025, 1, 1), "6w", "2m", None),
        (ClockKind.PATHWAY_ENTRY, D(2025, 6, 1), None, "15d", None),
        (ClockKind.CONTRACT, D(2024, 6, 1), "1m", None, "2m"),
        (ClockKind.CONTRACT, D(2025, 6, 1), "1m", None, None),
        (ClockKind.SOCIAL_REVIEW, D(2025, 6, 1), "6m", None, "12m"),
        (ClockKind.CONTRACT_RENEWAL, D(2025, 6, 1), None, "30d", None),
        (ClockKind.REFERENT_GAP, D(2025, 6, 1), None, "15d", None),
    ],
)
def test_the_policy_in_force_on_a_day(seeded, clock, on, legal, target, extended):
    policy = policy_in_force(clock, on)
    assert (policy.legal_limit, policy.target, policy.extended_limit) == (legal, target, extended)


def test_no_policy_before_the_rsa_is_a_precise_error(seeded):
    with pytest.raises(NotFound) as caught:
        policy_in_force(ClockKind.ORIENTATION, D(2009, 5, 31))
    assert caught.value.code == "no_delay_policy"
    assert caught.value.extra == {"clock": "orientation", "on": "2009-05-31"}


def test_due_dates_follow_the_policy_and_the_pauses(seeded):
    policy = policy_in_force(ClockKind.ORIENTATION, D(2025, 3, 3))
    assert due_dates(policy, D(2025, 3, 3)) == (D(2025, 4, 14), D(2025, 5, 3))
    assert due_dates(policy, D(2025, 3, 3), [(D(2025, 3, 10), D(2025, 3, 17))]) == (
        D(2025, 4, 21),
        D(2025, 5, 10),
    )
    assert due_dates(policy, D(2025, 3, 3), [(D(2025, 3, 10), None)]) == (None, None)
    old = policy_in_force(ClockKind.ORIENTATION, D(2024, 12, 31))
    assert due_dates(old, D(2024, 12, 31)) == (D(2025, 2, 28), D(2025, 2, 28))


def test_an_overlapping_policy_is_refused_and_nothing_is_stored(seeded):
    with pytest.raises(Conflict) as caught:
        create_policy(
            {
                "clock": ClockKind.ORIENTATION,
                "legal_limit": "4w",
                "valid_from": D(2024, 6, 1),
                "valid_until": D(2024, 9, 1),
                "label": "chevauchement",
            }
        )
    assert caught.value.code == "policy_overlap"
    assert "2009-06-01" in caught.value.detail
    assert db.session.scalar(select(func.count(DelayPolicy.id))) == len(SEED_POLICIES)


def test_adjacent_periods_do_not_overlap(seeded):
    current = policy_in_force(ClockKind.CONTRACT, D(2026, 1, 1))
    update_policy(current, {"valid_until": D(2027, 1, 1)})
    created = create_policy(
        {
            "clock": ClockKind.CONTRACT,
            "legal_limit": "3w",
            "valid_from": D(2027, 1, 1),
            "label": "Contrat 2027",
        }
    )
    assert policy_in_force(ClockKind.CONTRACT, D(2026, 12, 31)) is current
    assert policy_in_force(ClockKind.CONTRACT, D(2027, 1, 1)) is created
    # The seed does not put a shipped regime back over the administrator's choice.
    assert seed_delay_policies()["created"] == 0


def test_a_policy_needs_a_limit_or_a_target(seeded):
    with pytest.raises(ValidationFailed) as caught:
        create_policy(
            {"clock": ClockKind.REFERENT_GAP, "valid_from": D(2030, 1, 1), "label": "vide"}
        )
    assert list(caught.value.errors or {}) == ["legal_limit"]


def test_reopening_a_closed_period_over_a_newer_policy_is_refused(seeded):
    old = policy_in_force(ClockKind.ORIENTATION, D(2024, 1, 1))
    with pytest.raises(Conflict) as caught:
        update_policy(old, {"valid_until": None})
    assert caught.value.code == "policy_overlap"
    assert old.valid_until == D(2025, 1, 1)
