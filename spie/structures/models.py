"""Structures that orient, follow or host people: Maisons de la Métropole, France Travail..."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from spie.db import Base, TimestampMixin, VersionedMixin, enum_type

if TYPE_CHECKING:
    from spie.agents.models import Agent
    from spie.territories.models import Commune, Territory


class StructureType(enum.StrEnum):
    """Codes shared with the orientation référentiel (its outcomes name these types)."""

    MDM = "mdm"  # Maison de la Métropole / service social du Département
    FRANCE_TRAVAIL = "france_travail"
    MISSION_LOCALE = "mission_locale"
    PLIE = "plie"
    CAP_EMPLOI = "cap_emploi"
    ASSOCIATION_SIAE = "association_siae"
    INDEPENDANTS = "independants"  # accompagnement des travailleurs indépendants


STRUCTURE_TYPE_LABELS = {
    StructureType.MDM: "Maison de la Métropole",
    StructureType.FRANCE_TRAVAIL: "Agence France Travail",
    StructureType.MISSION_LOCALE: "Mission locale",
    StructureType.PLIE: "PLIE",
    StructureType.CAP_EMPLOI: "Cap emploi",
    StructureType.ASSOCIATION_SIAE: "Association ou SIAE",
    StructureType.INDEPENDANTS: "Accompagnement des travailleurs indépendants",
}

structure_territories = Table(
    "structure_territories",
    Base.metadata,
    Column("structure_id", ForeignKey("structures.id", ondelete="CASCADE"), primary_key=True),
    Column("territory_id", ForeignKey("territories.id"), primary_key=True, index=True),
)


class Structure(TimestampMixin, VersionedMixin, Base):
    __tablename__ = "structures"
    __table_args__ = (CheckConstraint("capacity >= 0", name="capacity_non_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[StructureType] = mapped_column(enum_type(StructureType, "structure_type"))
    siret: Mapped[str | None] = mapped_column(String(14))
    commune_insee: Mapped[str | None] = mapped_column(ForeignKey("communes.insee_code"), index=True)
    address: Mapped[str | None] = mapped_column(String(300))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(30))
    # How many people the structure can follow at once (sum of its référents' caseloads).
    capacity: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)

    commune: Mapped[Commune | None] = relationship()
    territories: Mapped[list[Territory]] = relationship(
        secondary=structure_territories, back_populates="structures"
    )
    agents: Mapped[list[Agent]] = relationship(back_populates="structure", viewonly=True)
