"""Streaming parser of the CNAF « bénéficiaires RSA » XML flow (schemas vrsb0801 and vrsd0301).

Pure adapter: no database, no Flask. :func:`iter_caf_flow` reads the file incrementally and gives
the flow header, then one item per ``InfosFoyerRSA`` (household): a :class:`CafHousehold` when the
record is usable, a :class:`CafRecordError` when it is not (parsing continues with the next one).
File-level problems raise :class:`UnsafeFileError` (DTD / entities, before anything is read) or
:class:`MalformedFileError` (XML syntax, encoding, missing header), the latter after every complete
household read before the problem has been given.

Messages never contain a NIR, a name or an address: they are stored with import rejects and shown
to admins. The raw fragment (``raw_fragment``) carries the data itself: the household's own text
in the file, or, when it cannot safely be cut out of the bytes (comments, CDATA, namespace
prefixes, character references... inside), the household re-serialised by lxml.

Example::

    with iter_caf_flow(path) as flow:
        flow.header.dtref
        for item in flow:
            if isinstance(item, CafRecordError): ...
        flow.count_mismatch  # None, or expected vs read
"""

from __future__ import annotations

import dataclasses
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Literal, TypeVar, cast

from lxml import etree

from spie.common.nir import NirError, parse_nir

__all__ = [
    "ETATDOSRSA",
    "ETATDOSRSA_OPEN",
    "FONORG",
    "MOTICLORSA",
    "MOTITRANSFLUX",
    "NATPF",
    "ROLEPERS",
    "ROLEPERS_SDD_ELIGIBLE",
    "SCHEMAS",
    "SITFAM",
    "CafActivity",
    "CafAddress",
    "CafBenefitDetail",
    "CafEvent",
    "CafFlow",
    "CafHousehold",
    "CafPerson",
    "CafRecordError",
    "CafSuspension",
    "CafTransferIn",
    "CafTransferOut",
    "CountMismatch",
    "FlowHeader",
    "MalformedFileError",
    "RecordWarning",
    "UnsafeFileError",
    "from_import_values",
    "import_values",
    "iter_caf_flow",
]

# --------------------------------------------------------------------------------------------
# Reference code lists (labels in French)
# --------------------------------------------------------------------------------------------

ETATDOSRSA: Mapping[str, str] = {
    "Z": "Non défini",
    "0": "Nouvelle demande en attente de décision CG pour ouverture du droit",
    "1": "Droit refusé",
    "2": "Droit ouvert et versable",
    "3": "Droit ouvert et suspendu (le montant du droit est calculable, mais l'existence du droit "
    "est remise en cause)",
    "4": "Droit ouvert mais versement suspendu (le montant du droit n'est pas calculable)",
    "5": "Droit clos",
    "6": "Droit clos sur mois antérieur ayant eu des créances transférées ou une régularisation "
    "dans le mois de référence pour une période antérieure",
}
ETATDOSRSA_OPEN: frozenset[str] = frozenset({"2", "3", "4"})

ROLEPERS: Mapping[str, str] = {
    "DEM": "Demandeur",
    "CJT": "Conjoint du demandeur",
    "ENF": "Enfant",
    "AUT": "Autre personne",
    "RDO": "Responsable du dossier",
}
ROLEPERS_SDD_ELIGIBLE: frozenset[str] = frozenset({"DEM", "CJT"})

NATPF: Mapping[str, str] = {
    "RSD": "RSA socle (financement sur fonds Conseil départemental)",
    "RSI": "RSA socle majoré (financement sur fonds Conseil départemental)",
    "RSU": "RSA socle État contrat aidé",
    "RSB": "RSA socle local",
    "RSJ": "RSA socle jeune",
    "RCD": "RSA activité (financement sur fonds État)",
    "RCI": "RSA activité majoré (financement sur fonds État)",
    "RCU": "RSA activité État contrat aidé",
    "RCB": "RSA activité local",
    "RCJ": "RSA activité jeune",
}

MOTICLORSA: Mapping[str, str] = {
    "PCG": "Clôture suite à décision du Président du Conseil départemental",
    "ECH": "Clôture suite à échéance (4 mois sans droits)",
    "MUT": "Clôture suite à la mutation du dossier dans un autre organisme",
    "RGD": "Clôture pour regroupement de dossier",
    "RFD": "Radiation fin de droit",
    "RAU": "Radiation autre motif",
    "EFF": "Clôture suite à l'annulation de la bascule RMI/API",
    "RST": "Radiation option RSTA (DOM)",
    "RSO": "Radiation option RSO (DOM)",
}

SITFAM: Mapping[str, str] = {
    "ABA": "Disparu (abandon de domicile)",
    "CEL": "Célibataire",
    "DIV": "Divorcé(e)",
    "ISO": "Isolement après vie maritale ou PACS",
    "MAR": "Mariage",
    "PAC": "PACS",
    "RPA": "Reprise vie commune sur PACS",
    "RVC": "Reprise vie maritale",
    "RVM": "Reprise mariage",
    "SEF": "Séparation de fait",
    "SEL": "Séparation légale",
    "VEU": "Veuvage",
    "VIM": "Vie maritale",
}

FONORG: Mapping[str, str] = {
    "CAF": "Caisse d'allocations familiales",
    "MSA": "Mutualité sociale agricole",
}

# Open list: not validated, labels for display only.
MOTITRANSFLUX: Mapping[str, str] = {
    "ENTDED": "Entrée dans le champ des droits et devoirs",
    "DEMRSA": "Demande de RSA",
    "SUS": "Suspension",
    "RAD": "Radiation",
    "MUT": "Mutation",
    "ADR": "Changement d'adresse",
    "SITPRO": "Changement de situation professionnelle",
}

Schema = Literal["vrsb0801", "vrsd0301"]
SCHEMAS: tuple[Schema, ...] = ("vrsb0801", "vrsd0301")

MATRICULE_LENGTH = 15
NUMDEMRSA_LENGTH = 11

# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class UnsafeFileError(Exception):
    """The whole file is refused: DOCTYPE / DTD / entity declarations (XXE, billion laughs)."""

    def __init__(self, message: str, code: str = "doctype") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class MalformedFileError(Exception):
    """The file cannot be read (any further): XML syntax, encoding, missing or bad header.

    ``code``: ``xml_syntax``, ``encoding``, ``missing_header`` or ``bad_header``. ``line`` (and
    ``column``) locate the problem when known. Households completely read before the problem
    have already been given by the iterator.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "xml_syntax",
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        if line is not None:
            where = f"line {line}" if column is None else f"line {line}, column {column}"
            message = f"{message} ({where})"
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line
        self.column = column


class CafRecordError(Exception):
    """One unusable household. Yielded (not raised) by the iterator; parsing goes on.

    ``code`` is a stable reason code, ``message`` a precise human text that never contains
    personal data (NIR, names, addresses, birth dates), ``position`` the ordinal of the
    ``InfosFoyerRSA`` in the file (from 1), ``keys`` the record keys known (``matricule``,
    ``numdemrsa``), ``raw_fragment`` the XML of the household (see the module documentation).
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        position: int = 0,
        keys: dict[str, str] | None = None,
        raw_fragment: str = "",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.position = position
        self.keys: dict[str, str] = dict(keys or {})
        self.raw_fragment = raw_fragment

    def __str__(self) -> str:
        return f"[{self.code}] household #{self.position}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"CafRecordError(code={self.code!r}, position={self.position}, keys={self.keys!r}, "
            f"message={self.message!r})"
        )


# --------------------------------------------------------------------------------------------
# DTOs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlowHeader:
    """``IdentificationFlux``. ``schema`` comes from ``xsi:noNamespaceSchemaLocation`` on the root
    or, without it, from the structure of the first household."""

    appli: str | None
    version: str | None
    type_flux: Literal["I", "M"]
    nat_flux: str | None
    created_on: date
    created_time: str | None
    dtref: date
    schema: Schema
    schema_location: str | None = None
    declared_encoding: str | None = None


