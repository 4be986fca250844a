"""CAF bénéficiaires flow parser: shared samples, both schema shapes, bad inputs, unsafe XML."""

from __future__ import annotations

import dataclasses
import io
import pickle
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from spie.integrations.caf import parser as caf_parser
from spie.integrations.caf.parser import (
    ETATDOSRSA,
    ETATDOSRSA_OPEN,
    MOTICLORSA,
    NATPF,
    ROLEPERS,
    SITFAM,
    CafFlow,
    CafHousehold,
    CafPerson,
    CafRecordError,
    CountMismatch,
    MalformedFileError,
    UnsafeFileError,
    for_import,
    iter_caf_flow,
)
from spie.integrations.caf.scanner import KEEP, FilteringReader
from tests.integrations.caf_builders import (
    NIR_CJT,
    NIR_DEM,
    NIR_ENF,
    SCHEMAS,
    Address,
    Household,
    flow_bytes,
    flow_text,
    household,
    numbered_households,
    person,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT.parent / "shared" / "data" / "caf"
SAMPLE_B_DAILY = SAMPLES / "RSABEI_vrsb0801_2026-11-16.xml"
SAMPLE_D_DAILY = SAMPLES / "RSABEI_vrsd0301_2026-11-17.xml"
SAMPLE_B_MONTHLY = SAMPLES / "RSABEM_vrsb0801_2026-10-31.xml"

requires_samples = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"shared CAF samples not found in {SAMPLES}"
)

Item = CafHousehold | CafRecordError


def parse(data: bytes) -> tuple[CafFlow, list[Item]]:
    flow = iter_caf_flow(io.BytesIO(data))
    return flow, list(flow)


def parse_scanned(data: bytes) -> tuple[CafFlow, list[Item]]:
    """As the importer reads a flow: through the byte scanner (every household kept), the
    raw fragments taken from the scanner's cut."""
    reader = FilteringReader(io.BytesIO(data), lambda batch: [KEEP] * len(batch))
    flow = iter_caf_flow(reader, reader.next_segment)  # type: ignore[arg-type]
    items = []
    for item in flow:
        reader.next_kept(item.position)
        items.append(item)
    return flow, items


BOTH_READERS = pytest.mark.parametrize(
    "parse_with", [parse, parse_scanned], ids=["lxml", "scanned"]
)


def households_of(items: list[Item]) -> list[CafHousehold]:
    assert all(isinstance(i, CafHousehold) for i in items), [
        repr(i) for i in items if isinstance(i, CafRecordError)
    ]
    return [i for i in items if isinstance(i, CafHousehold)]


def only_error(items: list[Item]) -> CafRecordError:
    errors = [i for i in items if isinstance(i, CafRecordError)]
    assert len(errors) == 1, items
    return errors[0]


def key15(nir13: str) -> str:
    return f"{nir13}{97 - int(nir13) % 97:02d}"


# --------------------------------------------------------------------------------------------
# Shared sample files
# --------------------------------------------------------------------------------------------


@requires_samples
@pytest.mark.parametrize(
    ("path", "schema", "type_flux", "dtref", "n_households", "n_persons", "n_sdd"),
    [
        (SAMPLE_B_DAILY, "vrsb0801", "I", date(2026, 11, 16), 5, 11, 6),
        (SAMPLE_D_DAILY, "vrsd0301", "I", date(2026, 11, 17), 6, 19, 7),
        (SAMPLE_B_MONTHLY, "vrsb0801", "M", date(2026, 10, 31), 12, 40, 12),
    ],
)
def test_samples_counts(
    path: Path,
    schema: str,
    type_flux: str,
    dtref: date,
    n_households: int,
    n_persons: int,
    n_sdd: int,
) -> None:
    with iter_caf_flow(path) as flow:
        assert flow.header.schema == schema
        assert flow.header.type_flux == type_flux
        assert flow.header.nat_flux == "D"
        assert flow.header.dtref == dtref
        assert flow.header.declared_encoding == "ISO-8859-1"
        assert not flow.finished
        found = households_of(list(flow))
    assert flow.finished
    assert flow.count_mismatch is None
    assert flow.read_count == flow.expected_count == n_households
    assert [h.position for h in found] == list(range(1, n_households + 1))
    assert sum(len(h.persons) for h in found) == n_persons
    assert sum(len(h.sdd_persons) for h in found) == n_sdd
    assert all(h.current_address is not None for h in found)
    assert all(h.warnings == () for h in found)
    assert all(p.nir_key_valid is True and p.nir_key is None for h in found for p in h.persons)


@requires_samples
def test_sample_vrsd0301_values() -> None:
    with iter_caf_flow(str(SAMPLE_D_DAILY)) as flow:
        found = households_of(list(flow))
    first = found[0]
    assert first.matricule == "776797500000000"
    assert first.numdemrsa == "00000000201"
    assert first.keys == {"matricule": "776797500000000", "numdemrsa": "00000000201"}
    assert first.fonorg == "CAF"
    assert first.numorg == "691"
    assert first.partner_type == "CG"  # right-padded "CG  " stripped
    assert first.dtdemrsa == date(2024, 10, 14)
    assert first.etat_dossier == "2"
    assert first.is_open
    assert first.natpf == ("RSJ",)
    assert first.family_situation == "ISO"
    assert first.family_situation_since == date(2023, 9, 6)
    address = first.current_address
    assert address is not None
    assert address.street_name == "RUE DE LA RÉPUBLIQUE"
    assert (address.insee_code, address.postal_code, address.commune_name) == (
        "69204",
        "69190",
        "SAINT-FONS",
    )
    assert address.street_type is None  # empty <LIBTYPEVOIE></LIBTYPEVOIE>
    dem, _, helene, _ = first.persons
    assert (dem.last_name, dem.first_name, dem.role) == ("GIRARD", "FATOU", "DEM")
    assert dem.sdd is True
    assert dem.entering_sdd is False
    assert dem.sdd_start == date(2024, 11, 3)
    assert dem.france_travail_id == "0686117N"
    assert dem.is_sdd
    assert (helene.last_name, helene.first_name) == ("GARCIA", "HÉLÈNE")
    assert helene.nir13 == "2230675045792"
    assert helene.birth_date == date(2023, 6, 22)
    assert helene.role == "ENF"
    assert not helene.is_sdd
    # Right not yet open: state 0, no DroitOuvert.
    last = found[-1]
    assert (last.etat_dossier, last.dtodrsa, last.is_open) == ("0", None, False)
    assert last.persons[2].first_name == "JEAN-PIERRE"


