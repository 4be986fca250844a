"""Agents: the staff who log in (référents, chargés d'orientation, managers, admins)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from spie.db import Base, TimestampMixin, VersionedMixin, enum_type

if TYPE_CHECKING:
    from spie.auth.models import AgentSessionState
    from spie.structures.models import Structure
    from spie.territories.models import Territory


class Role(enum.StrEnum):
    REFERENT = "referent"
    CHARGE_ORIENTATION = "charge_orientation"
    MANAGER = "manager"
    ADMIN = "admin"


ROLE_LABELS = {
    Role.REFERENT: "Référent",
    Role.CHARGE_ORIENTATION: "Chargé d'orientation",
    Role.MANAGER: "Manager",
    Role.ADMIN: "Administrateur",
}

agent_territories = Table(
    "agent_territories",
    Base.metadata,
    Column("agent_id", ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    Column("territory_id", ForeignKey("territories.id"), primary_key=True, index=True),
)


class AgentRole(Base):
    __tablename__ = "agent_roles"

    agent_id: Mapped[int] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[Role] = mapped_column(enum_type(Role, "agent_role"), primary_key=True)


class Agent(TimestampMixin, VersionedMixin, Base):
    __tablename__ = "agents"
    __table_args__ = (
        CheckConstraint("caseload_capacity >= 0", name="caseload_capacity_non_negative"),
        CheckConstraint(
            "active_until IS NULL OR active_until >= active_from", name="active_period_order"
        ),
        CheckConstraint("email = lower(email)", name="email_lowercase"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    structure_id: Mapped[int] = mapped_column(ForeignKey("structures.id"), index=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    caseload_capacity: Mapped[int] = mapped_column(default=0)
    active_from: Mapped[dt.date]
    active_until: Mapped[dt.date | None]

    structure: Mapped[Structure] = relationship(back_populates="agents")
    role_rows: Mapped[list[AgentRole]] = relationship(cascade="all, delete-orphan", lazy="selectin")
    territories: Mapped[list[Territory]] = relationship(
        secondary=agent_territories, lazy="selectin"
    )
    session_state: Mapped[AgentSessionState | None] = relationship(
        lazy="selectin", cascade="all, delete-orphan"
    )

    @property
    def last_login_at(self) -> dt.datetime | None:
        return self.session_state.last_login_at if self.session_state else None

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(row.role for row in self.role_rows)

    def set_roles(self, roles: set[Role]) -> None:
        current = {row.role: row for row in self.role_rows}
        for role, row in current.items():
            if role not in roles:
                self.role_rows.remove(row)
        for role in roles - current.keys():
            self.role_rows.append(AgentRole(role=role))

    def has_role(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def is_active_on(self, day: dt.date) -> bool:
        return self.active_from <= day and (self.active_until is None or day <= self.active_until)

    # flask-login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        from spie.clocks.today import paris_today

        return self.is_active_on(paris_today())

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        # The session stores the id and the server-side nonce: rotating the nonce (logout,
        # password change) voids every session cookie issued before.
        nonce = self.session_state.nonce if self.session_state else "-"
        return f"agent:{self.id}:{nonce}"
