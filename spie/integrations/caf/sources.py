"""Where the importer's households come from: parsed here, or parsed by a child process.

Both sources give the same thing — the flow header, then :class:`Item` s (original position,
household or record error, fingerprint) in file order — and know which positions the byte
filter skipped (:meth:`skipped_upto`), where the file broke, and how many households it had.

- :class:`LocalSource`: the :class:`FilteringReader` and the parser in this process.
- :class:`PipedSource`: the same in a forked child process that sends the items through a
  bounded queue, so that parsing (CPU in the child) overlaps the database work (CPU in this
  process and in PostgreSQL) on a multi-core machine. The child opens its own read-only
  database connection for the fingerprint lookups; the bumps it decides (unchanged households
  of a newer flow) are sent back and written by this process, in its batch transaction. The
  child reads the file from a path: a file stored in the database is first spooled to a
  temporary file by this process (within the job: nothing stays on disk afterwards). The child
  dies with its parent (``PR_SET_PDEATHSIG`` and a parent check).

Messages never carry personal data beyond what the items themselves hold, and stay in memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import os
import queue
import signal
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from spie.common.gc_tuning import tune_for_bulk_work
from spie.integrations import bulk
from spie.integrations.caf.parser import (
    CafHousehold,
    CafRecordError,
    FlowHeader,
    MalformedFileError,
    UnsafeFileError,
    from_import_values,
    import_values,
    iter_caf_flow,
)
from spie.integrations.caf.scanner import (
    DROP,
    KEEP,
    SKIP,
    FilteringReader,
    ScanMismatchError,
    Scanned,
    fingerprint,
)
from spie.persons.models import Household

HOUSEHOLDS: Table = Household.__table__  # type: ignore[assignment]
_LINE_SUFFIX = " (line "
CHUNK = 250  # items per message
QUEUE_SIZE = 16  # messages in flight
# The child never lets a repeated household key be skipped while an earlier occurrence may
# still be waiting to be applied: keys are remembered for this many positions.
RECENT_SPAN = 4 * (CHUNK * QUEUE_SIZE) + 20_000


@dataclass(slots=True)
class Item:
    position: int  # in the original file, from 1
    household: CafHousehold | None
    error: CafRecordError | None
    digest: bytes | None


@dataclass(slots=True)
class Broken:
    code: str
    message: str  # with the original file's line
    position: int


class SourceRefusedError(Exception):
    """The whole file is refused (unsafe, or no usable header)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Bumps = list[int]  # ids of unchanged households seen in a newer flow


class Decider:
    """KEEP / SKIP / DROP for a window of households cut by the reader (see the scanner)."""

    def __init__(
        self,
        session: Callable[[], Any],
        resume: int,
        on_bumps: Callable[[Bumps, dt.date], None],
        recent_span: int | None = None,
    ) -> None:
        self._session = session
        self.resume = resume
        self._on_bumps = on_bumps
        self._recent_span = recent_span
        self.recent: dict[tuple[str, str], int] = {}  # key -> position where last kept
        self._kept_order: deque[tuple[int, tuple[str, str]]] = deque()
        self.reader: FilteringReader | None = None

    def __call__(self, batch: list[Scanned]) -> list[int]:
        reader = self.reader
        dtref: dt.date | None = None
        if reader is not None and reader.dtref:
            with contextlib.suppress(ValueError):
                dtref = dt.date.fromisoformat(reader.dtref)
        keys = {
            (s.numorg, s.matricule)
            for s in batch
            if s.position > self.resume and s.numorg and s.matricule
        }
        stored: dict[tuple[str, str], Any] = {}
        if keys and dtref is not None:
            for found in self._session().execute(
                select(
                    HOUSEHOLDS.c.id,
                    HOUSEHOLDS.c.caf_numorg,
                    HOUSEHOLDS.c.caf_matricule,
                    HOUSEHOLDS.c.caf_content_hash,
                    HOUSEHOLDS.c.last_flow_on,
                ).where(
                    bulk.in_values(
                        HOUSEHOLDS.c.caf_matricule, {matricule for _n, matricule in keys}
                    ),
                    HOUSEHOLDS.c.caf_content_hash.is_not(None),
                    HOUSEHOLDS.c.last_flow_on.is_not(None),
                )
            ):
                key = (found.caf_numorg, found.caf_matricule)
                if key in keys:
                    stored[key] = found
        decisions: list[int] = []
        bumps: Bumps = []
        for scanned in batch:
            if scanned.position <= self.resume:
                decisions.append(DROP)
                continue
            key = (scanned.numorg or "", scanned.matricule or "")
            row = stored.get(key)
            decision = KEEP
            if row is not None and dtref is not None and key not in self.recent:
                if row.last_flow_on > dtref:
                    decision = SKIP  # an older flow never overwrites
                elif bytes(row.caf_content_hash) == scanned.digest:
                    decision = SKIP
                    if row.last_flow_on < dtref:
                        bumps.append(row.id)
            if decision == KEEP and scanned.numorg and scanned.matricule:
                self.recent[key] = scanned.position
                self._kept_order.append((scanned.position, key))
            decisions.append(decision)
        if bumps and dtref is not None:
            self._on_bumps(bumps, dtref)
        if self._recent_span is not None and batch:
            self._forget_before(batch[-1].position - self._recent_span)
        return decisions

    def forget_upto(self, position: int) -> None:
        self._forget_before(position + 1)

    def _forget_before(self, horizon: int) -> None:
        """Forget the keys last kept before ``horizon``, oldest first: this costs what it
        removes (a scan of the whole dict per window cost 2 s per 100,000 households)."""
        order = self._kept_order
        recent = self.recent
        while order and order[0][0] < horizon:
            position, key = order.popleft()
            if recent.get(key) == position:  # not kept again since
                del recent[key]