@requires_samples
def test_sample_vrsb0801_values() -> None:
    with iter_caf_flow(SAMPLE_B_MONTHLY) as flow:
        found = households_of(list(flow))
    assert found[0].persons[1].last_name == "KONÉ"
    assert found[0].persons[1].first_name == "CHLOÉ"
    assert found[0].persons[3].first_name == "LOÏC"
    assert found[7].persons[0].last_name == "FRANÇOIS"
    closed = found[6]
    assert closed.etat_dossier == "5"
    assert not closed.is_open
    assert (closed.closure_reason, closed.closed_on) == ("MUT", date(2026, 10, 1))
    dem = found[0].persons[0]
    assert (dem.role, dem.pfa_role, dem.rsa_in_charge) == ("DEM", "DEM", True)
    assert dem.entering_sdd is None  # not in vrsb0801
    assert dem.sdd_start is None
    with iter_caf_flow(SAMPLE_B_DAILY) as flow:
        daily = households_of(list(flow))
    assert daily[4].persons[0].last_name == "MÜLLER"
    assert daily[0].persons[0].activities[0].code == "CHO"
    assert daily[0].persons[0].activities[0].start == date(2024, 10, 19)
    assert daily[0].current_address is not None
    assert daily[0].current_address.street_name == "AVENUE JEAN JAURÈS"


@requires_samples
def test_raw_fragment_is_the_household_xml() -> None:
    with iter_caf_flow(SAMPLE_D_DAILY) as flow:
        first = next(iter(flow))
    assert isinstance(first, CafHousehold)
    element = etree.fromstring(first.raw_fragment)
    assert element.tag == "InfosFoyerRSA"
    assert element.findtext("IdentificationRSA/Organisme/MATRICULE") == "776797500000000"
    assert "HÉLÈNE" in first.raw_fragment


@pytest.mark.parametrize(
    ("encoding", "byte_encoding"),
    [("ISO-8859-1", "iso-8859-1"), ("UTF-8", "utf-8"), (None, "utf-8")],
)
@BOTH_READERS
def test_raw_fragment_is_the_text_of_the_household_in_the_file(
    encoding: str | None, byte_encoding: str, parse_with: Callable[..., Any]
) -> None:
    hs = numbered_households(3)
    hs[1] = replace(hs[1], persons=[person(nom="L&ROUX", prenom="HÉLÈNE")])
    text = flow_text(hs, encoding=encoding)
    _, items = parse_with(text.encode(byte_encoding))
    found = households_of(items)
    assert [text.count(h.raw_fragment) for h in found] == [1, 1, 1]  # verbatim, whole elements
    assert all(h.raw_fragment.startswith("<InfosFoyerRSA>\n") for h in found)
    assert all(h.raw_fragment.endswith("</InfosFoyerRSA>") for h in found)
    assert "<NOM>L&amp;ROUX</NOM>" in found[1].raw_fragment


XSI_NIL = '<ZZZ xsi:nil="true"/>\n'  # prefix declared on the root only


@pytest.mark.parametrize(
    ("inside", "between"),
    [
        ("<!-- a comment -->\n", ""),
        ("<!-- </InfosFoyerRSA> -->\n", ""),
        ("<?pi data?>\n", ""),
        ("<?pi </InfosFoyerRSA>?>\n", ""),  # the byte scanner cuts there
        ("<ZZZ><![CDATA[x]]></ZZZ>\n", ""),
        (XSI_NIL, ""),
        ("<ZZZ>&#233;</ZZZ>\n", ""),
        ("", "<!-- <InfosFoyerRSA> </InfosFoyerRSA> -->\n"),
        ("", "<?pi <InfosFoyerRSA>?>\n"),
    ],
)
@BOTH_READERS
def test_raw_fragment_of_a_household_that_cannot_be_cut_out(
    inside: str, between: str, parse_with: Callable[..., Any]
) -> None:
    """The fragment is then the element serialised by lxml: still the right household."""
    hs: list[Household | str] = list(numbered_households(4))
    hs[1] = replace(numbered_households(2)[1], extra=inside)
    hs.insert(1, between)
    _, items = parse_with(flow_bytes(hs))
    found = households_of(items)
    assert [h.numdemrsa for h in found] == [f"{i:011d}" for i in range(1, 5)]
    for h in found:
        element = etree.fromstring(h.raw_fragment)  # standalone XML, namespaces declared
        assert element.tag == "InfosFoyerRSA"
        assert element.findtext("IdentificationRSA/DemandeRSA/NUMDEMRSA") == h.numdemrsa
    if inside == XSI_NIL:
        assert "xmlns:xsi=" in found[1].raw_fragment


