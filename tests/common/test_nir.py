"""NIR key computation / validation and name normalisation."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spie.common.nir import (
    NirError,
    ParsedNir,
    is_valid_nir,
    nir_key,
    nir_with_key,
    normalize_name,
    normalize_nir,
    parse_nir,
    split_nir,
)

# 13-character NIR bodies: sex, year, month, department (2 digits or 2A/2B), commune, order.
nir13_bodies = st.builds(
    lambda sex, year, month, dept, rest: f"{sex}{year:02d}{month:02d}{dept}{rest:06d}",
    st.sampled_from("1278"),
    st.integers(0, 99),
    st.integers(1, 12),
    st.one_of(st.integers(1, 99).map(lambda d: f"{d:02d}"), st.sampled_from(["2A", "2B"])),
    st.integers(0, 999_999),
)


def official_key(nir13: str) -> int:
    """Key as documented by the Sécurité sociale: for Corsica, the NIR with 2A/2B read as 20
    minus 1,000,000 (2A) or 2,000,000 (2B)."""
    if nir13[5:7] == "2A":
        number = int(nir13[:5] + "20" + nir13[7:]) - 1_000_000
    elif nir13[5:7] == "2B":
        number = int(nir13[:5] + "20" + nir13[7:]) - 2_000_000
    else:
        number = int(nir13)
    return 97 - number % 97


def test_nir_key_known_value() -> None:
    # 1 84 12 76 451 089: 1841276451089 mod 97 = 51, key 46.
    assert 1841276451089 % 97 == 51
    assert nir_key("1841276451089") == 46
    assert nir_with_key("1841276451089") == "184127645108946"
    assert is_valid_nir("184127645108946")
    assert not is_valid_nir("184127645108947")


def test_nir_key_corsica() -> None:
    # 2A counts as 19, 2B as 18.
    assert nir_key("180012A123456") == 97 - 1800119123456 % 97
    assert nir_key("180012B123456") == 97 - 1800118123456 % 97
    assert nir_key("180012A123456") != nir_key("1800120123456")
    assert nir_key("180012A123456") == official_key("180012A123456")
    assert nir_key("180012B123456") == official_key("180012B123456")
    full = nir_with_key("180012B123456")
    assert is_valid_nir(full)
    assert is_valid_nir(full.lower())
    assert split_nir(full.lower()) == ("180012B123456", full[13:])


def test_nir_key_range_is_1_to_97() -> None:
    # A multiple of 97 gives key 97, never 0.
    body = 97 * 10_000_000_000
    assert nir_key(f"{body:013d}") == 97


@given(nir13_bodies)
def test_computed_key_validates(nir13: str) -> None:
    key = nir_key(nir13)
    assert 1 <= key <= 97
    assert key == official_key(nir13)
    full = f"{nir13}{key:02d}"
    assert is_valid_nir(full)
    assert normalize_nir(nir13) == full
    assert normalize_nir(full) == full
    assert parse_nir(full) == ParsedNir(nir13, f"{key:02d}", key_given=True, key_valid=True)


@given(nir13_bodies, st.integers(0, 99))
def test_any_other_key_is_rejected(nir13: str, other: int) -> None:
    good = nir_key(nir13)
    full = f"{nir13}{other:02d}"
    assert is_valid_nir(full) is (other == good)
    parsed = parse_nir(full)
    assert parsed.key_valid is (other == good)
    assert parsed.nir15 == full
    if other != good:
        with pytest.raises(NirError, match="key does not match"):
            normalize_nir(full)


def test_split_nir_accepts_spaces_and_13_or_15_characters() -> None:
    assert split_nir(" 1 84 12 76 451 089 ") == ("1841276451089", None)
    assert split_nir("1 84 12 76 451 089 46") == ("1841276451089", "46")
    assert split_nir("1841276451089\u00a046") == ("1841276451089", "46")
    parsed = parse_nir("1841276451089")
    assert parsed == ParsedNir("1841276451089", "46", key_given=False, key_valid=True)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "13 or 15 characters"),
        ("184127645108", "got 12"),
        ("18412764510894", "got 14"),
        ("1841276451089467", "got 16"),
        ("1841X76451089", "position 5"),
        ("18412764510B9", "position 12"),
        ("18412XY451089", "department"),
        ("1841276451089AB", "key (positions 14-15) must be 2 digits"),
    ],
)
def test_malformed_nirs(value: str, message: str) -> None:
    with pytest.raises(NirError, match=re.escape(message)) as info:
        split_nir(value)
    assert isinstance(info.value, ValueError)
    if len(value) >= 5:
        assert value not in str(info.value)  # the NIR itself is never in the message
    assert not is_valid_nir(value)


def test_nir_key_requires_a_clean_13_character_body() -> None:
    with pytest.raises(NirError):
        nir_key("184127645108946")
    with pytest.raises(NirError):
        nir_key("1 84 12 76 451 08")
    assert not is_valid_nir("1841276451089")  # no key: not a valid 15-character NIR


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Hélène", "HELENE"),
        ("  le  gall ", "LE GALL"),
        ("Le-Gall", "LE GALL"),
        ("SAINT-ANDRÉ", "SAINT ANDRE"),
        ("d'Hérouville", "D HEROUVILLE"),
        ("D’HÉROUVILLE", "D HEROUVILLE"),
        ("Jean--Pierre", "JEAN PIERRE"),
        ("MÜLLER", "MULLER"),
        ("Noël Çağlar", "NOEL CAGLAR"),
        ("Œdipe Lætitia", "OEDIPE LAETITIA"),
        ("\tBENAÏSSA\n", "BENAISSA"),
        ("", ""),
    ],
)
def test_normalize_name(raw: str, expected: str) -> None:
    assert normalize_name(raw) == expected


name_characters = st.one_of(
    st.characters(codec="latin-1"),
    st.characters(min_codepoint=0x100, max_codepoint=0x17F),  # Latin Extended-A
    st.sampled_from("’‘ʼ‐–—"),
)


@given(st.text(name_characters))
def test_normalize_name_is_idempotent(value: str) -> None:
    once = normalize_name(value)
    assert normalize_name(once) == once
    assert once == once.strip()
    assert "  " not in once
    assert "-" not in once
    assert "'" not in once
    assert once == once.upper()