@dataclass(frozen=True, slots=True)
class CafAddress:
    rank: int  # RGADR, 1 = current address
    moved_in_on: date | None  # DTEMM
    country: str | None  # PAYS
    address_type: str | None  # TYPEADR
    address_state: str | None  # ETATADR
    complement_identity: str | None  # COMPLIDEADR
    complement: str | None  # COMPLADR
    street_number: str | None  # NUMVOIE
    street_type: str | None  # LIBTYPEVOIE
    street_name: str | None  # NOMVOIE
    locality: str | None  # LIEUDIST
    insee_code: str | None  # NUMCOM
    postal_code: str | None  # CODEPOS
    commune_name: str | None  # NOMCOM

    @property
    def is_current(self) -> bool:
        return self.rank == 1


@dataclass(frozen=True, slots=True)
class CafActivity:
    regime: str | None  # REG
    code: str | None  # ACT
    start: date | None  # DDACT
    end: date | None  # DFACT


@dataclass(frozen=True, slots=True)
class CafPerson:
    qual: str | None
    last_name: str
    birth_name: str | None
    first_name: str
    other_first_names: tuple[str, ...]
    birth_place: str | None  # NOMCOMNAI
    birth_date: date
    birth_date_type: str | None  # TYPEDTNAI
    nir13: str | None
    nir_key: str | None  # the key given in the file (None if only 13 characters were given)
    nir_key_valid: bool | None  # None: no NIR; False: given key does not match (unverified)
    nir_certified: bool | None  # TOPVALIEC
    sex: str | None  # SEXE: 1 man, 2 woman
    role: str | None  # ROLEPERS under NATPREST=RSA (or FonctionPersonneRSA)
    pfa_role: str | None  # ROLEPERS under NATPREST=PFA (or FonctionPersonnePFA)
    rsa_in_charge: bool | None  # TOPCHAPERS under RSA
    france_travail_id: str | None  # IDASSEDIC
    sdd: bool | None  # TOPPERSDRODEVORSA
    entering_sdd: bool | None  # TOPPERSENTDRODEVORSA (vrsd0301)
    sdd_start: date | None  # DDSOUDRODEV (vrsd0301)
    sdd_end: date | None  # DFSOUDRODEV (vrsd0301)
    activities: tuple[CafActivity, ...] = ()

    @property
    def is_sdd(self) -> bool:
        """Subject to rights and duties: flag set and role DEM or CJT under RSA."""
        return bool(self.sdd) and self.role in ROLEPERS_SDD_ELIGIBLE

    @property
    def nir_usable_alone(self) -> bool:
        """The NIR can be used for matching (present and its key not contradicted)."""
        return self.nir13 is not None and self.nir_key_valid is True


@dataclass(frozen=True, slots=True)
class CafTransferIn:
    """``OrganismeCedant``: the household arrived from another organisme."""

    fonorg: str | None
    numorg: str | None
    matricule: str | None
    arrived_on: date | None  # DDARRMUT


@dataclass(frozen=True, slots=True)
class CafTransferOut:
    """``OrganismePrenant``: the household leaves for another organisme."""

    fonorg: str | None
    numorg: str | None
    departed_on: date | None  # DDDEPAMUT


@dataclass(frozen=True, slots=True)
class CafSuspension:
    reason: str | None
    since: date | None


@dataclass(frozen=True, slots=True)
class CafBenefitDetail:
    natpf: str
    sous_natpf: str | None
    start: date | None
    end: date | None


@dataclass(frozen=True, slots=True)
class CafEvent:
    liquidated_on: date | None  # DTLIQ
    liquidated_time: str | None  # HEULIQ
    motifs: tuple[str, ...]  # MOTITRANSFLUX codes