@pytest.mark.parametrize(
    "change",
    [
        ("<InfosFoyerRSA>", '<InfosFoyerRSA id="2">'),
        ("</InfosFoyerRSA>", "</InfosFoyerRSA >"),
        ("</IdentificationRSA>", "</IdentificationRSA>\n<InfosFoyerRSA>\n</InfosFoyerRSA>"),
    ],
)
@BOTH_READERS
def test_raw_fragments_when_household_tags_are_unusual(
    change: tuple[str, str], parse_with: Callable[..., Any]
) -> None:
    hs = [h.xml() for h in numbered_households(3)]
    hs[1] = hs[1].replace(*change)
    _, items = parse_with(flow_bytes(hs, count=None))
    for item in items:
        element = etree.fromstring(item.raw_fragment)
        assert element.tag == "InfosFoyerRSA"
        if isinstance(item, CafHousehold):
            assert element.findtext("IdentificationRSA/Organisme/MATRICULE") == item.matricule
    numdemrsa = [i.keys.get("numdemrsa") for i in items if isinstance(i, CafHousehold)]
    assert numdemrsa[0] == "00000000001"
    assert numdemrsa[-1] == "00000000003"


def test_bytes_kept_for_raw_fragments_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caf_parser, "_DISCARD_AFTER", 20_000)
    monkeypatch.setattr(caf_parser, "_CHUNK_SIZE", 8_192)
    take = caf_parser._RawFragments.take
    kept: list[int] = []

    def spy(self: Any) -> str | None:
        buffer = self._reader.buffer
        kept.append(-1 if buffer is None else len(buffer))
        return take(self)

    monkeypatch.setattr(caf_parser._RawFragments, "take", spy)
    _, items = parse(flow_bytes(numbered_households(400)))
    assert len(households_of(items)) == 400
    assert len(kept) == 400
    assert 0 < max(kept) < 20_000 + 8_192 + 4_000  # a household is about 2 KB

    # Once the position in the bytes is uncertain, no more bytes are kept.
    kept.clear()
    hs = numbered_households(50)
    hs[0] = replace(hs[0], extra="<!-- comment -->\n")
    _, items = parse(flow_bytes(hs))
    assert len(households_of(items)) == 50
    assert kept[0] > 0
    assert kept[1:] == [-1] * 49


# --------------------------------------------------------------------------------------------
# Both schema shapes
# --------------------------------------------------------------------------------------------


def rich_household() -> list[Household]:
    return [
        household(
            persons=[
                person(
                    nom="LE GALL",
                    prenom="HÉLÈNE",
                    prenom2="MARIE",
                    qual="MME",
                    sexe="2",
                    nir=NIR_DEM,
                    pfa_role="DEM",
                    idassedic="0508244R",
                    activities=[("GE", "CHO", "2024-10-19")],
                ),
                person(nom="MARTIN", prenom="LUC", role="CJT", nir=NIR_CJT, sdd=False),
                person(nom="MARTIN", prenom="ZOÉ", role="ENF", nir=NIR_ENF, sdd=False),
            ],
            events=[("2026-11-15", ["ENTDED", "ADR"])],
            suspension=("DAC", "2026-09-01"),
            natpf=["RSD", "RSI"],
        )
    ]


def test_both_schema_shapes_give_the_same_dtos() -> None:
    parsed = {}
    for schema in SCHEMAS:
        flow, items = parse(flow_bytes(rich_household(), schema=schema))
        assert flow.header.schema == schema
        (found,) = households_of(items)
        parsed[schema] = found
    b, d = parsed["vrsb0801"], parsed["vrsd0301"]
    # Only vrsd0301 carries the SDD entry flag and dates.
    assert [p.entering_sdd for p in b.persons] == [None, None, None]
    assert [p.entering_sdd for p in d.persons] == [False, False, False]

    def comparable(h: CafHousehold) -> CafHousehold:
        persons = tuple(replace(p, entering_sdd=None, sdd_start=None) for p in h.persons)
        return replace(h, persons=persons, raw_fragment="")

    assert comparable(b) == comparable(d)
    dem = b.persons[0]
    assert dem == CafPerson(
        qual="MME",
        last_name="LE GALL",
        birth_name="LE GALL",
        first_name="HÉLÈNE",
        other_first_names=("MARIE",),
        birth_place=None,
        birth_date=date(1980, 1, 15),
        birth_date_type="N",
        nir13=NIR_DEM,
        nir_key=None,
        nir_key_valid=True,
        nir_certified=True,
        sex="2",
        role="DEM",
        pfa_role="DEM",
        rsa_in_charge=True,
        france_travail_id="0508244R",
        sdd=True,
        entering_sdd=None,
        sdd_start=None,
        sdd_end=None,
        activities=(caf_parser.CafActivity("GE", "CHO", date(2024, 10, 19), None),),
    )
    assert b.events == (caf_parser.CafEvent(date(2026, 11, 15), "01:02:03", ("ENTDED", "ADR")),)
    assert b.event_codes == frozenset({"ENTDED", "ADR"})
    assert b.right_suspensions == (caf_parser.CafSuspension("DAC", date(2026, 9, 1)),)
    assert b.natpf == ("RSD", "RSI")
    assert [p.role for p in b.sdd_persons] == ["DEM"]


def test_vrsd0301_sdd_dates_and_entry_flag() -> None:
    dem = person(sdd=True, entering_sdd=True, sdd_start="2026-11-02", sdd_end="2027-01-31")
    _, items = parse(flow_bytes([household(persons=[dem])], schema="vrsd0301"))
    (found,) = households_of(items)
    parsed = found.persons[0]
    assert (parsed.sdd, parsed.entering_sdd) == (True, True)
    assert (parsed.sdd_start, parsed.sdd_end) == (date(2026, 11, 2), date(2027, 1, 31))


