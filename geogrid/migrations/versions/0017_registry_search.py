"""registry (issue 15): search and bulk-load indexes.

(placeholder: filled by its issue's work; an empty step until then)

Revision ID: 0017
Revises: 0016
"""

from alembic import op  # noqa: F401

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