@dataclass(frozen=True, slots=True)
class RecordWarning:
    """A non-blocking remark on a usable household (e.g. ``bad_nir_key``). No personal data."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class CafHousehold:
    position: int
    fonorg: str | None
    numorg: str | None
    matricule: str
    numdemrsa: str
    dtdemrsa: date | None
    partner_type: str | None  # TYPEPARTE
    partner_id: str | None  # IDEPARTE
    transfer_in: CafTransferIn | None
    transfer_out: CafTransferOut | None
    family_situation: str | None  # SITFAM
    family_situation_since: date | None  # DDSITFAM
    persons: tuple[CafPerson, ...]
    addresses: tuple[CafAddress, ...]
    current_address: CafAddress | None  # RGADR 01
    etat_dossier: str  # ETATDOSRSA
    topforcdro: bool | None
    dtodrsa: date | None
    opening_reason: str | None  # MOTIODRSA
    right_suspensions: tuple[CafSuspension, ...]  # SuspensionDroit
    payment_suspensions: tuple[CafSuspension, ...]  # SuspensionVersement
    closure_reason: str | None  # MOTICLORSA
    closed_on: date | None  # DTCLORSA
    no_fixed_abode: bool | None  # TOPSANSDOMFIXE
    request_origin: str | None  # ORIDEMRSA
    request_origin_on: date | None  # DTORIDEMRSA
    benefit_details: tuple[CafBenefitDetail, ...]
    natpf: tuple[str, ...]
    events: tuple[CafEvent, ...]
    raw_fragment: str = field(repr=False)
    warnings: tuple[RecordWarning, ...] = ()

    @property
    def keys(self) -> dict[str, str]:
        return {"matricule": self.matricule, "numdemrsa": self.numdemrsa}

    @property
    def is_open(self) -> bool:
        """Right open (ETATDOSRSA 2, 3 or 4)."""
        return self.etat_dossier in ETATDOSRSA_OPEN

    @property
    def sdd_persons(self) -> tuple[CafPerson, ...]:
        return tuple(p for p in self.persons if p.is_sdd)

    @property
    def event_codes(self) -> frozenset[str]:
        return frozenset(code for event in self.events for code in event.motifs)


@dataclass(frozen=True, slots=True)
class CountMismatch:
    """``TransmissionFlux/NBTOTDOSRSATRANSM`` differs from the number of ``InfosFoyerRSA`` read.

    ``reason``: ``different``, ``missing`` (no TransmissionFlux / no count) or ``invalid``
    (not an integer); ``expected`` is None for the last two.
    """

    expected: int | None
    read: int
    reason: Literal["different", "missing", "invalid"]

    def __str__(self) -> str:
        if self.reason == "different":
            return f"NBTOTDOSRSATRANSM announces {self.expected} households, {self.read} read"
        return f"NBTOTDOSRSATRANSM {self.reason}, {self.read} households read"


_D = TypeVar("_D")


def _fast_constructor(cls: type[_D]) -> Callable[..., _D]:
    """A constructor equivalent to ``cls(...)`` for a frozen slots DTO, 2 to 3 times cheaper.

    The ``__init__`` of a frozen dataclass sets each field through ``object.__setattr__`` (its
    own ``__setattr__`` refuses), a generic attribute look-up and call per field: with 100+
    fields per household, building the DTOs was one of the main costs of the parser. The
    returned class is a mutable twin of ``cls`` (same fields, defaults and slots: plain slot
    stores) whose ``__post_init__`` gives the new object the real class. CPython allows that only
    between classes with the same memory layout, checked here once; the object is then exactly a
    ``cls`` instance (type, equality, hash, repr, pickling, immutability). Falls back to ``cls``
    itself if it ever gets its own ``__post_init__``, a field outside ``__init__`` or no slots.
    """
    fields = dataclasses.fields(cast(type, cls))
    names = tuple(f.name for f in fields)
    if (
        cls.__dict__.get("__slots__") != names
        or hasattr(cls, "__post_init__")
        or not all(f.init for f in fields)
    ):
        return cls

    def become_real(self: object) -> None:
        self.__class__ = cls

    twin = dataclasses.make_dataclass(
        f"_{cls.__name__}Init",
        [
            (
                f.name,
                object,
                dataclasses.field(default=f.default, default_factory=f.default_factory),
            )
            for f in fields
        ],
        namespace={"__post_init__": become_real},
        slots=True,
        repr=False,
        eq=False,
        match_args=False,
    )
    try:
        become_real(object.__new__(twin))
    except TypeError:  # pragma: no cover - layouts differ: use the real constructor
        return cls
    return twin


_new_address = _fast_constructor(CafAddress)
_new_activity = _fast_constructor(CafActivity)
_new_person = _fast_constructor(CafPerson)
_new_suspension = _fast_constructor(CafSuspension)
_new_benefit_detail = _fast_constructor(CafBenefitDetail)
_new_event = _fast_constructor(CafEvent)
_new_household = _fast_constructor(CafHousehold)

_RESTORERS: dict[str, Callable[..., object]] = {}


def _restore(kind: str, values: tuple[object, ...]) -> object:
    """Unpickling of a DTO: its fast constructor with the field values in order."""
    return _RESTORERS[kind](*values)


def _fast_pickling(cls: type, constructor: Callable[..., object]) -> None:
    """Pickle a DTO as (class name, field values). The default pickling of a frozen slots
    dataclass looks its fields up and sets them one by one through ``object.__setattr__`` for
    every object: sending the parsed households to the importing process cost about as much
    CPU as parsing them."""
    names = tuple(f.name for f in dataclasses.fields(cls))
    values_of = operator.attrgetter(*names)
    kind = cls.__name__
    _RESTORERS[kind] = constructor

    def reduce(self: object) -> tuple[Callable[..., object], tuple[str, tuple[object, ...]]]:
        return _restore, (kind, values_of(self))

    cls.__reduce__ = reduce  # type: ignore[assignment,method-assign]


for _cls, _constructor in (
    (CafAddress, _new_address),
    (CafActivity, _new_activity),
    (CafPerson, _new_person),
    (CafSuspension, _new_suspension),
    (CafBenefitDetail, _new_benefit_detail),
    (CafEvent, _new_event),
    (CafHousehold, _new_household),
    (CafTransferIn, _fast_constructor(CafTransferIn)),
    (CafTransferOut, _fast_constructor(CafTransferOut)),
    (RecordWarning, _fast_constructor(RecordWarning)),
):
    _fast_pickling(_cls, _constructor)


def for_import(household: CafHousehold, *, keep_raw: bool) -> CafHousehold:
    """The household reduced to what the importer reads, lighter to send to another process:
    the current address only, no activities, benefit details, suspensions, transfer in, nor
    the header fields nobody stores; the raw XML only if ``keep_raw`` (rejects need it)."""
    return from_import_values(import_values(household, keep_raw=keep_raw))


def import_values(household: CafHousehold, *, keep_raw: bool) -> tuple[object, ...]:
    """:func:`for_import` as plain field values (the persons as tuples of values): what the
    parsing process sends, pickled without a hook call per object;
    :func:`from_import_values` rebuilds the household."""
    values = list(_household_values(household))
    for index, empty in _HOUSEHOLD_DROPPED:
        values[index] = empty
    if not keep_raw:
        values[_RAW_INDEX] = ""
    current = household.current_address
    values[_ADDRESSES_INDEX] = () if current is None else (current,)
    persons = []
    for person in household.persons:
        person_values = list(_person_values(person))
        for index, empty in _PERSON_DROPPED:
            person_values[index] = empty
        persons.append(tuple(person_values))
    values[_PERSONS_INDEX] = tuple(persons)
    return tuple(values)


def from_import_values(values: tuple[object, ...]) -> CafHousehold:
    fields = list(values)
    persons = cast(tuple[tuple[object, ...], ...], fields[_PERSONS_INDEX])
    fields[_PERSONS_INDEX] = tuple([_new_person(*person) for person in persons])
    return _new_household(*fields)


_HOUSEHOLD_FIELDS = tuple(f.name for f in dataclasses.fields(CafHousehold))
_PERSON_FIELDS = tuple(f.name for f in dataclasses.fields(CafPerson))
_household_values = operator.attrgetter(*_HOUSEHOLD_FIELDS)
_person_values = operator.attrgetter(*_PERSON_FIELDS)
_RAW_INDEX = _HOUSEHOLD_FIELDS.index("raw_fragment")
_ADDRESSES_INDEX = _HOUSEHOLD_FIELDS.index("addresses")
_PERSONS_INDEX = _HOUSEHOLD_FIELDS.index("persons")
#: Fields the importer never reads, with the empty value they get in :func:`for_import`.
_HOUSEHOLD_DROPPED = tuple(
    (_HOUSEHOLD_FIELDS.index(name), empty)
    for name, empty in (
        ("partner_type", None),
        ("partner_id", None),
        ("transfer_in", None),
        ("family_situation_since", None),
        ("topforcdro", None),
        ("dtodrsa", None),
        ("opening_reason", None),
        ("right_suspensions", ()),
        ("payment_suspensions", ()),
        ("no_fixed_abode", None),
        ("request_origin", None),
        ("request_origin_on", None),
        ("benefit_details", ()),
        ("natpf", ()),
    )
)
_PERSON_DROPPED = tuple(
    (_PERSON_FIELDS.index(name), empty)
    for name, empty in (
        ("birth_date_type", None),
        ("nir_certified", None),
        ("rsa_in_charge", None),
        ("sdd_end", None),
        ("activities", ()),
    )
)


# --------------------------------------------------------------------------------------------
# Low-level helpers
# --------------------------------------------------------------------------------------------

# The children of an element as a list, built in C: ``elem[:]``, cheaper than iterating the
# element (lxml builds an iterator object per container). Named because lxml-stubs do not
# type slices.
_kids: Callable[[etree._Element], list[etree._Element]] = operator.itemgetter(slice(None))

# Values of these tags are personal data: never quoted in messages.
_PERSONAL_TAGS = frozenset(
    {
        "NOM",
        "NOMNAI",
        "PRENOM",
        "PRENOM2",
        "PRENOM3",
        "NOMCOMNAI",
        "DTNAI",
        "NIR",
        "IDASSEDIC",
        "COMPLIDEADR",
        "COMPLADR",
        "NUMVOIE",
        "NOMVOIE",
        "LIEUDIST",
    }
)

# C1 control characters: never in ISO-8859-1 text, typical of windows-1252 bytes read as Latin-1.
_C1_BYTES = bytes(range(0x80, 0xA0))
# ... and the other bytes that can continue a UTF-8 sequence: text without any is not UTF-8.
_C1_AND_CONTINUATION_BYTES = bytes(range(0x80, 0xC0))


_Values = dict[str, str]


class _BadRecordError(Exception):
    """Internal: raised while building a household, turned into a CafRecordError."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _quote(tag: str, value: str) -> str:
    if tag in _PERSONAL_TAGS:
        return "(value withheld: personal data)"
    shown = value if len(value) <= 40 else value[:40] + "…"
    return repr(shown)


def _children(elem: etree._Element) -> _Values:
    """Direct children of a leaf container: tag -> stripped text, empty ones left out."""
    values: _Values = {}
    for child in _kids(elem):
        if (text := child.text) and (text := text.strip()):
            values[child.tag] = text
    return values


def _req(values: _Values, tag: str, where: str) -> str:
    value = values.get(tag)
    if value is None:
        raise _BadRecordError("missing_tag", f"{where}/{tag} is missing or empty")
    return value


# Dates repeat a lot in a flow (reference dates, openings...): parse each text once.
_DATE_CACHE: dict[str, date] = {}
_DATE_CACHE_MAX = 100_000


def _parse_date(value: str, tag: str, where: str, *, partial_ok: bool = False) -> date:
    cached = _DATE_CACHE.get(value)
    if cached is not None:
        return cached
    if len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            parsed = date(int(value[:4]), int(value[5:7]), int(value[8:]))
        except ValueError:
            if partial_ok and value[8:] == "00" and value[:4].isdigit():
                # Birth date known only to the month or the year (TYPEDTNAI other than N).
                month = value[5:7]
                try:
                    return date(int(value[:4]), 1 if month == "00" else int(month), 1)
                except ValueError:
                    pass
        else:
            if len(_DATE_CACHE) >= _DATE_CACHE_MAX:
                _DATE_CACHE.clear()
            _DATE_CACHE[value] = parsed
            return parsed
    raise _BadRecordError(
        "bad_date", f"{where}/{tag}: {_quote(tag, value)} is not a date YYYY-MM-DD"
    )


def _opt_date(values: _Values, tag: str, where: str) -> date | None:
    value = values.get(tag)
    if value is None:
        return None
    return _DATE_CACHE.get(value) or _parse_date(value, tag, where)  # a date is never false


def _flag(values: _Values, tag: str, where: str) -> bool | None:
    value = values.get(tag)
    if value is None:
        return None
    if value == "1":
        return True
    if value == "0":
        return False
    raise _BadRecordError("unknown_code", f"{where}/{tag}: {_quote(tag, value)} is not 0 or 1")


