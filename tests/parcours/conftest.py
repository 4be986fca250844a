from __future__ import annotations

import pytest

from tests.parcours.factories import Clock, seed_rules


@pytest.fixture
def rules(app):
    seed_rules()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)
