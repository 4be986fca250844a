"""NIR (French social security number) helpers and name normalisation.

A NIR is 13 characters (sex, birth year, month, department, commune, order number) followed by
a 2-digit control key equal to ``97 - (number mod 97)``; for people born in Corsica the department
is ``2A`` / ``2B``, replaced by ``19`` / ``18`` for the computation.

Error messages never contain the NIR itself: it is personal data and messages end up in logs and
import rejects.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "NirError",
    "ParsedNir",
    "is_valid_nir",
    "nir_key",
    "nir_with_key",
    "normalize_name",
    "normalize_nir",
    "parse_nir",
    "split_nir",
]

NIR13_LENGTH = 13
NIR15_LENGTH = 15

# 5 digits (sex, year, month), department (2 digits or 2A/2B), 6 digits (commune, order).
_NIR13_RE = re.compile(r"[0-9]{5}(?:[0-9]{2}|2[AB])[0-9]{6}")
_KEY_RE = re.compile(r"[0-9]{2}")
_SPACES = str.maketrans("", "", " \t\u00a0\u202f")


class NirError(ValueError):
    """A malformed NIR. The message says what is wrong, never the value."""


@dataclass(frozen=True, slots=True)
class ParsedNir:
    """A syntactically valid NIR.

    ``key`` is the key given with the NIR, or the computed one when only 13 characters were given
    (``key_given`` is then False). ``key_valid`` is False only when a given key does not match.
    """

    nir13: str
    key: str
    key_given: bool
    key_valid: bool

    @property
    def nir15(self) -> str:
        """The 13 characters followed by the key (as given, even if wrong)."""
        return self.nir13 + self.key


def _check_nir13(nir13: str) -> None:
    if len(nir13) != NIR13_LENGTH:
        raise NirError(f"NIR body must have {NIR13_LENGTH} characters, got {len(nir13)}")
    if _NIR13_RE.fullmatch(nir13) is None:
        raise NirError(_describe_bad_chars(nir13))


def _describe_bad_chars(nir13: str) -> str:
    for index, char in enumerate(nir13):
        if index in (5, 6):
            continue
        if not ("0" <= char <= "9"):
            return f"NIR has a non-digit character at position {index + 1}"
    return "NIR department (positions 6-7) must be 2 digits, 2A or 2B"


def nir_key(nir13: str) -> int:
    """The control key (1..97) of a 13-character NIR; ``2A``/``2B`` count as ``19``/``18``.

    Raises NirError if ``nir13`` is not 13 well-formed characters (upper case expected; use
    :func:`split_nir` to clean user input first).
    """
    _check_nir13(nir13)
    number = int(nir13.replace("2A", "19", 1).replace("2B", "18", 1))
    return 97 - (number % 97)


def nir_with_key(nir13: str) -> str:
    """The 15-character NIR: ``nir13`` followed by its computed 2-digit key."""
    return f"{nir13}{nir_key(nir13):02d}"


def split_nir(value: str) -> tuple[str, str | None]:
    """Split a 13- or 15-character NIR (spaces ignored, case-insensitive) into (nir13, key).

    The key is None when only 13 characters were given. The key is not checked here (see
    :func:`parse_nir`). Raises NirError on a wrong length or bad characters.
    """
    compact = value.translate(_SPACES).upper()
    if len(compact) not in (NIR13_LENGTH, NIR15_LENGTH):
        raise NirError(
            f"NIR must have {NIR13_LENGTH} or {NIR15_LENGTH} characters (spaces ignored), "
            f"got {len(compact)}"
        )
    nir13, key = compact[:NIR13_LENGTH], compact[NIR13_LENGTH:] or None
    _check_nir13(nir13)
    if key is not None and _KEY_RE.fullmatch(key) is None:
        raise NirError("NIR key (positions 14-15) must be 2 digits")
    return nir13, key


def parse_nir(value: str) -> ParsedNir:
    """Parse a 13- or 15-character NIR; a wrong key is reported in ``key_valid``, not raised."""
    nir13, key = split_nir(value)
    computed = f"{nir_key(nir13):02d}"
    if key is None:
        return ParsedNir(nir13=nir13, key=computed, key_given=False, key_valid=True)
    return ParsedNir(nir13=nir13, key=key, key_given=True, key_valid=key == computed)


def is_valid_nir(nir15: str) -> bool:
    """True if ``nir15`` is a well-formed 15-character NIR whose key matches. Never raises."""
    try:
        nir13, key = split_nir(nir15)
    except NirError:
        return False
    return key is not None and int(key) == nir_key(nir13)


def normalize_nir(value: str) -> str:
    """The canonical 15-character NIR (upper case, no spaces) of a 13- or 15-character input.

    A 13-character input gets its computed key. Raises NirError if the input is malformed or if
    a given key does not match.
    """
    parsed = parse_nir(value)
    if not parsed.key_valid:
        raise NirError("NIR key does not match the first 13 characters")
    return parsed.nir15


# Characters that separate name parts: hyphens, apostrophes (straight, typographic, backtick).
_NAME_SEPARATORS = str.maketrans(
    {
        "-": " ",
        "\u2010": " ",
        "\u2011": " ",
        "\u2012": " ",
        "\u2013": " ",
        "\u2014": " ",
        "'": " ",
        "\u2019": " ",
        "\u2018": " ",
        "`": " ",
        "\u00b4": " ",
        "\u02bc": " ",
    }
)
# Letters that NFKD does not decompose.
_LIGATURES = str.maketrans({"Œ": "OE", "Æ": "AE", "Ø": "O", "Ð": "D", "Þ": "TH", "Ł": "L"})


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def normalize_name(s: str) -> str:
    """Key for probable-match comparisons: upper case, no accents, hyphens and apostrophes as
    spaces, runs of whitespace collapsed, stripped. ``"Le-Gall  d’Hérouville"`` gives
    ``"LE GALL D HEROUVILLE"``."""
    upper = _strip_accents(_strip_accents(s).upper())
    cleaned = upper.translate(_LIGATURES).translate(_NAME_SEPARATORS)
    return " ".join(cleaned.split())