def _code(value: str | None, codes: Mapping[str, str], tag: str, where: str) -> str | None:
    if value is not None and value not in codes:
        raise _BadRecordError("unknown_code", f"{where}/{tag}: unknown code {_quote(tag, value)}")
    return value


def _nir(raw: str) -> tuple[str, str | None, bool]:
    """(nir13, key given or None, key valid) of a NIR text; _BadRecordError if malformed."""
    if raw.isdigit():  # fast path, the usual case
        if len(raw) == 13:
            return raw, None, True
        if len(raw) == 15:
            key = raw[13:]
            return raw[:13], key, int(key) == 97 - int(raw[:13]) % 97
    try:
        parsed = parse_nir(raw)
    except NirError as exc:
        raise _BadRecordError("bad_nir_format", f"Identification/NIR: {exc}") from None
    return parsed.nir13, parsed.key if parsed.key_given else None, parsed.key_valid


def _check_encoding(raw: str) -> None:
    """Per-record check that the text decoded from the declared encoding looks right.

    Latin-1 decoding never fails, so a UTF-8 (or windows-1252) file declared ISO-8859-1 gives
    "Ã©" for "é" or C1 control characters: detect both without scanning in Python.
    """
    if raw.isascii():
        return
    data = raw.encode("latin-1", "ignore")
    if len(data.translate(None, _C1_AND_CONTINUATION_BYTES)) == len(data):
        return  # no C1 control character, and no byte that can continue a UTF-8 sequence
    if len(data.translate(None, _C1_BYTES)) != len(data):
        raise _BadRecordError(
            "bad_encoding",
            "control characters U+0080-U+009F in the text: the bytes are probably windows-1252 "
            "or UTF-8, not the declared encoding",
        )
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return
    raise _BadRecordError(
        "bad_encoding",
        "the text is UTF-8 bytes read with the declared single-byte encoding (e.g. 'Ã©' for "
        "'é'): the XML declaration does not match the bytes",
    )


# --------------------------------------------------------------------------------------------
# Household builder
# --------------------------------------------------------------------------------------------


def _build_person(elem: etree._Element) -> tuple[CafPerson, RecordWarning | None]:
    """One Personne. Error paths are relative to the Personne (the caller prefixes them)."""
    ident: _Values | None = None
    role: str | None = None
    pfa_role: str | None = None
    rsa_in_charge: bool | None = None
    has_role = False
    calc: _Values | None = None
    calc_tag = ""
    france_travail_id: str | None = None
    activities: list[CafActivity] = []
    for child in _kids(elem):
        tag = child.tag
        if tag == "Identification":
            ident = _children(child)
        elif tag == "Prestations":
            values = _children(child)
            natprest = values.get("NATPREST")
            if natprest == "RSA":
                has_role = True
                where = "Prestations[NATPREST=RSA]"
                role = _code(_req(values, "ROLEPERS", where), ROLEPERS, "ROLEPERS", where)
                rsa_in_charge = _flag(values, "TOPCHAPERS", where)
            elif natprest == "PFA":
                pfa_role = values.get("ROLEPERS")
        elif tag == "FonctionPersonneRSA":
            values = _children(child)
            has_role = True
            where = "FonctionPersonneRSA"
            role = _code(_req(values, "ROLEPERS", where), ROLEPERS, "ROLEPERS", where)
            rsa_in_charge = _flag(values, "TOPCHAPERS", where)
        elif tag == "FonctionPersonnePFA":
            pfa_role = _children(child).get("ROLEPERS")
        elif tag == "MontantCalculDroitRSAPersonne" or tag == "CalculDroitRSAPersonne":
            calc = _children(child)
            calc_tag = tag
        elif tag == "DossierPoleEmploi":
            france_travail_id = _children(child).get("IDASSEDIC")
        elif tag == "Activite":
            values = _children(child)
            activities.append(
                _new_activity(
                    regime=values.get("REG"),
                    code=values.get("ACT"),
                    start=_opt_date(values, "DDACT", "Activite"),
                    end=_opt_date(values, "DFACT", "Activite"),
                )
            )
    if ident is None:
        raise _BadRecordError("missing_tag", "Identification is missing")
    last_name = _req(ident, "NOM", "Identification")
    first_name = _req(ident, "PRENOM", "Identification")
    birth_date_type = ident.get("TYPEDTNAI")
    birth_date = _parse_date(
        _req(ident, "DTNAI", "Identification"),
        "DTNAI",
        "Identification",
        partial_ok=birth_date_type not in (None, "N"),
    )
    if not has_role and pfa_role is None:
        raise _BadRecordError(
            "missing_tag", "ROLEPERS is missing (Prestations or FonctionPersonneRSA)"
        )
    warning: RecordWarning | None = None
    nir13: str | None = None
    nir_key: str | None = None
    nir_key_valid: bool | None = None
    raw_nir = ident.get("NIR")
    if raw_nir is not None:
        nir13, nir_key, nir_key_valid = _nir(raw_nir)
        if not nir_key_valid:
            warning = RecordWarning(
                "bad_nir_key", "Identification/NIR: the key does not match, kept as unverified"
            )
    sdd: bool | None = None
    entering_sdd: bool | None = None
    sdd_start: date | None = None
    sdd_end: date | None = None
    if calc:
        sdd = _flag(calc, "TOPPERSDRODEVORSA", calc_tag)
        if sdd is None or len(calc) > 1:  # more than the single flag of vrsb0801
            entering_sdd = _flag(calc, "TOPPERSENTDRODEVORSA", calc_tag)
            sdd_start = _opt_date(calc, "DDSOUDRODEV", calc_tag)
            sdd_end = _opt_date(calc, "DFSOUDRODEV", calc_tag)
        if (sdd or entering_sdd) and role not in ROLEPERS_SDD_ELIGIBLE and warning is None:
            warning = RecordWarning(
                "sdd_role",
                f"{calc_tag}: subject to rights and duties with RSA role {role}, "
                "only DEM and CJT can be",
            )
    prenom2 = ident.get("PRENOM2")
    prenom3 = ident.get("PRENOM3")
    if prenom2 is None and prenom3 is None:
        other_first_names: tuple[str, ...] = ()
    else:
        other_first_names = tuple(n for n in (prenom2, prenom3) if n is not None)
    person = _new_person(
        qual=ident.get("QUAL"),
        last_name=last_name,
        birth_name=ident.get("NOMNAI"),
        first_name=first_name,
        other_first_names=other_first_names,
        birth_place=ident.get("NOMCOMNAI"),
        birth_date=birth_date,
        birth_date_type=birth_date_type,
        nir13=nir13,
        nir_key=nir_key,
        nir_key_valid=nir_key_valid,
        nir_certified=_flag(ident, "TOPVALIEC", "Identification"),
        sex=ident.get("SEXE"),
        role=role,
        pfa_role=pfa_role,
        rsa_in_charge=rsa_in_charge,
        france_travail_id=france_travail_id,
        sdd=sdd,
        entering_sdd=entering_sdd,
        sdd_start=sdd_start,
        sdd_end=sdd_end,
        activities=tuple(activities),
    )
    return person, warning


def _build_address(elem: etree._Element) -> CafAddress:
    """One Adresse. Error paths are relative to the Adresse (the caller prefixes them)."""
    tronc: _Values = {}
    detail: _Values = {}
    for child in _kids(elem):
        if child.tag == "TroncCommunAdresse":
            tronc = _children(child)
        elif child.tag == "AdresseDetailleeFrance":
            detail = _children(child)
    rank_text = _req(tronc, "RGADR", "TroncCommunAdresse")
    if not rank_text.isdigit():
        raise _BadRecordError(
            "bad_format", f"TroncCommunAdresse/RGADR: {rank_text!r} is not an address rank"
        )
    return _new_address(
        rank=int(rank_text),
        moved_in_on=_opt_date(tronc, "DTEMM", "TroncCommunAdresse"),
        country=tronc.get("PAYS"),
        address_type=tronc.get("TYPEADR"),
        address_state=tronc.get("ETATADR"),
        complement_identity=detail.get("COMPLIDEADR"),
        complement=detail.get("COMPLADR"),
        street_number=detail.get("NUMVOIE"),
        street_type=detail.get("LIBTYPEVOIE"),
        street_name=detail.get("NOMVOIE"),
        locality=detail.get("LIEUDIST"),
        insee_code=detail.get("NUMCOM"),
        postal_code=detail.get("CODEPOS"),
        commune_name=detail.get("NOMCOM"),
    )


