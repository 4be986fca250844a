"""Consistency of the pure reference data: territories, communes, maisons, demo names."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from spie.demo.names import FEMALE_FIRST_NAMES, LAST_NAMES, MALE_FIRST_NAMES, STREET_NAMES
from spie.territories.reference import (
    COMMUNES,
    MAISONS_DE_LA_METROPOLE,
    TERRITORIES,
    CommuneRef,
    commune_by_insee,
    communes_of,
    territory_by_code,
)

TERRITORY_CODES = {t.code for t in TERRITORIES}


def _duplicates(values: tuple[str, ...] | list[str]) -> list[str]:
    return [value for value, count in Counter(values).items() if count > 1]


# Territories


def test_ten_territories_with_unique_codes() -> None:
    assert len(TERRITORIES) == 10
    assert len(TERRITORY_CODES) == 10
    assert _duplicates([t.name for t in TERRITORIES]) == []


def test_lyon_is_the_only_ville_and_nine_ctms() -> None:
    kinds = Counter(t.kind for t in TERRITORIES)
    assert kinds == {"ctm": 9, "ville": 1}
    lyon = territory_by_code("LYON")
    assert lyon is not None
    assert (lyon.name, lyon.kind) == ("Lyon", "ville")


def test_territory_codes_are_uppercase_slugs_fitting_the_column() -> None:
    for territory in TERRITORIES:
        assert re.fullmatch(r"[A-Z]+(-[A-Z]+)*", territory.code), territory.code
        assert len(territory.code) <= 40
        assert territory.kind == "ville" or territory.code.startswith("CTM-")


def test_expected_ctm_names() -> None:
    ctm_names = {t.name for t in TERRITORIES if t.kind == "ctm"}
    assert ctm_names == {
        "Villeurbanne",
        "Rhône Amont",
        "Porte des Alpes",
        "Les Portes du Sud",
        "Lônes et Coteaux du Rhône",
        "Val d'Yzeron",
        "Ouest Nord",
        "Val de Saône",
        "Plateau Nord",
    }


def test_territory_by_code_unknown() -> None:
    assert territory_by_code("CTM-NOWHERE") is None


# Communes


def test_sixty_seven_communes_with_unique_insee_codes() -> None:
    assert len(COMMUNES) == 67
    insee_codes = [c.insee for c in COMMUNES]
    assert _duplicates(insee_codes) == []
    for code in insee_codes:
        assert re.fullmatch(r"69\d{3}", code), code


def test_commune_names_are_unique_and_postal_codes_valid() -> None:
    assert _duplicates([c.name for c in COMMUNES]) == []
    for commune in COMMUNES:
        assert re.fullmatch(r"69\d{3}", commune.postal_code), commune
        assert commune.name == commune.name.strip()
        assert commune.name


def test_lyon_itself_is_replaced_by_its_nine_arrondissements() -> None:
    assert commune_by_insee("69123") is None
    lyon = communes_of("LYON")
    assert [c.insee for c in lyon] == [f"6938{n}" for n in range(1, 10)]
    assert [c.postal_code for c in lyon] == [f"6900{n}" for n in range(1, 10)]
    assert lyon[0].name == "Lyon 1er"
    assert lyon[1].name == "Lyon 2e"
    assert lyon[8].name == "Lyon 9e"
    # 58 communes outside Lyon + 9 arrondissements
    assert sum(1 for c in COMMUNES if c.territory_code != "LYON") == 58


def test_every_commune_territory_exists_and_every_territory_has_a_commune() -> None:
    for commune in COMMUNES:
        assert commune.territory_code in TERRITORY_CODES, commune
    for territory in TERRITORIES:
        assert len(communes_of(territory.code)) >= 1, territory.code
    assert sum(len(communes_of(code)) for code in TERRITORY_CODES) == len(COMMUNES)


def test_villeurbanne_ctm_is_villeurbanne_only() -> None:
    assert [c.insee for c in communes_of("CTM-VILLEURBANNE")] == ["69266"]


@pytest.mark.parametrize(
    ("insee", "name", "territory_code"),
    [
        ("69259", "Vénissieux", "CTM-PORTES-DU-SUD"),
        ("69199", "Saint-Fons", "CTM-PORTES-DU-SUD"),
        ("69204", "Saint-Genis-Laval", "CTM-LONES-COTEAUX"),
        ("69286", "Rillieux-la-Pape", "CTM-PLATEAU-NORD"),
        ("69381", "Lyon 1er", "LYON"),
        ("69266", "Villeurbanne", "CTM-VILLEURBANNE"),
        ("69282", "Meyzieu", "CTM-RHONE-AMONT"),
        ("69256", "Vaulx-en-Velin", "CTM-RHONE-AMONT"),
        ("69029", "Bron", "CTM-PORTE-DES-ALPES"),
        ("69290", "Saint-Priest", "CTM-PORTE-DES-ALPES"),
        ("69091", "Givors", "CTM-LONES-COTEAUX"),
        ("69152", "Pierre-Bénite", "CTM-LONES-COTEAUX"),
        ("69127", "Marcy-l'Étoile", "CTM-VAL-YZERON"),
        ("69081", "Écully", "CTM-OUEST-NORD"),
        ("69163", "Quincieux", "CTM-VAL-DE-SAONE"),
        ("69202", "Sainte-Foy-lès-Lyon", "CTM-VAL-YZERON"),
    ],
)
def test_known_insee_codes(insee: str, name: str, territory_code: str) -> None:
    commune = commune_by_insee(insee)
    assert commune is not None
    assert commune.name == name
    assert commune.territory_code == territory_code


def test_commune_by_insee_unknown_and_communes_of_unknown() -> None:
    assert commune_by_insee("75056") is None
    assert commune_by_insee("") is None
    assert communes_of("CTM-NOWHERE") == []


def test_priority_neighbourhood_flags() -> None:
    qpv = {c.insee for c in COMMUNES if c.qpv}
    for insee in ("69259", "69256", "69266", "69286", "69199", "69091", "69388", "69389"):
        assert insee in qpv, insee
    for insee in ("69194", "69153", "69116"):  # wealthy Monts d'Or / Ouest communes
        assert insee not in qpv, insee


def test_reference_records_are_frozen() -> None:
    commune = COMMUNES[0]
    with pytest.raises(AttributeError):
        commune.name = "Ailleurs"  # type: ignore[misc]
    assert isinstance(commune, CommuneRef)


# Maisons de la Métropole


def test_maisons_count_unique_names_and_known_communes() -> None:
    assert len(MAISONS_DE_LA_METROPOLE) >= 20
    assert _duplicates([m.name for m in MAISONS_DE_LA_METROPOLE]) == []
    for maison in MAISONS_DE_LA_METROPOLE:
        assert maison.name.startswith("Maison de la Métropole "), maison
        assert commune_by_insee(maison.commune_insee) is not None, maison


def test_every_territory_has_a_maison() -> None:
    covered: Counter[str] = Counter()
    for maison in MAISONS_DE_LA_METROPOLE:
        commune = commune_by_insee(maison.commune_insee)
        assert commune is not None
        covered[commune.territory_code] += 1
    for territory in TERRITORIES:
        assert covered[territory.code] >= 1, territory.code


# ISO-8859-1 (CAF files)


def _reference_strings() -> list[str]:
    strings: list[str] = []
    for territory in TERRITORIES:
        strings += [territory.code, territory.name]
    for commune in COMMUNES:
        strings += [commune.insee, commune.name, commune.postal_code]
    for maison in MAISONS_DE_LA_METROPOLE:
        strings.append(maison.name)
    return strings


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(tuple(_reference_strings()), id="reference"),
        pytest.param(LAST_NAMES, id="last_names"),
        pytest.param(FEMALE_FIRST_NAMES, id="female_first_names"),
        pytest.param(MALE_FIRST_NAMES, id="male_first_names"),
        pytest.param(STREET_NAMES, id="street_names"),
    ],
)
def test_everything_is_iso_8859_1(values: tuple[str, ...]) -> None:
    not_latin1 = []
    for value in values:
        try:
            value.encode("iso-8859-1")
        except UnicodeEncodeError:
            not_latin1.append(value)
    assert not_latin1 == []


# Demo names


@pytest.mark.parametrize(
    ("values", "minimum"),
    [
        pytest.param(LAST_NAMES, 120, id="last_names"),
        pytest.param(FEMALE_FIRST_NAMES, 60, id="female_first_names"),
        pytest.param(MALE_FIRST_NAMES, 60, id="male_first_names"),
        pytest.param(STREET_NAMES, 40, id="street_names"),
    ],
)
def test_name_lists_sizes_and_uniqueness(values: tuple[str, ...], minimum: int) -> None:
    assert len(values) >= minimum
    assert _duplicates(values) == []
    for value in values:
        assert value, "empty entry"
        assert value == value.strip(), repr(value)
        assert "  " not in value, repr(value)


def test_first_name_lists_do_not_overlap() -> None:
    assert set(FEMALE_FIRST_NAMES).isdisjoint(MALE_FIRST_NAMES)


def test_names_have_accents_apostrophes_and_spaces() -> None:
    assert {"Lefèvre", "N'Diaye", "Le Gall", "Da Silva"} <= set(LAST_NAMES)
    assert {"Hélène", "Chloé", "Anaïs"} <= set(FEMALE_FIRST_NAMES)
    assert {"Jérôme", "Noël"} <= set(MALE_FIRST_NAMES)
    assert {"rue de la République", "place Bellecour", "cours Émile-Zola"} <= set(STREET_NAMES)
    assert any(not value.isascii() for value in LAST_NAMES)
