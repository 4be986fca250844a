"""The read-ahead thread of file imports: same items, same errors, stops when closed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import closing

import pytest

from spie.integrations.readahead import read_ahead


def test_items_come_in_order_across_chunks() -> None:
    assert list(read_ahead(iter(range(2_503)), chunk=100, depth=2)) == list(range(2_503))
    assert list(read_ahead(iter([]))) == []


def test_an_error_of_the_iterator_comes_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield from range(5)
        raise ValueError("broken at 5")

    got: list[int] = []
    with pytest.raises(ValueError, match="broken at 5"):
        got.extend(read_ahead(items(), chunk=2))
    assert got == [0, 1, 2, 3, 4]


def test_closing_early_stops_the_producer() -> None:
    produced: list[int] = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    before = threading.active_count()
    with closing(read_ahead(endless(), chunk=10, depth=2)) as ahead:
        assert [next(ahead) for _ in range(15)] == list(range(15))
    assert threading.active_count() == before  # the thread has ended
    assert len(produced) <= 10 * (2 + 3)  # never more than a few chunks ahead