def located(exc: MalformedFileError, reader: FilteringReader | None) -> str:
    """The parser's message, with the line number of the original file."""
    message = exc.message
    if reader is None or exc.line is None:
        return message
    line = reader.original_line(exc.line)
    if line == exc.line:
        return message
    cut = message.rfind(_LINE_SUFFIX)
    if cut >= 0:
        message = message[:cut]
    where = f"line {line}" if exc.column is None else f"line {line}, column {exc.column}"
    return f"{message} ({where})"


class LocalSource:
    """The filter and the parser in this process."""

    def __init__(self, raw: BinaryIO, decider: Decider | None, resume: int) -> None:
        self.reader = FilteringReader(raw, decider) if decider is not None else None
        if decider is not None:
            decider.reader = self.reader
        self.resume = resume
        self.broken: Broken | None = None
        self.total = 0
        self.expected_count: int | None = None
        try:
            if self.reader is not None:
                self._flow = iter_caf_flow(self.reader, self.reader.next_segment)  # type: ignore[arg-type]
            else:
                self._flow = iter_caf_flow(raw)
        except UnsafeFileError as exc:
            raise SourceRefusedError(f"unsafe_{exc.code}", exc.message) from None
        except MalformedFileError as exc:
            raise SourceRefusedError(exc.code, located(exc, self.reader)) from None
        self.header: FlowHeader = self._flow.header

    def __iter__(self) -> Iterator[Item]:
        reader = self.reader
        flow = self._flow
        try:
            for parsed in flow:
                if reader is not None:
                    original, _numorg, matricule, digest = reader.next_kept(parsed.position)
                    seen = (
                        parsed.matricule
                        if isinstance(parsed, CafHousehold)
                        else parsed.keys.get("matricule")
                    )
                    if matricule is not None and seen is not None and matricule != seen:
                        raise ScanMismatchError("household keys differ: reader and parser")
                else:
                    original, digest = parsed.position, None
                    if original <= self.resume:
                        continue  # committed by an interrupted attempt
                if isinstance(parsed, CafHousehold):
                    yield Item(original, parsed, None, digest)
                else:
                    yield Item(original, None, parsed, digest)
        except MalformedFileError as exc:
            position = reader.next_position() if reader else flow.read_count + 1
            self.broken = Broken(exc.code, located(exc, reader), position)
            return
        self.total = (reader.skipped_total if reader else 0) + flow.read_count
        self.expected_count = flow.expected_count

    def skipped_upto(self, position: int) -> int:
        return self.reader.pop_skipped_upto(position) if self.reader is not None else 0

    def close(self) -> None:
        self._flow.close()


# ------------------------------------------------------------------------- child process


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _strip(item: Item) -> tuple[Any, ...]:
    """A picklable, compact item: households without their raw XML (only rejects need it)."""
    if item.household is not None:
        household = item.household
        digest = item.digest or fingerprint(b"raw:" + household.raw_fragment.encode())
        # Without a NUMORG the importer rejects the household: it keeps the fragment.
        return (
            "h",
            item.position,
            digest,
            import_values(household, keep_raw=not household.numorg),
        )
    error = item.error
    if error is None:  # pragma: no cover - an item is one or the other
        raise ValueError("empty item")
    return (
        "e",
        item.position,
        item.digest,
        (error.code, error.message, error.position, dict(error.keys), error.raw_fragment),
    )


