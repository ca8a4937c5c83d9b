"""Index queue entries by (queue, ended_at): the expected wait reads a queue's last 50 finished calls.

Without it every `Router.position()` (each waiting caller asks at every announcement) scanned and sorted all
the queue's finished entries, which only grow (bench/routing.py: 6 -> 50 ms at 100,000 finished entries).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 00:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("queue_entries", schema=None) as batch_op:
        batch_op.create_index("ix_queue_entries_queue_ended_at", ["queue", "ended_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("queue_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_queue_entries_queue_ended_at")
