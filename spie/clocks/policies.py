"""The delay policies spie ships with (seeded by ``flask spie orientation seed``).

They are *data*: :func:`spie.clocks.services.seed_delay_policies` inserts the rows that are
missing (same clock and same ``valid_from``) and never touches existing ones, so an
administrator may later close a period (``valid_until``) or add a new regime through the API
without the seed putting the old values back.

``valid_from`` of the oldest regimes is the start of the RSA (1 June 2009, loi 2008-1249):
clocks that started earlier have no policy and are refused with a precise error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from spie.clocks.models import ClockKind

RSA_START: Final = dt.date(2009, 6, 1)
LOI_PLEIN_EMPLOI: Final = dt.date(2025, 1, 1)


@dataclass(frozen=True)
class PolicySeed:
    clock: ClockKind
    valid_from: dt.date
    valid_until: dt.date | None
    legal_limit: str | None
    target: str | None
    extended_limit: str | None
    label: str
    legal_source: str


SEED_POLICIES: Final[tuple[PolicySeed, ...]] = (
    PolicySeed(
        clock=ClockKind.ORIENTATION,
        valid_from=RSA_START,
        valid_until=LOI_PLEIN_EMPLOI,
        legal_limit="2m",
        target="2m",
        extended_limit=None,
        label="Orientation — régime antérieur à 2025 : 2 mois",
        legal_source=(
            "CASF R262-65-2 (délai de deux mois) ; cible Métropole : 100 % des nouveaux "
            "BRSA orientés en moins de 2 mois (PMI'e 2022-2026, fiche 11)"
        ),
    ),
    PolicySeed(
        clock=ClockKind.ORIENTATION,
        valid_from=LOI_PLEIN_EMPLOI,
        valid_until=None,
        legal_limit="6w",
        target="2m",
        extended_limit=None,
        label="Orientation — loi pour le plein emploi : 6 semaines",
        legal_source=(
            "Décret 2024-1244, CASF D262-65-2 (six semaines, puis France Travail oriente) ; "
            "cible Métropole : 2 mois (PMI'e 2022-2026, fiche 11)"
        ),
    ),
    PolicySeed(
        clock=ClockKind.PATHWAY_ENTRY,
        valid_from=RSA_START,
        valid_until=None,
        legal_limit=None,
        target="15d",
        extended_limit=None,
        label="Entrée en parcours : premier rendez-vous honoré sous 15 jours",
        legal_source="Convention de projet (cible de la Métropole, pas de délai légal)",
    ),
    PolicySeed(
        clock=ClockKind.CONTRACT,
        valid_from=RSA_START,
        valid_until=LOI_PLEIN_EMPLOI,
        legal_limit="1m",
        target=None,
        # CER social: 2 months. The contract clock uses extended_limit for a social pathway.
        extended_limit="2m",
        label="Contrat — avant 2025 : CER/PPAE sous 1 mois (CER social : 2 mois)",
        legal_source=(
            "CASF L262-35 et L262-36 (CER professionnel ou PPAE : 1 mois ; CER social : 2 mois)"
        ),
    ),
    PolicySeed(
        clock=ClockKind.CONTRACT,
        valid_from=LOI_PLEIN_EMPLOI,
        valid_until=None,
        legal_limit="1m",
        target=None,
        extended_limit=None,
        label="Contrat d'engagement signé sous 1 mois",
        legal_source="Code du travail D5411-14-1",
    ),
    PolicySeed(
        clock=ClockKind.SOCIAL_REVIEW,
        valid_from=RSA_START,
        valid_until=None,
        legal_limit="6m",
        target=None,
        extended_limit="12m",
        label=(
            "Réexamen du parcours social : 6 mois (12 mois pour santé, handicap, logement, famille)"
        ),
        legal_source="CASF L262-31, D262-65-2-1",
    ),
    PolicySeed(
        clock=ClockKind.CONTRACT_RENEWAL,
        valid_from=RSA_START,
        valid_until=None,
        legal_limit=None,
        target="30d",
        extended_limit=None,
        label="Renouvellement du contrat : alerte 30 jours avant la fin",
        legal_source="Règle de gestion de la Métropole",
    ),
    PolicySeed(
        clock=ClockKind.REFERENT_GAP,
        valid_from=RSA_START,
        valid_until=None,
        legal_limit=None,
        target="15d",
        extended_limit=None,
        label="Personne sans référent actif : alerte après 15 jours",
        legal_source="Règle de gestion de la Métropole",
    ),
)