@pytest.mark.parametrize("schema", SCHEMAS)
def test_schema_detected_from_structure_without_location(schema: str) -> None:
    flow, items = parse(flow_bytes([household()], schema=schema, schema_location=False))
    assert flow.header.schema == schema
    assert flow.header.schema_location is None
    assert len(households_of(items)) == 1


def test_schema_without_location_nor_household_defaults_to_vrsb0801() -> None:
    flow, items = parse(flow_bytes([], schema_location=False))
    assert items == []
    assert flow.header.schema == "vrsb0801"
    assert flow.count_mismatch is None


def test_transfers_closure_and_unknown_elements() -> None:
    unknown_in_person = (
        "<Rattachement>\n<NOM>AUTRE</NOM>\n<PRENOM>AUTRE</PRENOM>\n<NIR>1111111111111</NIR>\n"
        "</Rattachement>\n<ZZZ>1</ZZZ>\n"
    )
    h = household(
        persons=[person(extra=unknown_in_person)],
        etat="6",
        moticlorsa="PCG",
        dtclorsa="2026-10-31",
        cedant=("CAF", "381", "999999900000000", "2026-03-01"),
        prenant=("MSA", "069", "2026-11-30"),
        addresses=[Address(rank="02", numcom="38185"), Address(rank="01")],
        extra="<Ressources>\n<MATRICULE>XXX</MATRICULE>\n</Ressources>\n",
    )
    _, items = parse(flow_bytes([h]))
    (found,) = households_of(items)
    assert found.matricule == "123456700000000"
    dem = found.persons[0]
    assert (dem.last_name, dem.first_name, dem.nir13) == ("DUPONT", "JEAN", NIR_DEM)
    assert (found.closure_reason, found.closed_on) == ("PCG", date(2026, 10, 31))
    assert not found.is_open
    assert found.transfer_in == caf_parser.CafTransferIn(
        "CAF", "381", "999999900000000", date(2026, 3, 1)
    )
    assert found.transfer_out == caf_parser.CafTransferOut("MSA", "069", date(2026, 11, 30))
    assert [a.rank for a in found.addresses] == [2, 1]
    assert found.current_address == found.addresses[1]
    assert found.current_address.insee_code == "69381"


def test_partial_birth_date_accepted_only_when_typed_so() -> None:
    partial = person(dtnai="1975-00-00", typedtnai="A")
    _, items = parse(flow_bytes([household(persons=[partial])]))
    (found,) = households_of(items)
    assert found.persons[0].birth_date == date(1975, 1, 1)
    assert found.persons[0].birth_date_type == "A"
    _, items = parse(flow_bytes([household(persons=[person(dtnai="1975-00-00")])]))
    assert only_error(items).code == "bad_date"


def test_sources_path_str_and_binary_file(tmp_path: Path) -> None:
    data = flow_bytes(numbered_households(3))
    file = tmp_path / "flow.xml"
    file.write_bytes(data)
    for source in (file, str(file)):
        with iter_caf_flow(source) as flow:
            assert len(households_of(list(flow))) == 3
        assert flow._raw.closed  # the file we opened is closed
    with file.open("rb") as handle:
        flow = iter_caf_flow(handle)
        assert len(households_of(list(flow))) == 3
        assert not handle.closed  # a caller's file object is left open


def test_many_households_and_prolog_spanning_chunks() -> None:
    comment = "<!-- " + "x" * 200_000 + " -->\n"
    data = flow_bytes(numbered_households(300), prolog=comment)
    flow, items = parse(data)
    found = households_of(items)
    assert len(found) == 300
    assert found[-1].numdemrsa == "00000000300"
    assert flow.count_mismatch is None


# --------------------------------------------------------------------------------------------
# Record errors: reported, parsing continues
# --------------------------------------------------------------------------------------------


def test_unknown_etatdosrsa_is_a_record_error_and_parsing_continues() -> None:
    bad = household(matricule="222222200000000", numdemrsa="00000000002", etat="9")
    hs = [household(), bad, household(matricule="333333300000000")]
    flow, items = parse(flow_bytes(hs))
    error = only_error(items)
    assert error.code == "unknown_code"
    assert error.position == 2
    assert error.keys == {"matricule": "222222200000000", "numdemrsa": "00000000002"}
    assert "ETATDOSRSA" in error.message
    assert "'9'" in error.message
    assert etree.fromstring(error.raw_fragment).findtext(".//ETATDOSRSA") == "9"
    assert [i.position for i in items] == [1, 2, 3]
    assert isinstance(items[2], CafHousehold)
    assert items[2].matricule == "333333300000000"
    assert flow.count_mismatch is None
    assert flow.read_count == 3


@pytest.mark.parametrize(
    ("bad", "code", "in_message"),
    [
        (household(matricule=None), "missing_tag", "MATRICULE"),
        (household(numdemrsa=None), "missing_tag", "NUMDEMRSA"),
        (household(matricule="12345"), "bad_format", "MATRICULE"),
        (household(persons=[]), "no_person", "Personne"),
        (household(etat=None), "missing_tag", "ETATDOSRSA"),
        (household(fonorg="XYZ"), "unknown_code", "FONORG"),
        (household(sitfam="ZZZ"), "unknown_code", "SITFAM"),
        (household(moticlorsa="ZZZ"), "unknown_code", "MOTICLORSA"),
        (household(natpf=["XXX"]), "unknown_code", "NATPF"),
        (household(dtdemrsa="2024-13-01"), "bad_date", "DTDEMRSA"),
        (household(dtclorsa="01/10/2024"), "bad_date", "FinDroit/DTCLORSA"),
        (household(addresses=[Address(rank="A1")]), "bad_format", "RGADR"),
        (household(persons=[person(role="XXX")]), "unknown_code", "ROLEPERS"),
        (household(persons=[person(role=None)]), "missing_tag", "ROLEPERS"),
        (household(persons=[person(prenom=None)]), "missing_tag", "Personne[1]/Identification/"),
        (household(persons=[person(dtnai=None)]), "missing_tag", "DTNAI"),
        (household(persons=[person(nir="12345")]), "bad_nir_format", "NIR"),
        (household(persons=[person(nir="18001691230AB")]), "bad_nir_format", "NIR"),
    ],
)
def test_record_errors(bad: Household, code: str, in_message: str) -> None:
    _, items = parse(flow_bytes([household(), bad]))
    assert isinstance(items[0], CafHousehold)
    error = only_error(items)
    assert (error.code, error.position) == (code, 2)
    assert in_message in error.message
    assert str(error).startswith(f"[{code}] household #2: ")


