"""Byte-level pre-filter of a CAF flow, between the file and the XML parser.

The parser (``parser.py``) builds every household it reads; re-importing a flow whose
households have not changed would cost a full parse. This reader passes the file's bytes
through to the parser but cuts them into households (``<InfosFoyerRSA>`` ...
``</InfosFoyerRSA>``) and, a window of households at a time, asks ``decide`` which ones to
drop: unchanged since the last import (same SHA-256/128 of the bytes, same or older DTREF),
older than what is already applied, or already committed by an interrupted run (resume). Each
household kept is fingerprinted and remembered in order, so that the importer knows, for the
parser's n-th household, its position in the original file, its key and its fingerprint.

Dropping whole elements from the root keeps the document well-formed; every safety check
(DTD, entities, encoding, syntax) is still the parser's, on the bytes it receives. The reader
gives up filtering (``passthrough``: every remaining byte is passed on, positions continue
in order) as soon as anything looks unusual: a comment, CDATA or markup declaration
(``<!``), text between two households, an encoding that is not ASCII-compatible (no
household found where the parser will see some is caught by the importer's key check).
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

START = b"<InfosFoyerRSA>"
END = b"</InfosFoyerRSA>"
_RAW_CHUNK = 1024 * 1024
_FILL_TARGET = 8 * _RAW_CHUNK  # ~3,000 households of a monthly stock: a full window
_MAX_PENDING = 32 * 1024 * 1024  # no complete household in that much: stop filtering
_DTREF_RE = re.compile(rb"<DTREF>\s*([0-9]{4}-[0-9]{2}-[0-9]{2})\s*</DTREF>")
_MATRICULE_RE = re.compile(rb"<MATRICULE>\s*([^<\s]{1,40})\s*</MATRICULE>")
_NUMORG_RE = re.compile(rb"<NUMORG>\s*([^<\s]{1,10})\s*</NUMORG>")


def fingerprint(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


@dataclass(slots=True)
class Scanned:
    """One household found in the bytes."""

    position: int  # ordinal in the original file, from 1
    numorg: str | None
    matricule: str | None
    digest: bytes
    segment: bytes
    lines: int  # newlines in the segment and the text before it


class ScanMismatchError(Exception):
    """The parser's households do not line up with the reader's: filtering must be disabled."""


KEEP = 0  # pass the household to the parser
SKIP = 1  # unchanged (or older): counted as unchanged once its position is committed
DROP = 2  # already committed by an interrupted attempt of the same run: not counted again

Decide = Callable[[list[Scanned]], list[int]]


class FilteringReader:
    """A binary file object for the parser (``read(size)``)."""

    def __init__(
        self,
        raw: BinaryIO,
        decide: Decide,
        *,
        window: int = 2000,
    ) -> None:
        self._raw = raw
        self._decide = decide
        self._window = window
        self._buffer = bytearray()
        self._out = bytearray()
        self._eof = False
        self._stalled = False
        self._started = False  # first household seen
        self.passthrough = False
        self.dtref: str | None = None
        self.seen = 0  # households cut so far
        self.skipped_total = 0
        # Kept households, in order: (original position, numorg, matricule, digest)
        self._kept: deque[tuple[int, str | None, str | None, bytes | None, bytes]] = deque()
        self._parser_position = 0
        # Skipped positions as ranges [first, last] (run-length: flat memory on re-imports).
        self._skipped: deque[list[int]] = deque()
        # Line mapping for messages: (filtered line where a kept segment starts, lines skipped
        # before it in the original file).
        self._out_lines = 1
        self._skipped_lines = 0
        self._line_marks: deque[tuple[int, int]] = deque(maxlen=4 * window)

    # -- the file object -------------------------------------------------------------------

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = 1 << 62
        while len(self._out) < size and not (self._eof and not self._buffer):
            self._fill()
        data = bytes(self._out[:size])
        del self._out[:size]
        return data

    def close(self) -> None:
        pass

    # -- what the importer asks ------------------------------------------------------------

    def next_kept(self, parser_position: int) -> tuple[int, str | None, str | None, bytes | None]:
        """(original position, numorg, matricule, digest) of the parser's household
        ``parser_position`` (they come in order)."""
        if parser_position != self._parser_position + 1:
            raise ScanMismatchError("parser positions out of order")
        self._parser_position = parser_position
        if self._kept:
            return self._kept.popleft()[:4]
        if self.passthrough:
            return (parser_position + self.skipped_total, None, None, None)
        raise ScanMismatchError("the parser read a household the reader did not see")

    def next_segment(self) -> bytes | None:
        """The bytes of the household the parser reads now (None: passed through, not cut)."""
        return self._kept[0][4] if self._kept else None

    def next_position(self) -> int:
        """Original position of the next household the parser will read."""
        if self._kept:
            return self._kept[0][0]
        return self._parser_position + 1 + self.skipped_total

    def take_skipped(self) -> list[list[int]]:
        """The skipped ranges not taken yet (and forget them)."""
        ranges = list(self._skipped)
        self._skipped.clear()
        return ranges

    def pop_skipped_upto(self, position: int) -> int:
        """How many skipped households are at or before ``position`` (and forget them)."""
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

    def original_line(self, filtered_line: int | None) -> int | None:
        if filtered_line is None or not self._line_marks:
            return filtered_line
        marks = list(self._line_marks)
        index = bisect_right([m[0] for m in marks], filtered_line) - 1
        if index < 0:
            return filtered_line
        return filtered_line + marks[index][1]

    # -- internals ---------------------------------------------------------------------------

    def _emit(self, data: bytes | bytearray, lines: int | None = None) -> None:
        """Pass ``data`` on (``lines``: its newlines, when already counted)."""
        self._out += data
        self._out_lines += data.count(b"\n") if lines is None else lines

    def _fill(self) -> None:
        # Enough bytes for a whole window: each window is one lookup, which PostgreSQL runs as
        # a scan of the households once they are many (one window per megabyte read made 2.3
        # times as many scans).
        target = len(self._buffer) + _RAW_CHUNK if self._stalled else _FILL_TARGET
        while not self._eof and len(self._buffer) < target:
            chunk = self._raw.read(_RAW_CHUNK)
            if chunk:
                self._buffer += chunk
            else:
                self._eof = True
        if self.passthrough:
            self._emit(self._buffer)
            self._buffer.clear()
            return
        if not self._started:
            start = self._buffer.find(START)
            if start < 0:
                if self._eof or len(self._buffer) > _MAX_PENDING:
                    self._go_passthrough()
                self._stalled = True
                return
            prefix = bytes(self._buffer[:start])
            if b"<!" in prefix:
                # A declaration or comment before the households: the parser judges it, we
                # stop filtering.
                self._go_passthrough()
                return
            del self._buffer[:start]
            match = _DTREF_RE.search(prefix)
            self.dtref = match.group(1).decode() if match else None
            self._emit(prefix)
            self._started = True
        self._cut_window()

    def _cut_window(self) -> None:
        """Cut complete households off the buffer, decide a window, emit."""
        batch: list[Scanned] = []
        gaps: list[bytes] = []
        offset = 0
        irregular = False
        buffer = self._buffer
        while len(batch) < self._window:
            start = buffer.find(START, offset)
            if start < 0:
                break
            end = buffer.find(END, start)
            if end < 0:
                break
            end += len(END)
            gap = bytes(buffer[offset:start])
            segment = bytes(buffer[start:end])
            if (
                gap.strip()
                or (b"!" in segment and b"<!" in segment)  # memchr first: much faster
                or segment.find(START, len(START)) >= 0
            ):
                # Text between households, a comment/CDATA inside one, nesting: give up.
                irregular = True
                break
            self.seen += 1
            numorg = _NUMORG_RE.search(segment)
            matricule = _MATRICULE_RE.search(segment)
            batch.append(
                Scanned(
                    position=self.seen,
                    numorg=numorg.group(1).decode("ascii", "replace") if numorg else None,
                    matricule=matricule.group(1).decode("ascii", "replace") if matricule else None,
                    digest=fingerprint(segment),
                    segment=segment,
                    lines=gap.count(b"\n") + segment.count(b"\n"),
                )
            )
            gaps.append(gap)
            offset = end
        self._stalled = not batch
        if batch:
            del buffer[:offset]
            keep = self._decide(batch)
            for scanned, gap, kept in zip(batch, gaps, keep, strict=True):
                if kept == KEEP:
                    gap_lines = gap.count(b"\n")
                    self._emit(gap, gap_lines)
                    self._line_marks.append((self._out_lines, self._skipped_lines))
                    self._emit(scanned.segment, scanned.lines - gap_lines)
                    self._kept.append(
                        (
                            scanned.position,
                            scanned.numorg,
                            scanned.matricule,
                            scanned.digest,
                            scanned.segment,
                        )
                    )
                else:
                    self.skipped_total += 1
                    self._skipped_lines += scanned.lines
                    if kept == DROP:
                        continue
                    if self._skipped and self._skipped[-1][1] == scanned.position - 1:
                        self._skipped[-1][1] = scanned.position
                    else:
                        self._skipped.append([scanned.position, scanned.position])
            return
        if irregular or self._eof or len(buffer) > _MAX_PENDING:
            # The rest (trailer, a truncated household, something unusual): the parser
            # judges it, positions continue in order.
            self._go_passthrough()

    def _go_passthrough(self) -> None:
        self.passthrough = True
        if self._buffer:
            self._line_marks.append((self._out_lines, self._skipped_lines))
            self._emit(self._buffer)
            self._buffer.clear()
