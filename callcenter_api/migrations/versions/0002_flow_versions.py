"""IVR flow versions and the live alias.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "flow_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flow_versions"),
        sa.UniqueConstraint("name", "version", name="uq_flow_versions_name_version"),
    )
    op.create_table(
        "flow_live",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["name", "version"],
            ["flow_versions.name", "flow_versions.version"],
            name="fk_flow_live_name_flow_versions",
        ),
        sa.PrimaryKeyConstraint("name", name="pk_flow_live"),
    )


def downgrade() -> None:
    op.drop_table("flow_live")
    op.drop_table("flow_versions")