def _prefixed(exc: _BadRecordError, prefix: str) -> _BadRecordError:
    return _BadRecordError(exc.code, f"{prefix}/{exc.message}")


_EMPTY: _Values = {}


class _HouseholdBuilder:
    """Reads one complete InfosFoyerRSA subtree into a CafHousehold.

    ``keys`` is filled as soon as the identifiers are read, so that a later error carries them.
    """

    __slots__ = ("keys",)

    def __init__(self) -> None:
        self.keys: dict[str, str] = {}

    def build(self, elem: etree._Element, position: int, raw: str) -> CafHousehold:
        organisme: _Values = _EMPTY
        partenaire: _Values = _EMPTY
        demande: _Values = _EMPTY
        cedant: _Values | None = None
        prenant: _Values | None = None
        person_elems: list[etree._Element] = []
        admin: etree._Element | None = None
        prestation: etree._Element | None = None
        event_elems: list[etree._Element] = []
        has_identification = False
        for child in _kids(elem):
            tag = child.tag
            if tag == "Personne":
                person_elems.append(child)
            elif tag == "IdentificationRSA":
                has_identification = True
                for sub in _kids(child):
                    sub_tag = sub.tag
                    if sub_tag == "Organisme":
                        organisme = _children(sub)
                    elif sub_tag == "DemandeRSA":
                        demande = _children(sub)
                    elif sub_tag == "Partenaire":
                        partenaire = _children(sub)
                    elif sub_tag == "OrganismeCedant":
                        cedant = _children(sub)
                    elif sub_tag == "OrganismePrenant":
                        prenant = _children(sub)
            elif tag == "DonneesAdministratives":
                admin = child
            elif tag == "PrestationRSA":
                prestation = child
            elif tag == "Evenement":
                event_elems.append(child)

        # Keys first, so that any later error carries them.
        matricule = organisme.get("MATRICULE")
        numdemrsa = demande.get("NUMDEMRSA")
        if matricule is not None:
            self.keys["matricule"] = matricule
        if numdemrsa is not None:
            self.keys["numdemrsa"] = numdemrsa
        if not has_identification:
            raise _BadRecordError("missing_tag", "IdentificationRSA is missing")
        matricule = _req(organisme, "MATRICULE", "IdentificationRSA/Organisme")
        numdemrsa = _req(demande, "NUMDEMRSA", "IdentificationRSA/DemandeRSA")
        if len(matricule) != MATRICULE_LENGTH:
            raise _BadRecordError(
                "bad_format",
                f"IdentificationRSA/Organisme/MATRICULE: {len(matricule)} characters, "
                f"{MATRICULE_LENGTH} expected",
            )
        if len(numdemrsa) != NUMDEMRSA_LENGTH:
            raise _BadRecordError(
                "bad_format",
                f"IdentificationRSA/DemandeRSA/NUMDEMRSA: {len(numdemrsa)} characters, "
                f"{NUMDEMRSA_LENGTH} expected",
            )
        fonorg = _code(organisme.get("FONORG"), FONORG, "FONORG", "IdentificationRSA/Organisme")

        if not person_elems:
            raise _BadRecordError("no_person", "no Personne in the household")
        persons: list[CafPerson] = []
        warnings: list[RecordWarning] = []
        for index, person_elem in enumerate(person_elems, start=1):
            try:
                person, warning = _build_person(person_elem)
            except _BadRecordError as exc:
                raise _prefixed(exc, f"Personne[{index}]") from None
            persons.append(person)
            if warning is not None:
                warnings.append(RecordWarning(warning.code, f"Personne[{index}]/{warning.message}"))

        family: _Values = _EMPTY
        addresses: list[CafAddress] = []
        current: CafAddress | None = None
        if admin is not None:
            for child in _kids(admin):
                if child.tag == "SituationFamille":
                    family = _children(child)
                elif child.tag == "Adresse":
                    try:
                        address = _build_address(child)
                    except _BadRecordError as exc:
                        raise _prefixed(
                            exc, f"DonneesAdministratives/Adresse[{len(addresses) + 1}]"
                        ) from None
                    addresses.append(address)
                    if address.rank == 1:
                        if current is not None:
                            warnings.append(
                                RecordWarning(
                                    "several_current_addresses", "several Adresse with RGADR 01"
                                )
                            )
                        else:
                            current = address
        family_where = "DonneesAdministratives/SituationFamille"

        if prestation is None:
            raise _BadRecordError("missing_tag", "PrestationRSA is missing")
        etat_values: _Values = _EMPTY
        ouvert: _Values = _EMPTY
        fin: _Values = _EMPTY
        right_suspensions: list[CafSuspension] = []
        payment_suspensions: list[CafSuspension] = []
        tronc_droit: _Values = _EMPTY
        details: list[CafBenefitDetail] = []
        for child in _kids(prestation):
            if child.tag == "SituationDossierRSA":
                for sub in _kids(child):
                    sub_tag = sub.tag
                    if sub_tag == "EtatDossierRSA":
                        etat_values = _children(sub)
                    elif sub_tag == "DroitOuvert":
                        ouvert = _children(sub)
                    elif sub_tag == "FinDroit":
                        fin = _children(sub)
                    elif sub_tag == "SuspensionDroit":
                        values = _children(sub)
                        right_suspensions.append(
                            _new_suspension(
                                reason=values.get("MOTISUSDRORSA"),
                                since=_opt_date(
                                    values,
                                    "DDSUSDRORSA",
                                    "PrestationRSA/SituationDossierRSA/SuspensionDroit",
                                ),
                            )
                        )
                    elif sub_tag == "SuspensionVersement":
                        values = _children(sub)
                        payment_suspensions.append(
                            _new_suspension(
                                reason=values.get("MOTISUSVERSRSA"),
                                since=_opt_date(
                                    values,
                                    "DDSUSVERSRSA",
                                    "PrestationRSA/SituationDossierRSA/SuspensionVersement",
                                ),
                            )
                        )
            elif child.tag == "DetailDroitRSA":
                for sub in _kids(child):
                    if sub.tag == "TroncCommunDroitRSA":
                        tronc_droit = _children(sub)
                    elif sub.tag == "DetailCalculDroitRSA":
                        values = _children(sub)
                        detail_where = "PrestationRSA/DetailDroitRSA/DetailCalculDroitRSA"
                        natpf = _req(values, "NATPF", detail_where)
                        _code(natpf, NATPF, "NATPF", detail_where)
                        details.append(
                            _new_benefit_detail(
                                natpf=natpf,
                                sous_natpf=values.get("SOUSNATPF"),
                                start=_opt_date(values, "DDNATDRO", detail_where),
                                end=_opt_date(values, "DFNATDRO", detail_where),
                            )
                        )
        etat_where = "PrestationRSA/SituationDossierRSA/EtatDossierRSA"
        etat = _req(etat_values, "ETATDOSRSA", etat_where)
        _code(etat, ETATDOSRSA, "ETATDOSRSA", etat_where)
        fin_where = "PrestationRSA/SituationDossierRSA/FinDroit"
        tronc_where = "PrestationRSA/DetailDroitRSA/TroncCommunDroitRSA"

        events: list[CafEvent] = []
        for event_elem in event_elems:
            session: _Values = _EMPTY
            motifs: list[str] = []
            for child in _kids(event_elem):
                if child.tag == "SessionEvenement":
                    session = _children(child)
                elif child.tag == "ListeMotifsEvenement":
                    for motif in _kids(child):
                        text = motif.text
                        if motif.tag == "MOTITRANSFLUX" and text is not None and text.strip():
                            motifs.append(text.strip())
            events.append(
                _new_event(
                    liquidated_on=_opt_date(session, "DTLIQ", "Evenement/SessionEvenement"),
                    liquidated_time=session.get("HEULIQ"),
                    motifs=tuple(motifs),
                )
            )

        transfer_in = None
        if cedant is not None:
            transfer_in = CafTransferIn(
                fonorg=cedant.get("FONORGCEDMUT"),
                numorg=cedant.get("NUMORGCEDMUT"),
                matricule=cedant.get("MATRICULEORGCEDMUT"),
                arrived_on=_opt_date(cedant, "DDARRMUT", "IdentificationRSA/OrganismeCedant"),
            )
        transfer_out = None
        if prenant is not None:
            transfer_out = CafTransferOut(
                fonorg=prenant.get("FONORGPRENMUT"),
                numorg=prenant.get("NUMORGPRENMUT"),
                departed_on=_opt_date(prenant, "DDDEPAMUT", "IdentificationRSA/OrganismePrenant"),
            )

        _check_encoding(raw)

        return _new_household(
            position=position,
            fonorg=fonorg,
            numorg=organisme.get("NUMORG"),
            matricule=matricule,
            numdemrsa=numdemrsa,
            dtdemrsa=_opt_date(demande, "DTDEMRSA", "IdentificationRSA/DemandeRSA"),
            partner_type=partenaire.get("TYPEPARTE"),
            partner_id=partenaire.get("IDEPARTE"),
            transfer_in=transfer_in,
            transfer_out=transfer_out,
            family_situation=_code(family.get("SITFAM"), SITFAM, "SITFAM", family_where),
            family_situation_since=_opt_date(family, "DDSITFAM", family_where),
            persons=tuple(persons),
            addresses=tuple(addresses),
            current_address=current,
            etat_dossier=etat,
            topforcdro=_flag(etat_values, "TOPFORCDRO", etat_where),
            dtodrsa=_opt_date(ouvert, "DTODRSA", "PrestationRSA/SituationDossierRSA/DroitOuvert"),
            opening_reason=ouvert.get("MOTIODRSA"),
            right_suspensions=tuple(right_suspensions),
            payment_suspensions=tuple(payment_suspensions),
            closure_reason=_code(fin.get("MOTICLORSA"), MOTICLORSA, "MOTICLORSA", fin_where),
            closed_on=_opt_date(fin, "DTCLORSA", fin_where),
            no_fixed_abode=_flag(tronc_droit, "TOPSANSDOMFIXE", tronc_where),
            request_origin=tronc_droit.get("ORIDEMRSA"),
            request_origin_on=_opt_date(tronc_droit, "DTORIDEMRSA", tronc_where),
            benefit_details=tuple(details),
            natpf=tuple(dict.fromkeys(d.natpf for d in details)),
            events=tuple(events),
            raw_fragment=raw,
            warnings=tuple(warnings),
        )


