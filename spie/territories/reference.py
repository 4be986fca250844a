"""Reference data for the steering territories of the Métropole de Lyon.

Pure data, no database access: the seeding code loads it into ``Territory`` and
``Commune`` rows, the demo generator and the CAF importers read it directly.

* ``TERRITORIES``: Lyon (kind ``ville``) and the 9 Conférences Territoriales des
  Maires (kind ``ctm``).
* ``COMMUNES``: the 59 communes of the Métropole with their official INSEE (COG)
  codes, except that Lyon (69123) is replaced by its 9 arrondissements
  (69381..69389), hence 58 + 9 = 67 entries.  Oullins (69149) and Pierre-Bénite
  (69152) merged into Oullins-Pierre-Bénite (69149) on 1 January 2024; both are
  kept here because CAF files and older case files still carry 69152.
* ``MAISONS_DE_LA_METROPOLE``: the social-action sites where referents work.

Every string is encodable in ISO-8859-1 (CAF exchange files use that charset):
plain ASCII apostrophes only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TerritoryRef:
    code: str
    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class CommuneRef:
    insee: str
    name: str
    postal_code: str
    territory_code: str
    qpv: bool


@dataclass(frozen=True, slots=True)
class MaisonRef:
    name: str
    commune_insee: str


KIND_VILLE = "ville"
KIND_CTM = "ctm"

LYON = "LYON"
CTM_VILLEURBANNE = "CTM-VILLEURBANNE"
CTM_RHONE_AMONT = "CTM-RHONE-AMONT"
CTM_PORTE_DES_ALPES = "CTM-PORTE-DES-ALPES"
CTM_PORTES_DU_SUD = "CTM-PORTES-DU-SUD"
CTM_LONES_COTEAUX = "CTM-LONES-COTEAUX"
CTM_VAL_YZERON = "CTM-VAL-YZERON"
CTM_OUEST_NORD = "CTM-OUEST-NORD"
CTM_VAL_DE_SAONE = "CTM-VAL-DE-SAONE"
CTM_PLATEAU_NORD = "CTM-PLATEAU-NORD"

TERRITORIES: tuple[TerritoryRef, ...] = (
    TerritoryRef(LYON, "Lyon", KIND_VILLE),
    TerritoryRef(CTM_VILLEURBANNE, "Villeurbanne", KIND_CTM),
    TerritoryRef(CTM_RHONE_AMONT, "Rhône Amont", KIND_CTM),
    TerritoryRef(CTM_PORTE_DES_ALPES, "Porte des Alpes", KIND_CTM),
    TerritoryRef(CTM_PORTES_DU_SUD, "Les Portes du Sud", KIND_CTM),
    TerritoryRef(CTM_LONES_COTEAUX, "Lônes et Coteaux du Rhône", KIND_CTM),
    TerritoryRef(CTM_VAL_YZERON, "Val d'Yzeron", KIND_CTM),
    TerritoryRef(CTM_OUEST_NORD, "Ouest Nord", KIND_CTM),
    TerritoryRef(CTM_VAL_DE_SAONE, "Val de Saône", KIND_CTM),
    TerritoryRef(CTM_PLATEAU_NORD, "Plateau Nord", KIND_CTM),
)

_C = CommuneRef

COMMUNES: tuple[CommuneRef, ...] = (
    # Lyon, by arrondissement
    _C("69381", "Lyon 1er", "69001", LYON, False),
    _C("69382", "Lyon 2e", "69002", LYON, False),
    _C("69383", "Lyon 3e", "69003", LYON, True),
    _C("69384", "Lyon 4e", "69004", LYON, False),
    _C("69385", "Lyon 5e", "69005", LYON, True),
    _C("69386", "Lyon 6e", "69006", LYON, False),
    _C("69387", "Lyon 7e", "69007", LYON, True),
    _C("69388", "Lyon 8e", "69008", LYON, True),
    _C("69389", "Lyon 9e", "69009", LYON, True),
    # Villeurbanne
    _C("69266", "Villeurbanne", "69100", CTM_VILLEURBANNE, True),
    # Rhône Amont
    _C("69256", "Vaulx-en-Velin", "69120", CTM_RHONE_AMONT, True),
    _C("69275", "Décines-Charpieu", "69150", CTM_RHONE_AMONT, True),
    _C("69282", "Meyzieu", "69330", CTM_RHONE_AMONT, True),
    _C("69279", "Jonage", "69330", CTM_RHONE_AMONT, False),
    # Porte des Alpes
    _C("69029", "Bron", "69500", CTM_PORTE_DES_ALPES, True),
    _C("69290", "Saint-Priest", "69800", CTM_PORTE_DES_ALPES, True),
    _C("69271", "Chassieu", "69680", CTM_PORTE_DES_ALPES, False),
    _C("69283", "Mions", "69780", CTM_PORTE_DES_ALPES, False),
    # Les Portes du Sud
    _C("69259", "Vénissieux", "69200", CTM_PORTES_DU_SUD, True),
    _C("69199", "Saint-Fons", "69190", CTM_PORTES_DU_SUD, True),
    _C("69276", "Feyzin", "69320", CTM_PORTES_DU_SUD, False),
    _C("69273", "Corbas", "69960", CTM_PORTES_DU_SUD, False),
    _C("69296", "Solaize", "69360", CTM_PORTES_DU_SUD, False),
    # Lônes et Coteaux du Rhône
    _C("69149", "Oullins", "69600", CTM_LONES_COTEAUX, True),
    _C("69152", "Pierre-Bénite", "69310", CTM_LONES_COTEAUX, True),
    _C("69142", "La Mulatière", "69350", CTM_LONES_COTEAUX, True),
    _C("69204", "Saint-Genis-Laval", "69230", CTM_LONES_COTEAUX, True),
    _C("69100", "Irigny", "69540", CTM_LONES_COTEAUX, False),
    _C("69260", "Vernaison", "69390", CTM_LONES_COTEAUX, False),
    _C("69046", "Charly", "69390", CTM_LONES_COTEAUX, False),
    _C("69096", "Grigny", "69520", CTM_LONES_COTEAUX, True),
    _C("69091", "Givors", "69700", CTM_LONES_COTEAUX, True),
    # Val d'Yzeron
    _C("69244", "Tassin-la-Demi-Lune", "69160", CTM_VAL_YZERON, False),
    _C("69089", "Francheville", "69340", CTM_VAL_YZERON, False),
    _C("69069", "Craponne", "69290", CTM_VAL_YZERON, False),
    _C("69202", "Sainte-Foy-lès-Lyon", "69110", CTM_VAL_YZERON, False),
    _C("69205", "Saint-Genis-les-Ollières", "69290", CTM_VAL_YZERON, False),
    _C("69044", "Charbonnières-les-Bains", "69260", CTM_VAL_YZERON, False),
    _C("69127", "Marcy-l'Étoile", "69280", CTM_VAL_YZERON, False),
    # Ouest Nord
    _C("69081", "Écully", "69130", CTM_OUEST_NORD, False),
    _C("69072", "Dardilly", "69570", CTM_OUEST_NORD, False),
    _C("69040", "Champagne-au-Mont-d'Or", "69410", CTM_OUEST_NORD, False),
    _C("69116", "Limonest", "69760", CTM_OUEST_NORD, False),
    _C("69117", "Lissieu", "69380", CTM_OUEST_NORD, False),
    _C("69250", "La Tour-de-Salvagny", "69890", CTM_OUEST_NORD, False),
    # Val de Saône
    _C("69003", "Albigny-sur-Saône", "69250", CTM_VAL_DE_SAONE, False),
    _C("69063", "Collonges-au-Mont-d'Or", "69660", CTM_VAL_DE_SAONE, False),
    _C("69068", "Couzon-au-Mont-d'Or", "69270", CTM_VAL_DE_SAONE, False),
    _C("69071", "Curis-au-Mont-d'Or", "69250", CTM_VAL_DE_SAONE, False),
    _C("69085", "Fleurieu-sur-Saône", "69250", CTM_VAL_DE_SAONE, False),
    _C("69278", "Genay", "69730", CTM_VAL_DE_SAONE, False),
    _C("69284", "Montanay", "69250", CTM_VAL_DE_SAONE, False),
    _C("69143", "Neuville-sur-Saône", "69250", CTM_VAL_DE_SAONE, True),
    _C("69153", "Poleymieux-au-Mont-d'Or", "69250", CTM_VAL_DE_SAONE, False),
    _C("69163", "Quincieux", "69650", CTM_VAL_DE_SAONE, False),
    _C("69168", "Rochetaillée-sur-Saône", "69270", CTM_VAL_DE_SAONE, False),
    _C("69191", "Saint-Cyr-au-Mont-d'Or", "69450", CTM_VAL_DE_SAONE, False),
    _C("69194", "Saint-Didier-au-Mont-d'Or", "69370", CTM_VAL_DE_SAONE, False),
    _C("69207", "Saint-Germain-au-Mont-d'Or", "69650", CTM_VAL_DE_SAONE, False),
    _C("69233", "Saint-Romain-au-Mont-d'Or", "69270", CTM_VAL_DE_SAONE, False),
    # Plateau Nord
    _C("69034", "Caluire-et-Cuire", "69300", CTM_PLATEAU_NORD, False),
    _C("69286", "Rillieux-la-Pape", "69140", CTM_PLATEAU_NORD, True),
    _C("69292", "Sathonay-Camp", "69580", CTM_PLATEAU_NORD, False),
    _C("69293", "Sathonay-Village", "69580", CTM_PLATEAU_NORD, False),
    _C("69087", "Fontaines-Saint-Martin", "69270", CTM_PLATEAU_NORD, False),
    _C("69088", "Fontaines-sur-Saône", "69270", CTM_PLATEAU_NORD, False),
    _C("69033", "Cailloux-sur-Fontaines", "69270", CTM_PLATEAU_NORD, False),
)

del _C

_M = MaisonRef

MAISONS_DE_LA_METROPOLE: tuple[MaisonRef, ...] = (
    # Lyon
    _M("Maison de la Métropole Lyon 1er", "69381"),
    _M("Maison de la Métropole Lyon 3e Moncey", "69383"),
    _M("Maison de la Métropole Lyon 5e", "69385"),
    _M("Maison de la Métropole Lyon 7e Gerland", "69387"),
    _M("Maison de la Métropole Lyon 8e Mermoz", "69388"),
    _M("Maison de la Métropole Lyon 8e États-Unis", "69388"),
    _M("Maison de la Métropole Lyon 9e La Duchère", "69389"),
    _M("Maison de la Métropole Lyon 9e Vaise", "69389"),
    # Villeurbanne
    _M("Maison de la Métropole Villeurbanne Tonkin", "69266"),
    _M("Maison de la Métropole Villeurbanne Saint-Jean", "69266"),
    _M("Maison de la Métropole Villeurbanne Gratte-Ciel", "69266"),
    # Rhône Amont
    _M("Maison de la Métropole Vaulx-en-Velin", "69256"),
    _M("Maison de la Métropole Décines-Charpieu", "69275"),
    _M("Maison de la Métropole Meyzieu", "69282"),
    # Porte des Alpes
    _M("Maison de la Métropole Bron", "69029"),
    _M("Maison de la Métropole Saint-Priest", "69290"),
    # Les Portes du Sud
    _M("Maison de la Métropole Vénissieux Minguettes", "69259"),
    _M("Maison de la Métropole Vénissieux Centre", "69259"),
    _M("Maison de la Métropole Saint-Fons", "69199"),
    # Lônes et Coteaux du Rhône
    _M("Maison de la Métropole Oullins", "69149"),
    _M("Maison de la Métropole Saint-Genis-Laval", "69204"),
    _M("Maison de la Métropole Givors", "69091"),
    # Val d'Yzeron
    _M("Maison de la Métropole Tassin-la-Demi-Lune", "69244"),
    _M("Maison de la Métropole Sainte-Foy-lès-Lyon", "69202"),
    # Ouest Nord
    _M("Maison de la Métropole Écully", "69081"),
    # Val de Saône
    _M("Maison de la Métropole Neuville-sur-Saône", "69143"),
    # Plateau Nord
    _M("Maison de la Métropole Rillieux-la-Pape", "69286"),
    _M("Maison de la Métropole Caluire-et-Cuire", "69034"),
    _M("Maison de la Métropole Fontaines-sur-Saône", "69088"),
)

del _M

_TERRITORIES_BY_CODE: dict[str, TerritoryRef] = {t.code: t for t in TERRITORIES}
_COMMUNES_BY_INSEE: dict[str, CommuneRef] = {c.insee: c for c in COMMUNES}


def territory_by_code(code: str) -> TerritoryRef | None:
    """The territory with this code, or None."""
    return _TERRITORIES_BY_CODE.get(code)


def commune_by_insee(code: str) -> CommuneRef | None:
    """The commune (or Lyon arrondissement) with this INSEE code, or None."""
    return _COMMUNES_BY_INSEE.get(code)


def communes_of(territory_code: str) -> list[CommuneRef]:
    """The communes attached to a territory, in reference order (empty if unknown)."""
    return [c for c in COMMUNES if c.territory_code == territory_code]
