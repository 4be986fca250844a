"""Small builders of CAF « bénéficiaires » XML flows, for tests.

Every leaf value can be overridden; ``None`` leaves the tag out. Both schema shapes are produced:
``vrsb0801`` (``Prestations``, ``MontantCalculDroitRSAPersonne``) and ``vrsd0301``
(``FonctionPersonneRSA``, ``CalculDroitRSAPersonne`` with entry flag and SDD dates).

    flow = flow_bytes([household(persons=[person(), person(role="ENF", sdd=False)])])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from xml.sax.saxutils import escape

SCHEMAS = ("vrsb0801", "vrsd0301")

# Valid NIRs (13 characters, keys computed by the parser), birth dates consistent.
NIR_DEM = "1800169123045"
NIR_CJT = "2820369123046"
NIR_ENF = "2150669123047"


def leaf(tag: str, value: str | None) -> str:
    """``<TAG>value</TAG>``, or nothing when value is None."""
    if value is None:
        return ""
    return f"<{tag}>{escape(value)}</{tag}>\n"


def block(tag: str, *parts: str) -> str:
    return f"<{tag}>\n{''.join(parts)}</{tag}>\n"


def flag(value: bool | None) -> str | None:
    return None if value is None else ("1" if value else "0")


@dataclass
class Person:
    nom: str | None = "DUPONT"
    prenom: str | None = "JEAN"
    dtnai: str | None = "1980-01-15"
    nir: str | None = NIR_DEM
    role: str | None = "DEM"
    pfa_role: str | None = None
    qual: str | None = "MR"
    sexe: str | None = "1"
    nomnai: str | None = None
    prenom2: str | None = None
    typedtnai: str | None = "N"
    sdd: bool | None = True
    entering_sdd: bool | None = False  # vrsd0301 only
    sdd_start: str | None = None  # vrsd0301 only
    sdd_end: str | None = None  # vrsd0301 only
    idassedic: str | None = None
    activities: Sequence[tuple[str, str, str]] = ()  # (REG, ACT, DDACT)
    extra: str = ""  # raw XML inserted at the end of the Personne (unknown elements...)

    def xml(self, schema: str) -> str:
        ident = block(
            "Identification",
            leaf("QUAL", self.qual),
            leaf("NOM", self.nom),
            leaf("NOMNAI", self.nomnai if self.nomnai is not None else self.nom),
            leaf("PRENOM", self.prenom),
            leaf("PRENOM2", self.prenom2),
            leaf("DTNAI", self.dtnai),
            leaf("TYPEDTNAI", self.typedtnai),
            leaf("NIR", self.nir),
            leaf("TOPVALIEC", "1"),
            leaf("SEXE", self.sexe),
        )
        parts = [ident]
        if schema == "vrsb0801":
            if self.pfa_role is not None:
                parts.append(
                    block(
                        "Prestations",
                        leaf("NATPREST", "PFA"),
                        leaf("ROLEPERS", self.pfa_role),
                        leaf("TOPCHAPERS", "0"),
                    )
                )
            if self.role is not None:
                parts.append(
                    block(
                        "Prestations",
                        leaf("NATPREST", "RSA"),
                        leaf("ROLEPERS", self.role),
                        leaf("TOPCHAPERS", "1" if self.role == "DEM" else "0"),
                    )
                )
        else:
            if self.role is not None:
                parts.append(
                    block(
                        "FonctionPersonneRSA",
                        leaf("ROLEPERS", self.role),
                        leaf("TOPCHAPERS", "1" if self.role == "DEM" else "0"),
                    )
                )
            if self.pfa_role is not None:
                parts.append(
                    block(
                        "FonctionPersonnePFA",
                        leaf("ROLEPERS", self.pfa_role),
                        leaf("TOPCHAPERS", "0"),
                    )
                )
        if self.idassedic is not None:
            parts.append(block("DossierPoleEmploi", leaf("IDASSEDIC", self.idassedic)))
        if schema == "vrsb0801":
            parts.append(
                block("MontantCalculDroitRSAPersonne", leaf("TOPPERSDRODEVORSA", flag(self.sdd)))
            )
        else:
            parts.append(
                block(
                    "CalculDroitRSAPersonne",
                    leaf("TOPPERSDRODEVORSA", flag(self.sdd)),
                    leaf("TOPPERSENTDRODEVORSA", flag(self.entering_sdd)),
                    leaf("DDSOUDRODEV", self.sdd_start),
                    leaf("DFSOUDRODEV", self.sdd_end),
                )
            )
        for reg, act, ddact in self.activities:
            parts.append(
                block("Activite", leaf("REG", reg), leaf("ACT", act), leaf("DDACT", ddact))
            )
        parts.append(self.extra)
        return block("Personne", *parts)


person = Person


@dataclass
class Address:
    rank: str | None = "01"
    dtemm: str | None = "2020-05-01"
    numvoie: str | None = "12"
    nomvoie: str | None = "RUE GARIBALDI"  # ASCII: encoding tests choose where accents go
    numcom: str | None = "69381"
    codepos: str | None = "69001"
    nomcom: str | None = "LYON 1ER"

    def xml(self) -> str:
        return block(
            "Adresse",
            block(
                "TroncCommunAdresse",
                leaf("RGADR", self.rank),
                leaf("DTEMM", self.dtemm),
                leaf("PAYS", "FRA"),
                leaf("TYPEADR", "D"),
                leaf("ETATADR", "CO"),
            ),
            block(
                "AdresseDetailleeFrance",
                "<COMPLIDEADR></COMPLIDEADR>\n<COMPLADR></COMPLADR>\n",
                leaf("NUMVOIE", self.numvoie),
                "<LIBTYPEVOIE></LIBTYPEVOIE>\n",
                leaf("NOMVOIE", self.nomvoie),
                leaf("NUMCOM", self.numcom),
                leaf("CODEPOS", self.codepos),
                leaf("NOMCOM", self.nomcom),
            ),
        )


@dataclass
class Household:
    matricule: str | None = "123456700000000"
    numdemrsa: str | None = "00000000001"
    dtdemrsa: str | None = "2024-10-01"
    fonorg: str | None = "CAF"
    numorg: str | None = "691"
    typeparte: str | None = "CG  "
    persons: Sequence[Person] = field(default_factory=lambda: [Person()])
    sitfam: str | None = "CEL"
    ddsitfam: str | None = "2019-09-30"
    addresses: Sequence[Address] = field(default_factory=lambda: [Address()])
    etat: str | None = "2"
    topforcdro: str | None = None
    dtodrsa: str | None = "2024-10-01"
    moticlorsa: str | None = None
    dtclorsa: str | None = None
    suspension: tuple[str, str] | None = None  # (MOTISUSDRORSA, DDSUSDRORSA)
    natpf: Sequence[str] = ("RSD",)
    events: Sequence[tuple[str, Sequence[str]]] = ()  # (DTLIQ, [MOTITRANSFLUX, ...])
    cedant: tuple[str, str, str, str] | None = None  # FONORG, NUMORG, MATRICULE, DDARRMUT
    prenant: tuple[str, str, str] | None = None  # FONORG, NUMORG, DDDEPAMUT
    extra: str = ""  # raw XML inserted at the end of the InfosFoyerRSA

    def xml(self, schema: str = "vrsb0801") -> str:
        ident_parts = [
            block(
                "Organisme",
                leaf("FONORG", self.fonorg),
                leaf("NUMORG", self.numorg),
                leaf("MATRICULE", self.matricule),
            ),
            block("Partenaire", leaf("TYPEPARTE", self.typeparte), leaf("IDEPARTE", "069")),
            block("DemandeRSA", leaf("DTDEMRSA", self.dtdemrsa), leaf("NUMDEMRSA", self.numdemrsa)),
        ]
        if self.cedant is not None:
            fonorg, numorg, matricule, arrived = self.cedant
            ident_parts.append(
                block(
                    "OrganismeCedant",
                    leaf("FONORGCEDMUT", fonorg),
                    leaf("NUMORGCEDMUT", numorg),
                    leaf("MATRICULEORGCEDMUT", matricule),
                    leaf("DDARRMUT", arrived),
                )
            )
        if self.prenant is not None:
            fonorg, numorg, departed = self.prenant
            ident_parts.append(
                block(
                    "OrganismePrenant",
                    leaf("FONORGPRENMUT", fonorg),
                    leaf("NUMORGPRENMUT", numorg),
                    leaf("DDDEPAMUT", departed),
                )
            )
        situation = [
            block(
                "EtatDossierRSA", leaf("ETATDOSRSA", self.etat), leaf("TOPFORCDRO", self.topforcdro)
            )
        ]
        if self.dtodrsa is not None:
            situation.append(block("DroitOuvert", leaf("DTODRSA", self.dtodrsa)))
        if self.suspension is not None:
            situation.append(
                block(
                    "SuspensionDroit",
                    leaf("MOTISUSDRORSA", self.suspension[0]),
                    leaf("DDSUSDRORSA", self.suspension[1]),
                )
            )
        if self.moticlorsa is not None or self.dtclorsa is not None:
            situation.append(
                block(
                    "FinDroit", leaf("MOTICLORSA", self.moticlorsa), leaf("DTCLORSA", self.dtclorsa)
                )
            )
        details = [
            block(
                "DetailCalculDroitRSA",
                leaf("NATPF", natpf),
                leaf("SOUSNATPF", natpf + "N2"),
                leaf("DDNATDRO", self.dtodrsa),
            )
            for natpf in self.natpf
        ]
        events = [
            block(
                "Evenement",
                block("SessionEvenement", leaf("DTLIQ", dtliq), leaf("HEULIQ", "01:02:03")),
                block("ListeMotifsEvenement", *(leaf("MOTITRANSFLUX", m) for m in motifs)),
            )
            for dtliq, motifs in self.events
        ]
        return block(
            "InfosFoyerRSA",
            block("IdentificationRSA", *ident_parts),
            *(p.xml(schema) for p in self.persons),
            block(
                "DonneesAdministratives",
                block(
                    "SituationFamille", leaf("SITFAM", self.sitfam), leaf("DDSITFAM", self.ddsitfam)
                ),
                *(a.xml() for a in self.addresses),
            ),
            block(
                "PrestationRSA",
                block("SituationDossierRSA", *situation),
                block(
                    "DetailDroitRSA",
                    block(
                        "TroncCommunDroitRSA",
                        leaf("TOPSANSDOMFIXE", "0"),
                        leaf("ORIDEMRSA", "DEM"),
                    ),
                    *details,
                ),
            ),
            *events,
            self.extra,
        )


household = Household


def numbered_households(count: int, **overrides: Any) -> list[Household]:
    """``count`` households with distinct matricules / NUMDEMRSA."""
    return [
        replace(Household(), matricule=f"{i:07d}00000000", numdemrsa=f"{i:011d}", **overrides)
        for i in range(1, count + 1)
    ]


def flow_text(
    households: Iterable[Household | str],
    *,
    schema: str = "vrsb0801",
    typeflux: str = "I",
    dtref: str = "2026-11-16",
    count: int | str | None = "auto",
    encoding: str | None = "ISO-8859-1",
    schema_location: bool = True,
    prolog: str = "",
) -> str:
    """The whole flow as text. ``count``: "auto" (right number), an int, or None (no
    TransmissionFlux). ``encoding`` None: no XML declaration. ``prolog``: inserted before root."""
    items = [h if isinstance(h, str) else h.xml(schema) for h in households]
    declaration = "" if encoding is None else f'<?xml version="1.0" encoding="{encoding}"?>\n'
    location = (
        f' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        f' xsi:noNamespaceSchemaLocation="{schema}.xsd"'
        if schema_location
        else ""
    )
    header = block(
        "IdentificationFlux",
        leaf("APPLIEME", "CRI"),
        leaf("NUMVERSIONAPPLIEME", "6200"),
        leaf("TYPEFLUX", typeflux),
        leaf("NATFLUX", "D"),
        leaf("DTCREAFLUX", "2026-11-17"),
        leaf("HEUCREAFLUX", "02:14:07.0000"),
        leaf("DTREF", dtref),
    )
    if count == "auto":
        count = len(items)
    trailer = (
        "" if count is None else block("TransmissionFlux", leaf("NBTOTDOSRSATRANSM", str(count)))
    )
    return f"{declaration}{prolog}<Racine{location}>\n{header}{''.join(items)}{trailer}</Racine>\n"


def flow_bytes(
    households: Iterable[Household | str],
    *,
    byte_encoding: str = "iso-8859-1",
    **options: Any,
) -> bytes:
    """The flow encoded with ``byte_encoding`` (independently of the declared encoding)."""
    return flow_text(households, **options).encode(byte_encoding)
