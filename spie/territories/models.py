"""Steering territories (Lyon and the 9 CTMs) and the communes they group, by INSEE code."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from spie.db import Base, enum_type

if TYPE_CHECKING:
    from spie.structures.models import Structure


class TerritoryKind(enum.StrEnum):
    CTM = "ctm"
    VILLE = "ville"


class Territory(Base):
    __tablename__ = "territories"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[TerritoryKind] = mapped_column(enum_type(TerritoryKind, "territory_kind"))

    communes: Mapped[list[Commune]] = relationship(
        back_populates="territory", order_by="Commune.name"
    )
    structures: Mapped[list[Structure]] = relationship(
        secondary="structure_territories", back_populates="territories", viewonly=True
    )


class Commune(Base):
    __tablename__ = "communes"
    __table_args__ = (
        CheckConstraint("length(insee_code) = 5", name="insee_code_length"),
        CheckConstraint("length(postal_code) = 5", name="postal_code_length"),
    )

    insee_code: Mapped[str] = mapped_column(String(5), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    postal_code: Mapped[str] = mapped_column(String(5))
    territory_id: Mapped[int] = mapped_column(ForeignKey("territories.id"), index=True)
    priority_neighbourhood: Mapped[bool] = mapped_column(default=False)

    territory: Mapped[Territory] = relationship(back_populates="communes")
