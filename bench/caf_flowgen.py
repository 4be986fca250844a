"""Generator of synthetic CAF « bénéficiaires » flows of any size (vrsb0801 / vrsd0301).

Streaming (constant memory), deterministic for a seed, real-shaped: the sample files of
``../shared/data/caf`` with ~1.5 persons per household (demandeur, sometimes a conjoint,
sometimes a child), valid NIRs (13 characters, some with their key), communes of the
Métropole, ISO-8859-1 with accents.

    python -m bench.caf_flowgen --households 100000 --out /tmp/flow.xml

``variant`` changes a share of the households (SDD flag, address) to produce the "next
month" of the same population; ``first``/``count`` select a slice of the population (daily
files are small slices).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from spie.territories.reference import COMMUNES

LAST_NAMES = (
    "MARTIN", "BERNARD", "THOMAS", "PETIT", "ROBERT", "RICHARD", "DURAND", "DUBOIS", "MOREAU",
    "LAURENT", "SIMON", "MICHEL", "LEFÈVRE", "LEROY", "ROUX", "DAVID", "BERTRAND", "MOREL",
    "FOURNIER", "GIRARD", "BONNET", "DUPONT", "LAMBERT", "FONTAINE", "ROUSSEAU", "VINCENT",
    "MÜLLER", "LE GALL", "DA SILVA", "NGUYEN", "HADDAD", "KONÉ", "BENAÏSSA", "GARCIA", "FRANÇOIS",
)  # fmt: skip
FIRST_M = ("JEAN", "PATRICK", "MICHEL", "KARIM", "THÉO", "LOÏC", "MAMADOU", "ALAIN", "FRANÇOIS")
FIRST_F = ("ISABELLE", "NATHALIE", "LÉA", "CHLOÉ", "FATOU", "AÏCHA", "HÉLÈNE", "ZOÉ", "INÈS")
STREETS = (
    "RUE GARIBALDI", "AVENUE JEAN JAURÈS", "PLACE BELLECOUR", "CHEMIN DE L'ÉCOLE",
    "RUE DE LA RÉPUBLIQUE", "BOULEVARD DES ÉTATS-UNIS", "RUE ANATOLE FRANCE",
)  # fmt: skip
# Communes of the Métropole (Oullins / Pierre-Bénite merged: keep the live code only).
_COMMUNES = tuple(c for c in COMMUNES if c.insee != "69152")

_PERSON_B = """<Personne>
<Identification>
<QUAL>{qual}</QUAL>
<NOM>{nom}</NOM>
<NOMNAI>{nom}</NOMNAI>
<PRENOM>{prenom}</PRENOM>
<DTNAI>{dtnai}</DTNAI>
<TYPEDTNAI>N</TYPEDTNAI>
<NIR>{nir}</NIR>
<TOPVALIEC>1</TOPVALIEC>
<SEXE>{sexe}</SEXE>
</Identification>
<Prestations>
<NATPREST>PFA</NATPREST>
<ROLEPERS>{role}</ROLEPERS>
<TOPCHAPERS>0</TOPCHAPERS>
</Prestations>
<Prestations>
<NATPREST>RSA</NATPREST>
<ROLEPERS>{role}</ROLEPERS>
<TOPCHAPERS>{topcha}</TOPCHAPERS>
</Prestations>
{pe}<MontantCalculDroitRSAPersonne>
<TOPPERSDRODEVORSA>{sdd}</TOPPERSDRODEVORSA>
</MontantCalculDroitRSAPersonne>
<Activite>
<REG>GE</REG>
<ACT>CHO</ACT>
<DDACT>{dtdem}</DDACT>
</Activite>
</Personne>
"""

_PERSON_D = """<Personne>
<Identification>
<QUAL>{qual}</QUAL>
<NOM>{nom}</NOM>
<NOMNAI>{nom}</NOMNAI>
<PRENOM>{prenom}</PRENOM>
<DTNAI>{dtnai}</DTNAI>
<TYPEDTNAI>N</TYPEDTNAI>
<NIR>{nir}</NIR>
<TOPVALIEC>1</TOPVALIEC>
<SEXE>{sexe}</SEXE>
</Identification>
<FonctionPersonneRSA>
<ROLEPERS>{role}</ROLEPERS>
<TOPCHAPERS>{topcha}</TOPCHAPERS>
</FonctionPersonneRSA>
{pe}<CalculDroitRSAPersonne>
<TOPPERSDRODEVORSA>{sdd}</TOPPERSDRODEVORSA>
<TOPPERSENTDRODEVORSA>0</TOPPERSENTDRODEVORSA>
{ddsou}</CalculDroitRSAPersonne>
</Personne>
"""

_HOUSEHOLD_HEAD = """<InfosFoyerRSA>
<IdentificationRSA>
<Organisme>
<FONORG>CAF</FONORG>
<NUMORG>691</NUMORG>
<MATRICULE>{matricule}</MATRICULE>
</Organisme>
<Partenaire>
<TYPEPARTE>CG  </TYPEPARTE>
<IDEPARTE>069</IDEPARTE>
</Partenaire>
<DemandeRSA>
<DTDEMRSA>{dtdem}</DTDEMRSA>
<NUMDEMRSA>{numdem}</NUMDEMRSA>
</DemandeRSA>
</IdentificationRSA>
"""

_HOUSEHOLD_TAIL = """<DonneesAdministratives>
<SituationFamille>
<SITFAM>{sitfam}</SITFAM>
<DDSITFAM>{dtdem}</DDSITFAM>
</SituationFamille>
<Adresse>
<TroncCommunAdresse>
<RGADR>01</RGADR>
<DTEMM>{dtdem}</DTEMM>
<PAYS>FRA</PAYS>
<TYPEADR>D</TYPEADR>
<ETATADR>CO</ETATADR>
</TroncCommunAdresse>
<AdresseDetailleeFrance>
<COMPLIDEADR></COMPLIDEADR>
<COMPLADR></COMPLADR>
<NUMVOIE>{numvoie}</NUMVOIE>
<LIBTYPEVOIE></LIBTYPEVOIE>
<NOMVOIE>{voie}</NOMVOIE>
<LIEUDIST></LIEUDIST>
<NUMCOM>{numcom}</NUMCOM>
<CODEPOS>{codepos}</CODEPOS>
<NOMCOM>{nomcom}</NOMCOM>
</AdresseDetailleeFrance>
</Adresse>
</DonneesAdministratives>
<PrestationRSA>
<SituationDossierRSA>
<EtatDossierRSA>
<ETATDOSRSA>{etat}</ETATDOSRSA>
</EtatDossierRSA>
<DroitOuvert>
<DTODRSA>{dtdem}</DTODRSA>
</DroitOuvert>
</SituationDossierRSA>
<DetailDroitRSA>
<TroncCommunDroitRSA>
<TOPSANSDOMFIXE>0</TOPSANSDOMFIXE>
<ORIDEMRSA>DEM</ORIDEMRSA>
</TroncCommunDroitRSA>
<DetailCalculDroitRSA>
<NATPF>RSD</NATPF>
<SOUSNATPF>RSDN2</SOUSNATPF>
<DDNATDRO>{dtdem}</DDNATDRO>
</DetailCalculDroitRSA>
</DetailDroitRSA>
</PrestationRSA>
</InfosFoyerRSA>
"""


def _nir(sex: str, birth: dt.date, index: int, with_key: bool) -> str:
    body = f"{sex}{birth:%y}{birth:%m}69{index % 999 + 1:03d}{index // 999 % 1000:03d}"
    if with_key:
        return f"{body}{97 - int(body) % 97:02d}"
    return body


def _household_xml(index: int, seed: int, variant: int, schema: str, dtref: dt.date) -> str:
    """Household ``index`` of the population: stable identity, ``variant`` changes some state."""
    rng = random.Random(seed * 1_000_003 + index)
    vrng = random.Random((seed * 1_000_003 + index) * 31 + variant)
    dtdem = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(0, 700))
    dtdem_text = dtdem.isoformat()
    nom = rng.choice(LAST_NAMES)
    template = _PERSON_B if schema == "vrsb0801" else _PERSON_D
    parts = [
        _HOUSEHOLD_HEAD.format(
            matricule=f"{index:07d}00000000"[:15].rjust(15, "0"),
            dtdem=dtdem_text,
            numdem=f"{index:011d}",
        )
    ]
    members: list[tuple[str, str, dt.date, bool]] = []  # role, sex, birth, sdd
    dem_sex = rng.choice("12")
    members.append(("DEM", dem_sex, _birth(rng, 1960, 2004), True))
    roll = rng.random()
    if roll < 0.25:
        members.append(("CJT", "2" if dem_sex == "1" else "1", _birth(rng, 1960, 2004), True))
    elif roll < 0.50:
        members.append(("ENF", rng.choice("12"), _birth(rng, 2008, 2024), False))
    for number, (role, sex, birth, sdd) in enumerate(members):
        if sdd and variant and vrng.random() < 0.05:
            sdd = False  # some people leave SDD next month
        ddsou = ""
        if schema == "vrsd0301" and sdd:
            ddsou = f"<DDSOUDRODEV>{(dtdem + dt.timedelta(days=15)).isoformat()}</DDSOUDRODEV>\n"
        parts.append(
            template.format(
                qual="MR" if sex == "1" else "MME",
                nom=nom,
                prenom=rng.choice(FIRST_M if sex == "1" else FIRST_F),
                dtnai=birth.isoformat(),
                nir=_nir(sex, birth, index * 3 + number, with_key=index % 4 == 0),
                sexe=sex,
                role=role,
                topcha="1" if role == "DEM" else "0",
                pe=(
                    f"<DossierPoleEmploi>\n<IDASSEDIC>{index % 10_000_000:07d}N</IDASSEDIC>\n"
                    "</DossierPoleEmploi>\n"
                    if role == "DEM" and index % 3
                    else ""
                ),
                sdd="1" if sdd else "0",
                dtdem=dtdem_text,
                ddsou=ddsou,
            )
        )
    commune = rng.choice(_COMMUNES)
    if variant and vrng.random() < 0.03:
        commune = vrng.choice(_COMMUNES)  # some households move
    parts.append(
        _HOUSEHOLD_TAIL.format(
            sitfam=rng.choice(("CEL", "MAR", "SEL", "ISO", "VIM")),
            dtdem=dtdem_text,
            numvoie=rng.randrange(1, 200),
            voie=rng.choice(STREETS),
            numcom=commune.insee,
            codepos=commune.postal_code,
            nomcom=commune.name.upper(),
            etat="2" if not variant or vrng.random() > 0.02 else "5",
        )
    )
    return "".join(parts)


def _birth(rng: random.Random, first_year: int, last_year: int) -> dt.date:
    return dt.date(first_year, 1, 1) + dt.timedelta(
        days=rng.randrange(0, (last_year - first_year) * 365)
    )


def iter_flow(
    households: int,
    *,
    seed: int = 1,
    variant: int = 0,
    schema: str = "vrsb0801",
    typeflux: str = "M",
    dtref: dt.date = dt.date(2026, 10, 31),
    first: int = 1,
) -> Iterator[str]:
    yield '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
    yield (
        '<Racine xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:noNamespaceSchemaLocation="{schema}.xsd">\n'
        "<IdentificationFlux>\n<APPLIEME>CRI</APPLIEME>\n"
        "<NUMVERSIONAPPLIEME>6200</NUMVERSIONAPPLIEME>\n"
        f"<TYPEFLUX>{typeflux}</TYPEFLUX>\n<NATFLUX>D</NATFLUX>\n"
        f"<DTCREAFLUX>{dtref + dt.timedelta(days=1)}</DTCREAFLUX>\n"
        f"<HEUCREAFLUX>02:14:07.0000</HEUCREAFLUX>\n<DTREF>{dtref}</DTREF>\n"
        "</IdentificationFlux>\n"
    )
    for index in range(first, first + households):
        yield _household_xml(index, seed, variant, schema, dtref)
    yield (
        f"<TransmissionFlux>\n<NBTOTDOSRSATRANSM>{households}</NBTOTDOSRSATRANSM>\n"
        "</TransmissionFlux>\n</Racine>\n"
    )


def write_flow(out: BinaryIO | Path | str, households: int, **options: object) -> int:
    """Write a flow; returns the number of persons written."""
    persons = 0
    if isinstance(out, str | Path):
        with Path(out).open("wb") as handle:
            return write_flow(handle, households, **options)
    buffer: list[str] = []
    for chunk in iter_flow(households, **options):  # type: ignore[arg-type]
        persons += chunk.count("<Personne>")
        buffer.append(chunk)
        if len(buffer) >= 1000:
            out.write("".join(buffer).encode("iso-8859-1"))
            buffer.clear()
    out.write("".join(buffer).encode("iso-8859-1"))
    return persons


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--variant", type=int, default=0)
    parser.add_argument("--schema", choices=("vrsb0801", "vrsd0301"), default="vrsb0801")
    parser.add_argument("--typeflux", choices=("I", "M"), default="M")
    parser.add_argument("--dtref", type=dt.date.fromisoformat, default=dt.date(2026, 10, 31))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    persons = write_flow(
        args.out,
        args.households,
        seed=args.seed,
        variant=args.variant,
        schema=args.schema,
        typeflux=args.typeflux,
        dtref=args.dtref,
    )
    print(f"{args.out}: {args.households} households, {persons} persons")


if __name__ == "__main__":
    main()
