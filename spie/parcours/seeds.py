"""Reference data of the pathway, seeded by ``flask --app wsgi spie parcours seed``.

Idempotent: rows are keyed (offer code, grid code, sanction code + validity start, setting
key + validity start) and existing rows are never modified, so administrators' changes win.
The offer catalogue is a realistic starting point for the Métropole (themes of DOMAIN §2);
providers that do not exist yet are created as structures (type association/SIAE unless
stated), to be completed by an administrator.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from sqlalchemy import select

from spie.clocks.policies import LOI_PLEIN_EMPLOI, RSA_START
from spie.db import db
from spie.parcours.models import (
    SENSITIVE_THEMES,
    AssessmentGrid,
    Offer,
    OfferTheme,
    PathwaySetting,
    SanctionLevel,
)
from spie.structures.models import Structure, StructureType

CATALOGUE_FROM: Final = dt.date(2025, 1, 1)
SUSPENSION_REMOBILISATION_FROM: Final = dt.date(2025, 6, 1)

# (code, title, theme, provider, provider type, capacity, publics, parcours types, description)
OFFERS: Final[tuple[tuple[Any, ...], ...]] = (
    (
        "FORM-PREQUALIF-BTP",
        "Formation pré-qualifiante aux métiers du bâtiment",
        OfferTheme.TRAINING,
        "Organisme de formation aux métiers du bâtiment",
        StructureType.ASSOCIATION_SIAE,
        24,
        [],
        ["emploi", "socio_professionnel"],
        "12 semaines en centre et en entreprise, préparation à l'entrée en formation qualifiante.",
    ),
    (
        "FORM-SAVOIRS-BASE",
        "Remise à niveau savoirs de base (lire, écrire, compter)",
        OfferTheme.TRAINING,
        "Organisme de formation aux savoirs de base",
        StructureType.ASSOCIATION_SIAE,
        30,
        [],
        [],
        "Parcours modulaire de 150 heures, entrées et sorties permanentes.",
    ),
    (
        "SIAE-ACI-ESPACES-VERTS",
        "Atelier chantier d'insertion espaces verts",
        OfferTheme.SIAE,
        "Atelier chantier d'insertion espaces verts",
        StructureType.ASSOCIATION_SIAE,
        16,
        ["brsa", "rsj", "fse"],
        ["socio_professionnel"],
        "Contrat à durée déterminée d'insertion de 26 heures par semaine, accompagnement "
        "socio-professionnel.",
    ),
    (
        "SIAE-EI-LOGISTIQUE",
        "Entreprise d'insertion logistique et préparation de commandes",
        OfferTheme.SIAE,
        "Entreprise d'insertion logistique",
        StructureType.ASSOCIATION_SIAE,
        12,
        [],
        ["emploi", "socio_professionnel"],
        "Contrat de mission, passage du CACES possible.",
    ),
    (
        "SANTE-BILAN",
        "Bilan de santé et accès aux soins",
        OfferTheme.HEALTH,
        "Centre d'examens de santé",
        StructureType.ASSOCIATION_SIAE,
        None,
        [],
        [],
        "Bilan de santé gratuit, orientation vers les soins et l'ouverture de droits.",
    ),
    (
        "SANTE-ECOUTE",
        "Point écoute : accompagnement psychologique",
        OfferTheme.HEALTH,
        "Point écoute santé",
        StructureType.ASSOCIATION_SIAE,
        20,
        [],
        ["social", "socio_professionnel"],
        "Entretiens individuels avec un psychologue.",
    ),
    (
        "LOGEMENT-ASLL",
        "Accompagnement social lié au logement (ASLL)",
        OfferTheme.HOUSING,
        "Association d'accompagnement au logement",
        StructureType.ASSOCIATION_SIAE,
        40,
        [],
        [],
        "Accès ou maintien dans le logement, prévention des expulsions.",
    ),
    (
        "MOBILITE-PERMIS",
        "Plateforme mobilité : diagnostic et préparation au permis B",
        OfferTheme.MOBILITY,
        "Plateforme mobilité",
        StructureType.ASSOCIATION_SIAE,
        30,
        [],
        [],
        "Diagnostic mobilité, code et conduite accompagnés, location solidaire.",
    ),
    (
        "FLE-ASL",
        "Atelier sociolinguistique (français langue étrangère, A1-A2)",
        OfferTheme.FRENCH_LANGUAGE,
        "Centre social — ateliers sociolinguistiques",
        StructureType.ASSOCIATION_SIAE,
        15,
        [],
        [],
        "Deux demi-journées par semaine, français de la vie quotidienne et professionnelle.",
    ),
    (
        "NUM-DEMARCHES",
        "Atelier numérique : autonomie dans les démarches en ligne",
        OfferTheme.DIGITAL_SKILLS,
        "Espace public numérique",
        StructureType.ASSOCIATION_SIAE,
        12,
        [],
        [],
        "Huit séances : messagerie, espaces personnels CAF, France Travail, ameli.",
    ),
    (
        "GARDE-AVIP",
        "Places en crèche à vocation d'insertion professionnelle (AVIP)",
        OfferTheme.CHILDCARE,
        "Réseau de crèches AVIP",
        StructureType.ASSOCIATION_SIAE,
        25,
        [],
        [],
        "Place d'accueil pour un enfant de moins de 3 ans pendant la recherche d'emploi.",
    ),
    (
        "EMPLOI-CLUB",
        "Club de recherche d'emploi",
        OfferTheme.JOB_SEARCH,
        "Maison métropolitaine d'insertion pour l'emploi",
        StructureType.PLIE,
        20,
        [],
        ["emploi"],
        "Quatre semaines collectives : CV, candidatures, simulations d'entretien.",
    ),
    (
        "EMPLOI-PMSMP",
        "Période de mise en situation en milieu professionnel (PMSMP)",
        OfferTheme.JOB_SEARCH,
        "Maison métropolitaine d'insertion pour l'emploi",
        StructureType.PLIE,
        None,
        [],
        ["emploi", "socio_professionnel"],
        "Immersion de deux à quatre semaines en entreprise pour confirmer un projet.",
    ),
    (
        "BENEVOLAT-MISSION",
        "Mission de bénévolat accompagnée",
        OfferTheme.VOLUNTEERING,
        "Centre de ressources du bénévolat",
        StructureType.ASSOCIATION_SIAE,
        None,
        [],
        ["social", "socio_professionnel"],
        "Mise en relation avec une association et suivi de la mission.",
    ),
    (
        "SOCIAL-REMOBILISATION",
        "Atelier de remobilisation sociale",
        OfferTheme.SOCIAL,
        "Centre social — ateliers sociolinguistiques",
        StructureType.ASSOCIATION_SIAE,
        12,
        [],
        ["social"],
        "Ateliers collectifs : confiance en soi, gestion du budget, accès aux droits.",
    ),
)

BARRIERS: Final = (
    ("mobilite", "Mobilité"),
    ("garde", "Garde d'enfants ou d'ascendants"),
    ("sante", "Santé"),
    ("savoirs_base", "Savoirs de base"),
    ("experience", "Expérience professionnelle"),
    ("qualification", "Qualification"),
    ("demarches", "Démarches administratives"),
    ("logement", "Logement"),
    ("savoir_etre", "Savoir-être"),
    ("situation_familiale", "Situation familiale"),
    ("marche_local", "Marché du travail local"),
    ("projet", "Définition du projet"),
    ("numerique", "Numérique"),
)
POTENTIALS: Final = (
    ("motivation", "Motivation"),
    ("autonomie", "Autonomie"),
    ("projection", "Capacité à se projeter"),
    ("reseau", "Réseau et soutiens"),
)
SKILLS: Final = (
    ("competences_pro", "Compétences professionnelles transférables"),
    ("communication", "Communication"),
    ("organisation", "Organisation et ponctualité"),
)


def grid_items() -> list[dict[str, Any]]:
    items = [
        {
            "code": code,
            "label": label,
            "dimension": "barrier",
            "max": 2,
            "sensitive": code == "sante",
        }
        for code, label in BARRIERS
    ]
    items += [
        {"code": code, "label": label, "dimension": "potential", "max": 3, "sensitive": False}
        for code, label in POTENTIALS
    ]
    items += [
        {"code": code, "label": label, "dimension": "skill", "max": 3, "sensitive": False}
        for code, label in SKILLS
    ]
    return items


SANCTIONS: Final = (
    (
        "suspension_premier_manquement",
        1,
        "Premier manquement : suspension-remobilisation de 30 % à 100 % du montant pendant 1 à "
        "2 mois (50 % au plus pour un foyer de plusieurs personnes), reversée en cas de "
        "remobilisation",
        30,
        100,
        1,
        2,
    ),
    (
        "suspension_manquement_repete",
        2,
        "Manquement répété : suspension-remobilisation de 30 % à 100 % pendant 1 à 4 mois",
        30,
        100,
        1,
        4,
    ),
    (
        "suppression",
        3,
        "Manquement persistant sans remobilisation : suppression de 30 % à 100 % pendant 1 à 4 "
        "mois",
        30,
        100,
        1,
        4,
    ),
)
SANCTION_SOURCE: Final = (
    "CASF L262-37 (loi 2023-1196 pour le plein emploi) et décret du 30 mai 2025 relatif à la "
    "suspension-remobilisation ; barème à faire valider par la DIE"
)

SETTINGS: Final = (
    (
        "ep_missed_appointments",
        2,
        RSA_START,
        "Rendez-vous manqués qui ouvrent un dossier d'équipe pluridisciplinaire",
    ),
    (
        "contract_min_weekly_hours",
        15,
        LOI_PLEIN_EMPLOI,
        "Heures d'activité hebdomadaires du contrat d'engagement (sauf réduction motivée)",
    ),
    ("contract_min_months", 3, RSA_START, "Durée minimale d'un contrat (mois)"),
    ("contract_max_months", 12, RSA_START, "Durée maximale d'un contrat (mois)"),
)


def _provider(name: str, type_: StructureType) -> Structure:
    found = db.session.scalar(select(Structure).where(Structure.name == name))
    if found is None:
        found = Structure(name=name, type=type_, capacity=0, active=True)
        db.session.add(found)
        db.session.flush()
    return found


def seed_offers() -> dict[str, int]:
    created = 0
    existing = set(db.session.scalars(select(Offer.code)))
    for (
        code,
        title,
        theme,
        provider,
        provider_type,
        capacity,
        publics,
        parcours,
        description,
    ) in OFFERS:
        if code in existing:
            continue
        db.session.add(
            Offer(
                code=code,
                title=title,
                theme=theme,
                description=description,
                provider_structure_id=_provider(provider, provider_type).id,
                publics=list(publics),
                parcours_types=list(parcours),
                capacity=capacity,
                starts_on=CATALOGUE_FROM,
                active=True,
                sensitive=theme in SENSITIVE_THEMES,
            )
        )
        created += 1
    db.session.flush()
    return {"created": created, "kept": len(OFFERS) - created}


def seed_grid() -> dict[str, int]:
    if db.session.scalar(select(AssessmentGrid.id).where(AssessmentGrid.code == "dp-v1")):
        return {"created": 0, "kept": 1}
    db.session.add(
        AssessmentGrid(
            code="dp-v1",
            label="Diagnostic partagé — potentiels, freins et compétences",
            items=grid_items(),
            valid_from=RSA_START,
        )
    )
    db.session.flush()
    return {"created": 1, "kept": 0}


def seed_sanctions() -> dict[str, int]:
    created = 0
    for code, rank, label, rmin, rmax, dmin, dmax in SANCTIONS:
        if db.session.scalar(
            select(SanctionLevel.id).where(
                SanctionLevel.code == code,
                SanctionLevel.valid_from == SUSPENSION_REMOBILISATION_FROM,
            )
        ):
            continue
        db.session.add(
            SanctionLevel(
                code=code,
                rank=rank,
                label=label,
                reduction_min_percent=rmin,
                reduction_max_percent=rmax,
                duration_min_months=dmin,
                duration_max_months=dmax,
                valid_from=SUSPENSION_REMOBILISATION_FROM,
                legal_source=SANCTION_SOURCE,
            )
        )
        created += 1
    db.session.flush()
    return {"created": created, "kept": len(SANCTIONS) - created}


def seed_settings() -> dict[str, int]:
    created = 0
    for key, value, valid_from, label in SETTINGS:
        if db.session.scalar(
            select(PathwaySetting.id).where(
                PathwaySetting.key == key, PathwaySetting.valid_from == valid_from
            )
        ):
            continue
        db.session.add(PathwaySetting(key=key, value=value, valid_from=valid_from, label=label))
        created += 1
    db.session.flush()
    return {"created": created, "kept": len(SETTINGS) - created}


def seed_all() -> dict[str, dict[str, int]]:
    return {
        "offers": seed_offers(),
        "assessment_grid": seed_grid(),
        "sanction_levels": seed_sanctions(),
        "settings": seed_settings(),
    }
