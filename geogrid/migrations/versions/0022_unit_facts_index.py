"""units (issue 12): the version-and-level index covers what metrics read of every unit.

A month of grid metrics reads, besides the incident aggregates, the fingerprint of a
version's units at a level (count, max id: :func:`geogrid.store.metrics.unit_fingerprint`),
the grid totals of the load index (households, area) and the grid → community links of
the worker FTEs. Each was a heap scan of the ``unit`` table, whose rows carry their
boundary polygons: 3–5 ms apiece at 8,798 grids. With ``id``, ``code``, ``parent_code``,
``households`` and ``area_m2`` in the ``(version_id, level)`` index they are index-only
scans (units change only when a plan is published, so the visibility map stays set).

Revision ID: 0022
Revises: 0021
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX unit_version_level_facts ON unit (version_id, level) "
        "INCLUDE (id, code, parent_code, households, area_m2)"
    )
    op.execute("DROP INDEX unit_version_level")
    op.execute("ANALYZE unit")


def downgrade() -> None:
    op.execute("CREATE INDEX unit_version_level ON unit (version_id, level)")
    op.execute("DROP INDEX unit_version_level_facts")
