"""Référentiel d'orientation: versioned criteria and rules stored as data.

A référentiel *version* is a JSON-serialisable dict (stored by the caller in a JSON column)::

    {
      "description": "optional free text for administrators",
      "structure_types": {"mdm": "Maison de la Métropole", ...},   # optional catalogue
      "criteria": {
        "sante": {"label": "santé", "type": "enum", "required": true,
                  "values": [{"code": "fort", "label": "impact fort"}, ...]},
        "age": {"label": "âge", "type": "int", "min": 16, "max": 99, "unit": "ans"},
        "suivi_france_travail": {"label": "...", "type": "bool",
                                 "required": false, "default": false},
      },
      "rules": [                                   # ordered: the first matching rule wins
        {"id": "sante_forte", "label": "Santé : impact fort",
         "condition": {"criterion": "sante", "in": ["fort"]},
         "outcome": {"parcours": "social", "structure_types": ["mdm"], "direct": false},
         "explanation": "Vous êtes orienté(e) vers un parcours {parcours} parce que ..."},
      ],
      "default": {"label": "...", "outcome": {...}, "explanation": "..."},
    }

Conditions are a small declarative language, never evaluated as code:

- ``{"all": [cond, ...]}``, ``{"any": [cond, ...]}``, ``{"not": cond}``;
- ``{"criterion": "sante", "in": ["fort"]}`` with the operators ``in``, ``not_in``, ``eq``,
  ``ne`` (any type) and ``lt``, ``lte``, ``gt``, ``gte`` (``int`` criteria only); several
  operators in one leaf must all hold (``{"criterion": "age", "gte": 18, "lt": 26}``);
- ``{"count": {"of": ["sante", "logement"], "in": ["fort"]}, "gte": 2}``: how many of the
  listed enum criteria take one of the values, compared with ``eq``, ``ne``, ``lt``, ``lte``,
  ``gt``, ``gte``.

Explanation templates are plain French with ``{placeholders}``: ``{parcours}`` (label of the
parcours), ``{structure}`` (label of the first preferred structure type),
``{criteres_comptes}`` (labels of the criteria counted by the rule's ``count`` conditions that
matched, e.g. "santé, logement"; only in rules having a ``count``) and ``{<criterion>}``
(French label of the diagnostic's value for that criterion).

Every criterion is mandatory unless it declares ``"required": false`` together with a
``"default"``; ``validate_diagnostic`` fills the defaults so rules always see every value.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, cast

Value = str | int | bool
"""A diagnostic value: enum code, integer or boolean."""

PARCOURS_EMPLOI: Final = "emploi"
PARCOURS_SOCIO_PROFESSIONNEL: Final = "socio_professionnel"
PARCOURS_SOCIAL: Final = "social"

PARCOURS_TYPES: Final[tuple[str, ...]] = (
    PARCOURS_EMPLOI,
    PARCOURS_SOCIO_PROFESSIONNEL,
    PARCOURS_SOCIAL,
)
PARCOURS_FT_CODES: Final[Mapping[str, str]] = {
    PARCOURS_EMPLOI: "PED",
    PARCOURS_SOCIO_PROFESSIONNEL: "PSO",
    PARCOURS_SOCIAL: "PSP",
}
"""Parcours type → France Travail code (arrêté du 21 novembre 2024)."""
PARCOURS_LABELS: Final[Mapping[str, str]] = {
    PARCOURS_EMPLOI: "Emploi",
    PARCOURS_SOCIO_PROFESSIONNEL: "Socio-professionnel",
    PARCOURS_SOCIAL: "Social",
}

STRUCTURE_TYPE_LABELS: Final[Mapping[str, str]] = {
    "mdm": "Maison de la Métropole",
    "france_travail": "France Travail",
    "mission_locale": "Mission locale",
    "plie": "PLIE (plan local pour l'insertion et l'emploi)",
    "cap_emploi": "Cap emploi",
    "association_siae": "association ou structure d'insertion par l'activité économique",
    "independants": "accompagnement des travailleurs indépendants",
}
"""Structure type codes (same codes as ``spie.structures.models.StructureType``) → French
label, used when a version has no ``structure_types`` catalogue of its own."""

DEFAULT_RULE_ID: Final = "defaut"
"""``Proposal.rule_id`` when no rule matched and the version's default applied."""

CRITERION_TYPES: Final[tuple[str, ...]] = ("enum", "int", "bool")
CONNECTIVES: Final[tuple[str, ...]] = ("all", "any", "not")
LEAF_OPERATORS: Final[tuple[str, ...]] = ("in", "not_in", "eq", "ne", "lt", "lte", "gt", "gte")
COUNT_OPERATORS: Final[tuple[str, ...]] = ("eq", "ne", "lt", "lte", "gt", "gte")
ORDER_OPERATORS: Final[tuple[str, ...]] = ("lt", "lte", "gt", "gte")

PLACEHOLDER_PARCOURS: Final = "parcours"
PLACEHOLDER_STRUCTURE: Final = "structure"
PLACEHOLDER_COUNTED: Final = "criteres_comptes"
RESERVED_PLACEHOLDERS: Final[frozenset[str]] = frozenset(
    {PLACEHOLDER_PARCOURS, PLACEHOLDER_STRUCTURE, PLACEHOLDER_COUNTED}
)

MAX_CONDITION_DEPTH: Final = 16

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_RULE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_PLACEHOLDER_RE = re.compile(r"\{([a-z][a-z0-9_]*)\}")

_COMPARATORS: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
}


# --------------------------------------------------------------------------- errors


