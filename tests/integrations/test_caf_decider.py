"""The child's memory of recently kept household keys (a repeated key is never skipped while
an earlier occurrence may still be waiting to be applied), pruned in position order."""

from __future__ import annotations

from spie.integrations.caf.scanner import KEEP, Scanned
from spie.integrations.caf.sources import Decider


def scanned(position: int, matricule: str) -> Scanned:
    return Scanned(
        position=position,
        numorg="691",
        matricule=matricule,
        digest=b"d" * 16,
        segment=b"",
        lines=0,
    )


def decider(span: int) -> Decider:
    # No reader: no flow date, so no database lookup; every household is kept.
    return Decider(lambda: None, 0, lambda bumps, dtref: None, recent_span=span)


def test_keys_older_than_the_span_are_forgotten_in_order() -> None:
    memory = decider(3)
    decisions = memory([scanned(p, m) for p, m in enumerate("ABCDE", start=1)])
    assert decisions == [KEEP] * 5
    # Horizon 5 - 3 = 2: only A (position 1) is older.
    assert memory.recent == {("691", m): p for p, m in enumerate("ABCDE", start=1) if p >= 2}


def test_a_key_kept_again_is_remembered_from_its_last_position() -> None:
    memory = decider(3)
    memory([scanned(p, m) for p, m in enumerate("ABCDE", start=1)])
    memory([scanned(6, "B"), scanned(7, "F")])
    # Horizon 7 - 3 = 4: C (3) goes; B was kept again at 6, its entry at 2 is stale.
    assert memory.recent == {("691", "B"): 6, ("691", "D"): 4, ("691", "E"): 5, ("691", "F"): 7}


def test_forget_upto_a_committed_position() -> None:
    memory = decider(100)
    memory([scanned(1, "A"), scanned(2, "B"), scanned(3, "A")])
    memory.forget_upto(2)
    assert memory.recent == {("691", "A"): 3}
    memory.forget_upto(3)
    assert memory.recent == {}
