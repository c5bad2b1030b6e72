"""past one city (issue 12): incident history partitioned by month.

(placeholder: filled by its issue's work; an empty step until then)

Revision ID: 0015
Revises: 0014
"""

from alembic import op  # noqa: F401

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
