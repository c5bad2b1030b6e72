"""past one city (issue 12): daily incident rollups per grid and category.

(placeholder: filled by its issue's work; an empty step until then)

Revision ID: 0016
Revises: 0015
"""

from alembic import op  # noqa: F401

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