def test_missing_matricule_keeps_the_other_key() -> None:
    _, items = parse(flow_bytes([household(matricule=None, numdemrsa="00000000042")]))
    error = only_error(items)
    assert error.keys == {"numdemrsa": "00000000042"}


def test_missing_nom_names_the_person_and_tag() -> None:
    hs = household(persons=[person(), person(nom=None, role="CJT", nir=NIR_CJT)])
    _, items = parse(flow_bytes([hs]))
    error = only_error(items)
    assert error.code == "missing_tag"
    assert error.message == "Personne[2]/Identification/NOM is missing or empty"


def test_empty_mandatory_tag_is_missing() -> None:
    _, items = parse(flow_bytes([household(matricule="   ")]))
    assert only_error(items).code == "missing_tag"


def test_bad_nir_key_keeps_the_person_unverified() -> None:
    good = key15(NIR_CJT)
    bad = f"{NIR_DEM}{int(key15(NIR_DEM)[13:]) % 97 + 1:02d}"  # any other key
    assert bad != key15(NIR_DEM)
    persons = [
        person(nir=bad),
        person(nom="B", role="CJT", nir=good, sdd=False),
        person(nom="C", role="ENF", nir=None, sdd=False),
        person(nom="D", role="ENF", nir=f"{NIR_ENF[:7]} {NIR_ENF[7:]}", sdd=False),
    ]
    _, items = parse(flow_bytes([household(persons=persons)]))
    (found,) = households_of(items)
    unverified, verified, without, spaced = found.persons
    assert (unverified.nir13, unverified.nir_key, unverified.nir_key_valid) == (
        NIR_DEM,
        bad[13:],
        False,
    )
    assert not unverified.nir_usable_alone
    assert unverified.is_sdd  # kept with all its data
    assert (verified.nir13, verified.nir_key, verified.nir_key_valid) == (
        NIR_CJT,
        good[13:],
        True,
    )
    assert verified.nir_usable_alone
    assert (without.nir13, without.nir_key, without.nir_key_valid) == (None, None, None)
    assert (spaced.nir13, spaced.nir_key_valid) == (NIR_ENF, True)
    (warning,) = found.warnings
    assert warning.code == "bad_nir_key"
    assert warning.message.startswith("Personne[1]/Identification/NIR")
    assert NIR_DEM not in warning.message


def test_sdd_flag_on_a_child_is_a_warning() -> None:
    hs = household(persons=[person(), person(role="ENF", nir=NIR_ENF, sdd=True)])
    _, items = parse(flow_bytes([hs]))
    (found,) = households_of(items)
    assert [w.code for w in found.warnings] == ["sdd_role"]
    assert [p.role for p in found.sdd_persons] == ["DEM"]


def test_messages_never_contain_nir_names_or_birth_dates() -> None:
    secret_nir = "2990513332130"
    cases = [
        person(nom="ZORGLUB", prenom="ÉLODIE", nir=secret_nir, dtnai="1999-02-30"),
        person(nom="ZORGLUB", prenom="ÉLODIE", nir=secret_nir[:12] + "X"),
        person(nom="ZORGLUB", prenom="ÉLODIE", nir=secret_nir + "00"),
        person(nom="ZORGLUB", prenom=None, nir=secret_nir),
    ]
    for case in cases:
        _, items = parse(flow_bytes([household(persons=[case])]))
        texts: list[str] = []
        for item in items:
            if isinstance(item, CafRecordError):
                texts += [item.message, str(item), repr(item)]
            else:
                texts += [w.message for w in item.warnings]
        assert texts, case
        for text in texts:
            for secret in (secret_nir, secret_nir[:12], "ZORGLUB", "ÉLODIE", "1999-02-30"):
                assert secret not in text, text


# --------------------------------------------------------------------------------------------
# TransmissionFlux
# --------------------------------------------------------------------------------------------


def test_count_mismatch_is_reported_at_the_end() -> None:
    flow, items = parse(flow_bytes(numbered_households(2), count=3))
    assert len(households_of(items)) == 2
    assert flow.finished
    assert flow.count_mismatch == CountMismatch(expected=3, read=2, reason="different")
    assert str(flow.count_mismatch) == "NBTOTDOSRSATRANSM announces 3 households, 2 read"


def test_count_mismatch_counts_record_errors_as_read() -> None:
    hs = [household(), household(etat="X")]
    flow, items = parse(flow_bytes(hs, count=2))
    assert len(items) == 2
    assert flow.count_mismatch is None


def test_missing_transmission_flux() -> None:
    flow = iter_caf_flow(io.BytesIO(flow_bytes(numbered_households(2), count=None)))
    assert flow.count_mismatch is None  # not known before the end
    assert len(list(flow)) == 2
    assert flow.count_mismatch == CountMismatch(expected=None, read=2, reason="missing")


def test_invalid_transmission_count() -> None:
    flow, _ = parse(flow_bytes([household()], count="douze"))
    assert flow.count_mismatch == CountMismatch(expected=None, read=1, reason="invalid")


