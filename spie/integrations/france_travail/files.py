"""Streaming parser of the France Travail monthly CSV files (FLOWS.md §2).

Four kinds of file: ``inscriptions``, ``cessations``, ``radiations`` and ``stock`` (current
registrations). Each is ``;``-separated with a header line, dates ``JJ/MM/AAAA``, encoded in UTF-8
or ISO-8859-1.

This module is a pure adapter: no database, no Flask. :func:`iter_ft_file` reads a binary stream
line by line (memory does not grow with the file) and yields, in file order, an :class:`FtRecord`
for every valid line and an :class:`FtRecordError` for every rejected one, so that the importer
can record rejects and keep going. A file whose header is unusable raises :class:`FtFileError`
before any line is read.

Encoding is decided per line: each line is decoded as strict UTF-8 and, if that fails, as
ISO-8859-1 (which never fails). A Latin-1 byte sequence that happens to be valid UTF-8 needs a
Latin-1 letter followed by a C1 control character, which does not occur in real text; deciding
per line also copes with files concatenated from both encodings.

Personal data: error messages (``FtRecordError.message``, ``FtFileError.message``) never contain
the NIR, names, birth date or France Travail id; only ``FtRecordError.raw`` (the rejected line,
stored as the reject's raw fragment for admins) does. The ``repr`` of records and errors hides
personal fields too, so that logging one by mistake leaks nothing.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, make_dataclass
from datetime import date
from typing import BinaryIO, Final

from spie.common.nir import NirError, nir_key

__all__ = [
    "CATEGORY_KINDS",
    "FILE_ERROR_CODES",
    "KINDS",
    "REASON_KINDS",
    "RECORD_ERROR_CODES",
    "FtFileError",
    "FtRecord",
    "FtRecordError",
    "expected_columns",
    "iter_ft_file",
    "kind_from_filename",
    "validate_header",
]

KINDS: Final = ("inscriptions", "cessations", "radiations", "stock")
#: Kinds whose ``code`` is a registration category (1-8); the others carry a reason code.
CATEGORY_KINDS: Final = frozenset({"inscriptions", "stock"})
#: Kinds with a ``motif`` column (reason label).
REASON_KINDS: Final = frozenset({"cessations", "radiations"})

RECORD_ERROR_CODES: Final = (
    "wrong_column_count",
    "missing_field",
    "bad_nir_format",
    "nir_mismatch",
    "bad_ft_id",
    "bad_date",
    "unknown_code",
    "line_too_long",
)
FILE_ERROR_CODES: Final = (
    "unknown_kind",
    "empty_file",
    "missing_header",
    "missing_columns",
    "unknown_columns",
    "duplicate_columns",
)

_COLUMNS_BEFORE_MOTIF: Final = ("nir", "identifiantpe", "nom", "prenom", "dtnai", "date", "code")
_COLUMNS_AFTER_MOTIF: Final = ("nir2", "codeinsee", "localite", "adresse", "ale")
#: Columns that must be non-empty on every line (``prenom`` may be empty: some people have no
#: first name; ``motif`` and the address columns may be empty too).
_REQUIRED: Final = ("nir", "identifiantpe", "nom", "dtnai", "date", "code", "nir2")
_CATEGORIES: Final = frozenset("12345678")

#: A longer line is rejected (``line_too_long``) without being held in memory.
MAX_LINE_BYTES: Final = 64 * 1024
_RAW_KEEP_BYTES: Final = 4096  # raw text kept for a too-long line
_MIN_YEAR: Final = 1900
_MAX_YEAR: Final = 2100
_DATE_CACHE_MAX: Final = 100_000

_FT_ID_RE: Final = re.compile(r"[0-9]{7}[A-Z0-9][0-9]{3}")
_KEY_RE: Final = re.compile(r"[0-9]{2}")
# Same shape as spie.common.nir: 5 digits, department (2 digits, 2A or 2B), 6 digits. Checked
# here so that the hot loop only computes a key when the line gives one to compare with.
_NIR13_RE: Final = re.compile(r"[0-9]{5}(?:[0-9]{2}|2[AB])[0-9]{6}")
# Every non-ASCII character in UTF-8 has a continuation byte (0x80-0xBF). A Latin-1 line without
# one cannot be valid non-ASCII UTF-8, so once a file showed a Latin-1 line the UTF-8 attempt (and
# its exception) is skipped for such lines. This deletion table keeps only continuation bytes.
_NOT_CONTINUATION: Final = bytes(b for b in range(256) if not 0x80 <= b <= 0xBF)
_COLUMN_NAME_RE: Final = re.compile(r"[a-z_ ]{1,40}")


def expected_columns(kind: str) -> tuple[str, ...]:
    """The columns of a file of ``kind``, in the documented order."""
    if kind not in KINDS:
        raise FtFileError("unknown_kind", f"unknown France Travail file kind {kind!r}")
    middle = ("motif",) if kind in REASON_KINDS else ()
    return _COLUMNS_BEFORE_MOTIF + middle + _COLUMNS_AFTER_MOTIF


def kind_from_filename(name: str) -> str | None:
    """The kind announced by a file name such as ``radiations_2026-10.csv``, else None."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    for kind in KINDS:
        if base.startswith(kind):
            return kind
    return None


