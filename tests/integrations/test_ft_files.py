"""France Travail monthly CSV files: spie.integrations.france_travail.files."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import pytest

from spie.common.nir import nir_key
from spie.integrations.france_travail.files import (
    MAX_LINE_BYTES,
    RECORD_ERROR_CODES,
    FtFileError,
    FtRecord,
    FtRecordError,
    expected_columns,
    iter_ft_file,
    kind_from_filename,
)

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "france-travail"
INSCRIPTIONS_HEADER = (
    "nir;identifiantpe;nom;prenom;dtnai;date;code;nir2;codeinsee;localite;adresse;ale"
)
RADIATIONS_HEADER = (
    "nir;identifiantpe;nom;prenom;dtnai;date;code;motif;nir2;codeinsee;localite;adresse;ale"
)
# A valid inscription line (taken from the sample file) and its parts, to build variants.
NIR = "2930838269507"
GOOD = (
    f"{NIR};7889712J856;RICHARD;LÉA;08/08/1993;14/10/2026;7;{NIR};69259;VENISSIEUX;"
    "82 RUE GARIBALDI;ALE VENISSIEUX"
)
PERSONAL = (NIR, "7889712J856", "RICHARD", "LÉA", "08/08/1993")


def parse(text: str, kind: str = "inscriptions", encoding: str = "utf-8") -> list[object]:
    return list(iter_ft_file(io.BytesIO(text.encode(encoding)), kind))


def lines(*rows: str, header: str = INSCRIPTIONS_HEADER) -> str:
    return "\n".join((header, *rows)) + "\n"


def variant(**changes: str) -> str:
    """GOOD with some columns replaced (by name)."""
    names = INSCRIPTIONS_HEADER.split(";")
    values = GOOD.split(";")
    for name, value in changes.items():
        values[names.index(name)] = value
    return ";".join(values)


def records(items: Iterable[object]) -> list[FtRecord]:
    return [item for item in items if isinstance(item, FtRecord)]


def errors(items: Iterable[object]) -> list[FtRecordError]:
    return [item for item in items if isinstance(item, FtRecordError)]


def assert_no_personal_data(text: str) -> None:
    for value in PERSONAL:
        assert value not in text


needs_samples = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"shared sample files not found in {SAMPLES}"
)


# --------------------------------------------------------------------------- sample files


@needs_samples
@pytest.mark.parametrize(
    ("kind", "count"),
    [("inscriptions", 19), ("cessations", 15), ("radiations", 15), ("stock", 19)],
)
def test_sample_files_parse_completely(kind: str, count: int) -> None:
    with (SAMPLES / f"{kind}_2026-10.csv").open("rb") as stream:
        items = list(iter_ft_file(stream, kind))
    assert errors(items) == []
    assert len(records(items)) == count
    assert all(record.kind == kind for record in records(items))
    assert [record.line_no for record in records(items)] == list(range(2, count + 2))
    assert all(record.nir_key_valid for record in records(items))
    if kind in ("inscriptions", "stock"):
        assert all(record.reason is None for record in records(items))
        assert {record.code for record in records(items)} <= set("12345678")
    else:
        assert all(record.reason for record in records(items))


@needs_samples
def test_sample_inscription_exact_values() -> None:
    with (SAMPLES / "inscriptions_2026-10.csv").open("rb") as stream:
        items = records(iter_ft_file(stream, "inscriptions"))
    second = items[1]
    assert second == FtRecord(
        kind="inscriptions",
        line_no=3,
        nir13="2930838269507",
        nir_key_valid=True,
        france_travail_id="7889712J856",
        last_name="RICHARD",
        first_name="LÉA",
        birth_date=date(1993, 8, 8),
        event_date=date(2026, 10, 14),
        code="7",
        reason=None,
        insee_code="69259",
        town="VENISSIEUX",
        address="82 RUE GARIBALDI",
        agency="ALE VENISSIEUX",
    )
    assert second.nir15 == "2930838269507" + f"{97 - 2930838269507 % 97:02d}"
    assert second.nir_key == nir_key("2930838269507")
    last = items[-1]
    assert (last.last_name, last.first_name, last.line_no) == ("DUPONT", "JEAN-PIERRE", 20)
    assert last.address == "14 CHEMIN DE L'ÉCOLE"
    assert last.agency == "ALE RILLIEUX-LA-PAPE"


@needs_samples
def test_sample_radiation_and_cessation_exact_values() -> None:
    with (SAMPLES / "radiations_2026-10.csv").open("rb") as stream:
        radiations = records(iter_ft_file(stream, "radiations"))
    muller = radiations[13]
    assert (muller.last_name, muller.first_name) == ("MÜLLER", "ZOÉ")
    assert (muller.code, muller.reason) == ("11", "NON RÉPONSE À CONVOCATION")
    assert muller.event_date == date(2026, 10, 13)
    assert muller.birth_date == date(2010, 8, 25)
    with (SAMPLES / "cessations_2026-10.csv").open("rb") as stream:
        cessations = records(iter_ft_file(stream, "cessations"))
    assert cessations[2].reason == "ENTRÉE EN FORMATION"
    assert cessations[2].france_travail_id == "9917005A308"
    assert cessations[7].last_name == "FRANÇOIS"


@needs_samples
def test_sample_file_in_latin1_gives_the_same_records() -> None:
    text = (SAMPLES / "cessations_2026-10.csv").read_text(encoding="utf-8")
    utf8 = parse(text, "cessations")
    latin1 = parse(text, "cessations", encoding="latin-1")
    assert latin1 == utf8
    assert records(latin1)[5].first_name == "LOÏC"


# --------------------------------------------------------------------------- rejected lines


def test_bad_lines_are_rejected_with_their_code_and_valid_lines_keep_coming() -> None:
    rows = [
        GOOD,
        GOOD.rsplit(";", 1)[0],  # 11 columns
        variant(nir2="2930838269508"),
        variant(dtnai="31/02/1993"),
        variant(identifiantpe="7889712J85"),
        GOOD,
        variant(date="2026-10-14"),
        variant(identifiantpe="78897123J56"),
        GOOD + ";EXTRA",
        variant(nir="29308382695X7", nir2="29308382695X7"),
        variant(code="9"),
        variant(nom=""),
        GOOD,
    ]
    items = parse(lines(*rows))
    assert [item.code if isinstance(item, FtRecordError) else "ok" for item in items] == [
        "ok",
        "wrong_column_count",
        "nir_mismatch",
        "bad_date",
        "bad_ft_id",
        "ok",
        "bad_date",
        "bad_ft_id",
        "wrong_column_count",
        "bad_nir_format",
        "unknown_code",
        "missing_field",
        "ok",
    ]
    assert [item.line_no for item in items] == list(range(2, 15))  # type: ignore[attr-defined]
    for item, row in zip(items, rows, strict=True):
        if isinstance(item, FtRecordError):
            assert item.raw == row
            assert item.code in RECORD_ERROR_CODES
            assert_no_personal_data(item.message)
            assert_no_personal_data(str(item))
            assert_no_personal_data(repr(item))


def test_error_messages_are_precise() -> None:
    items = errors(
        parse(
            lines(
                GOOD.rsplit(";", 1)[0],
                variant(nir2="2930838269508"),
                variant(dtnai="31/02/1993"),
                variant(date="14-10-2026"),
                variant(code="12"),
                variant(nom="", date=""),
            )
        )
    )
    assert items[0].message == "11 columns, expected 12"
    assert items[1].column == "nir2"
    assert "nir2 differs from nir" in items[1].message
    assert items[2].column == "dtnai"
    assert items[2].message == "dtnai: day or month out of range"
    assert items[3].column == "date"
    assert "JJ/MM/AAAA" in items[3].message
    assert items[4].message == "code: inscription category must be 1 to 8, got '12'"
    assert items[5].message == "empty required column(s): nom, date"


def test_nir_format_errors() -> None:
    items = parse(
        lines(
            variant(nir="293083826950", nir2="293083826950"),  # 12 characters
            variant(nir="29308A8269507", nir2="29308A8269507"),  # letter outside 2A/2B
            variant(nir="2930838269507AB", nir2="2930838269507"),  # non-digit key
        )
    )
    assert [item.code for item in errors(items)] == ["bad_nir_format"] * 3
    assert "got 12" in errors(items)[0].message
    for item in errors(items):
        assert "2930838269" not in item.message


def test_nir_with_key_and_corsica() -> None:
    key = nir_key(NIR)
    corsica = "185012A123456"
    corsica_key = 97 - int("1850119123456") % 97
    items = records(
        parse(
            lines(
                variant(nir=f"{NIR}{key:02d}", nir2=NIR),
                variant(nir=f"{NIR}{(key % 97) + 1:02d}", nir2=NIR),
                variant(nir=corsica.lower(), nir2=corsica),
                variant(nir="2 93 08 38 269 507", nir2=NIR),
            )
        )
    )
    assert [(record.nir13, record.nir_key_valid) for record in items] == [
        (NIR, True),
        (NIR, False),
        (corsica, True),
        (NIR, True),
    ]
    assert items[2].nir15 == f"{corsica}{corsica_key:02d}"


def test_category_codes_normalised_only_for_inscriptions_and_stock() -> None:
    items = parse(lines(variant(code="07"), variant(code="0")))
    assert records(items)[0].code == "7"
    assert errors(items)[0].code == "unknown_code"
    stock = parse(lines(variant(code="8")), kind="stock")
    assert records(stock)[0].code == "8"
    radiation = GOOD.replace(";7;", ";72;REPRISE D'EMPLOI;", 1)
    items = parse(lines(radiation, header=RADIATIONS_HEADER), kind="radiations")
    assert (records(items)[0].code, records(items)[0].reason) == ("72", "REPRISE D'EMPLOI")


def test_optional_columns_may_be_empty() -> None:
    row = variant(prenom="", codeinsee="", localite="", adresse="", ale="")
    (record,) = records(parse(lines(row)))
    assert record.first_name is None
    assert (record.insee_code, record.town, record.address, record.agency) == (None,) * 4
    empty_motif = GOOD.replace(";7;", ";72;;", 1)
    (radiation,) = records(parse(lines(empty_motif, header=RADIATIONS_HEADER), "radiations"))
    assert radiation.reason is None


def test_line_ends_blank_lines_trailing_separator_and_quotes() -> None:
    quoted = variant(adresse='"12 RUE A; BATIMENT B"')
    text = (
        INSCRIPTIONS_HEADER
        + ";\r\n"
        + GOOD
        + ";\r\n\r\n   \r\n"
        + quoted
        + "\r\n"
        + GOOD  # no final line end
    )
    items = parse(text)
    assert errors(items) == []
    assert [record.line_no for record in records(items)] == [2, 5, 6]
    assert records(items)[1].address == "12 RUE A; BATIMENT B"
    assert records(items)[0].agency == "ALE VENISSIEUX"


def test_header_is_case_insensitive_reorderable_and_bom_tolerant() -> None:
    names = INSCRIPTIONS_HEADER.split(";")
    values = GOOD.split(";")
    order = list(reversed(range(len(names))))
    header = "\ufeff" + ";".join(names[i].upper() for i in order)
    row = ";".join(values[i] for i in order)
    (record,) = records(parse(header + "\n" + row + "\n"))
    (expected,) = records(parse(lines(GOOD)))
    assert record == expected


def test_mixed_encodings_are_decided_per_line() -> None:
    data = (
        (INSCRIPTIONS_HEADER + "\n").encode()
        + (GOOD + "\n").encode("latin-1")
        + (variant(prenom="ZOÉ") + "\n").encode("utf-8")
        + (variant(prenom="AÏCHA") + "\n").encode("latin-1")
        + (variant(prenom="« NOËL »") + "\n").encode("latin-1")
        + (variant(prenom="CHLOÉ") + "\n").encode("utf-8")
    )
    items = records(iter_ft_file(io.BytesIO(data), "inscriptions"))
    assert [record.first_name for record in items] == ["LÉA", "ZOÉ", "AÏCHA", "« NOËL »", "CHLOÉ"]


def test_too_long_line_is_rejected_without_stopping() -> None:
    huge = variant(adresse="X" * (MAX_LINE_BYTES * 2))
    items = parse(lines(GOOD, huge, GOOD))
    assert [type(item).__name__ for item in items] == ["FtRecord", "FtRecordError", "FtRecord"]
    error = errors(items)[0]
    assert error.code == "line_too_long"
    assert error.line_no == 3
    assert len(error.raw) < MAX_LINE_BYTES
    assert records(items)[1].line_no == 4


def test_records_are_frozen_and_repr_hides_personal_data() -> None:
    (record,) = records(parse(lines(GOOD)))
    assert type(record) is FtRecord
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.code = "1"  # type: ignore[misc]
    assert_no_personal_data(repr(record))
    assert hash(record) == hash(dataclasses.replace(record))


# --------------------------------------------------------------------------- whole-file errors


@pytest.mark.parametrize(
    ("header", "code", "missing", "unknown"),
    [
        (INSCRIPTIONS_HEADER.replace(";nir2", ""), "missing_columns", ("nir2",), ()),
        (INSCRIPTIONS_HEADER + ";foo", "unknown_columns", (), ("foo",)),
        (RADIATIONS_HEADER, "unknown_columns", (), ("motif",)),
        (
            INSCRIPTIONS_HEADER.replace("dtnai", "dt_nai"),
            "missing_columns",
            ("dtnai",),
            ("dt_nai",),
        ),
    ],
)
def test_header_errors(
    header: str, code: str, missing: tuple[str, ...], unknown: tuple[str, ...]
) -> None:
    with pytest.raises(FtFileError) as raised:
        parse(header + "\n" + GOOD + "\n")
    assert raised.value.code == code
    assert raised.value.missing == missing
    assert raised.value.unknown == unknown


def test_header_error_is_raised_before_iterating() -> None:
    stream = io.BytesIO((INSCRIPTIONS_HEADER.replace(";nom;", ";") + "\n").encode())
    with pytest.raises(FtFileError, match="missing column"):
        iter_ft_file(stream, "inscriptions")  # no next() needed


def test_cessation_file_needs_a_motif_column() -> None:
    with pytest.raises(FtFileError) as raised:
        parse(lines(GOOD), kind="cessations")
    assert raised.value.code == "missing_columns"
    assert raised.value.missing == ("motif",)


def test_data_line_as_header_does_not_leak_it() -> None:
    with pytest.raises(FtFileError) as raised:
        parse(GOOD + "\n" + GOOD + "\n")
    assert raised.value.code == "missing_header"
    assert_no_personal_data(str(raised.value))


def test_unknown_column_that_looks_like_data_is_named_by_position() -> None:
    with pytest.raises(FtFileError) as raised:
        parse(INSCRIPTIONS_HEADER + f";{NIR}\n")
    assert raised.value.unknown == ("<column 13>",)
    assert NIR not in str(raised.value)


def test_empty_file_duplicate_columns_and_unknown_kind() -> None:
    with pytest.raises(FtFileError) as raised:
        parse("")
    assert raised.value.code == "empty_file"
    with pytest.raises(FtFileError) as raised:
        parse(INSCRIPTIONS_HEADER + ";nom\n")
    assert raised.value.code == "duplicate_columns"
    with pytest.raises(FtFileError) as raised:
        parse(lines(GOOD), kind="demandeurs")
    assert raised.value.code == "unknown_kind"


def test_expected_columns_and_kind_from_filename() -> None:
    assert ";".join(expected_columns("stock")) == INSCRIPTIONS_HEADER
    assert ";".join(expected_columns("cessations")) == RADIATIONS_HEADER
    assert kind_from_filename("/data/in/Radiations_2026-10.csv") == "radiations"
    assert kind_from_filename("stock_2026-10.csv") == "stock"
    assert kind_from_filename("caf_2026.xml") is None


# --------------------------------------------------------------------------- streaming


class _GeneratedFile(io.RawIOBase):
    """A large file produced on the fly; remembers how many bytes were read."""

    def __init__(self, rows: int) -> None:
        self._chunks = iter(
            [(INSCRIPTIONS_HEADER + "\n").encode()] + [(GOOD + "\n").encode()] * rows
        )
        self._pending = b""
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        self.bytes_read += size
        return size


def test_parser_streams_instead_of_reading_everything() -> None:
    raw = _GeneratedFile(rows=200_000)
    iterator = iter_ft_file(io.BufferedReader(raw), "inscriptions")
    first = next(iterator)
    assert isinstance(first, FtRecord)
    assert raw.bytes_read < 64 * 1024  # one buffer, not the ~27 MB file
    count = 1 + sum(1 for _ in iterator)
    assert count == 200_000
