"""A realistic, fictitious Métropole for demonstrations: structures, agents, CAF households,
SDD histories, orientations and référents.

Everything is drawn from ``random.Random(seed)``: the same seed gives the same people (dates
are relative to today). Three independent streams are derived from the seed (staff, people,
orientations) so that the people can be planned without a database
(:func:`plan_population`) and stay the same whatever the staff looks like.

Nothing here can reach a real person: e-mail addresses use reserved domains (``.demo``,
``example.org``), telephone numbers the ranges ARCEP reserves for fiction (``06 39 98``,
``04 65 71``), NIRs have a valid key but are drawn at random.

:func:`load_demo` flushes and never commits: ``spie demo load`` commits once.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from spie.agents.models import ROLE_LABELS, Agent, Role
from spie.audit.models import AuditAction
from spie.audit.service import record
from spie.auth.passwords import hash_password
from spie.clocks.today import PARIS, paris_today
from spie.common.nir import nir_key
from spie.db import db
from spie.demo.names import FEMALE_FIRST_NAMES, LAST_NAMES, MALE_FIRST_NAMES, STREET_NAMES
from spie.persons.models import CafRole, Household, Person, Public, Sex
from spie.persons.services import record_sdd_state, search_name_of
from spie.referent.models import ReferentAssignment
from spie.structures.models import Structure, StructureType
from spie.territories import reference as ref
from spie.territories.models import Commune, Territory
from spie.territories.services import load_reference_data

__all__ = ["DEMO_PASSWORD", "PersonPlan", "UnitPlan", "load_demo", "plan_population"]

# Printed by ``spie demo load`` for every demo account; never valid outside a demo database.
DEMO_PASSWORD = "demo-spie-2026"  # noqa: S105 - public demo password, printed on purpose

SDD_SOURCE = "demo"
CAF_NUMORG = "691"  # CAF du Rhône
BATCH_SIZE = 500  # persons per flush
NON_BRSA_SHARE = 0.08  # manual referrals (RSJ, FSE+, others), without CAF household
ORIENTED_SHARE = 0.7  # of SDD persons whose clock started long enough ago
WITH_REFERENT_SHARE = 0.87  # of oriented persons: the others wait in their structure's queue
HANDOVER_SHARE = 0.25  # of assignments in a structure a référent left: first followed by them
HISTORY_DAYS = 3650  # RSA requests over the last 10 years
REFERENT_CAPACITY = (100, 150)  # caseload_capacity bounds, drawn in steps of 5

# --------------------------------------------------------------------------------------------
# Structures and staff (data)
# --------------------------------------------------------------------------------------------

ALL_TERRITORIES = tuple(t.code for t in ref.TERRITORIES)
METROPOLE_DOMAIN = "grandlyon.demo"
DIE_NAME = "Direction de l'insertion et de l'emploi"  # also the default of ``spie create-admin``

# (Maison de la Métropole, number of référents): 12 sites covering the 10 territories.
MDM_SITES: tuple[tuple[str, int], ...] = (
    ("Maison de la Métropole Lyon 3e Moncey", 2),
    ("Maison de la Métropole Lyon 8e Mermoz", 3),
    ("Maison de la Métropole Lyon 9e La Duchère", 2),
    ("Maison de la Métropole Villeurbanne Tonkin", 3),
    ("Maison de la Métropole Vaulx-en-Velin", 3),
    ("Maison de la Métropole Bron", 2),
    ("Maison de la Métropole Vénissieux Minguettes", 3),
    ("Maison de la Métropole Oullins", 2),
    ("Maison de la Métropole Tassin-la-Demi-Lune", 2),
    ("Maison de la Métropole Écully", 2),
    ("Maison de la Métropole Neuville-sur-Saône", 2),
    ("Maison de la Métropole Rillieux-la-Pape", 2),
)


@dataclass(frozen=True, slots=True)
class StructureSpec:
    name: str
    type: StructureType
    commune_insee: str
    territories: tuple[str, ...]
    domain: str
    referents: int = 0


PARTNER_STRUCTURES: tuple[StructureSpec, ...] = (
    StructureSpec(
        "France Travail Lyon Part-Dieu",
        StructureType.FRANCE_TRAVAIL,
        "69383",
        (ref.LYON, ref.CTM_VAL_YZERON, ref.CTM_OUEST_NORD),
        "francetravail.demo",
        2,
    ),
    StructureSpec(
        "France Travail Villeurbanne",
        StructureType.FRANCE_TRAVAIL,
        "69266",
        (ref.CTM_VILLEURBANNE, ref.CTM_PLATEAU_NORD, ref.CTM_VAL_DE_SAONE),
        "francetravail.demo",
        2,
    ),
    StructureSpec(
        "France Travail Vaulx-en-Velin",
        StructureType.FRANCE_TRAVAIL,
        "69256",
        (ref.CTM_RHONE_AMONT, ref.CTM_PORTE_DES_ALPES),
        "francetravail.demo",
        2,
    ),
    StructureSpec(
        "France Travail Vénissieux",
        StructureType.FRANCE_TRAVAIL,
        "69259",
        (ref.CTM_PORTES_DU_SUD, ref.CTM_LONES_COTEAUX),
        "francetravail.demo",
        2,
    ),
    StructureSpec(
        "Mission locale de Lyon",
        StructureType.MISSION_LOCALE,
        "69387",
        (ref.LYON, ref.CTM_VAL_YZERON, ref.CTM_OUEST_NORD, ref.CTM_VAL_DE_SAONE),
        "missionlocale-lyon.demo",
        1,
    ),
    StructureSpec(
        "Mission locale de l'Est et du Sud lyonnais",
        StructureType.MISSION_LOCALE,
        "69259",
        (
            ref.CTM_VILLEURBANNE,
            ref.CTM_RHONE_AMONT,
            ref.CTM_PORTE_DES_ALPES,
            ref.CTM_PORTES_DU_SUD,
            ref.CTM_LONES_COTEAUX,
            ref.CTM_PLATEAU_NORD,
        ),
        "missionlocale-estsud.demo",
        1,
    ),
    StructureSpec(
        "MMI'e - PLIE de la Métropole de Lyon",
        StructureType.PLIE,
        "69387",
        ALL_TERRITORIES,
        "mmie.demo",
        2,
    ),
    StructureSpec(
        "Cap emploi Rhône Métropole",
        StructureType.CAP_EMPLOI,
        "69388",
        ALL_TERRITORIES,
        "capemploi.demo",
        1,
    ),
    StructureSpec(
        "Association Passerelles pour l'emploi",
        StructureType.ASSOCIATION_SIAE,
        "69388",
        (ref.LYON, ref.CTM_VILLEURBANNE),
        "passerelles.demo",
        1,
    ),
    StructureSpec(
        "Les Ateliers solidaires du Rhône (entreprise d'insertion)",
        StructureType.ASSOCIATION_SIAE,
        "69259",
        (ref.CTM_PORTES_DU_SUD, ref.CTM_PORTE_DES_ALPES, ref.CTM_LONES_COTEAUX),
        "ateliers-solidaires.demo",
        1,
    ),
    StructureSpec(
        "Chantier d'insertion Val de Saône Nature",
        StructureType.ASSOCIATION_SIAE,
        "69143",
        (ref.CTM_VAL_DE_SAONE, ref.CTM_PLATEAU_NORD, ref.CTM_OUEST_NORD, ref.CTM_RHONE_AMONT),
        "valdesaone-nature.demo",
        1,
    ),
    StructureSpec(
        "Entreprendre en Métropole - accompagnement des indépendants",
        StructureType.INDEPENDANTS,
        "69382",
        ALL_TERRITORIES,
        "entreprendre.demo",
        1,
    ),
)

DIE_SPEC = StructureSpec(DIE_NAME, StructureType.MDM, "69383", ALL_TERRITORIES, METROPOLE_DOMAIN)

# Chargés d'orientation of the DIE, by territories (Lyon has two).
ORIENTATION_TEAMS: tuple[tuple[str, ...], ...] = (
    (ref.LYON,),
    (ref.LYON, ref.CTM_VAL_YZERON),
    (ref.CTM_VILLEURBANNE,),
    (ref.CTM_RHONE_AMONT, ref.CTM_PLATEAU_NORD),
    (ref.CTM_PORTE_DES_ALPES,),
    (ref.CTM_PORTES_DU_SUD,),
    (ref.CTM_LONES_COTEAUX,),
    (ref.CTM_OUEST_NORD, ref.CTM_VAL_DE_SAONE),
)

# Territorial managers: (territories, Maison de la Métropole where they sit).
MANAGER_TEAMS: tuple[tuple[tuple[str, ...], str], ...] = (
    ((ref.LYON,), "Maison de la Métropole Lyon 3e Moncey"),
    (
        (ref.CTM_VILLEURBANNE, ref.CTM_RHONE_AMONT, ref.CTM_PLATEAU_NORD),
        "Maison de la Métropole Villeurbanne Tonkin",
    ),
    (
        (ref.CTM_PORTE_DES_ALPES, ref.CTM_PORTES_DU_SUD, ref.CTM_LONES_COTEAUX),
        "Maison de la Métropole Vénissieux Minguettes",
    ),
    (
        (ref.CTM_VAL_YZERON, ref.CTM_OUEST_NORD, ref.CTM_VAL_DE_SAONE),
        "Maison de la Métropole Tassin-la-Demi-Lune",
    ),
)

# Référents who left (active_until in the past); their people were handed over.
DEPARTED_REFERENT_SITES: tuple[str, ...] = (
    "Maison de la Métropole Lyon 8e Mermoz",
    "Maison de la Métropole Vénissieux Minguettes",
    "France Travail Villeurbanne",
)

# Where the organisme référent is chosen, by profile (weights per structure type).
_ST = StructureType
TYPE_WEIGHTS_ADULT: tuple[tuple[StructureType, int], ...] = (
    (_ST.FRANCE_TRAVAIL, 42),
    (_ST.MDM, 34),
    (_ST.PLIE, 8),
    (_ST.ASSOCIATION_SIAE, 8),
    (_ST.CAP_EMPLOI, 4),
    (_ST.INDEPENDANTS, 4),
)
TYPE_WEIGHTS_YOUNG: tuple[tuple[StructureType, int], ...] = (
    (_ST.MISSION_LOCALE, 45),
    (_ST.FRANCE_TRAVAIL, 30),
    (_ST.MDM, 20),
    (_ST.PLIE, 5),
)
TYPE_WEIGHTS_BY_PUBLIC: dict[Public, tuple[tuple[StructureType, int], ...]] = {
    Public.RSJ: ((_ST.MISSION_LOCALE, 70), (_ST.MDM, 15), (_ST.ASSOCIATION_SIAE, 15)),
    Public.FSE: ((_ST.PLIE, 60), (_ST.ASSOCIATION_SIAE, 25), (_ST.FRANCE_TRAVAIL, 15)),
    Public.OTHER: ((_ST.MDM, 50), (_ST.ASSOCIATION_SIAE, 30), (_ST.FRANCE_TRAVAIL, 20)),
}

# --------------------------------------------------------------------------------------------
# People (data)
# --------------------------------------------------------------------------------------------

# Where BRSA households live: most in Lyon, Villeurbanne, Vénissieux and Vaulx-en-Velin.
COMMUNE_WEIGHTS: dict[str, float] = {
    "69381": 2.0,
    "69382": 1.5,
    "69383": 5.0,
    "69384": 1.5,
    "69385": 2.5,
    "69386": 1.5,
    "69387": 4.5,
    "69388": 8.0,
    "69389": 6.0,
    "69266": 14.0,  # Villeurbanne
    "69259": 10.0,  # Vénissieux
    "69256": 10.0,  # Vaulx-en-Velin
    "69290": 4.0,  # Saint-Priest
    "69029": 4.0,  # Bron
    "69286": 4.0,  # Rillieux-la-Pape
    "69199": 3.0,  # Saint-Fons
    "69091": 3.0,  # Givors
    "69275": 2.5,  # Décines-Charpieu
    "69282": 2.0,  # Meyzieu
    "69149": 2.0,  # Oullins
    "69152": 0.5,  # Pierre-Bénite (merged, still in CAF files)
    "69034": 1.5,  # Caluire-et-Cuire
}
QPV_WEIGHT = 1.0
OTHER_COMMUNE_WEIGHT = 0.3

HOUSEHOLD_SIZES: tuple[tuple[int, int], ...] = ((1, 45), (2, 21), (3, 16), (4, 12), (5, 6))
# ETATDOSRSA of the household today: mostly "droit ouvert et versable".
RSA_STATES: tuple[tuple[str, int], ...] = (("2", 82), ("3", 3), ("4", 4), ("5", 8), ("6", 3))
SITFAM_SINGLE: tuple[tuple[str, int], ...] = (
    ("CEL", 55),
    ("DIV", 18),
    ("SEF", 12),
    ("ISO", 9),
    ("SEL", 3),
    ("VEU", 3),
)
SITFAM_COUPLE: tuple[tuple[str, int], ...] = (("MAR", 40), ("VIM", 45), ("PAC", 15))
NON_BRSA_PUBLICS: tuple[tuple[Public, int], ...] = (
    (Public.RSJ, 50),
    (Public.FSE, 30),
    (Public.OTHER, 20),
)
REFERRAL_SOURCES: dict[Public, tuple[str, ...]] = {
    Public.RSJ: ("Mission locale", "Service social de secteur", "Démarche spontanée"),
    Public.FSE: ("PLIE", "France Travail", "Structure d'insertion par l'activité économique"),
    Public.OTHER: ("CCAS", "Service social hospitalier", "Association de quartier"),
}
ADDRESS_COMPLEMENTS: tuple[str, ...] = (
    "Bâtiment A",
    "Bâtiment B",
    "Bâtiment C",
    "Escalier 2",
    "Résidence Les Érables",
    "Résidence Le Carré d'Or",
    "Chez M. et Mme Faure",
    "Appartement 12",
    "Appartement 45",
    "3e étage",
)
EMAIL_DOMAINS: tuple[str, ...] = ("example.org", "example.net", "example.com")

# --------------------------------------------------------------------------------------------
# Random helpers
# --------------------------------------------------------------------------------------------


def _weighted(rng: random.Random, pairs: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([value for value, _ in pairs], weights=[w for _, w in pairs])[0]


def _day_between(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    """A day in [start, end] (one draw, whatever the span)."""
    span = max((end - start).days, 0)
    return start + dt.timedelta(days=min(int(rng.random() * (span + 1)), span))


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _age_on(birth: dt.date, day: dt.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _ascii_slug(text: str) -> str:
    """``"Marie-Thérèse"`` -> ``"marie-therese"``; ``"Thi Lan"`` -> ``"thi-lan"``."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    slug = "".join(c if c.isalnum() else "-" for c in plain)
    return "-".join(part for part in slug.split("-") if part)