class FtFileError(Exception):
    """The whole file is unusable (unknown kind, no header, missing or unknown columns).

    ``code`` is one of :data:`FILE_ERROR_CODES`; ``message`` never contains personal data.
    ``missing`` / ``unknown`` list the offending column names (unknown names that do not look
    like column names, e.g. a data line used as header, are given by position instead).
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        missing: tuple[str, ...] = (),
        unknown: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.missing = missing
        self.unknown = unknown

    def __repr__(self) -> str:
        return f"FtFileError(code={self.code!r}, message={self.message!r})"


class FtRecordError(Exception):
    """A rejected line; yielded (not raised) by :func:`iter_ft_file`.

    ``code`` is one of :data:`RECORD_ERROR_CODES` (stable, stored in ``ImportReject``);
    ``message`` is precise and never contains personal data; ``line_no`` is the physical line
    number in the file (the header is line 1); ``raw`` is the line text without its line end;
    ``column`` names the offending column when there is one.
    """

    def __init__(
        self, code: str, message: str, line_no: int, raw: str, column: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line_no = line_no
        self.raw = raw
        self.column = column

    def __repr__(self) -> str:
        return (
            f"FtRecordError(code={self.code!r}, line_no={self.line_no}, "
            f"column={self.column!r}, message={self.message!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FtRecordError):
            return NotImplemented
        return (self.code, self.message, self.line_no, self.raw, self.column) == (
            other.code,
            other.message,
            other.line_no,
            other.raw,
            other.column,
        )

    def __hash__(self) -> int:
        return hash((self.code, self.line_no, self.raw))


@dataclass(frozen=True, slots=True)
class FtRecord:
    """One valid line of a France Travail file.

    ``nir13`` is upper case without spaces. The files carry 13 characters and the key is
    computed here; if a line carries 15 characters, the given key is checked and
    ``nir_key_valid`` is False when it does not match (such a NIR must not be used alone for
    matching). ``code`` is the category (``"1"``..``"8"``, leading zeros removed) for
    inscriptions and stock, the reason code for cessations and radiations; ``reason`` is the
    ``motif`` label (None for inscriptions/stock or when empty). Empty optional columns are None.
    """

    kind: str
    line_no: int
    nir13: str = field(repr=False)
    nir_key_valid: bool
    france_travail_id: str = field(repr=False)
    last_name: str = field(repr=False)
    first_name: str | None = field(repr=False)
    birth_date: date = field(repr=False)
    event_date: date
    code: str
    reason: str | None
    insee_code: str | None
    town: str | None
    address: str | None = field(repr=False)
    agency: str | None

    @property
    def nir_key(self) -> int:
        """The computed control key (1..97) of ``nir13``."""
        return nir_key(self.nir13)

    @property
    def nir15(self) -> str:
        """``nir13`` followed by its computed 2-digit key (what the partner API expects)."""
        return f"{self.nir13}{nir_key(self.nir13):02d}"


# Building a frozen dataclass costs ~4 µs (one object.__setattr__ per field), a third of the
# per-line budget. Records are built as an identical non-frozen slots class whose instance is then
# given the FtRecord class: allowed because both classes have the same slots layout, and the
# result is a genuine, frozen FtRecord (equal to, and hashing like, one built normally). If the
# interpreter ever refuses the class assignment, the normal constructor is used.
_MutableFtRecord = make_dataclass(
    "_MutableFtRecord",
    [(f.name, f.type) for f in fields(FtRecord)],
    slots=True,
    eq=False,
    repr=False,
)


def _new_record_fast(*values: object) -> FtRecord:
    record = _MutableFtRecord(*values)
    record.__class__ = FtRecord
    return record


def _new_record_slow(*values: object) -> FtRecord:
    return FtRecord(*values)  # type: ignore[arg-type]


def _pick_record_constructor() -> Callable[..., FtRecord]:
    sample = (
        "stock", 1, "1000000000000", True, "0000000A000", "N", None,
        date(2000, 1, 1), date(2000, 1, 1), "1", None, None, None, None, None,
    )  # fmt: skip
    try:
        built = _new_record_fast(*sample)
    except TypeError:  # pragma: no cover - layout assignment refused by the interpreter
        return _new_record_slow
    if type(built) is not FtRecord or built != _new_record_slow(*sample):  # pragma: no cover
        return _new_record_slow
    return _new_record_fast


_new_record = _pick_record_constructor()


def validate_header(header: str, kind: str) -> tuple[int, ...]:
    """Check a header line and return, for each column of :func:`expected_columns` (in that
    order), its position in the file. Names are compared case-insensitively, spaces, quotes and
    a UTF-8 BOM ignored; column order is free. Raises :class:`FtFileError`."""
    expected = expected_columns(kind)
    text = header.lstrip("\ufeff").rstrip("\r\n")
    if not text.strip():
        raise FtFileError("missing_header", "the first line is empty: a header line is required")
    names = [name.strip().strip('"').strip().lower() for name in text.split(";")]
    if len(names) > 1 and names[-1] == "":
        names.pop()  # a trailing ';' at the end of every line
    known = set(expected)
    if not known.intersection(names):
        raise FtFileError(
            "missing_header",
            f"the first line is not a header: none of the expected columns "
            f"({';'.join(expected)}) is present",
            missing=expected,
        )
    seen: set[str] = set()
    duplicates = []
    for name in names:
        if name in seen and name not in duplicates:
            duplicates.append(name)
        seen.add(name)
    missing = tuple(name for name in expected if name not in seen)
    unknown = tuple(
        name if _COLUMN_NAME_RE.fullmatch(name) else f"<column {position}>"
        for position, name in enumerate(names, start=1)
        if name not in known
    )
    if missing:
        message = f"{kind} file: missing column(s) {', '.join(missing)}"
        if unknown:
            message += f"; unknown column(s) {', '.join(unknown)}"
        raise FtFileError("missing_columns", message, missing=missing, unknown=unknown)
    if unknown:
        raise FtFileError(
            "unknown_columns",
            f"{kind} file: unknown column(s) {', '.join(unknown)} (expected {';'.join(expected)})",
            unknown=unknown,
        )
    if duplicates:
        raise FtFileError(
            "duplicate_columns", f"{kind} file: duplicate column(s) {', '.join(duplicates)}"
        )
    return tuple(names.index(name) for name in expected)


def iter_ft_file(stream: BinaryIO, kind: str) -> Iterator[FtRecord | FtRecordError]:
    """Parse a France Travail file of ``kind`` from a binary stream.

    The header is read and validated immediately (raising :class:`FtFileError`); the returned
    iterator then reads the stream one line at a time and yields an :class:`FtRecord` or an
    :class:`FtRecordError` per non-blank line. Blank lines are skipped. ``line_no`` counts
    physical lines, the header being line 1. The stream should be buffered (``open(path,
    "rb")``, ``io.BytesIO``, an upload's stream); it is not closed.
    """
    expected_columns(kind)  # unknown kind: fail before reading
    readline = stream.readline
    header_bytes = readline(MAX_LINE_BYTES)
    if not header_bytes:
        raise FtFileError("empty_file", "the file is empty: a header line is required")
    if len(header_bytes) >= MAX_LINE_BYTES and not header_bytes.endswith(b"\n"):
        raise FtFileError("missing_header", f"the first line is longer than {MAX_LINE_BYTES} bytes")
    positions = validate_header(_decode(header_bytes), kind)
    return _iter_records(stream, kind, positions)


def _decode(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("latin-1")


def _date_problem(value: str) -> str:
    """Why ``value`` (already known to be invalid) is not a date; never echoes the value."""
    if (
        len(value) != 10
        or value[2] != "/"
        or value[5] != "/"
        or not (value[:2] + value[3:5] + value[6:]).isdecimal()
        or not value.isascii()
    ):
        return f"expected JJ/MM/AAAA (10 characters), got {len(value)} characters in another shape"
    year = int(value[6:])
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        return f"year outside {_MIN_YEAR}-{_MAX_YEAR}"
    return "day or month out of range"


def _iter_records(
    stream: BinaryIO, kind: str, positions: tuple[int, ...]
) -> Iterator[FtRecord | FtRecordError]:
    has_motif = kind in REASON_KINDS
    check_category = kind in CATEGORY_KINDS
    if has_motif:
        (i_nir, i_ftid, i_nom, i_prenom, i_dtnai, i_date, i_code, i_motif, i_nir2, i_insee) = (
            positions[:10]
        )
        i_localite, i_adresse, i_ale = positions[10:]
    else:
        (i_nir, i_ftid, i_nom, i_prenom, i_dtnai, i_date, i_code, i_nir2, i_insee) = positions[:9]
        i_localite, i_adresse, i_ale = positions[9:]
        i_motif = -1
    ncols = max(positions) + 1
    required = tuple(
        zip(_REQUIRED, (i_nir, i_ftid, i_nom, i_dtnai, i_date, i_code, i_nir2), strict=True)
    )
    ft_id_match = _FT_ID_RE.fullmatch
    key_match = _KEY_RE.fullmatch
    categories = _CATEGORIES
    dates: dict[str, date] = {}
    record = _new_record
    nir13_match = _NIR13_RE.fullmatch
    not_continuation = _NOT_CONTINUATION
    latin1_seen = False

    def parse_date(value: str) -> date | None:
        if (
            len(value) != 10
            or value[2] != "/"
            or value[5] != "/"
            or not value.isascii()
            or not (value[:2] + value[3:5] + value[6:]).isdigit()
        ):
            return None
        try:
            result = date(int(value[6:]), int(value[3:5]), int(value[:2]))
        except ValueError:  # day or month out of range
            return None
        if not _MIN_YEAR <= result.year <= _MAX_YEAR:
            return None
        if len(dates) >= _DATE_CACHE_MAX:
            dates.clear()
        dates[value] = result
        return result

    readline = stream.readline
    limit = MAX_LINE_BYTES
    line_no = 1
    while True:
        line = readline(limit)
        if not line:
            return
        line_no += 1
        if len(line) >= limit and not line.endswith(b"\n"):
            # Too long: skip to the end of the line without holding it, keep only a prefix.
            while True:
                rest = readline(limit)
                if not rest or rest.endswith(b"\n"):
                    break
            yield FtRecordError(
                "line_too_long",
                f"line longer than {MAX_LINE_BYTES} bytes (only the start is kept as raw)",
                line_no,
                _decode(line[:_RAW_KEEP_BYTES]),
            )
            continue
        # Per line: strict UTF-8, else Latin-1. Once a line was Latin-1, lines that cannot be
        # UTF-8 (no multi-byte sequence) skip the attempt: same result, no exception per line.
        if latin1_seen and not line.translate(None, not_continuation):
            text = line.decode("latin-1")
        else:
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                text = line.decode("latin-1")
                latin1_seen = True
        text = text.rstrip("\r\n")
        if not text or text.isspace():
            continue
        # Quoted fields (rare) go through the csv module; plain lines are split directly.
        fields = next(csv.reader([text], delimiter=";")) if '"' in text else text.split(";")
        if len(fields) != ncols:
            if len(fields) == ncols + 1 and not fields[-1].strip():
                fields.pop()  # trailing ';'
            else:
                yield FtRecordError(
                    "wrong_column_count",
                    f"{len(fields)} columns, expected {ncols}",
                    line_no,
                    text,
                )
                continue
        values = [value.strip() for value in fields]

        if "" in values and (missing := [name for name, index in required if not values[index]]):
            yield FtRecordError(
                "missing_field",
                f"empty required column(s): {', '.join(missing)}",
                line_no,
                text,
                missing[0],
            )
            continue

        # NIR: 13 characters (or 15 with a key), 2A/2B for Corsica.
        nir = values[i_nir].upper()
        if " " in nir:
            nir = nir.replace(" ", "")
        nir_given_key = None
        if len(nir) == 15:
            nir, nir_given_key = nir[:13], nir[13:]
        key_valid = True
        if len(nir) != 13 or (nir_given_key is not None and key_match(nir_given_key) is None):
            yield FtRecordError(
                "bad_nir_format",
                f"nir: expected 13 characters (or 15 with the key), "
                f"got {len(values[i_nir].replace(' ', ''))}",
                line_no,
                text,
                "nir",
            )
            continue
        if nir13_match(nir) is None:
            try:
                nir_key(nir)  # raises with a precise message (which position is wrong)
                problem = "nir: not a well-formed NIR"
            except NirError as error:
                problem = f"nir: {error}"
            yield FtRecordError("bad_nir_format", problem, line_no, text, "nir")
            continue
        if nir_given_key is not None:
            key_valid = int(nir_given_key) == nir_key(nir)

        nir2 = values[i_nir2].upper()
        if " " in nir2:
            nir2 = nir2.replace(" ", "")
        if nir2[:13] != nir or (
            len(nir2) == 15 and nir_given_key is not None and nir2[13:] != nir_given_key
        ):
            yield FtRecordError("nir_mismatch", "nir2 differs from nir", line_no, text, "nir2")
            continue
        if len(nir2) not in (13, 15):
            yield FtRecordError(
                "nir_mismatch",
                f"nir2: expected 13 characters (or 15 with the key), got {len(nir2)}",
                line_no,
                text,
                "nir2",
            )
            continue

        ft_id = values[i_ftid].upper()
        if ft_id_match(ft_id) is None:
            yield FtRecordError(
                "bad_ft_id",
                f"identifiantpe: expected 11 characters (7 digits, 1 letter or digit, "
                f"3 digits), got {len(ft_id)} characters not in that shape",
                line_no,
                text,
                "identifiantpe",
            )
            continue

        raw_birth = values[i_dtnai]
        birth_date = dates.get(raw_birth) or parse_date(raw_birth)
        if birth_date is None:
            yield FtRecordError(
                "bad_date", f"dtnai: {_date_problem(raw_birth)}", line_no, text, "dtnai"
            )
            continue
        raw_event = values[i_date]
        event_date = dates.get(raw_event) or parse_date(raw_event)
        if event_date is None:
            yield FtRecordError(
                "bad_date", f"date: {_date_problem(raw_event)}", line_no, text, "date"
            )
            continue

        code = values[i_code]
        if check_category and code not in categories:
            stripped = code.lstrip("0")
            if stripped not in categories:
                shown = (
                    repr(code)
                    if code.isdigit() and len(code) <= 3
                    else f"a value of {len(code)} characters"
                )
                yield FtRecordError(
                    "unknown_code",
                    f"code: inscription category must be 1 to 8, got {shown}",
                    line_no,
                    text,
                    "code",
                )
                continue
            code = stripped

        yield record(
            kind,
            line_no,
            nir,
            key_valid,
            ft_id,
            values[i_nom],
            values[i_prenom] or None,
            birth_date,
            event_date,
            code,
            (values[i_motif] or None) if has_motif else None,
            values[i_insee] or None,
            values[i_localite] or None,
            values[i_adresse] or None,
            values[i_ale] or None,
        )