def _child(path: str, database_url: str, resume: int, use_scan: bool, out: Any) -> None:
    """Body of the parsing process (forked): parse ``path``, send messages on ``out``."""
    _die_with_parent()
    tune_for_bulk_work()
    parent = os.getppid()

    def send(message: tuple[Any, ...]) -> None:
        while True:
            try:
                out.put(message, timeout=1.0)
                return
            except queue.Full:
                if os.getppid() != parent:
                    os._exit(1)

    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    # One connection for the whole parse (a new one per window cost a connection start-up
    # each time); each chunk still ends its transaction.
    engine = create_engine(database_url, poolclass=StaticPool)
    session = Session(bind=engine)
    try:
        decider = (
            Decider(
                lambda: session,
                resume,
                lambda bumps, dtref: send(("bumps", bumps, dtref)),
                recent_span=RECENT_SPAN,
            )
            if use_scan
            else None
        )
        with Path(path).open("rb") as raw:
            try:
                source = LocalSource(raw, decider, resume)
            except SourceRefusedError as exc:
                send(("refused", exc.code, exc.message))
                return
            send(("header", source.header))
            chunk: list[tuple[Any, ...]] = []
            for item in source:
                chunk.append(_strip(item))
                if len(chunk) >= CHUNK:
                    _flush(send, chunk, source)
                    chunk = []
                    session.rollback()  # no long-running transaction on our side
            _flush(send, chunk, source)
            if source.broken is not None:
                broken = source.broken
                send(("broken", broken.code, broken.message, broken.position))
            else:
                send(("end", source.total, source.expected_count))
    except ScanMismatchError:
        send(("mismatch",))
    except Exception as exc:  # reported to the parent, which fails the run
        send(("failed", type(exc).__name__))
    finally:
        session.close()
        engine.dispose()


def _flush(send: Callable[[tuple[Any, ...]], None], chunk: list[Any], source: LocalSource) -> None:
    """Send the items, preceded by the ranges the reader skipped so far."""
    if source.reader is not None:
        ranges = source.reader.take_skipped()
        if ranges:
            send(("skipped", ranges))
    if chunk:
        send(("items", chunk))


class PipedSource:
    """The filter and the parser in a child process (see the module docstring)."""

    def __init__(
        self,
        path: str,
        database_url: str,
        resume: int,
        use_scan: bool,
        on_bumps: Callable[[Bumps, dt.date], None],
    ) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self._queue: Any = context.Queue(maxsize=QUEUE_SIZE)
        self._process = context.Process(
            target=_child,
            args=(path, database_url, resume, use_scan, self._queue),
            daemon=True,
            name="spie-caf-parser",
        )
        self._process.start()
        self._on_bumps = on_bumps
        self._skipped: deque[list[int]] = deque()
        self.broken: Broken | None = None
        self.total = 0
        self.expected_count: int | None = None
        first = self._receive()
        if first[0] == "refused":
            self.close()
            raise SourceRefusedError(first[1], first[2])
        if first[0] != "header":
            self.close()
            self._raise(first)
        self.header: FlowHeader = first[1]

    def _receive(self) -> tuple[Any, ...]:
        while True:
            try:
                message: tuple[Any, ...] = self._queue.get(timeout=1.0)
            except queue.Empty:
                if not self._process.is_alive():
                    raise RuntimeError("the CAF parsing process died") from None
                continue
            if message[0] == "bumps":
                self._on_bumps(message[1], message[2])
                continue
            if message[0] == "skipped":
                for first, last in message[1]:
                    if self._skipped and self._skipped[-1][1] == first - 1:
                        self._skipped[-1][1] = last
                    else:
                        self._skipped.append([first, last])
                continue
            return message

    @staticmethod
    def _raise(message: tuple[Any, ...]) -> None:
        if message[0] == "mismatch":
            raise ScanMismatchError("household keys differ: reader and parser")
        raise RuntimeError(
            f"CAF parsing process: {message[0]} {message[1:] if message[0] == 'failed' else ''}"
        )

    def __iter__(self) -> Iterator[Item]:
        while True:
            message = self._receive()
            kind = message[0]
            if kind == "items":
                for entry in message[1]:
                    if entry[0] == "h":
                        yield Item(entry[1], from_import_values(entry[3]), None, entry[2])
                    else:
                        code, text, position, keys, raw = entry[3]
                        error = CafRecordError(
                            code, text, position=position, keys=keys, raw_fragment=raw
                        )
                        yield Item(entry[1], None, error, entry[2])
            elif kind == "end":
                self.total, self.expected_count = message[1], message[2]
                return
            elif kind == "broken":
                self.broken = Broken(message[1], message[2], message[3])
                return
            else:
                self._raise(message)

    def skipped_upto(self, position: int) -> int:
        count = 0
        while self._skipped and self._skipped[0][0] <= position:
            first, last = self._skipped[0]
            if last <= position:
                count += last - first + 1
                self._skipped.popleft()
            else:
                count += position - first + 1
                self._skipped[0][0] = position + 1
        return count

    def close(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join(timeout=5)
        self._queue.close()
        self._queue.join_thread()