def _build_header(
    elem: etree._Element,
    schema: Schema,
    schema_location: str | None,
    declared_encoding: str | None,
) -> FlowHeader:
    values = _children(elem)
    where = "IdentificationFlux"
    try:
        type_flux = _req(values, "TYPEFLUX", where)
        if type_flux not in ("I", "M"):
            raise _BadRecordError("unknown_code", f"{where}/TYPEFLUX: {type_flux!r} is not I or M")
        return FlowHeader(
            appli=values.get("APPLIEME"),
            version=values.get("NUMVERSIONAPPLIEME"),
            type_flux=cast(Literal["I", "M"], type_flux),
            nat_flux=values.get("NATFLUX"),
            created_on=_parse_date(_req(values, "DTCREAFLUX", where), "DTCREAFLUX", where),
            created_time=values.get("HEUCREAFLUX"),
            dtref=_parse_date(_req(values, "DTREF", where), "DTREF", where),
            schema=schema,
            schema_location=schema_location,
            declared_encoding=declared_encoding,
        )
    except _BadRecordError as exc:
        raise MalformedFileError(
            f"bad flow header: {exc.message}", code="bad_header", line=_line(elem)
        ) from None


def _schema_from_location(location: str | None) -> Schema | None:
    if location:
        for schema in SCHEMAS:
            if schema in location:
                return schema
    return None


def _schema_from_structure(household: etree._Element | None) -> Schema:
    if household is not None:
        for person in household.iterchildren("Personne"):
            for child in person:
                if child.tag in ("FonctionPersonneRSA", "CalculDroitRSAPersonne"):
                    return "vrsd0301"
                if child.tag in ("Prestations", "MontantCalculDroitRSAPersonne"):
                    return "vrsb0801"
    return "vrsb0801"


# --------------------------------------------------------------------------------------------
# Prolog check (before any parsing)
# --------------------------------------------------------------------------------------------

_PROLOG_CHUNK = 64 * 1024
_PROLOG_LIMIT = 1024 * 1024
_ENCODING_RE = re.compile(r"""encoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]*)["']""")


def _decode_prolog(data: bytes) -> str:
    """Text of the first bytes, decoded enough to find markup in any usual encoding."""
    if data.startswith((b"\xff\xfe", b"<\x00")):
        return data.decode("utf-16-le", errors="replace")
    if data.startswith((b"\xfe\xff", b"\x00<")):
        return data.decode("utf-16-be", errors="replace")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    # ASCII-compatible encodings (UTF-8, ISO-8859-x, windows-125x): markup is ASCII.
    return data.decode("latin-1")


def _refuse_declaration(text: str, start: int) -> UnsafeFileError:
    rest = text[start:].upper()
    if "<!ENTITY" in rest:
        return UnsafeFileError(
            "the file declares entities (<!ENTITY ...>): refused as a whole, entity "
            "declarations allow entity-expansion (billion laughs) and external entity (XXE) "
            "attacks",
            code="entity",
        )
    if rest.startswith("<!DOCTYPE"):
        return UnsafeFileError(
            "the file has a DOCTYPE / DTD: refused as a whole, DTDs are not accepted "
            "(entity-expansion and external entity attacks)",
            code="doctype",
        )
    return UnsafeFileError(
        "markup declaration (<!...) before the root element: refused as a whole",
        code="doctype",
    )


def _scan_prolog(text: str, complete: bool) -> tuple[bool, str | None, int | None]:
    """Walk the prolog up to the root start tag.

    Returns (root_found, declared_encoding, index of the root start tag in ``text`` or None);
    root_found is False when more bytes are needed.
    Raises UnsafeFileError on a DOCTYPE or any other markup declaration. ``complete`` tells that
    ``text`` is the whole file.
    """
    i = 1 if text.startswith("\ufeff") else 0
    n = len(text)
    encoding: str | None = None
    while True:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            return complete, encoding, None
        if not complete and n - i < len("<!DOCTYPE") and _is_markup_prefix(text[i:]):
            return False, encoding, None  # a chunk ends inside "<?", "<!--" or "<!DOCTYPE"
        if text.startswith("<?", i):
            end = text.find("?>", i + 2)
            if end < 0:
                return complete, encoding, None
            if text.startswith("<?xml", i) and text[i + 5 : i + 6] in (" ", "\t", "\r", "\n"):
                match = _ENCODING_RE.search(text, i, end)
                if match is not None:
                    encoding = match.group(1)
            i = end + 2
        elif text.startswith("<!--", i):
            end = text.find("-->", i + 4)
            if end < 0:
                return complete, encoding, None
            i = end + 3
        elif text.startswith("<!", i):
            raise _refuse_declaration(text, i)
        else:
            # The root start tag (or garbage that the XML parser will report).
            return True, encoding, i


def _is_markup_prefix(rest: str) -> bool:
    return any(word.startswith(rest) for word in ("<?", "<!--", "<!DOCTYPE"))


class _ReplayReader:
    """File-like object giving ``prefix`` then the rest of ``raw``.

    When ``buffer`` is set (by :class:`_RawFragments`), the bytes read from the file are also
    appended to it. With ``latin1_as_utf8`` (a flow declared ISO-8859-1, as CAF flows are), the
    parser is given the same text in UTF-8 with the declaration changed accordingly: libxml2
    decodes ISO-8859-1 through a generic converter about twice as slowly as it reads UTF-8, and
    Python's latin-1 → UTF-8 conversion is a C loop. Every byte is a valid ISO-8859-1 character,
    so the text (and the lines) lxml sees are exactly those of the file.
    """

    __slots__ = ("_declared", "_prefix", "_raw", "_transcode", "buffer")

    def __init__(self, prefix: bytes, raw: BinaryIO, *, latin1_as_utf8: bool = False) -> None:
        self._prefix = prefix
        self._raw = raw
        self._transcode = latin1_as_utf8
        # Where the XML declaration ends: the first piece given includes all of it.
        self._declared = prefix.find(b"?>") + 2 if latin1_as_utf8 else 0
        self.buffer: bytearray | None = None

    def read(self, size: int = -1) -> bytes:
        if self._prefix:
            if size < 0:
                data = self._prefix + self._raw.read()
                self._prefix = b""
            else:
                cut = max(size, self._declared)
                data, self._prefix = self._prefix[:cut], self._prefix[cut:]
        else:
            data = self._raw.read(size)
        if self.buffer is not None:
            self.buffer += data
        if not self._transcode:
            return data
        text = data.decode("latin-1")
        if self._declared:
            text = _declare_utf8(text)
            self._declared = 0
        return text.encode("utf-8")


