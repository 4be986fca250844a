"""Read ahead: the items of an iterator produced by a thread while the consumer works.

For file imports whose parsing is pure Python (France Travail CSV): the consumer spends a
good part of each batch waiting for PostgreSQL, with the GIL released, and the parsing of the
next lines fits there. The producer thread only touches the iterator (and the file behind it);
it never uses the database session.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(
    items: Iterator[T], *, chunk: int = 1000, depth: int = 8
) -> Generator[T, None, None]:
    """The items of ``items`` in order, produced ``chunk`` at a time by a thread that stays at
    most ``depth`` chunks ahead. An exception of the iterator is raised here, where its item
    would have come. Closing the returned generator stops the thread (use it in a ``with
    contextlib.closing(...)`` when the loop can stop early)."""
    pending: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value: object) -> bool:
        while not stop.is_set():
            try:
                pending.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        batch: list[T] = []
        try:
            for item in items:
                batch.append(item)
                if len(batch) >= chunk:
                    if not put(batch):
                        return
                    batch = []
            if batch and not put(batch):
                return
            put(_DONE)
        except BaseException as error:  # handed to the consumer, after the items before it
            if not batch or put(batch):
                put(_Failure(error))

    thread = threading.Thread(target=produce, name="spie-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            got = pending.get()
            if got is _DONE:
                return
            if isinstance(got, _Failure):
                raise got.error
            yield from got  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
