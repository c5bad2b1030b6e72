"""idempotency_key: the first answer of every create made with an ``Idempotency-Key``.

A row is written in the same transaction as the create it answers, so after a crash
either both are stored or neither; a retry with the same key finds the row and gets the
stored answer instead of a second create.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_key",
        sa.Column("principal", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("operation", sa.Text, nullable=False),
        sa.Column("request_hash", sa.Text, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("response", JSONB),
        sa.Column("resource_id", sa.BigInteger),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("principal", "key", name="idempotency_key_pkey"),
        sa.CheckConstraint("char_length(key) BETWEEN 1 AND 200", name="idempotency_key_length"),
    )
    op.create_index("idempotency_key_created_at", "idempotency_key", ["created_at"])


def downgrade() -> None:
    op.drop_index("idempotency_key_created_at", table_name="idempotency_key")
    op.drop_table("idempotency_key")