_ENCODING_DECLARATION_RE = re.compile(r"""(<\?xml\b[^>]*?\bencoding\s*=\s*)(["'])[^"']*\2""")


def _declare_utf8(prolog: str) -> str:
    """The prolog with its XML declaration saying ``encoding="UTF-8"``."""
    return _ENCODING_DECLARATION_RE.sub(r"\1\2UTF-8\2", prolog, count=1)


# Declared encodings read through the latin-1 → UTF-8 conversion (ASCII is not: bytes above
# 0x7F must stay errors there).
_LATIN1_NAMES = frozenset({"iso-8859-1", "iso8859-1", "iso_8859-1", "latin-1", "latin1"})


# Declared encodings in which the markup is ASCII and a slice cut at "<" decodes alone.
_SLICEABLE_ENCODINGS = {
    "iso-8859-1": "latin-1",
    "iso8859-1": "latin-1",
    "iso_8859-1": "latin-1",
    "latin-1": "latin-1",
    "latin1": "latin-1",
    "us-ascii": "latin-1",
    "ascii": "latin-1",
    "utf-8": "utf-8",
    "utf8": "utf-8",
}
_HOUSEHOLD_START = b"<InfosFoyerRSA"
_HOUSEHOLD_END = b"</InfosFoyerRSA>"
_PREFIXED_MARKUP_RE = re.compile(rb"<[^>]*:")  # a ":" in a tag: namespace prefix
_DISCARD_AFTER = 1024 * 1024  # bytes already cut out are dropped by blocks of this size


class _RawFragments:
    """The raw XML of each household, sliced from the bytes read instead of re-serialised.

    ``etree.tostring`` of every household cost 15 to 30 % of the Python work on it, and the bytes
    go through memory anyway. The slice is taken only when it is certainly the household
    lxml has just given: an ASCII-compatible encoding, and from the root start tag to the end of
    the household nothing but elements and text (no comment, CDATA section, processing
    instruction, attribute on ``InfosFoyerRSA`` nor nested ``InfosFoyerRSA``), so that every
    ``<`` starts a tag and the first ``</InfosFoyerRSA>`` closes the household. Otherwise
    :meth:`take` gives None (the caller serialises the element) for that household, or for good
    when the position in the bytes is no longer certain; the bytes are then no longer kept.
    """

    __slots__ = ("_codec", "_position", "_reader")

    def __init__(self, reader: _ReplayReader, codec: str, root_offset: int) -> None:
        self._reader = reader
        self._codec = codec
        self._position = root_offset  # in reader.buffer: where the next household is looked for

    @classmethod
    def for_flow(
        cls, reader: _ReplayReader, prefix: bytes, declared: str | None
    ) -> _RawFragments | None:
        """Set up for a flow whose first bytes (up to the root start tag) are ``prefix``."""
        if prefix.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00", b"<\x00")):
            return None  # UTF-16 / UTF-32
        codec = "utf-8" if declared is None else _SLICEABLE_ENCODINGS.get(declared.lower())
        found, _encoding, root_index = _scan_prolog(_decode_prolog(prefix), complete=True)
        if codec is None or not found or root_index is None:
            return None
        bom = 3 if prefix.startswith(b"\xef\xbb\xbf") else 0  # removed by _decode_prolog
        return cls(reader, codec, root_index + bom)

    def take(self) -> str | None:
        """The raw XML of the household lxml has just read, or None: serialise it."""
        buffer = self._reader.buffer
        if buffer is None:
            return None
        position = self._position
        # The first end tag after the previous household closes this one, and the last start
        # tag before that end tag opens it, if only elements and text lie in between.
        end = buffer.find(_HOUSEHOLD_END, position) + len(_HOUSEHOLD_END)
        start = buffer.rfind(_HOUSEHOLD_START, position, end)
        if (
            end < len(_HOUSEHOLD_END)
            or start < 0
            or buffer[start + len(_HOUSEHOLD_START)] != 0x3E  # ">": no attribute
            or buffer.find(_HOUSEHOLD_START, position, start) >= 0  # nested, or odd end tag
            or (buffer.find(b"!", position, end) >= 0 and buffer.find(b"<!", position, end) >= 0)
            or (buffer.find(b"?", position, end) >= 0 and buffer.find(b"<?", position, end) >= 0)
        ):
            self._reader.buffer = None  # position uncertain from now on: stop keeping bytes
            return None
        data = buffer[start:end]
        if end > _DISCARD_AFTER:
            del buffer[:end]
            end = 0
        self._position = end
        return _fragment_text(data, self._codec)


def _fragment_text(data: bytes | bytearray, codec: str) -> str | None:
    """The text of a household's bytes, or None when it would not be the element's content."""
    # One-byte searches first: memchr, ten times faster than a two-byte search.
    if b"&" in data and b"&#" in data:
        return None  # character references: the text checks must see the characters
    if b"?" in data and b"<?" in data:
        return None  # a processing instruction, which the parser drops
    if b":" in data and _PREFIXED_MARKUP_RE.search(data):
        return None  # a namespace prefix, perhaps declared outside the fragment
    return data.decode(codec, "replace")


class _ScannedFragments:
    """The raw XML of each household, as the byte scanner (``scanner.py``) cut it.

    When the scanner filters the flow, the parser reads nothing but the households it kept, in
    order, each exactly as cut (no comment, CDATA, nested household nor attribute on
    ``InfosFoyerRSA``: the scanner gives up filtering otherwise); ``next_segment`` gives the
    bytes of the household the parser is reading (None once the scanner passes the rest
    through: that household is then serialised). No second copy of the file is kept.
    """

    __slots__ = ("_codec", "_next_segment")

    def __init__(self, next_segment: Callable[[], bytes | None], codec: str) -> None:
        self._next_segment = next_segment
        self._codec = codec

    def take(self) -> str | None:
        data = self._next_segment()
        return None if data is None else _fragment_text(data, self._codec)


def _check_prolog(raw: BinaryIO) -> tuple[bytes, str | None]:
    """Read the bytes up to the root start tag and refuse DTDs. Returns (bytes read, encoding)."""
    prefix = b""
    while True:
        chunk = raw.read(_PROLOG_CHUNK)
        prefix += chunk
        found, encoding, _root = _scan_prolog(_decode_prolog(prefix), complete=not chunk)
        if found or not chunk:
            return prefix, encoding
        if len(prefix) > _PROLOG_LIMIT:
            raise MalformedFileError(
                f"no root element in the first {_PROLOG_LIMIT} bytes", code="xml_syntax"
            )


# --------------------------------------------------------------------------------------------
# The flow
# --------------------------------------------------------------------------------------------

_Item = CafHousehold | CafRecordError
_TAGS = ("IdentificationFlux", "InfosFoyerRSA", "TransmissionFlux")
_SCHEMA_LOCATION_ATTR = "{http://www.w3.org/2001/XMLSchema-instance}noNamespaceSchemaLocation"
_ENCODING_ERROR_HINTS = ("encoding", "not proper utf-8", "invalid bytes")
_LIBXML_POSITION_RE = re.compile(r",\s*line \d+, column \d+\s*$")
_LIBXML_BYTES_RE = re.compile(r"\s*Bytes:.*$", re.DOTALL)
_CHUNK_SIZE = 256 * 1024