def _capacity(rng: random.Random) -> int:
    low, high = REFERENT_CAPACITY
    return low + 5 * rng.randint(0, (high - low) // 5)


def _fictional_mobile(rng: random.Random) -> str:
    return f"06 39 98 {rng.randint(0, 99):02d} {rng.randint(0, 99):02d}"


def _fictional_landline(rng: random.Random) -> str:
    return f"04 65 71 {rng.randint(0, 99):02d} {rng.randint(0, 99):02d}"


def _paris_datetime(day: dt.date, hour: int, minute: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=PARIS).astimezone(dt.UTC)


@functools.cache
def _demo_password_hash() -> str:
    """Argon2 is slow on purpose: hash once per process, shared by every demo account."""
    return hash_password(DEMO_PASSWORD)


@dataclass(frozen=True, slots=True)
class _Streams:
    staff: random.Random
    people: random.Random
    orientation: random.Random


def _streams(seed: int) -> _Streams:
    root = random.Random(seed)
    return _Streams(
        staff=random.Random(root.getrandbits(64)),
        people=random.Random(root.getrandbits(64)),
        orientation=random.Random(root.getrandbits(64)),
    )


# --------------------------------------------------------------------------------------------
# Planning people (pure: no database)
# --------------------------------------------------------------------------------------------

SddEvent = tuple[dt.date, str, bool]  # (observed on, ETATDOSRSA, SDD)


@dataclass(slots=True)
class PersonPlan:
    public: Public
    caf_role: CafRole | None
    sex: Sex
    civility: str
    last_name: str
    birth_name: str
    first_name: str
    other_first_names: str | None
    birth_date: dt.date
    birth_place: str | None = None
    nir: str | None = None
    france_travail_id: str | None = None
    email: str | None = None
    phone: str | None = None
    address_line: str | None = None
    address_complement: str | None = None
    commune_insee: str | None = None
    # Dated (ETATDOSRSA, SDD) observations, in date order; empty for children and non-BRSA.
    sdd_events: list[SddEvent] = field(default_factory=list)
    referral_source: str | None = None
    referred_on: dt.date | None = None  # non-BRSA: start of the orientation clock

    @property
    def bound_by_duties(self) -> bool:
        return bool(self.sdd_events) and self.sdd_events[-1][2]

    def clock_start(self) -> dt.date | None:
        """Start of the current orientation clock: entry into the current SDD run, or the
        referral date for non-BRSA; None if the person is not (or no longer) SDD."""
        if self.referred_on is not None:
            return self.referred_on
        since: dt.date | None = None
        bound = False
        for day, _state, event_bound in self.sdd_events:
            if event_bound and not bound:
                since = day
            bound = event_bound
        return since if bound else None


@dataclass(slots=True)
class CafFilePlan:
    matricule: str
    request_number: str
    requested_on: dt.date
    rsa_state: str
    family_situation: str
    last_flow_on: dt.date


@dataclass(slots=True)
class UnitPlan:
    """A CAF household with its members, or one person referred by hand (``caf`` is None)."""

    caf: CafFilePlan | None
    members: list[PersonPlan]


class _PeoplePlanner:
    def __init__(self, rng: random.Random, today: dt.date) -> None:
        self.rng = rng
        self.today = today
        self.communes = list(ref.COMMUNES)
        self.commune_weights = [
            COMMUNE_WEIGHTS.get(c.insee, QPV_WEIGHT if c.qpv else OTHER_COMMUNE_WEIGHT)
            for c in self.communes
        ]
        self.nirs: set[str] = set()
        self.matricules: set[str] = set()
        self.request_numbers: set[str] = set()
        self.ft_ids: set[str] = set()

    # identities ---------------------------------------------------------------------------

    def first_name(self, sex: Sex) -> str:
        pool = FEMALE_FIRST_NAMES if sex == Sex.FEMALE else MALE_FIRST_NAMES
        return self.rng.choice(pool)

    def other_first_names(self, sex: Sex, first: str) -> str | None:
        if self.rng.random() >= 0.3:
            return None
        other = self.first_name(sex)
        return None if other == first else other

    def commune(self) -> ref.CommuneRef:
        return self.rng.choices(self.communes, weights=self.commune_weights)[0]

    def nir(self, sex: Sex, birth: dt.date, birth_commune: ref.CommuneRef) -> str:
        """Sex, year, month, department 69, commune of birth, order number: unique."""
        prefix = f"{sex.value}{birth:%y}{birth:%m}{birth_commune.insee}"
        while True:
            candidate = f"{prefix}{self.rng.randint(1, 999):03d}"
            if candidate not in self.nirs:
                self.nirs.add(candidate)
                return candidate

    def france_travail_id(self) -> str:
        while True:
            letter = chr(ord("A") + self.rng.randrange(26))
            candidate = f"{self.rng.randrange(10**7):07d}{letter}{self.rng.randrange(1000):03d}"
            if candidate not in self.ft_ids:
                self.ft_ids.add(candidate)
                return candidate

    def person(
        self,
        public: Public,
        role: CafRole | None,
        sex: Sex,
        birth: dt.date,
        last_name: str,
        birth_name: str | None = None,
        with_nir: bool = True,
    ) -> PersonPlan:
        first = self.first_name(sex)
        adult = _age_on(birth, self.today) >= 18
        civility = "MR" if sex == Sex.MALE else ("MME" if adult else "MLE")
        plan = PersonPlan(
            public=public,
            caf_role=role,
            sex=sex,
            civility=civility,
            last_name=last_name,
            birth_name=birth_name or last_name,
            first_name=first,
            other_first_names=self.other_first_names(sex, first),
            birth_date=birth,
        )
        if with_nir:
            birth_commune = self.commune()
            plan.birth_place = birth_commune.name
            plan.nir = self.nir(sex, birth, birth_commune)
        if adult and role != CafRole.ENF:
            if self.rng.random() < 0.4:
                plan.france_travail_id = self.france_travail_id()
            if self.rng.random() < 0.45:
                number = self.rng.randint(1, 99)
                plan.email = (
                    f"{_ascii_slug(first)}.{_ascii_slug(last_name)}{number}"
                    f"@{self.rng.choice(EMAIL_DOMAINS)}"
                )
            if self.rng.random() < 0.65:
                plan.phone = _fictional_mobile(self.rng)
        return plan

    def address(self, members: list[PersonPlan]) -> None:
        commune = self.commune()
        line = f"{self.rng.randint(1, 180)} {self.rng.choice(STREET_NAMES)}"
        complement = self.rng.choice(ADDRESS_COMPLEMENTS) if self.rng.random() < 0.3 else None
        for member in members:
            member.address_line = line
            member.address_complement = complement
            member.commune_insee = commune.insee

    def adult_birth(self, on: dt.date, low: int, high: int) -> dt.date:
        """A birth date giving an age in [low, high] on ``on``, peaking in the early thirties."""
        age = round(self.rng.triangular(low, high, min(max(low, 32), high)))
        birth = _add_years(on, -age) - dt.timedelta(days=self.rng.randrange(365))
        return birth

    # households ---------------------------------------------------------------------------

    def caf_file(self, requested_on: dt.date, rsa_state: str, couple: bool) -> CafFilePlan:
        while True:
            matricule = f"{self.rng.randrange(1, 10**7):07d}00000000"
            if matricule not in self.matricules:
                self.matricules.add(matricule)
                break
        while True:
            number = f"{self.rng.randrange(1, 10**9):011d}"
            if number not in self.request_numbers:
                self.request_numbers.add(number)
                break
        return CafFilePlan(
            matricule=matricule,
            request_number=number,
            requested_on=requested_on,
            rsa_state=rsa_state,
            family_situation=_weighted(self.rng, SITFAM_COUPLE if couple else SITFAM_SINGLE),
            last_flow_on=requested_on,
        )

    def household(self, size: int) -> UnitPlan:
        rng, today = self.rng, self.today
        days_ago = 3 + int(HISTORY_DAYS * rng.random() ** 2.2)  # weighted toward recent
        requested_on = today - dt.timedelta(days=days_ago)
        rsa_state = _weighted(rng, RSA_STATES)
        if rsa_state != "2" and days_ago < 60:
            rsa_state = "2"  # too recent to be suspended or closed
        couple = size >= 2 and rng.random() < (0.3 if size == 2 else 0.55)
        children = size - (2 if couple else 1)
        years_since = days_ago // 365
        # RSA from 25, or younger with a child; nobody past 64 today.
        youngest = 19 if children else 25
        oldest = max(youngest + 1, min(60, 64 - years_since))
        dem_sex = (
            Sex.FEMALE if rng.random() < (0.7 if children and not couple else 0.5) else Sex.MALE
        )
        dem_birth = self.adult_birth(requested_on, youngest, oldest)
        dem_name = rng.choice(LAST_NAMES)
        caf = self.caf_file(requested_on, rsa_state, couple)
        members: list[PersonPlan] = []
        adults: list[PersonPlan] = []
        if couple:
            opposite = Sex.FEMALE if dem_sex == Sex.MALE else Sex.MALE
            cjt_sex = dem_sex if rng.random() < 0.03 else opposite
            cjt_age_gap = rng.randint(-8, 8)
            cjt_birth = _add_years(dem_birth, cjt_age_gap) + dt.timedelta(
                days=rng.randrange(-150, 150)
            )
            if _age_on(cjt_birth, requested_on) < 19:
                cjt_birth = _add_years(requested_on, -19) - dt.timedelta(days=rng.randrange(365))
            cjt_birth = max(cjt_birth, _add_years(today, -65) + dt.timedelta(days=30))
            cjt_name = rng.choice(LAST_NAMES)
            married = caf.family_situation == "MAR"
            dem_last, cjt_last = dem_name, cjt_name
            # A married woman usually bears her husband's name (birth name kept).
            if married and dem_sex == Sex.MALE and cjt_sex == Sex.FEMALE:
                cjt_last = dem_name
            elif married and dem_sex == Sex.FEMALE and cjt_sex == Sex.MALE:
                dem_last = cjt_name
            dem = self.person(Public.BRSA, CafRole.DEM, dem_sex, dem_birth, dem_last, dem_name)
            cjt = self.person(Public.BRSA, CafRole.CJT, cjt_sex, cjt_birth, cjt_last, cjt_name)
            adults = [dem, cjt]
            father = next((a for a in adults if a.sex == Sex.MALE), dem)
            family_name = father.last_name
        else:
            dem = self.person(Public.BRSA, CafRole.DEM, dem_sex, dem_birth, dem_name)
            adults = [dem]
            family_name = dem_name
        members.extend(adults)
        mother = next((a for a in adults if a.sex == Sex.FEMALE), dem)
        earliest = max(_add_years(mother.birth_date, 17), _add_years(today, -20))
        for _ in range(children):
            birth = _day_between(rng, earliest, today - dt.timedelta(days=10))
            sex = Sex.FEMALE if rng.random() < 0.49 else Sex.MALE
            members.append(self.person(Public.BRSA, CafRole.ENF, sex, birth, family_name))
        self.address(members)
        self.sdd_history(caf, adults)
        return UnitPlan(caf=caf, members=members)

    def sdd_history(self, caf: CafFilePlan, adults: list[PersonPlan]) -> None:
        """Entry at the request date, sometimes out of SDD (work) and back, then the
        household's current state (suspension, closure) if the right is not "2"."""
        rng, today = self.rng, self.today
        start = caf.requested_on
        final_on: dt.date | None = None
        if caf.rsa_state != "2":
            final_on = _day_between(rng, start + dt.timedelta(days=30), today)
        horizon = final_on or today + dt.timedelta(days=1)
        last_flow = start
        for adult in adults:
            bound = rng.random() < (0.9 if adult.caf_role == CafRole.DEM else 0.8)
            events: list[SddEvent] = [(start, "2", bound)]
            toggles = _weighted(rng, ((0, 70), (1, 10), (2, 15), (3, 2), (4, 3)))
            span = (horizon - start).days - 1
            if toggles and span > toggles + 1:
                offsets = sorted(rng.sample(range(1, span), toggles))
                for offset in offsets:
                    bound = not bound
                    events.append((start + dt.timedelta(days=offset), "2", bound))
            if final_on is not None:
                closed = caf.rsa_state in {"5", "6"}
                events.append((final_on, caf.rsa_state, False if closed else bound))
            adult.sdd_events = events
            last_flow = max(last_flow, events[-1][0])
        caf.last_flow_on = last_flow

    def referral(self) -> UnitPlan:
        rng, today = self.rng, self.today
        public = _weighted(rng, NON_BRSA_PUBLICS)
        referred_on = today - dt.timedelta(days=2 + int(730 * rng.random() ** 1.5))
        low, high = (18, 24) if public == Public.RSJ else (20, 60)
        birth = self.adult_birth(referred_on, low, high)
        if public == Public.RSJ and _age_on(birth, referred_on) > 24:
            birth = _add_years(referred_on, -24) + dt.timedelta(days=rng.randrange(1, 300))
        sex = Sex.FEMALE if rng.random() < 0.5 else Sex.MALE
        person = self.person(
            public, None, sex, birth, rng.choice(LAST_NAMES), with_nir=rng.random() < 0.75
        )
        person.referred_on = referred_on
        person.referral_source = rng.choice(REFERRAL_SOURCES[public])
        self.address([person])
        return UnitPlan(caf=None, members=[person])


def _plan_with(rng: random.Random, persons: int, today: dt.date) -> list[UnitPlan]:
    planner = _PeoplePlanner(rng, today)
    referrals = round(persons * NON_BRSA_SHARE)
    remaining = persons - referrals
    units: list[UnitPlan] = []
    while remaining > 0:
        size = min(_weighted(rng, HOUSEHOLD_SIZES), remaining)
        units.append(planner.household(size))
        remaining -= size
    units.extend(planner.referral() for _ in range(referrals))
    rng.shuffle(units)
    return units


def plan_population(persons: int, seed: int, today: dt.date | None = None) -> list[UnitPlan]:
    """The households and referred persons :func:`load_demo` creates, without a database.

    Exactly ``persons`` people; deterministic for a seed and a day.
    """
    return _plan_with(_streams(seed).people, persons, today or paris_today())


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _ReferentSlot:
    agent: Agent
    capacity: int
    active_from: dt.date
    active_until: dt.date | None
    load: int = 0


@dataclass(slots=True)
class _StructureSlot:
    structure: Structure
    spec: StructureSpec
    referents: list[_ReferentSlot] = field(default_factory=list)
    departed: list[_ReferentSlot] = field(default_factory=list)


class _DemoLoader:
    def __init__(self, seed: int, today: dt.date) -> None:
        self.streams = _streams(seed)
        self.today = today
        self.territories = {t.code: t for t in db.session.scalars(select(Territory))}
        self.territory_code_by_id = {t.id: code for code, t in self.territories.items()}
        self.communes = {c.insee_code: c for c in db.session.scalars(select(Commune))}
        self.emails = set(db.session.scalars(select(Agent.email)))
        self.password_hash = _demo_password_hash()
        self.slots: dict[str, _StructureSlot] = {}
        self.agents: list[Agent] = []
        self.logins: dict[str, Agent] = {}
        self.counts: dict[str, int] = {"households": 0, "persons": 0, "assignments": 0}

    # structures -----------------------------------------------------------------------

    def structures(self) -> None:
        rng = self.streams.staff
        maisons = {m.name: m for m in ref.MAISONS_DE_LA_METROPOLE}
        specs: list[StructureSpec] = [DIE_SPEC]
        territory_of = {c.insee: c.territory_code for c in ref.COMMUNES}
        for name, referents in MDM_SITES:
            insee = maisons[name].commune_insee
            specs.append(
                StructureSpec(
                    name,
                    StructureType.MDM,
                    insee,
                    (territory_of[insee],),
                    METROPOLE_DOMAIN,
                    referents,
                )
            )
        specs.extend(PARTNER_STRUCTURES)
        existing = {
            s.name: s
            for s in db.session.scalars(
                select(Structure).where(Structure.name.in_([s.name for s in specs]))
            )
        }
        for spec in specs:
            structure = existing.get(spec.name) or Structure(name=spec.name)
            structure.type = spec.type
            structure.commune_insee = spec.commune_insee
            structure.address = f"{rng.randint(1, 120)} {rng.choice(STREET_NAMES)}"
            structure.email = f"{self._mailbox(spec, specs)}@{spec.domain}"
            structure.phone = _fictional_landline(rng)
            structure.territories = [self.territories[code] for code in spec.territories]
            structure.active = True
            db.session.add(structure)
            self.slots[spec.name] = _StructureSlot(structure, spec)
        db.session.flush()

    @staticmethod
    def _mailbox(spec: StructureSpec, specs: Sequence[StructureSpec]) -> str:
        if spec.name == DIE_NAME:
            return "die"
        if spec.type == StructureType.MDM:
            return "mdm-" + _ascii_slug(spec.name.removeprefix("Maison de la Métropole "))
        if sum(1 for other in specs if other.domain == spec.domain) > 1:
            return _ascii_slug(spec.name)
        return "contact"

    # agents -----------------------------------------------------------------------------

    def _agent(
        self,
        slot: _StructureSlot,
        role: Role,
        territories: Sequence[str] = (),
        capacity: int = 0,
        left: bool = False,
    ) -> Agent:
        rng = self.streams.staff
        sex = Sex.FEMALE if rng.random() < 0.62 else Sex.MALE
        first = rng.choice(FEMALE_FIRST_NAMES if sex == Sex.FEMALE else MALE_FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        local = f"{_ascii_slug(first)}.{_ascii_slug(last)}"
        email, number = f"{local}@{slot.spec.domain}", 1
        while email in self.emails:
            number += 1
            email = f"{local}{number}@{slot.spec.domain}"
        self.emails.add(email)
        if left:
            active_from = self.today - dt.timedelta(days=rng.randint(2000, 3000))
            active_until: dt.date | None = self.today - dt.timedelta(days=rng.randint(30, 400))
        else:
            # Most staff have been there for years; a few arrived in the last months.
            active_from = self.today - dt.timedelta(days=60 + int(3200 * rng.random() ** 0.7))
            active_until = None
        agent = Agent(
            email=email,
            first_name=first,
            last_name=last,
            structure=slot.structure,
            password_hash=self.password_hash,
            caseload_capacity=capacity,
            active_from=active_from,
            active_until=active_until,
        )
        agent.set_roles({role})
        agent.territories = [self.territories[code] for code in territories]
        self.agents.append(agent)
        if role == Role.REFERENT:
            referent = _ReferentSlot(agent, capacity, active_from, active_until)
            (slot.departed if left else slot.referents).append(referent)
        return agent

    def staff(self) -> None:
        rng = self.streams.staff
        die = self.slots[DIE_NAME]
        self.logins["admin"] = self._agent(die, Role.ADMIN)
        self._agent(die, Role.ADMIN)
        self.logins["die_manager"] = self._agent(die, Role.MANAGER, ALL_TERRITORIES)
        for territories, site in MANAGER_TEAMS:
            manager = self._agent(self.slots[site], Role.MANAGER, territories)
            self.logins.setdefault("territorial_manager", manager)
        for territories in ORIENTATION_TEAMS:
            charge = self._agent(die, Role.CHARGE_ORIENTATION, territories)
            self.logins.setdefault("charge_orientation", charge)
        for slot in self.slots.values():
            for _ in range(slot.spec.referents):
                self._agent(slot, Role.REFERENT, capacity=_capacity(rng))
        for site in DEPARTED_REFERENT_SITES:
            self._agent(self.slots[site], Role.REFERENT, capacity=_capacity(rng), left=True)
        for slot in self.slots.values():
            slot.structure.capacity = sum(r.capacity for r in slot.referents)
        db.session.add_all(self.agents)
        db.session.flush()

    # people -----------------------------------------------------------------------------

    def _structure_for(self, plan: PersonPlan, territory_code: str, on: dt.date) -> _StructureSlot:
        rng = self.streams.orientation
        if plan.public != Public.BRSA:
            weights = TYPE_WEIGHTS_BY_PUBLIC[plan.public]
        elif _age_on(plan.birth_date, on) < 26:
            weights = TYPE_WEIGHTS_YOUNG
        else:
            weights = TYPE_WEIGHTS_ADULT
        wanted = _weighted(rng, weights)
        candidates = self._covering(territory_code, wanted) or self._covering(
            territory_code, StructureType.MDM
        )
        return rng.choice(candidates)

    def _covering(self, territory_code: str, type_: StructureType) -> list[_StructureSlot]:
        return [
            slot
            for slot in self.slots.values()
            if slot.spec.type == type_
            and slot.referents
            and territory_code in slot.spec.territories
        ]

    def _orient(self, person: Person, plan: PersonPlan) -> list[ReferentAssignment]:
        """Organisme référent and référent(s) for an oriented person; [] if still to orient."""
        rng = self.streams.orientation
        clock_start = plan.clock_start()
        if clock_start is None or person.territory_id is None:
            return []
        oriented_on = clock_start + dt.timedelta(days=7 + int(110 * rng.random() ** 1.6))
        if oriented_on >= self.today or rng.random() >= ORIENTED_SHARE:
            return []
        territory_code = self.territory_code_by_id[person.territory_id]
        slot = self._structure_for(plan, territory_code, oriented_on)
        person.current_structure = slot.structure
        starts_on = oriented_on + dt.timedelta(days=rng.randint(3, 30))
        if starts_on > self.today or rng.random() >= WITH_REFERENT_SHARE:
            return []  # waits in the structure's queue
        assignments: list[ReferentAssignment] = []
        started_at = _paris_datetime(starts_on, rng.randint(8, 16), rng.choice((0, 15, 30, 45)))
        departed = [
            (d, d.active_until)
            for d in slot.departed
            if d.active_until is not None and starts_on < d.active_until
        ]
        if departed and rng.random() < HANDOVER_SHARE:
            previous, handover_on = rng.choice(departed)
            successor = self._referent(slot, handover_on, strict=True)
            if successor is not None:
                begin = max(starts_on, previous.active_from)
                handover_at = _paris_datetime(handover_on, 17, 0)
                first_at = min(
                    _paris_datetime(begin, started_at.astimezone(PARIS).hour, 0), handover_at
                )
                assignments.append(
                    ReferentAssignment(
                        person=person,
                        agent=previous.agent,
                        structure=slot.structure,
                        started_at=first_at,
                        ended_at=handover_at,
                        reason="Désignation après orientation",
                        end_reason="Départ du référent",
                        handover_note="Passation faite en entretien tripartite.",
                    )
                )
                assignments.append(
                    ReferentAssignment(
                        person=person,
                        agent=successor.agent,
                        structure=slot.structure,
                        started_at=handover_at,
                        reason="Reprise du suivi après le départ du référent",
                    )
                )
                successor.load += 1
                return assignments
        referent = self._referent(slot, starts_on)
        if referent is None:
            return []
        begin = max(starts_on, referent.active_from)
        if begin != starts_on:
            started_at = _paris_datetime(begin, 9, 0)
        referent.load += 1
        return [
            ReferentAssignment(
                person=person,
                agent=referent.agent,
                structure=slot.structure,
                started_at=started_at,
                reason="Désignation après orientation",
            )
        ]

    def _referent(
        self, slot: _StructureSlot, on: dt.date, strict: bool = False
    ) -> _ReferentSlot | None:
        """A référent of the structure with room, preferably (``strict``: only) one already
        there on ``on``."""
        with_room = [r for r in slot.referents if r.load < r.capacity]
        present = [r for r in with_room if r.active_from <= on]
        candidates = present if strict else present or with_room
        return self.streams.orientation.choice(candidates) if candidates else None

    def _person(self, plan: PersonPlan, household: Household | None) -> Person:
        commune = self.communes[plan.commune_insee] if plan.commune_insee else None
        first_event = plan.sdd_events[0] if plan.sdd_events else None
        return Person(
            public=plan.public,
            civility=plan.civility,
            last_name=plan.last_name,
            birth_name=plan.birth_name,
            first_name=plan.first_name,
            other_first_names=plan.other_first_names,
            search_name=search_name_of(plan.last_name, plan.first_name),
            birth_date=plan.birth_date,
            birth_place=plan.birth_place,
            sex=plan.sex,
            nir=plan.nir,
            nir_key=nir_key(plan.nir) if plan.nir else None,
            nir_verified=plan.nir is not None and household is not None,
            household=household,
            caf_role=plan.caf_role,
            france_travail_id=plan.france_travail_id,
            email=plan.email,
            phone=plan.phone,
            address_line=plan.address_line,
            address_complement=plan.address_complement,
            postal_code=commune.postal_code if commune else None,
            commune_insee=commune.insee_code if commune else None,
            territory_id=commune.territory_id if commune else None,
            # record_sdd_state sets it along the history; start where the history starts.
            bound_by_duties=first_event[2] if first_event else False,
            referral_source=plan.referral_source,
        )

    def people(self, units: list[UnitPlan]) -> None:
        batch: list[tuple[Person, PersonPlan]] = []
        pending: list[Any] = []
        for unit in units:
            household = None
            if unit.caf is not None:
                household = Household(
                    caf_numorg=CAF_NUMORG,
                    caf_matricule=unit.caf.matricule,
                    rsa_request_number=unit.caf.request_number,
                    rsa_requested_on=unit.caf.requested_on,
                    rsa_state=unit.caf.rsa_state,
                    family_situation=unit.caf.family_situation,
                    last_flow_on=unit.caf.last_flow_on,
                )
                pending.append(household)
                self.counts["households"] += 1
            for plan in unit.members:
                person = self._person(plan, household)
                pending.append(person)
                batch.append((person, plan))
            if len(batch) >= BATCH_SIZE:
                self._flush_batch(batch, pending)
                batch, pending = [], []
        if batch or pending:
            self._flush_batch(batch, pending)

    def _flush_batch(self, batch: list[tuple[Person, PersonPlan]], pending: list[Any]) -> None:
        assignments: list[ReferentAssignment] = []
        for person, plan in batch:
            assignments.extend(self._orient(person, plan))
        db.session.add_all(pending)
        db.session.add_all(assignments)
        db.session.flush()
        self.counts["persons"] += len(batch)
        self.counts["assignments"] += len(assignments)
        for person, plan in batch:
            for on, rsa_state, bound in plan.sdd_events:
                record_sdd_state(person, rsa_state, bound, on, source=SDD_SOURCE)

    # summary ----------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        referents = [r for slot in self.slots.values() for r in slot.referents if r.load > 0]
        busiest = max(referents, key=lambda r: r.load) if referents else None
        logins = [
            (ROLE_LABELS[Role.ADMIN], self.logins["admin"].email),
            ("Manager DIE", self.logins["die_manager"].email),
            ("Manager territorial", self.logins["territorial_manager"].email),
            (ROLE_LABELS[Role.CHARGE_ORIENTATION], self.logins["charge_orientation"].email),
        ]
        if busiest is not None:
            logins.append((ROLE_LABELS[Role.REFERENT], busiest.agent.email))
        sdd_persons = db.session.scalar(
            select(func.count()).select_from(Person).where(Person.bound_by_duties.is_(True))
        )
        counts = {
            "territories": len(self.territories),
            "communes": len(self.communes),
            # Followers plus the offer providers the catalogue seed adds.
            "structures": int(db.session.scalar(select(func.count(Structure.id))) or 0),
            "agents": len(self.agents),
            "households": self.counts["households"],
            "persons": self.counts["persons"],
            "sdd_persons": int(sdd_persons or 0),
            "assignments": self.counts["assignments"],
        }
        return {"counts": counts, "logins": logins}


def load_demo(persons: int = 3000, seed: int = 42) -> dict[str, Any]:
    """Fill an empty database with a fictitious Métropole; flushes, the caller commits.

    Returns ``{"counts": {...}, "logins": [(role label, email), ...]}``; every login uses
    :data:`DEMO_PASSWORD`. Raises RuntimeError if the database already holds persons.
    """
    if persons < 0:
        raise ValueError("persons must be positive or zero")
    if db.session.scalar(select(Person.id).limit(1)) is not None:
        raise RuntimeError(
            "La base contient déjà des personnes : les données de démonstration ne se chargent "
            "que dans une base vide."
        )
    load_reference_data()
    today = paris_today()
    loader = _DemoLoader(seed, today)
    loader.structures()
    loader.staff()
    loader.people(_plan_with(loader.streams.people, persons, today))
    orientation_counts = _orientation_history(random.Random(seed + 7), today)
    summary = loader.summary()
    summary["counts"].update(orientation_counts)
    record(
        AuditAction.CREATE,
        "demo",
        reason="demo_load",
        details={"seed": seed, "counts": summary["counts"]},
    )
    db.session.flush()
    return summary


# Share of first orientations decided after a RIO in the demo (the Métropole's target is 60 %).
DEMO_RIO_SHARE = 0.55


def _orientation_history(rng: random.Random, today: dt.date) -> dict[str, int]:
    """Orientation cases for every SDD person, through the real services.

    People already handed to a structure get a notified first decision dated before their
    référent's start; the others keep an open case whose clock runs from their SDD entry, so
    the work queues and the managers' indicators have something to show.
    """
    from spie.clocks.services import seed_delay_policies
    from spie.orientation.models import (
        CaseStatus,
        ClockStartBasis,
        CloseReason,
        OrientationDecision,
        Parcours,
    )
    from spie.orientation.referentiel_admin import seed_referentiel
    from spie.orientation.services import open_case
    from spie.parcours.seeds import seed_all
    from spie.parcours.services import open_parcours_for_decision
    from spie.persons.models import SddPeriod

    seed_delay_policies()
    seed_referentiel()
    first_assignment = dict(
        db.session.execute(
            select(ReferentAssignment.person_id, func.min(ReferentAssignment.started_at)).group_by(
                ReferentAssignment.person_id
            )
        ).all()
    )
    structure_types = dict(db.session.execute(select(Structure.id, Structure.type)).all())
    rows = db.session.execute(
        select(Person, SddPeriod.started_on)
        .join(SddPeriod, SddPeriod.person_id == Person.id)
        .where(SddPeriod.ended_on.is_(None), SddPeriod.bound_by_duties.is_(True))
        .order_by(Person.id)
    ).all()
    parcours_of = {
        StructureType.FRANCE_TRAVAIL: Parcours.EMPLOI,
        StructureType.MISSION_LOCALE: Parcours.EMPLOI,
        StructureType.INDEPENDANTS: Parcours.EMPLOI,
        StructureType.CAP_EMPLOI: Parcours.EMPLOI,
        StructureType.PLIE: Parcours.SOCIO_PROFESSIONNEL,
        StructureType.ASSOCIATION_SIAE: Parcours.SOCIO_PROFESSIONNEL,
        StructureType.MDM: Parcours.SOCIAL,
    }
    counts = {"orientation_cases": 0, "orientation_decisions": 0}
    decisions: list[OrientationDecision] = []
    for person, started_on in rows:
        case = open_case(person, started_on, ClockStartBasis.FLOW_ENTRY)
        counts["orientation_cases"] += 1
        if person.current_structure_id is None:
            continue
        latest = today - dt.timedelta(days=1)
        assigned = first_assignment.get(person.id)
        if assigned is not None:
            latest = min(latest, assigned.astimezone(PARIS).date() - dt.timedelta(days=1))
        if latest <= started_on:
            continue
        decided_on = min(started_on + dt.timedelta(days=5 + int(100 * rng.random() ** 1.5)), latest)
        notified_on = min(decided_on + dt.timedelta(days=rng.randint(0, 4)), latest)
        via_rio = rng.random() < DEMO_RIO_SHARE
        decision = OrientationDecision(
            case_id=case.id,
            person_id=person.id,
            rank=1,
            decided_on=decided_on,
            parcours=parcours_of[structure_types[person.current_structure_id]],
            structure_id=person.current_structure_id,
            follows_proposal=True,
            via_rio=via_rio,
            direct=not via_rio,
            notified_on=notified_on,
            notification_channel="courrier",
        )
        db.session.add(decision)
        db.session.flush()
        decisions.append(decision)
        case.status = CaseStatus.NOTIFIEE
        case.decided_on, case.notified_on = decided_on, notified_on
        case.closed_on, case.close_reason = notified_on, CloseReason.ORIENTED
        counts["orientation_decisions"] += 1
    db.session.flush()
    # The pathway each decision opens (entry and contract clocks, référent-gap clock), through
    # the same service the decision hook uses, with the offer catalogue to pick steps from.
    seed_all()
    for decision in decisions:
        open_parcours_for_decision(decision)
    counts["pathways"] = len(decisions)
    return counts
