"""Initial schema: versioned boundaries, buildings, categories, accounts, incidents, plans.

Revision ID: 0001
Revises:
"""

from alembic import op

from geogrid.store.tables import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TABLES = [
    "boundary_version", "unit", "building", "category", "account", "account_unit",
    "incident", "incident_event", "incident_attribution", "plan", "plan_edit",
]


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    bind = op.get_bind()
    # The schema of revision 0001 is the tables as first defined; later revisions alter
    # them with op.* calls, never by editing this file.
    metadata.create_all(bind, tables=[metadata.tables[t] for t in _TABLES])


def downgrade() -> None:
    bind = op.get_bind()
    metadata.drop_all(bind, tables=[metadata.tables[t] for t in reversed(_TABLES)])