def _syntax_error(exc: etree.XMLSyntaxError, declared: str | None) -> MalformedFileError:
    line = exc.lineno or None
    column = exc.position[1] if exc.position else None
    # libxml2 appends ", line N, column M" (given separately) and may quote raw bytes after
    # "Bytes:" (a piece of a name): keep neither.
    text = _LIBXML_POSITION_RE.sub("", _LIBXML_BYTES_RE.sub("", str(exc.msg or exc))).strip()
    lowered = text.lower()
    if "unsupported encoding" in lowered:
        return MalformedFileError(
            f"the XML prolog declares an encoding the parser does not know ({declared!r})",
            code="encoding",
            line=line,
            column=column,
        )
    if any(hint in lowered for hint in _ENCODING_ERROR_HINTS):
        if declared is None:
            why = "no encoding is declared in the XML prolog, so UTF-8 is assumed"
        else:
            why = f"the XML prolog declares encoding {declared!r}"
        return MalformedFileError(
            f"bytes do not match the declared encoding: {why}, but these bytes are not valid "
            "in that encoding (CAF files are ISO-8859-1: the declaration "
            '<?xml version="1.0" encoding="ISO-8859-1"?> is probably missing or wrong); '
            f"parser said: {text}",
            code="encoding",
            line=line,
            column=column,
        )
    return MalformedFileError(f"XML syntax error: {text}", line=line, column=column)


class CafFlow:
    """A CAF flow being read. Single pass: iterate once.

    Built by :func:`iter_caf_flow`, which has already refused unsafe files and read the header.
    After a full iteration, ``finished`` is True, ``read_count`` is the number of
    ``InfosFoyerRSA`` read (households and errors), ``expected_count`` the announced number and
    ``count_mismatch`` None when they agree.
    """

    def __init__(
        self,
        source: BinaryIO | str | Path,
        next_segment: Callable[[], bytes | None] | None = None,
    ) -> None:
        if isinstance(source, str | Path):
            self._raw: BinaryIO = Path(source).open("rb")  # noqa: SIM115 - closed by close()
            self._owned = True
        else:
            self._raw = source
            self._owned = False
        self.read_count = 0
        self.expected_count: int | None = None
        self.count_mismatch: CountMismatch | None = None
        self.finished = False
        self._count_reason: Literal["missing", "invalid"] = "missing"
        try:
            prefix, self.declared_encoding = _check_prolog(self._raw)
            declared = (self.declared_encoding or "").lower()
            reader = _ReplayReader(
                prefix,
                self._raw,
                latin1_as_utf8=declared in _LATIN1_NAMES
                and prefix.startswith(b"<?xml")
                and b"?>" in prefix,
            )
            codec = _SLICEABLE_ENCODINGS.get(declared or "utf-8")
            fragments: _RawFragments | _ScannedFragments | None
            if next_segment is not None and codec is not None:
                fragments = _ScannedFragments(next_segment, codec)
            else:
                fragments = _RawFragments.for_flow(reader, prefix, self.declared_encoding)
            if isinstance(fragments, _RawFragments):
                reader.buffer = bytearray()  # kept from the start: offsets are in the file
            self._items = self._parse(reader, fragments)
            first = next(self._items)
        except BaseException:
            self.close()
            raise
        if not isinstance(first, FlowHeader):  # pragma: no cover - _parse yields the header first
            raise AssertionError("header expected first")
        self.header: FlowHeader = first

    def __iter__(self) -> Iterator[_Item]:
        # The header is always the first item of _parse, already taken by __init__.
        return cast(Iterator[_Item], self._items)

    def close(self) -> None:
        if self._owned:
            self._raw.close()

    def __enter__(self) -> CafFlow:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _parse(
        self, reader: _ReplayReader, fragments: _RawFragments | _ScannedFragments | None
    ) -> Iterator[FlowHeader | _Item]:
        context = etree.iterparse(
            reader,
            events=("end",),
            tag=_TAGS,
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            attribute_defaults=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
            remove_blank_text=True,  # fewer nodes to build; values are stripped anyway
            collect_ids=False,
            chunk_size=_CHUNK_SIZE,
        )
        header_elem_seen = False
        pending_header: etree._Element | None = None
        header_done = False
        schema_location: str | None = None
        position = 0
        try:
            for _event, elem in context:
                tag = elem.tag
                if not header_elem_seen:
                    self._check_document(elem)
                    root = elem.getroottree().getroot()
                    schema_location = root.get(_SCHEMA_LOCATION_ATTR)
                    if tag != "IdentificationFlux":
                        raise MalformedFileError(
                            f"IdentificationFlux must come first, found {tag}",
                            code="missing_header",
                            line=_line(elem),
                        )
                    header_elem_seen = True
                    schema = _schema_from_location(schema_location)
                    if schema is not None:
                        yield _build_header(elem, schema, schema_location, self.declared_encoding)
                        header_done = True
                        _release(elem)
                    else:
                        pending_header = elem  # schema from the first household
                    continue
                if tag == "InfosFoyerRSA":
                    position += 1
                    self.read_count = position
                    if not header_done and pending_header is not None:
                        schema = _schema_from_structure(elem)
                        yield _build_header(
                            pending_header, schema, schema_location, self.declared_encoding
                        )
                        header_done = True
                    raw = None if fragments is None else fragments.take()
                    yield _household_or_error(elem, position, raw)
                elif tag == "TransmissionFlux":
                    self._read_count_announced(elem)
                elif tag == "IdentificationFlux":
                    pass  # a second header is ignored
                _release(elem)
        except etree.XMLSyntaxError as exc:
            raise _syntax_error(exc, self.declared_encoding) from None
        finally:
            self.close()
        if not header_elem_seen:
            raise MalformedFileError("no IdentificationFlux (flow header)", code="missing_header")
        if not header_done and pending_header is not None:
            yield _build_header(
                pending_header,
                _schema_from_structure(None),
                schema_location,
                self.declared_encoding,
            )
        if self.expected_count is None:
            self.count_mismatch = CountMismatch(None, position, self._count_reason)
        elif self.expected_count != position:
            self.count_mismatch = CountMismatch(self.expected_count, position, "different")
        self.finished = True

    def _check_document(self, elem: etree._Element) -> None:
        """Defence in depth: the prolog check should already have refused any DTD."""
        docinfo = elem.getroottree().docinfo
        if (
            getattr(docinfo, "doctype", "")
            or docinfo.internalDTD is not None
            or docinfo.externalDTD is not None
            or getattr(docinfo, "system_url", None)
            or docinfo.public_id
        ):
            raise UnsafeFileError("the file has a DOCTYPE / DTD: refused as a whole")

    def _read_count_announced(self, elem: etree._Element) -> None:
        text = (elem.findtext("NBTOTDOSRSATRANSM") or "").strip()
        if not text:
            self._count_reason = "missing"
        elif text.isdigit():
            self.expected_count = int(text)
        else:
            self._count_reason = "invalid"


def _line(elem: etree._Element) -> int | None:
    line = getattr(elem, "sourceline", None)
    return line if isinstance(line, int) else None


def _release(elem: etree._Element) -> None:
    """Free a processed element and the siblings before it (flat memory)."""
    elem.clear()  # keep_tail=False by default: the whitespace after it goes too
    parent = elem.getparent()
    if parent is not None:
        while elem.getprevious() is not None:
            del parent[0]


def _household_or_error(elem: etree._Element, position: int, raw: str | None = None) -> _Item:
    """The household, or its record error. ``raw``: its XML if already known."""
    if raw is None:
        raw = etree.tostring(elem, encoding="unicode", with_tail=False)
    builder = _HouseholdBuilder()
    try:
        return builder.build(elem, position, raw)
    except _BadRecordError as exc:
        return CafRecordError(
            exc.code, exc.message, position=position, keys=builder.keys, raw_fragment=raw
        )


def iter_caf_flow(
    source: BinaryIO | str | Path, next_segment: Callable[[], bytes | None] | None = None
) -> CafFlow:
    """Open a CAF bénéficiaires flow (a path, or a binary file object left open by us).

    Refuses DTD / entity declarations (UnsafeFileError) and reads the header before returning
    (MalformedFileError if it is missing or bad). Iterate the result for households and record
    errors; a syntax or encoding error later in the file raises MalformedFileError after the
    complete households before it. ``next_segment``: the bytes of the household being read,
    when a byte scanner feeds the parser (see :class:`_ScannedFragments`).
    """
    return CafFlow(source, next_segment)
