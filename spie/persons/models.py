"""People followed by the SPIE, their CAF household and their dated SDD history."""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, Index, LargeBinary, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from spie.db import Base, TimestampMixin, VersionedMixin, deferrable_fk, enum_type

if TYPE_CHECKING:
    from spie.structures.models import Structure
    from spie.territories.models import Commune, Territory


class Public(enum.StrEnum):
    BRSA = "brsa"
    RSJ = "rsj"  # Revenu Solidarité Jeunes
    FSE = "fse"  # parcours financé par le FSE+
    OTHER = "other"


PUBLIC_LABELS = {
    Public.BRSA: "Bénéficiaire du RSA",
    Public.RSJ: "Revenu Solidarité Jeunes",
    Public.FSE: "Parcours FSE+",
    Public.OTHER: "Autre public",
}


class CafRole(enum.StrEnum):
    DEM = "DEM"  # demandeur
    CJT = "CJT"  # conjoint
    ENF = "ENF"  # enfant
    AUT = "AUT"  # autre
    RDO = "RDO"  # responsable du dossier


class Sex(enum.StrEnum):
    MALE = "1"
    FEMALE = "2"


class Household(TimestampMixin, VersionedMixin, Base):
    """A CAF (or MSA) file: ``MATRICULE`` within ``NUMORG``."""

    __tablename__ = "households"
    # Matricule first: this unique index also serves the searches and imports by matricule.
    __table_args__ = (UniqueConstraint("caf_matricule", "caf_numorg"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    caf_fonorg: Mapped[str] = mapped_column(String(3), default="CAF")
    caf_numorg: Mapped[str] = mapped_column(String(3))
    caf_matricule: Mapped[str] = mapped_column(String(15))
    rsa_request_number: Mapped[str | None] = mapped_column(String(11))
    rsa_requested_on: Mapped[dt.date | None]
    rsa_state: Mapped[str | None] = mapped_column(String(1))  # ETATDOSRSA, see reference data
    family_situation: Mapped[str | None] = mapped_column(String(3))
    # DTREF of the newest flow applied: an older flow never overwrites newer data.
    last_flow_on: Mapped[dt.date | None]
    # Fingerprint (BLAKE2b-128) of the household's bytes in the flow last applied, and that
    # run (informational, no foreign key): a flow bringing the same bytes again is skipped
    # before parsing. NULL for a household no CAF flow has written.
    caf_content_hash: Mapped[bytes | None] = mapped_column(LargeBinary(16))
    caf_run_id: Mapped[int | None]

    persons: Mapped[list[Person]] = relationship(back_populates="household")


class Person(TimestampMixin, VersionedMixin, Base):
    __tablename__ = "persons"
    __table_args__ = (
        CheckConstraint("nir IS NULL OR length(nir) = 13", name="nir_length"),
        CheckConstraint("nir_key IS NULL OR (nir_key >= 1 AND nir_key <= 97)", name="nir_key"),
        CheckConstraint(
            "france_travail_id IS NULL OR length(france_travail_id) BETWEEN 8 AND 11",
            name="france_travail_id_length",
        ),
        Index("ix_persons_search_name_birth", "search_name", "birth_date"),
        Index("ix_persons_nir", "nir"),
        Index("ix_persons_household_role", "household_id", "caf_role"),
        # Partial: most persons have neither (CAF imports leave them empty), and an index of
        # NULLs costs an insertion per imported person for no lookup.
        Index(
            "ix_persons_france_travail_id",
            "france_travail_id",
            sqlite_where=text("france_travail_id IS NOT NULL"),
            postgresql_where=text("france_travail_id IS NOT NULL"),
        ),
        Index(
            "ix_persons_current_structure_id",
            "current_structure_id",
            sqlite_where=text("current_structure_id IS NOT NULL"),
            postgresql_where=text("current_structure_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public: Mapped[Public] = mapped_column(enum_type(Public, "person_public"))
    civility: Mapped[str | None] = mapped_column(String(3))
    last_name: Mapped[str] = mapped_column(String(100))
    birth_name: Mapped[str | None] = mapped_column(String(100))
    first_name: Mapped[str] = mapped_column(String(100))
    other_first_names: Mapped[str | None] = mapped_column(String(200))
    # Normalised "LASTNAME FIRSTNAME" (no accents, case, hyphens) for search and probable matches.
    search_name: Mapped[str] = mapped_column(String(220))
    birth_date: Mapped[dt.date]
    birth_place: Mapped[str | None] = mapped_column(String(100))
    sex: Mapped[Sex | None] = mapped_column(enum_type(Sex, "person_sex"))
    # NIR: 13 characters + key; never logged, masked outside the person's own file.
    nir: Mapped[str | None] = mapped_column(String(13))
    nir_key: Mapped[int | None]
    nir_verified: Mapped[bool] = mapped_column(default=False)

    household_id: Mapped[int | None] = mapped_column(deferrable_fk("households.id"))
    caf_role: Mapped[CafRole | None] = mapped_column(enum_type(CafRole, "caf_role"))
    france_travail_id: Mapped[str | None] = mapped_column(String(11))

    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(30))
    address_line: Mapped[str | None] = mapped_column(String(300))
    address_complement: Mapped[str | None] = mapped_column(String(300))
    postal_code: Mapped[str | None] = mapped_column(String(5))
    commune_insee: Mapped[str | None] = mapped_column(deferrable_fk("communes.insee_code"))
    # Derived from the commune; kept on the row because every scoped query filters on it.
    territory_id: Mapped[int | None] = mapped_column(deferrable_fk("territories.id"), index=True)

    bound_by_duties: Mapped[bool] = mapped_column(default=False)  # SDD today
    # Organisme référent chosen by the last orientation decision (its queue or a référent).
    current_structure_id: Mapped[int | None] = mapped_column(deferrable_fk("structures.id"))
    referral_source: Mapped[str | None] = mapped_column(String(200))
    deceased_on: Mapped[dt.date | None]

    household: Mapped[Household | None] = relationship(back_populates="persons")
    commune: Mapped[Commune | None] = relationship()
    territory: Mapped[Territory | None] = relationship()
    current_structure: Mapped[Structure | None] = relationship()
    sdd_periods: Mapped[list[SddPeriod]] = relationship(
        back_populates="person", order_by="SddPeriod.started_on"
    )

    @property
    def masked_nir(self) -> str | None:
        if not self.nir:
            return None
        return f"{self.nir[0]} {self.nir[1:3]} {self.nir[3:5]} ** *** ***"


class SddPeriod(Base):
    """A dated interval of (ETATDOSRSA, TOPPERSDRODEVORSA) for one person.

    Opened by the first flow that shows a state, closed by the first that shows another.
    """

    __tablename__ = "sdd_periods"
    __table_args__ = (
        CheckConstraint("ended_on IS NULL OR ended_on >= started_on", name="period_order"),
        Index(
            "uq_sdd_periods_open_per_person",
            "person_id",
            unique=True,
            sqlite_where=text("ended_on IS NULL"),
            postgresql_where=text("ended_on IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(
        deferrable_fk("persons.id", ondelete="CASCADE"), index=True
    )
    rsa_state: Mapped[str | None] = mapped_column(String(1))
    bound_by_duties: Mapped[bool]
    started_on: Mapped[dt.date]
    ended_on: Mapped[dt.date | None]
    source: Mapped[str] = mapped_column(String(40))

    person: Mapped[Person] = relationship(back_populates="sdd_periods")
