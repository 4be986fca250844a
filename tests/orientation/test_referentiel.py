"""The orientation référentiel: versions are data, rules fire in order, errors are precise."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from spie.orientation.referentiel import (
    DEFAULT_RULE_ID,
    PARCOURS_FT_CODES,
    SEED_VERSION_1,
    DiagnosticError,
    Proposal,
    ReferentielError,
    StructureCandidate,
    criteria_definitions,
    evaluate,
    suggest_structure,
    validate_diagnostic,
    validate_version,
)

DIFFICULTIES = (
    "sante",
    "logement",
    "mobilite",
    "garde_enfant",
    "numerique",
    "francais",
    "administrative",
    "financiere",
)


def diagnostic(**overrides: object) -> dict[str, object]:
    """A 40-year-old out of work for more than a year, no difficulty: falls to the default."""
    base: dict[str, object] = {
        "situation_emploi": "sans_emploi_plus_1an",
        "qualification": "infra_bac",
        "capacite_projet": "oui",
        "age": 40,
        **dict.fromkeys(DIFFICULTIES, "sans_impact"),
    }
    base.update(overrides)
    return base


def seed() -> dict[str, Any]:
    return copy.deepcopy(SEED_VERSION_1)


# --------------------------------------------------------------------------- the seed


def test_parcours_map_to_france_travail_codes() -> None:
    assert PARCOURS_FT_CODES == {"emploi": "PED", "socio_professionnel": "PSO", "social": "PSP"}


def test_seed_is_valid_and_survives_a_json_round_trip() -> None:
    validate_version(SEED_VERSION_1)
    stored = json.loads(json.dumps(SEED_VERSION_1))
    validate_version(stored)
    diag = diagnostic(sante="fort", logement="fort")
    assert evaluate(stored, diag) == evaluate(SEED_VERSION_1, diag)


SEED_CASES = [
    # rule id, diagnostic overrides, parcours, direct, structure types
    ("tns", {"statut": "tns"}, "emploi", True, ("independants",)),
    ("tns", {"statut": "tns", "sante": "fort", "age": 22}, "emploi", True, ("independants",)),
    ("jeune_rsj", {"age": 24}, "emploi", True, ("mission_locale",)),
    ("jeune_rsj", {"statut": "rsj", "age": 30}, "emploi", True, ("mission_locale",)),
    (
        "difficultes_fortes_multiples",
        {"sante": "fort", "logement": "fort"},
        "social",
        False,
        ("mdm",),
    ),
    (
        "difficultes_fortes_multiples",
        {"francais": "fort", "administrative": "fort", "suivi_france_travail": True},
        "social",
        False,
        ("mdm",),
    ),
    ("sante_forte", {"sante": "fort", "mobilite": "fort"}, "social", False, ("mdm",)),
    (
        "suivi_france_travail",
        {"suivi_france_travail": True, "mobilite": "moyen", "capacite_projet": "non"},
        "emploi",
        True,
        ("france_travail",),
    ),
    (
        "difficulte_forte",
        {"mobilite": "fort"},
        "socio_professionnel",
        False,
        ("plie", "association_siae"),
    ),
    (
        "difficulte_forte",
        {"logement": "fort", "suivi_france_travail": True},
        "socio_professionnel",
        False,
        ("plie", "association_siae"),
    ),
    (
        "capacite_projet",
        {"capacite_projet": "partielle", "situation_emploi": "recherche_active"},
        "socio_professionnel",
        False,
        ("plie", "association_siae"),
    ),
    (
        "recherche_active",
        {"situation_emploi": "recherche_active", "numerique": "moyen"},
        "emploi",
        False,
        ("france_travail",),
    ),
    (
        "qualifie_sans_emploi_recent",
        {"situation_emploi": "sans_emploi_moins_1an", "qualification": "bac"},
        "emploi",
        False,
        ("france_travail",),
    ),
    (DEFAULT_RULE_ID, {}, "socio_professionnel", False, ("plie", "association_siae")),
    (
        DEFAULT_RULE_ID,
        {"situation_emploi": "sans_emploi_moins_1an", "qualification": "aucune"},
        "socio_professionnel",
        False,
        ("plie", "association_siae"),
    ),
]


@pytest.mark.parametrize(
    ("rule_id", "overrides", "parcours", "direct", "structure_types"), SEED_CASES
)
def test_each_seed_rule_fires(
    rule_id: str,
    overrides: dict[str, object],
    parcours: str,
    direct: bool,
    structure_types: tuple[str, ...],
) -> None:
    proposal = evaluate(SEED_VERSION_1, diagnostic(**overrides))
    assert proposal.rule_id == rule_id
    assert proposal.parcours == parcours
    assert proposal.ft_code == PARCOURS_FT_CODES[parcours]
    assert proposal.direct is direct
    assert proposal.structure_types == structure_types
    assert proposal.explanation.startswith("Vous êtes orienté(e) vers un parcours ")
    assert "{" not in proposal.explanation
    assert proposal.rule_label


def test_every_seed_rule_is_covered_by_a_case() -> None:
    covered = {case[0] for case in SEED_CASES}
    assert covered == {rule["id"] for rule in SEED_VERSION_1["rules"]} | {DEFAULT_RULE_ID}


def test_explanation_names_the_difficulties_in_french() -> None:
    proposal = evaluate(SEED_VERSION_1, diagnostic(sante="fort", logement="fort"))
    assert proposal.explanation == (
        "Vous êtes orienté(e) vers un parcours Social parce que deux difficultés au moins ont "
        "un impact fort sur votre recherche d'emploi : santé, logement."
    )
    assert proposal.matched_conditions == (
        "au moins 2 critère(s) parmi santé, logement, français, démarches administratives "
        "avec « impact fort » : santé, logement",
    )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"mobilite": "fort"}, "(mobilité)"),
        ({"garde_enfant": "fort"}, "(garde d'enfant)"),
        ({"capacite_projet": "non"}, "est à construire"),
        ({"capacite_projet": "partielle"}, "est partielle"),
        ({"situation_emploi": "recherche_active"}, "en recherche active d'emploi"),
        ({"statut": "tns"}, "travailleur indépendant (TNS)"),
        (
            {"situation_emploi": "sans_emploi_moins_1an", "qualification": "superieur"},
            "« diplôme de l'enseignement supérieur »",
        ),
    ],
)
def test_explanation_uses_the_value_labels(overrides: dict[str, object], expected: str) -> None:
    assert expected in evaluate(SEED_VERSION_1, diagnostic(**overrides)).explanation


def test_matched_conditions_describe_what_matched() -> None:
    young = evaluate(SEED_VERSION_1, diagnostic(age=24))
    assert young.matched_conditions == ("âge : 24 ans (moins de 26 ans)",)
    followed = evaluate(SEED_VERSION_1, diagnostic(suivi_france_travail=True))
    assert followed.matched_conditions[0] == "déjà suivi(e) par France Travail : oui"
    assert followed.matched_conditions[1].startswith("aucun critère(s) parmi santé, logement")
    default = evaluate(SEED_VERSION_1, diagnostic())
    assert default.matched_conditions == ()
    assert default.rule_label


def test_proposal_as_dict_is_json() -> None:
    proposal = evaluate(SEED_VERSION_1, diagnostic(statut="tns"))
    data = json.loads(json.dumps(proposal.as_dict()))
    assert data["rule_id"] == "tns"
    assert data["ft_code"] == "PED"
    assert data["structure_types"] == ["independants"]
    assert proposal.parcours_label == "Emploi"


def test_evaluating_does_not_mutate_the_version() -> None:
    before = json.dumps(SEED_VERSION_1, sort_keys=True)
    evaluate(SEED_VERSION_1, diagnostic(sante="fort"))
    assert json.dumps(SEED_VERSION_1, sort_keys=True) == before


# --------------------------------------------------------------------------- diagnostics


def test_unknown_criterion_gives_a_precise_error() -> None:
    with pytest.raises(DiagnosticError) as caught:
        validate_diagnostic(SEED_VERSION_1, diagnostic(santee="fort"))
    assert caught.value.errors == {"santee": ["critère inconnu : 'santee'"]}


def test_invalid_value_gives_a_precise_error() -> None:
    with pytest.raises(DiagnosticError) as caught:
        evaluate(SEED_VERSION_1, diagnostic(sante="tres_fort"))
    assert caught.value.errors == {
        "sante": ["valeur 'tres_fort' non admise pour 'sante' (fort, moyen, sans_impact)"]
    }


def test_all_problems_are_reported_per_field() -> None:
    diag = diagnostic(age=120, suivi_france_travail="oui", statut="salarie", autre=1)
    del diag["logement"]
    with pytest.raises(DiagnosticError) as caught:
        validate_diagnostic(SEED_VERSION_1, diag)
    errors = caught.value.errors
    assert set(errors) == {"age", "suivi_france_travail", "statut", "autre", "logement"}
    assert errors["age"] == ["valeur 120 non admise pour 'age' (entre 16 et 99)"]
    assert errors["suivi_france_travail"] == [
        "valeur 'oui' non admise pour 'suivi_france_travail' (true ou false attendu)"
    ]
    assert errors["statut"] == [
        "valeur 'salarie' non admise pour 'statut' (aucun, tns, rsj, etudiant)"
    ]
    assert errors["logement"] == ["critère obligatoire manquant : 'logement' (logement)"]
    assert "critère inconnu : 'autre'" in str(caught.value)


def test_age_must_be_an_integer() -> None:
    for wrong in ("24", 24.0, True):
        with pytest.raises(DiagnosticError) as caught:
            validate_diagnostic(SEED_VERSION_1, diagnostic(age=wrong))
        assert "nombre entier attendu" in caught.value.errors["age"][0]


def test_diagnostic_is_completed_with_defaults() -> None:
    values = validate_diagnostic(SEED_VERSION_1, diagnostic(statut=None))
    assert values["statut"] == "aucun"
    assert values["suivi_france_travail"] is False
    assert set(values) == set(SEED_VERSION_1["criteria"])


# --------------------------------------------------------------------------- malformed versions


def _rule(version: dict[str, Any], rule_id: str) -> dict[str, Any]:
    return next(rule for rule in version["rules"] if rule["id"] == rule_id)


def _unknown_criterion(v: dict[str, Any]) -> None:
    _rule(v, "sante_forte")["condition"] = {"criterion": "santee", "in": ["fort"]}


def _unknown_operator(v: dict[str, Any]) -> None:
    _rule(v, "sante_forte")["condition"] = {"criterion": "sante", "matches": "fo.*"}


def _unknown_connective(v: dict[str, Any]) -> None:
    _rule(v, "sante_forte")["condition"] = {"xor": []}


def _bad_parcours(v: dict[str, Any]) -> None:
    _rule(v, "sante_forte")["outcome"]["parcours"] = "PSP"


def _bad_structure(v: dict[str, Any]) -> None:
    _rule(v, "sante_forte")["outcome"]["structure_types"] = ["ccas"]


def _no_structure(v: dict[str, Any]) -> None:
    _rule(v, "sante_forte")["outcome"]["structure_types"] = []


def _direct_as_text(v: dict[str, Any]) -> None:
    _rule(v, "sante_forte")["outcome"]["direct"] = "oui"


def _duplicate_id(v: dict[str, Any]) -> None:
    _rule(v, "sante_forte")["id"] = "tns"


def _order_on_enum(v: dict[str, Any]) -> None:
    _rule(v, "sante_forte")["condition"] = {"criterion": "sante", "gt": "moyen"}


def _value_not_allowed(v: dict[str, Any]) -> None:
    _rule(v, "sante_forte")["condition"] = {"criterion": "sante", "in": ["tres_fort"]}


def _count_of_int(v: dict[str, Any]) -> None:
    _rule(v, "difficulte_forte")["condition"] = {
        "count": {"of": ["age"], "in": ["fort"]},
        "gte": 1,
    }


def _unknown_placeholder(v: dict[str, Any]) -> None:
    _rule(v, "sante_forte")["explanation"] = "Parcours {parcours} : {diagnostic.__class__}"


def _counted_without_count(v: dict[str, Any]) -> None:
    _rule(v, "sante_forte")["explanation"] = "Parcours {parcours} : {criteres_comptes}"


def _code_as_condition(v: dict[str, Any]) -> None:
    _rule(v, "sante_forte")["condition"] = "values['sante'] == 'fort'"


def _missing_default(v: dict[str, Any]) -> None:
    del v["default"]


def _optional_without_default(v: dict[str, Any]) -> None:
    del v["criteria"]["statut"]["default"]


def _too_deep(v: dict[str, Any]) -> None:
    condition: dict[str, Any] = {"criterion": "sante", "in": ["fort"]}
    for _ in range(20):
        condition = {"not": condition}
    _rule(v, "sante_forte")["condition"] = condition


@pytest.mark.parametrize(
    ("mutate", "code", "path"),
    [
        (_unknown_criterion, "unknown_criterion", "rules[3].condition.criterion"),
        (_unknown_operator, "unknown_operator", "rules[3].condition.matches"),
        (_unknown_connective, "unknown_operator", "rules[3].condition.xor"),
        (_bad_parcours, "invalid_outcome", "rules[3].outcome.parcours"),
        (_bad_structure, "invalid_outcome", "rules[3].outcome.structure_types[0]"),
        (_no_structure, "empty", "rules[3].outcome.structure_types"),
        (_direct_as_text, "invalid_outcome", "rules[3].outcome.direct"),
        (_duplicate_id, "duplicate_rule_id", "rules[3].id"),
        (_order_on_enum, "invalid_operator", "rules[3].condition.gt"),
        (_value_not_allowed, "invalid_value", "rules[3].condition.in[0]"),
        (_count_of_int, "invalid_operator", "rules[5].condition.count.of[0]"),
        (_unknown_placeholder, "invalid_template", "rules[3].explanation"),
        (_counted_without_count, "invalid_template", "rules[3].explanation"),
        (_code_as_condition, "invalid_type", "rules[3].condition"),
        (_missing_default, "missing_key", "default"),
        (_optional_without_default, "missing_key", "criteria.statut.default"),
        (_too_deep, "too_deep", "rules[3].condition" + ".not" * 17),
    ],
)
def test_malformed_version_is_refused(mutate: Any, code: str, path: str) -> None:
    version = seed()
    mutate(version)
    with pytest.raises(ReferentielError) as caught:
        validate_version(version)
    assert (caught.value.code, caught.value.path) == (code, path)
    assert caught.value.message in str(caught.value)
    # a malformed version cannot be used to evaluate either
    with pytest.raises(ReferentielError):
        evaluate(version, diagnostic())


def test_unknown_criterion_message_is_precise() -> None:
    version = seed()
    _unknown_criterion(version)
    with pytest.raises(ReferentielError, match="critère inconnu : 'santee'"):
        validate_version(version)


@pytest.mark.parametrize("data", [None, [], "{}", {"criteria": {}, "rules": [], "default": {}}])
def test_non_versions_are_refused(data: object) -> None:
    with pytest.raises(ReferentielError):
        validate_version(data)


# --------------------------------------------------------------------------- versions are data


def test_a_second_version_gives_a_different_proposal_for_the_same_diagnostic() -> None:
    version_2 = seed()
    version_2["rules"] = [r for r in version_2["rules"] if r["id"] != "sante_forte"]
    _rule(version_2, "difficultes_fortes_multiples")["condition"]["gte"] = 3
    version_2["rules"].insert(
        0,
        {
            "id": "numerique_fort",
            "label": "Numérique : impact fort",
            "condition": {"criterion": "numerique", "in": ["fort"]},
            "outcome": {"parcours": "social", "structure_types": ["mdm"], "direct": False},
            "explanation": "Parcours {parcours} : numérique {numerique}.",
        },
    )
    validate_version(version_2)

    diag = diagnostic(sante="fort")
    first = evaluate(SEED_VERSION_1, diag)
    second = evaluate(version_2, diag)
    assert (first.rule_id, first.parcours) == ("sante_forte", "social")
    assert (second.rule_id, second.parcours) == ("difficulte_forte", "socio_professionnel")

    numeric = evaluate(version_2, diagnostic(numerique="fort", statut="tns"))
    assert numeric.rule_id == "numerique_fort"
    assert numeric.explanation == "Parcours Social : numérique impact fort."
    assert evaluate(SEED_VERSION_1, diagnostic(numerique="fort", statut="tns")).rule_id == "tns"


def test_a_small_version_with_every_operator() -> None:
    version = {
        "structure_types": {"a": "structure A", "b": "structure B"},
        "criteria": {
            "age": {"label": "âge", "type": "int", "min": 0, "max": 120},
            "handicap": {"label": "handicap reconnu", "type": "bool"},
            "niveau": {
                "label": "niveau",
                "type": "enum",
                "values": [{"code": "x", "label": "niveau X"}, {"code": "y", "label": "niveau Y"}],
            },
        },
        "rules": [
            {
                "id": "R1",
                "label": "adulte sans handicap, niveau autre que X",
                "condition": {
                    "all": [
                        {"criterion": "age", "gte": 18, "lte": 60},
                        {"not": {"criterion": "handicap", "eq": True}},
                        {"criterion": "niveau", "not_in": ["x"]},
                    ]
                },
                "outcome": {"parcours": "emploi", "structure_types": ["b", "a"], "direct": True},
                "explanation": "{parcours} avec {structure} ({niveau}, {age}, {handicap})",
            },
        ],
        "default": {
            "outcome": {"parcours": "social", "structure_types": ["a"], "direct": False},
            "explanation": "Par défaut : {parcours}.",
        },
    }
    validate_version(version)
    hit = evaluate(version, {"age": 30, "handicap": False, "niveau": "y"})
    assert hit.rule_id == "R1"
    assert hit.explanation == "Emploi avec structure B (niveau Y, 30, non)"
    assert hit.matched_conditions == (
        "âge : 30 (au moins 18 et au plus 60)",
        "non vérifié : handicap reconnu : oui",
        "niveau : niveau Y (autre que niveau X)",
    )
    miss = evaluate(version, {"age": 30, "handicap": True, "niveau": "y"})
    assert (miss.rule_id, miss.explanation, miss.rule_label) == (
        DEFAULT_RULE_ID,
        "Par défaut : Social.",
        "Règle par défaut",
    )
    assert isinstance(miss, Proposal)


def test_criteria_definitions_for_a_form() -> None:
    definitions = {d["name"]: d for d in criteria_definitions(SEED_VERSION_1)}
    assert definitions["sante"]["values"] == [
        {"code": "fort", "label": "impact fort"},
        {"code": "moyen", "label": "impact moyen"},
        {"code": "sans_impact", "label": "sans impact"},
    ]
    assert definitions["age"]["min"] == 16
    assert definitions["statut"]["required"] is False
    assert definitions["statut"]["default"] == "aucun"


# --------------------------------------------------------------------------- structure suggestion


def test_suggest_structure_follows_preference_commune_and_capacity() -> None:
    candidates = [
        StructureCandidate(1, "plie", frozenset({"69266"}), 0),  # full
        StructureCandidate(2, "plie", frozenset({"69123"}), 10),  # other commune
        StructureCandidate(3, "association_siae", frozenset({"69266"}), 2),
        StructureCandidate(4, "association_siae", frozenset({"69266"}), 5),
    ]
    chosen = suggest_structure(("plie", "association_siae"), candidates, "69266")
    assert chosen is not None
    assert chosen.id == 4
    assert suggest_structure(("plie",), candidates, "69123") == candidates[1]
    assert suggest_structure(("mdm",), candidates, "69266") is None