# --------------------------------------------------------------------------------------------
# File-level errors
# --------------------------------------------------------------------------------------------


def line_of(data: bytes, needle: bytes) -> int:
    return data[: data.index(needle)].count(b"\n") + 1


def test_truncated_file_yields_complete_households_then_fails() -> None:
    data = flow_bytes(numbered_households(3))
    cut = data.index(b"<MATRICULE>0000003")
    truncated = data[:cut]
    flow = iter_caf_flow(io.BytesIO(truncated))
    got: list[Item] = []
    with pytest.raises(MalformedFileError) as info:
        got.extend(flow)
    assert [h.numdemrsa for h in households_of(got)] == ["00000000001", "00000000002"]
    assert info.value.code == "xml_syntax"
    assert info.value.line == truncated.count(b"\n") + 1
    assert f"(line {info.value.line}, column " in str(info.value)
    assert not flow.finished
    assert flow.count_mismatch is None


@requires_samples
def test_truncated_sample_file() -> None:
    data = SAMPLE_B_MONTHLY.read_bytes()
    truncated = data[: len(data) // 2]
    complete = truncated.count(b"</InfosFoyerRSA>")
    got: list[Item] = []
    with pytest.raises(MalformedFileError) as info:
        got.extend(iter_caf_flow(io.BytesIO(truncated)))
    assert len(households_of(got)) == complete
    assert info.value.line is not None


def test_utf8_declared_with_latin1_bytes() -> None:
    hs = [household(), household(persons=[person(prenom="HÉLÈNE")]), household()]
    data = flow_bytes(hs, encoding="UTF-8", byte_encoding="iso-8859-1")
    flow = iter_caf_flow(io.BytesIO(data))
    got: list[Item] = []
    with pytest.raises(MalformedFileError) as info:
        got.extend(flow)
    assert len(households_of(got)) == 1
    assert info.value.code == "encoding"
    assert info.value.line == line_of(data, "HÉLÈNE".encode("latin-1"))
    assert "'UTF-8'" in info.value.message
    assert "HÉLÈNE" not in info.value.message


def test_no_declaration_with_latin1_bytes() -> None:
    hs = [household(persons=[person(nom="MÜLLER")])]
    data = flow_bytes(hs, encoding=None, byte_encoding="iso-8859-1")
    with pytest.raises(MalformedFileError) as info:
        list(iter_caf_flow(io.BytesIO(data)))
    assert info.value.code == "encoding"
    assert "no encoding is declared" in info.value.message
    assert info.value.line == line_of(data, "MÜLLER".encode("latin-1"))


def test_no_declaration_with_utf8_bytes_is_fine() -> None:
    data = flow_bytes(
        [household(persons=[person(nom="MÜLLER")])], encoding=None, byte_encoding="utf-8"
    )
    _, items = parse(data)
    assert households_of(items)[0].persons[0].last_name == "MÜLLER"


@pytest.mark.parametrize("encoding", ["UTF-8", "windows-1252", "UTF-16"])
def test_declared_encoding_is_honoured(encoding: str) -> None:
    hs = [household(persons=[person(nom="L’HÔPITAL", prenom="ŒDIPE")])]
    data = flow_bytes(hs, encoding=encoding, byte_encoding=encoding.lower())
    flow, items = parse(data)
    assert flow.header.declared_encoding == encoding
    dem = households_of(items)[0].persons[0]
    assert (dem.last_name, dem.first_name) == ("L’HÔPITAL", "ŒDIPE")


@pytest.mark.parametrize(
    "declaration",
    [
        '<?xml version="1.0" encoding="ISO-8859-1"?>',
        "<?xml version='1.0' encoding = 'iso-8859-1' standalone='yes'?>",
        '<?xml version="1.0"\n   encoding="latin1"\n?>',
    ],
)
def test_latin1_flows_give_the_text_of_the_file(declaration: str) -> None:
    """ISO-8859-1 flows are handed to libxml2 as UTF-8 (faster): same text, same lines."""
    hs = [household(), household(persons=[person(nom="LÆTITIA ÇÀÖ", prenom="ÿVES")])]
    text = flow_text(hs, encoding=None)
    data = (declaration + "\n" + text).encode("iso-8859-1")
    flow, items = parse(data)
    assert flow.header.declared_encoding is not None
    dem = households_of(items)[1].persons[0]
    assert (dem.last_name, dem.first_name) == ("LÆTITIA ÇÀÖ", "ÿVES")
    raw = households_of(items)[1].raw_fragment
    assert "LÆTITIA ÇÀÖ" in raw  # the raw fragment is still cut from the file's bytes
    broken = data.replace(b"\xffVES", b"\xffVES\x01")
    with pytest.raises(MalformedFileError) as info:
        list(iter_caf_flow(io.BytesIO(broken)))
    assert info.value.line == line_of(broken, b"\xffVES\x01")


def test_latin1_reader_rewrites_the_declaration_whatever_the_read_size() -> None:
    data = flow_bytes([household(persons=[person(nom="ÉLODIE")])])
    prefix, rest = data[:200], data[200:]
    reader = caf_parser._ReplayReader(prefix, io.BytesIO(rest), latin1_as_utf8=True)
    reader.buffer = bytearray()
    pieces = []
    while piece := reader.read(7):  # smaller than the XML declaration
        pieces.append(piece)
    given = b"".join(pieces)
    assert given.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert given.decode("utf-8").split("?>", 1)[1] == data.decode("latin-1").split("?>", 1)[1]
    assert bytes(reader.buffer) == data  # the raw fragments are cut from the file's own bytes


def test_utf8_bytes_declared_latin1_is_a_record_error() -> None:
    hs = [
        household(matricule="111111100000000"),
        household(matricule="222222200000000", persons=[person(prenom="HÉLÈNE")]),
        household(matricule="333333300000000"),
    ]
    text = flow_text(hs, encoding="ISO-8859-1")
    # Only the second household has non-ASCII text; write it as UTF-8 bytes.
    data = text.encode("utf-8")
    _, items = parse(data)
    error = only_error(items)
    assert (error.code, error.position) == ("bad_encoding", 2)
    assert error.keys["matricule"] == "222222200000000"
    assert [i.position for i in items if isinstance(i, CafHousehold)] == [1, 3]


def test_windows_1252_bytes_declared_latin1_is_a_record_error() -> None:
    hs = [household(persons=[person(nom="L’HÔPITAL")])]
    data = flow_bytes(hs, encoding="ISO-8859-1", byte_encoding="windows-1252")
    _, items = parse(data)
    assert only_error(items).code == "bad_encoding"


def test_unsupported_declared_encoding() -> None:
    with pytest.raises(MalformedFileError) as info:
        iter_caf_flow(io.BytesIO(flow_bytes([household()], encoding="FOO-1")))
    assert info.value.code == "encoding"
    assert "'FOO-1'" in info.value.message
    assert info.value.line == 1


def test_control_character_is_a_syntax_error_at_its_line() -> None:
    hs = [household(), household(persons=[person(nom="DU\x01PONT")])]
    data = flow_bytes(hs)
    got: list[Item] = []
    with pytest.raises(MalformedFileError) as info:
        got.extend(iter_caf_flow(io.BytesIO(data)))
    assert len(households_of(got)) == 1
    assert info.value.code == "xml_syntax"
    assert info.value.line == line_of(data, b"DU\x01PONT")
    assert info.value.column is not None
    assert "PONT" not in info.value.message
    assert "Bytes" not in info.value.message


def test_missing_header() -> None:
    data = (
        flow_bytes([household()])
        .replace(b"<IdentificationFlux>", b"<Autre>")
        .replace(b"</IdentificationFlux>", b"</Autre>")
    )
    with pytest.raises(MalformedFileError) as info:
        iter_caf_flow(io.BytesIO(data))
    assert info.value.code == "missing_header"


@pytest.mark.parametrize(
    ("options", "in_message"),
    [({"typeflux": "X"}, "TYPEFLUX"), ({"dtref": "2026-02-30"}, "DTREF")],
)
def test_bad_header(options: dict[str, str], in_message: str) -> None:
    with pytest.raises(MalformedFileError) as info:
        iter_caf_flow(io.BytesIO(flow_bytes([household()], **options)))
    assert info.value.code == "bad_header"
    assert in_message in info.value.message


def test_not_xml() -> None:
    with pytest.raises(MalformedFileError):
        list(iter_caf_flow(io.BytesIO(b"MATRICULE;NOM\n1;DUPONT\n")))
    with pytest.raises(MalformedFileError):
        list(iter_caf_flow(io.BytesIO(b"")))


# --------------------------------------------------------------------------------------------
# Unsafe XML: refused as a whole, nothing yielded
# --------------------------------------------------------------------------------------------

BILLION_LAUGHS = """<!DOCTYPE Racine [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
"""
XXE = """<!DOCTYPE Racine [
 <!ENTITY xxe SYSTEM "file:///etc/passwd">
]>
"""


def unsafe_flow(doctype: str, entity: str, **options: Any) -> bytes:
    hs = household(persons=[person(nom="PLACEHOLDER")])
    text = flow_text([hs], prolog=doctype, **options)
    return text.replace("PLACEHOLDER", entity).encode("iso-8859-1")


@pytest.mark.parametrize(
    ("doctype", "entity", "code"),
    [
        (BILLION_LAUGHS, "&lol9;", "entity"),
        (XXE, "&xxe;", "entity"),
        ('<!DOCTYPE Racine SYSTEM "http://example.invalid/caf.dtd">\n', "X", "doctype"),
        ("<!DOCTYPE Racine>\n", "X", "doctype"),
        ("<!-- a comment first -->\n<!doctype Racine>\n", "X", "doctype"),
    ],
)
def test_unsafe_files_are_refused_before_anything_is_read(
    doctype: str, entity: str, code: str
) -> None:
    data = unsafe_flow(doctype, entity)
    got: list[Item] = []
    with pytest.raises(UnsafeFileError) as info:
        got.extend(iter_caf_flow(io.BytesIO(data)))
    assert got == []
    assert info.value.code == code
    assert "refused as a whole" in info.value.message
    assert "root:" not in info.value.message  # /etc/passwd never read


def test_unsafe_file_from_path_is_closed(tmp_path: Path) -> None:
    file = tmp_path / "xxe.xml"
    file.write_bytes(unsafe_flow(XXE, "&xxe;"))
    with pytest.raises(UnsafeFileError):
        iter_caf_flow(file)


def test_unsafe_utf16_file_is_refused() -> None:
    text = flow_text([household()], prolog=XXE, encoding="UTF-16")
    with pytest.raises(UnsafeFileError):
        iter_caf_flow(io.BytesIO(text.encode("utf-16")))


def test_unsafe_file_with_bom_and_declaration_split_over_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(caf_parser, "_PROLOG_CHUNK", 7)
    data = b"\xef\xbb\xbf" + unsafe_flow(BILLION_LAUGHS, "&lol9;", encoding="UTF-8")
    with pytest.raises(UnsafeFileError):
        iter_caf_flow(io.BytesIO(data))
    # and a safe file read 7 bytes at a time still parses
    _, items = parse(flow_bytes([household()], prolog="<!-- c -->\n<?pi x?>\n"))
    assert len(households_of(items)) == 1


@pytest.mark.parametrize(
    ("doctype", "entity"),
    [
        (XXE, "&xxe;"),
        (BILLION_LAUGHS, "&lol9;"),
        ('<!DOCTYPE Racine SYSTEM "http://example.invalid/caf.dtd">\n', "X"),
        ('<!DOCTYPE Racine PUBLIC "-//X//Y" "caf.dtd">\n', "X"),
        ("<!DOCTYPE Racine>\n", "X"),
    ],
)
def test_parser_settings_are_a_second_line_of_defence(
    monkeypatch: pytest.MonkeyPatch, doctype: str, entity: str
) -> None:
    """Even if the prolog check were bypassed, entities are not expanded and the DTD refused."""

    def no_check(raw: io.BufferedIOBase) -> tuple[bytes, str | None]:
        return b"", None

    monkeypatch.setattr(caf_parser, "_check_prolog", no_check)
    got: list[Item] = []
    with pytest.raises(UnsafeFileError) as info:
        got.extend(iter_caf_flow(io.BytesIO(unsafe_flow(doctype, entity))))
    assert got == []
    assert "root:" not in str(info.value)


# --------------------------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------------------------


def test_code_lists() -> None:
    assert set(ETATDOSRSA) == {"Z", "0", "1", "2", "3", "4", "5", "6"}
    assert set(ETATDOSRSA_OPEN) == {"2", "3", "4"}
    assert set(ROLEPERS) == {"DEM", "CJT", "ENF", "AUT", "RDO"}
    assert set(NATPF) == {"RSD", "RSI", "RSU", "RSB", "RSJ", "RCD", "RCI", "RCU", "RCB", "RCJ"}
    assert set(MOTICLORSA) == {"PCG", "ECH", "MUT", "RGD", "RFD", "RAU", "EFF", "RST", "RSO"}
    assert set(SITFAM) == {
        *("ABA", "CEL", "DIV", "ISO", "MAR", "PAC", "RPA"),
        *("RVC", "RVM", "SEF", "SEL", "VEU", "VIM"),
    }
    assert all(label and label[0].isupper() for label in ETATDOSRSA.values())


def test_processed_elements_are_released(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory stays flat: each processed element is cleared and its previous siblings dropped
    (the tree only holds what the parser has read ahead, one chunk at most)."""
    sizes: list[int] = []
    release = caf_parser._release

    def spy(elem: etree._Element) -> None:
        release(elem)
        assert len(elem) == 0
        assert elem.getprevious() is None
        parent = elem.getparent()
        assert parent is not None
        sizes.append(len(parent))

    monkeypatch.setattr(caf_parser, "_release", spy)
    _, items = parse(flow_bytes(numbered_households(50)))
    assert len(households_of(items)) == 50
    assert len(sizes) == 52  # header, 50 households, trailer
    assert sizes[-1] == 1


def test_dtos_are_instances_of_the_real_frozen_classes() -> None:
    """They are built by a faster constructor than the dataclass one, with the same result."""
    _, items = parse(flow_bytes(rich_household()))
    (found,) = households_of(items)
    assert type(found) is CafHousehold
    assert type(found.persons[0]) is CafPerson
    dtos: list[Any] = [
        found,
        *found.persons,
        *found.persons[0].activities,
        *found.addresses,
        *found.benefit_details,
        *found.right_suspensions,
        *found.events,
    ]
    for dto in dtos:
        first_field = dataclasses.fields(dto)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(dto, first_field, None)
        assert dataclasses.replace(dto) == dto  # built again by the dataclass constructor
        assert hash(dataclasses.replace(dto)) == hash(dto)
        assert pickle.loads(pickle.dumps(dto)) == dto  # noqa: S301 - our own bytes
        assert repr(dataclasses.replace(dto)) == repr(dto)


def test_household_for_import_keeps_what_the_importer_reads() -> None:
    _, items = parse(flow_bytes(rich_household()))
    (found,) = households_of(items)
    assert found.benefit_details
    assert found.persons[0].activities
    assert found.addresses
    slim = for_import(found, keep_raw=False)
    assert type(slim) is CafHousehold
    assert (slim.raw_fragment, slim.benefit_details, slim.addresses) == (
        "",
        (),
        (found.current_address,),
    )
    assert all(person.activities == () for person in slim.persons)
    kept = ("numorg", "matricule", "dtdemrsa", "etat_dossier", "events", "transfer_out")
    assert [getattr(slim, name) for name in kept] == [getattr(found, name) for name in kept]
    assert [(p.nir13, p.birth_date, p.role, p.sdd, p.sdd_start) for p in slim.persons] == [
        (p.nir13, p.birth_date, p.role, p.sdd, p.sdd_start) for p in found.persons
    ]
    assert pickle.loads(pickle.dumps(slim)) == slim  # noqa: S301 - our own bytes
    assert for_import(found, keep_raw=True).raw_fragment == found.raw_fragment


def test_fast_constructor_falls_back_to_the_dataclass_when_unsure() -> None:
    @dataclass(frozen=True, slots=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            if self.value < 0:
                raise ValueError

    @dataclass(frozen=True)
    class NoSlots:
        value: int

    @dataclass(frozen=True, slots=True)
    class Plain:
        value: int
        items: tuple[int, ...] = ()
        extra: list[int] = dataclasses.field(default_factory=list)

    assert caf_parser._fast_constructor(Checked) is Checked
    assert caf_parser._fast_constructor(NoSlots) is NoSlots
    new_plain = caf_parser._fast_constructor(Plain)
    assert new_plain is not Plain
    built = new_plain(value=1)
    assert type(built) is Plain
    assert built == Plain(1)
    assert built.extra == []
    assert built.extra is not new_plain(value=1).extra
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.value = 2  # type: ignore[misc]
