"""Garbage-collector settings for bulk work (file imports).

CPython's cyclic collector runs every 700 net allocations and, every so often, walks *every*
tracked object: the whole application (SQLAlchemy metadata, Flask, marshmallow schemas...)
plus the batch in flight. An import allocates millions of short-lived objects, which reference
counting frees anyway; the collector's walks cost it about a fifth of its CPU (4 of 20 s for a
100,000-household CAF flow). During bulk work, the objects that exist when it starts are
frozen (never walked again) and young collections run every 50,000 allocations: cycles are
still collected, so memory stays bounded.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

BULK_THRESHOLD = (50_000, 20, 20)


def tune_for_bulk_work() -> None:
    """For a process that does nothing else until it exits (the CAF parsing child)."""
    gc.freeze()
    gc.set_threshold(*BULK_THRESHOLD)


@contextmanager
def bulk_gc() -> Iterator[None]:
    """The bulk settings for the duration of the block, then the previous ones (a worker
    process goes on with other jobs)."""
    previous = gc.get_threshold()
    was_frozen = gc.get_freeze_count()
    tune_for_bulk_work()
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        if not was_frozen:
            gc.unfreeze()
