"""deferrable import foreign keys, partial person indexes, households unique key by matricule

The foreign keys of the tables the CAF import fills become DEFERRABLE INITIALLY IMMEDIATE:
nothing changes for any other transaction (checked at the end of each statement), and an import
batch defers them to its COMMIT, which it overlaps with reading the next batch
(``spie.integrations.bulk.BatchCommit``). Two person indexes become partial (NOT NULL: they
were mostly NULLs), and the households' unique key is put in matricule order so that it serves
the lookups by matricule, replacing their separate index.

Revision ID: e2b36bd77445
Revises: 23e2a765f81d
Create Date: 2026-11-23 16:24:04.413702
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e2b36bd77445"
down_revision: str | Sequence[str] | None = "23e2a765f81d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, constraint, local column, referred table, referred column, ondelete)
FOREIGN_KEYS = (
    ("caf_household_events", "fk_caf_household_events_household_id_households",
     "household_id", "households", "id", "CASCADE"),
    ("caf_household_syncs", "fk_caf_household_syncs_household_id_households",
     "household_id", "households", "id", "CASCADE"),
    ("orientation_cases", "fk_orientation_cases_person_id_persons",
     "person_id", "persons", "id", "CASCADE"),
    ("orientation_cases", "fk_orientation_cases_policy_id_delay_policies",
     "policy_id", "delay_policies", "id", None),
    ("orientation_cases", "fk_orientation_cases_territory_id_territories",
     "territory_id", "territories", "id", None),
    ("persons", "fk_persons_household_id_households",
     "household_id", "households", "id", None),
    ("persons", "fk_persons_commune_insee_communes",
     "commune_insee", "communes", "insee_code", None),
    ("persons", "fk_persons_territory_id_territories",
     "territory_id", "territories", "id", None),
    ("persons", "fk_persons_current_structure_id_structures",
     "current_structure_id", "structures", "id", None),
    ("sdd_periods", "fk_sdd_periods_person_id_persons",
     "person_id", "persons", "id", "CASCADE"),
)
PARTIAL_INDEXES = (
    ("ix_persons_france_travail_id", "france_travail_id"),
    ("ix_persons_current_structure_id", "current_structure_id"),
)


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _foreign_keys(deferrable: bool) -> None:
    if _is_postgresql():
        # ALTER CONSTRAINT: no drop, no re-validation of the existing rows.
        clause = "DEFERRABLE INITIALLY IMMEDIATE" if deferrable else "NOT DEFERRABLE"
        for table, name, *_rest in FOREIGN_KEYS:
            op.execute(f'ALTER TABLE "{table}" ALTER CONSTRAINT "{name}" {clause}')
        return
    for table in dict.fromkeys(table for table, *_rest in FOREIGN_KEYS):
        with op.batch_alter_table(table, recreate="always") as batch_op:
            for fk_table, name, column, referred, referred_column, ondelete in FOREIGN_KEYS:
                if fk_table != table:
                    continue
                batch_op.drop_constraint(name, type_="foreignkey")
                batch_op.create_foreign_key(
                    name,
                    referred,
                    [column],
                    [referred_column],
                    ondelete=ondelete,
                    deferrable=True if deferrable else None,
                    initially="IMMEDIATE" if deferrable else None,
                )


def _households_unique(columns: list[str], drop: str, create: str) -> None:
    with op.batch_alter_table("households") as batch_op:
        batch_op.drop_constraint(drop, type_="unique")
        batch_op.create_unique_constraint(create, columns)


def upgrade() -> None:
    _foreign_keys(deferrable=True)
    for name, column in PARTIAL_INDEXES:
        op.drop_index(name, table_name="persons")
        op.create_index(
            name,
            "persons",
            [column],
            postgresql_where=sa.text(f"{column} IS NOT NULL"),
            sqlite_where=sa.text(f"{column} IS NOT NULL"),
        )
    op.drop_index("ix_households_caf_matricule", table_name="households")
    _households_unique(
        ["caf_matricule", "caf_numorg"],
        "uq_households_caf_numorg_caf_matricule",
        "uq_households_caf_matricule_caf_numorg",
    )


def downgrade() -> None:
    _households_unique(
        ["caf_numorg", "caf_matricule"],
        "uq_households_caf_matricule_caf_numorg",
        "uq_households_caf_numorg_caf_matricule",
    )
    op.create_index("ix_households_caf_matricule", "households", ["caf_matricule"])
    for name, column in PARTIAL_INDEXES:
        op.drop_index(name, table_name="persons")
        op.create_index(name, "persons", [column])
    _foreign_keys(deferrable=False)