class ReferentielError(ValueError):
    """A malformed référentiel version (raised when an administrator publishes one).

    ``code`` is stable and machine-readable (``unknown_criterion``, ``unknown_operator``,
    ``invalid_outcome``, ``duplicate_rule_id``...), ``message`` is French, ``path`` locates
    the problem in the version (``rules[2].condition.all[0].criterion``).
    """

    def __init__(self, code: str, message: str, path: str) -> None:
        super().__init__(f"{path or '(racine)'} : {message}")
        self.code = code
        self.message = message
        self.path = path

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "path": self.path}


class DiagnosticError(ValueError):
    """A diagnostic that does not fit the version: ``errors`` maps field → French messages."""

    def __init__(self, errors: Mapping[str, Sequence[str]]) -> None:
        self.errors: dict[str, list[str]] = {k: list(v) for k, v in errors.items()}
        summary = "; ".join(msg for messages in self.errors.values() for msg in messages)
        super().__init__(f"diagnostic invalide : {summary}")


# --------------------------------------------------------------------------- proposal


@dataclass(frozen=True)
class Proposal:
    """What the référentiel proposes for one diagnostic (a human then decides)."""

    parcours: str
    ft_code: str
    structure_types: tuple[str, ...]
    direct: bool
    rule_id: str
    rule_label: str
    explanation: str
    matched_conditions: tuple[str, ...]

    @property
    def parcours_label(self) -> str:
        return PARCOURS_LABELS[self.parcours]

    def as_dict(self) -> dict[str, object]:
        """JSON-serialisable form, to keep next to the decision with the version id."""
        return {
            "parcours": self.parcours,
            "ft_code": self.ft_code,
            "structure_types": list(self.structure_types),
            "direct": self.direct,
            "rule_id": self.rule_id,
            "rule_label": self.rule_label,
            "explanation": self.explanation,
            "matched_conditions": list(self.matched_conditions),
        }


@dataclass(frozen=True)
class StructureCandidate:
    """A structure that could receive the person: its type, the communes (INSEE codes) it
    serves and how many more people it can follow."""

    id: int
    type: str
    communes: frozenset[str]
    remaining_capacity: int


def suggest_structure(
    structure_types: Sequence[str], candidates: Sequence[StructureCandidate], commune: str
) -> StructureCandidate | None:
    """Pick a structure for a proposal: the first preferred type (in the proposal's order)
    having a candidate that serves ``commune`` with remaining capacity; among those the one
    with the most remaining capacity (then the lowest id). ``None`` when nobody fits."""
    for structure_type in structure_types:
        fitting = [
            c
            for c in candidates
            if c.type == structure_type and commune in c.communes and c.remaining_capacity > 0
        ]
        if fitting:
            return min(fitting, key=lambda c: (-c.remaining_capacity, c.id))
    return None


# --------------------------------------------------------------------------- parsed model


