"""units (issue 12): the version-and-level index covers what metrics read of every unit.

A month of grid metrics reads, besides the incident aggregates, the fingerprint of a
version's units at a level (count, max id: :func:`geogrid.store.metrics.unit_fingerprint`),
the grid totals of the load index (households, area) and the grid → community links of
the worker FTEs. Each was a heap scan of the ``unit`` table, whose rows carry their
boundary polygons: 3–5 ms apiece at 8,798 grids. With ``id``, ``code``, ``parent_code``,
``households`` and ``area_m2`` in the ``(version_id, level)`` index they are index-only
scans (units change only when a plan is published, so the visibility map stays set).

And ``incident_daily_rebuild()`` writes the rollup in day order, as the triggers' upserts
do: a month's rows lie together on disk. Rebuilt in hash order they were spread over
every page — a month of grid metrics read 3,815 pages for 32,554 rows instead of ~460.

Revision ID: 0022
Revises: 0021
"""

from alembic import op

from geogrid.core.lifecycle import HANDLED_STATUSES

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

_KEY = "day, version_id, grid_code, community_code, street_code, district_code, category"
_HANDLED = ", ".join(f"'{s}'" for s in HANDLED_STATUSES)  # constants of core, not input


def _rebuild(order: str) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION incident_daily_rebuild() RETURNS bigint
        LANGUAGE plpgsql AS $$
            DECLARE k bigint;
            BEGIN
                LOCK TABLE incident IN SHARE MODE;  -- no write may slip between the two
                DELETE FROM incident_daily;
                INSERT INTO incident_daily ({_KEY}, incidents, resolved)
                SELECT {_KEY}, sum(n), sum(r) FROM (
                    SELECT (reported_at AT TIME ZONE incident_daily_zone())::date AS day,
                           version_id, grid_code, community_code, street_code,
                           district_code, category, 1 AS n,
                           CASE WHEN status IN ({_HANDLED}) THEN 1 ELSE 0 END AS r
                    FROM incident) x
                GROUP BY {_KEY}{order};
                GET DIAGNOSTICS k = ROW_COUNT;
                RETURN k;
            END
        $$
    """


def upgrade() -> None:
    op.execute(
        "CREATE INDEX unit_version_level_facts ON unit (version_id, level) "
        "INCLUDE (id, code, parent_code, households, area_m2)"
    )
    op.execute("DROP INDEX unit_version_level")
    op.execute("ANALYZE unit")
    op.execute(_rebuild(f" ORDER BY {_KEY}"))


def downgrade() -> None:
    op.execute("CREATE INDEX unit_version_level ON unit (version_id, level)")
    op.execute("DROP INDEX unit_version_level_facts")
    op.execute(_rebuild(""))
