"""Call records: calls and their events.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("sip_call_id", sa.Text(), nullable=False),
        sa.Column("from_uri", sa.Text(), nullable=False),
        sa.Column("to_uri", sa.Text(), nullable=False),
        sa.Column("caller_number", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.Column("codec", sa.Text(), nullable=True),
        sa.Column("flow", sa.Text(), nullable=True),
        sa.Column("remote_media", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_calls"),
    )
    op.create_index("ix_calls_sip_call_id", "calls", ["sip_call_id"])
    op.create_index("ix_calls_started_at", "calls", ["started_at"])

    op.create_table(
        "call_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name="fk_call_events_call_id_calls", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_call_events"),
    )
    op.create_index("ix_call_events_call_id_seq", "call_events", ["call_id", "seq"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_call_events_call_id_seq", table_name="call_events")
    op.drop_table("call_events")
    op.drop_index("ix_calls_started_at", table_name="calls")
    op.drop_index("ix_calls_sip_call_id", table_name="calls")
    op.drop_table("calls")