@dataclass(frozen=True)
class _Criterion:
    name: str
    label: str
    type: str
    values: tuple[tuple[str, str], ...]
    minimum: int | None
    maximum: int | None
    unit: str | None
    required: bool
    default: Value | None

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(code for code, _ in self.values)

    def value_label(self, value: Value) -> str:
        if self.type == "bool":
            return "oui" if value else "non"
        if self.type == "int":
            return f"{value} {self.unit}" if self.unit else str(value)
        return dict(self.values).get(str(value), str(value))

    def value_error(self, value: object, *, check_range: bool) -> str | None:
        """French message when ``value`` does not fit this criterion, else ``None``."""
        if self.type == "enum":
            if not isinstance(value, str) or value not in self.codes:
                allowed = ", ".join(self.codes)
                return f"valeur {_show(value)} non admise pour '{self.name}' ({allowed})"
        elif self.type == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                return (
                    f"valeur {_show(value)} non admise pour '{self.name}' (nombre entier attendu)"
                )
            too_low = self.minimum is not None and value < self.minimum
            too_high = self.maximum is not None and value > self.maximum
            if check_range and (too_low or too_high):
                return f"valeur {_show(value)} non admise pour '{self.name}' ({self._range()})"
        elif not isinstance(value, bool):
            return f"valeur {_show(value)} non admise pour '{self.name}' (true ou false attendu)"
        return None

    def _range(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            return f"entre {self.minimum} et {self.maximum}"
        if self.minimum is not None:
            return f"au moins {self.minimum}"
        return f"au plus {self.maximum}"


@dataclass(frozen=True)
class _Leaf:
    criterion: _Criterion
    ops: tuple[tuple[str, Value | tuple[Value, ...]], ...]


@dataclass(frozen=True)
class _Count:
    of: tuple[_Criterion, ...]
    values: tuple[str, ...]
    ops: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class _All:
    children: tuple[_Condition, ...]


@dataclass(frozen=True)
class _AnyOf:
    children: tuple[_Condition, ...]


@dataclass(frozen=True)
class _Not:
    child: _Condition


_Condition = _Leaf | _Count | _All | _AnyOf | _Not


@dataclass(frozen=True)
class _Outcome:
    parcours: str
    structure_types: tuple[str, ...]
    direct: bool


@dataclass(frozen=True)
class _Rule:
    id: str
    label: str
    condition: _Condition | None  # None for the default
    outcome: _Outcome
    explanation: str


@dataclass(frozen=True)
class _Version:
    criteria: Mapping[str, _Criterion]
    structure_types: Mapping[str, str]
    rules: tuple[_Rule, ...]
    default: _Rule


# --------------------------------------------------------------------------- parsing


def _show(value: object) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _fail(code: str, message: str, path: str) -> ReferentielError:
    return ReferentielError(code, message, path)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _mapping(raw: object, path: str) -> Mapping[str, object]:
    if not isinstance(raw, Mapping) or not all(isinstance(k, str) for k in raw):
        raise _fail("invalid_type", "objet JSON attendu", path)
    return raw


def _list(raw: object, path: str, *, non_empty: bool = True) -> list[object]:
    if not isinstance(raw, list | tuple):
        raise _fail("invalid_type", "liste attendue", path)
    if non_empty and not raw:
        raise _fail("empty", "la liste ne doit pas être vide", path)
    return list(raw)


def _text(raw: object, path: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise _fail("invalid_type", "texte non vide attendu", path)
    return raw


def _boolean(raw: object, path: str) -> bool:
    if not isinstance(raw, bool):
        raise _fail("invalid_type", "booléen (true ou false) attendu", path)
    return raw


def _integer(raw: object, path: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise _fail("invalid_type", "nombre entier attendu", path)
    return raw


def _keys(
    raw: Mapping[str, object],
    path: str,
    required: Sequence[str],
    optional: Sequence[str] = (),
) -> None:
    for key in required:
        if key not in raw:
            raise _fail("missing_key", f"clé obligatoire manquante : '{key}'", _join(path, key))
    allowed = set(required) | set(optional)
    for key in raw:
        if key not in allowed:
            expected = ", ".join([*required, *optional])
            raise _fail(
                "unknown_key", f"clé inconnue : '{key}' (attendu : {expected})", _join(path, key)
            )


def _parse_criterion(name: str, raw: object, path: str) -> _Criterion:
    if not _NAME_RE.match(name):
        raise _fail(
            "invalid_name",
            f"nom de critère invalide : '{name}' (minuscules, chiffres et _)",
            path,
        )
    if name in RESERVED_PLACEHOLDERS:
        raise _fail("invalid_name", f"nom de critère réservé : '{name}'", path)
    data = _mapping(raw, path)
    kind = data.get("type")
    if kind not in CRITERION_TYPES:
        raise _fail(
            "invalid_type",
            f"type de critère inconnu : {_show(kind)} (attendu : {', '.join(CRITERION_TYPES)})",
            _join(path, "type"),
        )
    common = ("required", "default", "help")
    values: list[tuple[str, str]] = []
    minimum: int | None = None
    maximum: int | None = None
    unit: str | None = None
    if kind == "enum":
        _keys(data, path, ("label", "type", "values"), common)
        values_path = _join(path, "values")
        seen: set[str] = set()
        for index, item in enumerate(_list(data["values"], values_path)):
            item_path = _join(values_path, index)
            entry = _mapping(item, item_path)
            _keys(entry, item_path, ("code", "label"))
            code = _text(entry["code"], _join(item_path, "code"))
            if code in seen:
                raise _fail(
                    "duplicate_value", f"valeur en double : '{code}'", _join(item_path, "code")
                )
            seen.add(code)
            values.append((code, _text(entry["label"], _join(item_path, "label"))))
    elif kind == "int":
        _keys(data, path, ("label", "type"), (*common, "min", "max", "unit"))
        if "min" in data:
            minimum = _integer(data["min"], _join(path, "min"))
        if "max" in data:
            maximum = _integer(data["max"], _join(path, "max"))
        if minimum is not None and maximum is not None and minimum > maximum:
            raise _fail("invalid_range", "min est supérieur à max", path)
        if "unit" in data:
            unit = _text(data["unit"], _join(path, "unit"))
    else:
        _keys(data, path, ("label", "type"), common)
    if "help" in data:
        _text(data["help"], _join(path, "help"))
    required = _boolean(data.get("required", True), _join(path, "required"))
    criterion = _Criterion(
        name=name,
        label=_text(data["label"], _join(path, "label")),
        type=str(kind),
        values=tuple(values),
        minimum=minimum,
        maximum=maximum,
        unit=unit,
        required=required,
        default=None,
    )
    if required:
        if "default" in data:
            raise _fail(
                "invalid_default",
                "un critère obligatoire n'a pas de valeur par défaut",
                _join(path, "default"),
            )
        return criterion
    if "default" not in data:
        raise _fail(
            "missing_key",
            "un critère facultatif doit avoir une valeur par défaut ('default')",
            _join(path, "default"),
        )
    default = data["default"]
    error = criterion.value_error(default, check_range=True)
    if error is not None:
        raise _fail("invalid_default", error, _join(path, "default"))
    return replace(criterion, default=cast(Value, default))


def _parse_condition(
    raw: object, path: str, criteria: Mapping[str, _Criterion], depth: int = 0
) -> _Condition:
    if depth > MAX_CONDITION_DEPTH:
        raise _fail(
            "too_deep", f"condition trop imbriquée (au plus {MAX_CONDITION_DEPTH} niveaux)", path
        )
    data = _mapping(raw, path)
    kinds = [key for key in (*CONNECTIVES, "criterion", "count") if key in data]
    if not kinds:
        if not data:
            raise _fail("empty", "condition vide", path)
        key = next(iter(data))
        raise _fail(
            "unknown_operator",
            f"opérateur inconnu : '{key}' (attendu : all, any, not, criterion, count)",
            _join(path, key),
        )
    if len(kinds) > 1:
        raise _fail(
            "ambiguous_condition",
            f"une condition ne peut combiner {' et '.join(repr(k) for k in kinds)}",
            path,
        )
    kind = kinds[0]
    if kind in CONNECTIVES:
        for key in data:
            if key != kind:
                raise _fail(
                    "unknown_operator",
                    f"opérateur inconnu à côté de '{kind}' : '{key}'",
                    _join(path, key),
                )
        child_path = _join(path, kind)
        if kind == "not":
            return _Not(_parse_condition(data[kind], child_path, criteria, depth + 1))
        children = tuple(
            _parse_condition(item, _join(child_path, index), criteria, depth + 1)
            for index, item in enumerate(_list(data[kind], child_path))
        )
        return _All(children) if kind == "all" else _AnyOf(children)
    if kind == "criterion":
        return _parse_leaf(data, path, criteria)
    return _parse_count(data, path, criteria)


def _criterion_ref(raw: object, path: str, criteria: Mapping[str, _Criterion]) -> _Criterion:
    if not isinstance(raw, str):
        raise _fail("invalid_type", "nom de critère attendu", path)
    if raw not in criteria:
        raise _fail("unknown_criterion", f"critère inconnu : '{raw}'", path)
    return criteria[raw]


def _operand(criterion: _Criterion, raw: object, path: str) -> Value:
    error = criterion.value_error(raw, check_range=False)
    if error is not None:
        raise _fail("invalid_value", error, path)
    return cast(Value, raw)


def _parse_leaf(data: Mapping[str, object], path: str, criteria: Mapping[str, _Criterion]) -> _Leaf:
    criterion = _criterion_ref(data["criterion"], _join(path, "criterion"), criteria)
    ops: list[tuple[str, Value | tuple[Value, ...]]] = []
    for key, raw in data.items():
        if key == "criterion":
            continue
        op_path = _join(path, key)
        if key not in LEAF_OPERATORS:
            raise _fail(
                "unknown_operator",
                f"opérateur inconnu : '{key}' (attendu : {', '.join(LEAF_OPERATORS)})",
                op_path,
            )
        if key in ORDER_OPERATORS and criterion.type != "int":
            raise _fail(
                "invalid_operator",
                f"l'opérateur '{key}' ne s'applique qu'aux critères de type int "
                f"('{criterion.name}' est de type {criterion.type})",
                op_path,
            )
        if key in ("in", "not_in"):
            items = _list(raw, op_path)
            ops.append(
                (
                    key,
                    tuple(
                        _operand(criterion, item, _join(op_path, i)) for i, item in enumerate(items)
                    ),
                )
            )
        else:
            ops.append((key, _operand(criterion, raw, op_path)))
    if not ops:
        raise _fail(
            "missing_operator",
            f"aucun opérateur pour le critère '{criterion.name}' "
            f"(attendu : {', '.join(LEAF_OPERATORS)})",
            path,
        )
    return _Leaf(criterion, tuple(ops))


def _parse_count(
    data: Mapping[str, object], path: str, criteria: Mapping[str, _Criterion]
) -> _Count:
    spec_path = _join(path, "count")
    spec = _mapping(data["count"], spec_path)
    _keys(spec, spec_path, ("of", "in"))
    of_path = _join(spec_path, "of")
    counted: list[_Criterion] = []
    for index, item in enumerate(_list(spec["of"], of_path)):
        criterion = _criterion_ref(item, _join(of_path, index), criteria)
        if criterion.type != "enum":
            raise _fail(
                "invalid_operator",
                f"'count' ne porte que sur des critères de type enum "
                f"('{criterion.name}' est de type {criterion.type})",
                _join(of_path, index),
            )
        if criterion in counted:
            raise _fail(
                "duplicate_criterion",
                f"critère en double : '{criterion.name}'",
                _join(of_path, index),
            )
        counted.append(criterion)
    in_path = _join(spec_path, "in")
    values: list[str] = []
    for index, item in enumerate(_list(spec["in"], in_path)):
        for criterion in counted:
            _operand(criterion, item, _join(in_path, index))
        values.append(str(item))
    ops: list[tuple[str, int]] = []
    for key, raw in data.items():
        if key == "count":
            continue
        op_path = _join(path, key)
        if key not in COUNT_OPERATORS:
            raise _fail(
                "unknown_operator",
                f"opérateur inconnu : '{key}' (attendu : {', '.join(COUNT_OPERATORS)})",
                op_path,
            )
        number = _integer(raw, op_path)
        if number < 0:
            raise _fail("invalid_value", "nombre positif ou nul attendu", op_path)
        ops.append((key, number))
    if not ops:
        raise _fail(
            "missing_operator",
            f"aucune comparaison pour 'count' (attendu : {', '.join(COUNT_OPERATORS)})",
            path,
        )
    return _Count(tuple(counted), tuple(values), tuple(ops))


def _parse_outcome(raw: object, path: str, structure_types: Mapping[str, str]) -> _Outcome:
    data = _mapping(raw, path)
    _keys(data, path, ("parcours", "structure_types", "direct"))
    parcours = data["parcours"]
    if parcours not in PARCOURS_TYPES:
        raise _fail(
            "invalid_outcome",
            f"parcours inconnu : {_show(parcours)} (attendu : {', '.join(PARCOURS_TYPES)})",
            _join(path, "parcours"),
        )
    types_path = _join(path, "structure_types")
    types: list[str] = []
    for index, item in enumerate(_list(data["structure_types"], types_path)):
        item_path = _join(types_path, index)
        if not isinstance(item, str) or item not in structure_types:
            raise _fail(
                "invalid_outcome",
                f"type de structure inconnu : {_show(item)} "
                f"(attendu : {', '.join(structure_types)})",
                item_path,
            )
        if item in types:
            raise _fail("invalid_outcome", f"type de structure en double : '{item}'", item_path)
        types.append(item)
    try:
        direct = _boolean(data["direct"], _join(path, "direct"))
    except ReferentielError as exc:
        raise _fail("invalid_outcome", exc.message, exc.path) from None
    return _Outcome(str(parcours), tuple(types), direct)


def _has_count(condition: _Condition | None) -> bool:
    if isinstance(condition, _Count):
        return True
    if isinstance(condition, _All | _AnyOf):
        return any(_has_count(child) for child in condition.children)
    if isinstance(condition, _Not):
        return False  # a negated count never contributes matched criteria
    return False


def _check_template(
    template: str, path: str, criteria: Mapping[str, _Criterion], *, has_count: bool
) -> None:
    for name in _PLACEHOLDER_RE.findall(template):
        if name == PLACEHOLDER_COUNTED and not has_count:
            raise _fail(
                "invalid_template",
                f"'{{{name}}}' n'est possible que dans une règle ayant une condition 'count'",
                path,
            )
        if name not in RESERVED_PLACEHOLDERS and name not in criteria:
            allowed = ", ".join(sorted(RESERVED_PLACEHOLDERS))
            raise _fail(
                "invalid_template",
                f"variable inconnue dans le texte : '{{{name}}}' "
                f"(attendu : {allowed} ou un nom de critère)",
                path,
            )
    rest = _PLACEHOLDER_RE.sub("", template)
    if "{" in rest or "}" in rest:
        raise _fail("invalid_template", "accolade isolée dans le texte", path)


def _parse_version(data: object) -> _Version:
    root = _mapping(data, "")
    _keys(root, "", ("criteria", "rules", "default"), ("structure_types", "description"))
    if "description" in root:
        _text(root["description"], "description")
    structure_types: Mapping[str, str] = STRUCTURE_TYPE_LABELS
    if "structure_types" in root:
        raw_types = _mapping(root["structure_types"], "structure_types")
        if not raw_types:
            raise _fail("empty", "catalogue de types de structure vide", "structure_types")
        for code, label in raw_types.items():
            if not _NAME_RE.match(code):
                raise _fail(
                    "invalid_name",
                    f"code de type de structure invalide : '{code}'",
                    _join("structure_types", code),
                )
            _text(label, _join("structure_types", code))
        structure_types = {code: str(label) for code, label in raw_types.items()}
    raw_criteria = _mapping(root["criteria"], "criteria")
    if not raw_criteria:
        raise _fail("empty", "aucun critère défini", "criteria")
    criteria = {
        name: _parse_criterion(name, raw, _join("criteria", name))
        for name, raw in raw_criteria.items()
    }
    rules: list[_Rule] = []
    seen_ids: set[str] = set()
    for index, raw_rule in enumerate(_list(root["rules"], "rules", non_empty=False)):
        rule_path = _join("rules", index)
        rule = _mapping(raw_rule, rule_path)
        _keys(rule, rule_path, ("id", "label", "condition", "outcome", "explanation"))
        rule_id = rule["id"]
        id_path = _join(rule_path, "id")
        if not isinstance(rule_id, str) or not _RULE_ID_RE.match(rule_id):
            raise _fail(
                "invalid_rule_id",
                f"identifiant de règle invalide : {_show(rule_id)} "
                "(lettres, chiffres, '_', '-', '.')",
                id_path,
            )
        if rule_id == DEFAULT_RULE_ID:
            raise _fail("invalid_rule_id", f"identifiant réservé : '{DEFAULT_RULE_ID}'", id_path)
        if rule_id in seen_ids:
            raise _fail(
                "duplicate_rule_id", f"identifiant de règle en double : '{rule_id}'", id_path
            )
        seen_ids.add(rule_id)
        condition = _parse_condition(rule["condition"], _join(rule_path, "condition"), criteria)
        explanation = _text(rule["explanation"], _join(rule_path, "explanation"))
        _check_template(
            explanation,
            _join(rule_path, "explanation"),
            criteria,
            has_count=_has_count(condition),
        )
        rules.append(
            _Rule(
                id=rule_id,
                label=_text(rule["label"], _join(rule_path, "label")),
                condition=condition,
                outcome=_parse_outcome(
                    rule["outcome"], _join(rule_path, "outcome"), structure_types
                ),
                explanation=explanation,
            )
        )
    raw_default = _mapping(root["default"], "default")
    _keys(raw_default, "default", ("outcome", "explanation"), ("label",))
    default_explanation = _text(raw_default["explanation"], "default.explanation")
    _check_template(default_explanation, "default.explanation", criteria, has_count=False)
    default = _Rule(
        id=DEFAULT_RULE_ID,
        label=_text(raw_default.get("label", "Règle par défaut"), "default.label"),
        condition=None,
        outcome=_parse_outcome(raw_default["outcome"], "default.outcome", structure_types),
        explanation=default_explanation,
    )
    return _Version(criteria, structure_types, tuple(rules), default)


# --------------------------------------------------------------------------- evaluation


@dataclass
class _Match:
    ok: bool
    described: list[str]
    counted: list[_Criterion]


_ORDER_TEXT: Final[Mapping[str, str]] = {
    "lt": "moins de",
    "lte": "au plus",
    "gt": "plus de",
    "gte": "au moins",
}


def _labels(criterion: _Criterion, values: Sequence[Value]) -> str:
    return " ou ".join(criterion.value_label(v) for v in values)


def _leaf_constraint(criterion: _Criterion, op: str, operand: Value | tuple[Value, ...]) -> str:
    """French wording of one leaf operator, e.g. ``impact fort`` or ``moins de 26 ans``."""
    many = operand if isinstance(operand, tuple) else (operand,)
    if op in ("in", "eq"):
        return _labels(criterion, many)
    if op in ("not_in", "ne"):
        return "autre que " + _labels(criterion, many)
    return f"{_ORDER_TEXT[op]} {criterion.value_label(many[0])}"


def _count_constraint(count: _Count) -> str:
    parts = []
    for op, number in count.ops:
        if op == "eq":
            parts.append("aucun" if number == 0 else f"exactement {number}")
        elif op == "ne":
            parts.append(f"un autre nombre que {number}")
        else:
            parts.append(f"{_ORDER_TEXT[op]} {number}")
    values = " ou ".join(f"« {count.of[0].value_label(v)} »" for v in count.values)
    among = ", ".join(c.label for c in count.of)
    return f"{' et '.join(parts)} critère(s) parmi {among} avec {values}"


def _describe(condition: _Condition) -> str:
    """Static French wording of a condition (used under ``not``)."""
    if isinstance(condition, _Leaf):
        constraints = " et ".join(
            _leaf_constraint(condition.criterion, op, operand) for op, operand in condition.ops
        )
        return f"{condition.criterion.label} : {constraints}"
    if isinstance(condition, _Count):
        return _count_constraint(condition)
    if isinstance(condition, _Not):
        return f"non ({_describe(condition.child)})"
    joiner = " et " if isinstance(condition, _All) else " ou "
    return "(" + joiner.join(_describe(child) for child in condition.children) + ")"


def _test(op: str, value: Value, operand: Value | tuple[Value, ...]) -> bool:
    if op == "in":
        return isinstance(operand, tuple) and value in operand
    if op == "not_in":
        return isinstance(operand, tuple) and value not in operand
    return _COMPARATORS[op](value, operand)


def _match(condition: _Condition, values: Mapping[str, Value]) -> _Match:
    if isinstance(condition, _Leaf):
        criterion = condition.criterion
        value = values[criterion.name]
        if not all(_test(op, value, operand) for op, operand in condition.ops):
            return _Match(False, [], [])
        text = f"{criterion.label} : {criterion.value_label(value)}"
        extra = [
            _leaf_constraint(criterion, op, operand)
            for op, operand in condition.ops
            if op not in ("in", "eq")
        ]
        if extra:
            text += f" ({' et '.join(extra)})"
        return _Match(True, [text], [])
    if isinstance(condition, _Count):
        hits = [c for c in condition.of if values[c.name] in condition.values]
        if not all(_COMPARATORS[op](len(hits), number) for op, number in condition.ops):
            return _Match(False, [], [])
        text = _count_constraint(condition)
        if hits:
            text += " : " + ", ".join(c.label for c in hits)
        return _Match(True, [text], hits)
    if isinstance(condition, _Not):
        inner = _match(condition.child, values)
        if inner.ok:
            return _Match(False, [], [])
        return _Match(True, [f"non vérifié : {_describe(condition.child)}"], [])
    results = [_match(child, values) for child in condition.children]
    combine = all if isinstance(condition, _All) else any
    ok = combine(r.ok for r in results)
    if not ok:
        return _Match(False, [], [])
    matching = [r for r in results if r.ok]
    counted: list[_Criterion] = []
    for r in matching:
        counted.extend(c for c in r.counted if c not in counted)
    return _Match(True, [text for r in matching for text in r.described], counted)


def _render(
    template: str,
    version: _Version,
    rule: _Rule,
    values: Mapping[str, Value],
    counted: Sequence[_Criterion],
) -> str:
    def substitute(found: re.Match[str]) -> str:
        name = found.group(1)
        if name == PLACEHOLDER_PARCOURS:
            return PARCOURS_LABELS[rule.outcome.parcours]
        if name == PLACEHOLDER_STRUCTURE:
            return version.structure_types[rule.outcome.structure_types[0]]
        if name == PLACEHOLDER_COUNTED:
            return ", ".join(c.label for c in counted)
        return version.criteria[name].value_label(values[name])

    return _PLACEHOLDER_RE.sub(substitute, template)


# --------------------------------------------------------------------------- public API


def validate_version(data: object) -> None:
    """Check a référentiel version before it is published; raise ``ReferentielError``
    (code, French message, path) on the first problem found."""
    _parse_version(data)


def _normalise(version: _Version, diagnostic: object) -> dict[str, Value]:
    if not isinstance(diagnostic, Mapping):
        raise DiagnosticError({"diagnostic": ["objet JSON attendu"]})
    errors: dict[str, list[str]] = {}
    for key in diagnostic:
        if key not in version.criteria:
            errors.setdefault(str(key), []).append(f"critère inconnu : {_show(key)}")
    values: dict[str, Value] = {}
    for name, criterion in version.criteria.items():
        raw = diagnostic.get(name)
        if raw is None:
            if criterion.required:
                errors.setdefault(name, []).append(
                    f"critère obligatoire manquant : '{name}' ({criterion.label})"
                )
            elif criterion.default is not None:
                values[name] = criterion.default
            continue
        error = criterion.value_error(raw, check_range=True)
        if error is not None:
            errors.setdefault(name, []).append(error)
            continue
        values[name] = cast(Value, raw)
    if errors:
        raise DiagnosticError(errors)
    return values


def validate_diagnostic(version_data: object, diagnostic: Mapping[str, object]) -> dict[str, Value]:
    """Check a diagnostic against a version and return it complete: every criterion of the
    version, defaults filled for the optional ones (``None`` counts as absent).

    Raises ``DiagnosticError`` with every problem per field: unknown criteria
    (``critère inconnu : 'santee'``), values out of the allowed set or range
    (``valeur 'tres_fort' non admise pour 'sante' (fort, moyen, sans_impact)``), missing
    mandatory criteria. Raises ``ReferentielError`` if the version itself is malformed.
    """
    return _normalise(_parse_version(version_data), diagnostic)


def evaluate(version_data: object, diagnostic: Mapping[str, object]) -> Proposal:
    """Turn a diagnostic into a proposal: the first rule (in the version's order) whose
    condition holds gives the outcome, else the version's default. The explanation is the
    rule's template filled with the diagnostic's French labels."""
    version = _parse_version(version_data)
    values = _normalise(version, diagnostic)
    chosen = version.default
    match = _Match(True, [], [])
    for rule in version.rules:
        if rule.condition is None:  # only the default has no condition
            continue
        attempt = _match(rule.condition, values)
        if attempt.ok:
            chosen, match = rule, attempt
            break
    return Proposal(
        parcours=chosen.outcome.parcours,
        ft_code=PARCOURS_FT_CODES[chosen.outcome.parcours],
        structure_types=chosen.outcome.structure_types,
        direct=chosen.outcome.direct,
        rule_id=chosen.id,
        rule_label=chosen.label,
        explanation=_render(chosen.explanation, version, chosen, values, match.counted),
        matched_conditions=tuple(match.described),
    )


def criteria_definitions(version_data: object) -> list[dict[str, object]]:
    """The version's criteria in order, as plain dicts for building a diagnostic form:
    name, label, type, required, default, allowed values (code + label) or min/max/unit."""
    version = _parse_version(version_data)
    result: list[dict[str, object]] = []
    for criterion in version.criteria.values():
        item: dict[str, object] = {
            "name": criterion.name,
            "label": criterion.label,
            "type": criterion.type,
            "required": criterion.required,
            "default": criterion.default,
        }
        if criterion.type == "enum":
            item["values"] = [{"code": code, "label": label} for code, label in criterion.values]
        elif criterion.type == "int":
            item.update(min=criterion.minimum, max=criterion.maximum, unit=criterion.unit)
        result.append(item)
    return result


# --------------------------------------------------------------------------- seed


def _impact_values() -> list[dict[str, str]]:
    return [
        {"code": "fort", "label": "impact fort"},
        {"code": "moyen", "label": "impact moyen"},
        {"code": "sans_impact", "label": "sans impact"},
    ]


DIFFICULTY_CRITERIA: Final[tuple[str, ...]] = (
    "sante",
    "logement",
    "mobilite",
    "garde_enfant",
    "numerique",
    "francais",
    "administrative",
    "financiere",
)
"""The difficulty criteria of the national families, graded fort / moyen / sans_impact."""

_DIFFICULTY_LABELS: Final[Mapping[str, str]] = {
    "sante": "santé",
    "logement": "logement",
    "mobilite": "mobilité",
    "garde_enfant": "garde d'enfant",
    "numerique": "numérique",
    "francais": "français",
    "administrative": "démarches administratives",
    "financiere": "situation financière",
}


def _no_strong_difficulty() -> dict[str, Any]:
    return {"count": {"of": list(DIFFICULTY_CRITERIA), "in": ["fort"]}, "eq": 0}


def _insertion_types() -> list[str]:
    return ["plie", "association_siae"]


SEED_VERSION_1: Final[dict[str, Any]] = {
    "description": (
        "Version 1 : critères nationaux (situation vis-à-vis de l'emploi, qualification, "
        "capacité à se projeter, difficultés, âge, statut)."
    ),
    "structure_types": dict(STRUCTURE_TYPE_LABELS),
    "criteria": {
        "situation_emploi": {
            "label": "situation vis-à-vis de l'emploi",
            "type": "enum",
            "values": [
                {"code": "en_emploi", "label": "en emploi"},
                {"code": "recherche_active", "label": "en recherche active d'emploi"},
                {"code": "sans_emploi_moins_1an", "label": "sans emploi depuis moins d'un an"},
                {"code": "sans_emploi_plus_1an", "label": "sans emploi depuis plus d'un an"},
                {"code": "jamais_travaille", "label": "sans expérience professionnelle"},
            ],
        },
        "qualification": {
            "label": "niveau de qualification",
            "type": "enum",
            "values": [
                {"code": "aucune", "label": "sans qualification"},
                {"code": "infra_bac", "label": "inférieur au bac (CAP, BEP)"},
                {"code": "bac", "label": "niveau bac"},
                {"code": "superieur", "label": "diplôme de l'enseignement supérieur"},
            ],
        },
        "capacite_projet": {
            "label": "capacité à se projeter dans un emploi",
            "type": "enum",
            "values": [
                {"code": "oui", "label": "acquise"},
                {"code": "partielle", "label": "partielle"},
                {"code": "non", "label": "à construire"},
            ],
        },
        **{
            name: {"label": label, "type": "enum", "values": _impact_values()}
            for name, label in _DIFFICULTY_LABELS.items()
        },
        "age": {"label": "âge", "type": "int", "min": 16, "max": 99, "unit": "ans"},
        "statut": {
            "label": "statut",
            "type": "enum",
            "required": False,
            "default": "aucun",
            "values": [
                {"code": "aucun", "label": "aucun statut particulier"},
                {"code": "tns", "label": "travailleur indépendant (TNS)"},
                {"code": "rsj", "label": "bénéficiaire du Revenu Solidarité Jeunes (RSJ)"},
                {"code": "etudiant", "label": "étudiant(e)"},
            ],
        },
        "suivi_france_travail": {
            "label": "déjà suivi(e) par France Travail",
            "type": "bool",
            "required": False,
            "default": False,
        },
    },
    "rules": [
        {
            "id": "tns",
            "label": "Travailleur indépendant : accompagnement des indépendants",
            "condition": {"criterion": "statut", "in": ["tns"]},
            "outcome": {
                "parcours": PARCOURS_EMPLOI,
                "structure_types": ["independants"],
                "direct": True,
            },
            "explanation": (
                "Vous êtes orienté(e) vers un parcours {parcours} parce que vous êtes {statut} : "
                "un accompagnement spécialisé des travailleurs indépendants vous est proposé, "
                "sans passer par une réunion d'information."
            ),
        },
        {
            "id": "jeune_rsj",
            "label": "Moins de 26 ans ou RSJ : Mission locale",
            "condition": {
                "any": [
                    {"criterion": "statut", "in": ["rsj"]},
                    {"criterion": "age", "lt": 26},
                ]
            },
            "outcome": {
                "parcours": PARCOURS_EMPLOI,
                "structure_types": ["mission_locale"],
                "direct": True,
            },
            "explanation": (
                "Vous êtes orienté(e) vers un parcours {parcours} auprès de la Mission locale, "
                "qui accompagne les jeunes de moins de 26 ans et les bénéficiaires du Revenu "
                "Solidarité Jeunes."
            ),
        },
        {
            "id": "difficultes_fortes_multiples",
            "label": "Au moins deux difficultés fortes (santé, logement, français, démarches)",
            "condition": {
                "count": {
                    "of": ["sante", "logement", "francais", "administrative"],
                    "in": ["fort"],
                },
                "gte": 2,
            },
            "outcome": {"parcours": PARCOURS_SOCIAL, "structure_types": ["mdm"], "direct": False},
            "explanation": (
                "Vous êtes orienté(e) vers un parcours {parcours} parce que deux difficultés au "
                "moins ont un impact fort sur votre recherche d'emploi : {criteres_comptes}."
            ),
        },
        {
            "id": "sante_forte",
            "label": "Santé : impact fort",
            "condition": {"criterion": "sante", "in": ["fort"]},
            "outcome": {"parcours": PARCOURS_SOCIAL, "structure_types": ["mdm"], "direct": False},
            "explanation": (
                "Vous êtes orienté(e) vers un parcours {parcours} parce que votre santé a un "
                "impact fort sur votre recherche d'emploi : un accompagnement social vous aidera "
                "d'abord à y faire face."
            ),
        },
        {
            "id": "suivi_france_travail",
            "label": "Déjà suivi(e) par France Travail, sans difficulté forte",
            "condition": {
                "all": [
                    {"criterion": "suivi_france_travail", "eq": True},
                    _no_strong_difficulty(),
                ]
            },
            "outcome": {
                "parcours": PARCOURS_EMPLOI,
                "structure_types": ["france_travail"],
                "direct": True,
            },
            "explanation": (
                "Vous êtes orienté(e) vers un parcours {parcours} parce que vous êtes déjà "
                "suivi(e) par France Travail et qu'aucune difficulté n'a un impact fort sur "
                "votre recherche d'emploi."
            ),
        },
        {
            "id": "difficulte_forte",
            "label": "Une difficulté forte : parcours socio-professionnel",
            "condition": {
                "count": {"of": list(DIFFICULTY_CRITERIA), "in": ["fort"]},
                "gte": 1,
            },
            "outcome": {
                "parcours": PARCOURS_SOCIO_PROFESSIONNEL,
                "structure_types": _insertion_types(),
                "direct": False,
            },
            "explanation": (
                "Vous êtes orienté(e) vers un parcours {parcours} parce qu'une difficulté a un "
                "impact fort sur votre recherche d'emploi ({criteres_comptes}) : votre "
                "accompagnement combinera la recherche d'emploi et l'aide pour la lever."
            ),
        },
        {
            "id": "capacite_projet",
            "label": "Capacité à se projeter partielle ou à construire",
            "condition": {"criterion": "capacite_projet", "in": ["partielle", "non"]},
            "outcome": {
                "parcours": PARCOURS_SOCIO_PROFESSIONNEL,
                "structure_types": _insertion_types(),
                "direct": False,
            },
            "explanation": (
                "Vous êtes orienté(e) vers un parcours {parcours} parce que votre capacité à "
                "vous projeter dans un emploi est {capacite_projet} : votre accompagnement vous "
                "aidera à construire votre projet professionnel."
            ),
        },
        {
            "id": "recherche_active",
            "label": "En emploi ou en recherche active, sans difficulté forte",
            "condition": {
                "all": [
                    {"criterion": "situation_emploi", "in": ["en_emploi", "recherche_active"]},
                    _no_strong_difficulty(),
                ]
            },
            "outcome": {
                "parcours": PARCOURS_EMPLOI,
                "structure_types": ["france_travail"],
                "direct": False,
            },
            "explanation": (
                "Vous êtes orienté(e) vers un parcours {parcours} parce que vous êtes "
                "{situation_emploi} et qu'aucune difficulté n'a un impact fort sur votre "
                "recherche d'emploi."
            ),
        },
        {
            "id": "qualifie_sans_emploi_recent",
            "label": "Qualifié(e), sans emploi depuis moins d'un an, sans difficulté forte",
            "condition": {
                "all": [
                    {"criterion": "situation_emploi", "in": ["sans_emploi_moins_1an"]},
                    {"criterion": "qualification", "in": ["bac", "superieur"]},
                    _no_strong_difficulty(),
                ]
            },
            "outcome": {
                "parcours": PARCOURS_EMPLOI,
                "structure_types": ["france_travail"],
                "direct": False,
            },
            "explanation": (
                "Vous êtes orienté(e) vers un parcours {parcours} parce que vous êtes "
                "{situation_emploi}, avec un niveau de qualification « {qualification} », et "
                "qu'aucune difficulté n'a un impact fort sur votre recherche d'emploi."
            ),
        },
    ],
    "default": {
        "label": "Aucune règle particulière : parcours socio-professionnel",
        "outcome": {
            "parcours": PARCOURS_SOCIO_PROFESSIONNEL,
            "structure_types": _insertion_types(),
            "direct": False,
        },
        "explanation": (
            "Vous êtes orienté(e) vers un parcours {parcours} : votre accompagnement combinera "
            "la recherche d'emploi et l'aide pour lever les difficultés que vous rencontrez."
        ),
    },
}
"""First référentiel version, built on the national criteria families. JSON-serialisable:
publish it with ``json.dumps(SEED_VERSION_1)`` (a deep copy — never mutate this one)."""
