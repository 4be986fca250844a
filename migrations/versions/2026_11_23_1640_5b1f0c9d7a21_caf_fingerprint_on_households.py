"""CAF fingerprint kept on the household row: caf_household_syncs merged into households

The fingerprint of a household's last applied bytes lived in a table of its own, one row per
household (its own heap, three indexes and a foreign key per imported household, and one more
lookup per batch). Its flow date was always the household's ``last_flow_on``; the fingerprint
and the run now sit on ``households`` (``caf_content_hash``, ``caf_run_id``).

Revision ID: 5b1f0c9d7a21
Revises: e2b36bd77445
Create Date: 2026-11-23 16:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b1f0c9d7a21"
down_revision: str | Sequence[str] | None = "e2b36bd77445"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("households") as batch_op:
        batch_op.add_column(sa.Column("caf_content_hash", sa.LargeBinary(length=16), nullable=True))
        batch_op.add_column(sa.Column("caf_run_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE households SET "
        "caf_content_hash = (SELECT s.content_hash FROM caf_household_syncs s "
        "WHERE s.household_id = households.id), "
        "caf_run_id = (SELECT s.run_id FROM caf_household_syncs s "
        "WHERE s.household_id = households.id) "
        "WHERE EXISTS (SELECT 1 FROM caf_household_syncs s WHERE s.household_id = households.id)"
    )
    op.drop_table("caf_household_syncs")


def downgrade() -> None:
    op.create_table(
        "caf_household_syncs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("caf_numorg", sa.String(length=3), nullable=False),
        sa.Column("caf_matricule", sa.String(length=15), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.LargeBinary(length=16), nullable=False),
        sa.Column("flow_dtref", sa.Date(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_caf_household_syncs_household_id_households"),
            ondelete="CASCADE",
            deferrable=True,
            initially="IMMEDIATE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caf_household_syncs")),
        sa.UniqueConstraint(
            "caf_matricule",
            "caf_numorg",
            name=op.f("uq_caf_household_syncs_caf_matricule_caf_numorg"),
        ),
    )
    op.create_index(
        op.f("ix_caf_household_syncs_household_id"),
        "caf_household_syncs",
        ["household_id"],
        unique=False,
    )
    op.execute(
        "INSERT INTO caf_household_syncs "
        "(caf_numorg, caf_matricule, household_id, content_hash, flow_dtref, run_id) "
        "SELECT caf_numorg, caf_matricule, id, caf_content_hash, last_flow_on, caf_run_id "
        "FROM households WHERE caf_content_hash IS NOT NULL AND last_flow_on IS NOT NULL"
    )
    with op.batch_alter_table("households") as batch_op:
        batch_op.drop_column("caf_run_id")
        batch_op.drop_column("caf_content_hash")
