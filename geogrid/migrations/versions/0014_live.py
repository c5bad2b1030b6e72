"""past one city (issue 12): change notifications for the live map (LISTEN/NOTIFY).

Two statement-level triggers on ``incident`` send ONE ``pg_notify('geogrid_changes', …)``
per statement (delivered at commit, dropped on rollback):

* ``incident_live_insert`` — AFTER INSERT (the API's reports, Open311, the CSV/COPY
  ingest), over the statement's transition table ``new_rows``;
* ``incident_live_status`` — AFTER UPDATE, over ``old_rows``/``new_rows`` joined on id,
  keeping only rows whose ``status`` changed (a column list ``UPDATE OF status`` cannot be
  combined with transition tables in PostgreSQL).

Why triggers rather than a ``SELECT pg_notify`` in the service layer: every writer of
incidents (the report workflow, transitions, escalations, Open311, the bulk ingest, future
writers) is covered without each remembering to notify, and the notification is part of
the writing transaction by construction. Why statement-level with a transition table:
a 1M-row import sends one message (with its count and extent), not a million.

The payload (JSON, well under the 8000-byte limit of NOTIFY) has no personal data::

    {"v": 1, "kind": "new" | "status", "count": n, "bbox": [w, s, e, n],
     "events": [{"id", "kind", "status", "category", "grid_code", "community_code",
                 "street_code", "district_code", "lon", "lat", "reported_at"}, …]}

``events`` lists at most 16 rows; a larger statement sends ``"truncated": true`` and
listeners refresh what the bbox touches instead. ``SET LOCAL geogrid.live = 'off'`` in a
transaction skips the notifications of its statements (the transition table is still
captured by PostgreSQL; the scan of it is skipped).

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

#: rows listed in one notification (16 x ~260 bytes stays far below NOTIFY's 8000 bytes)
_MAX_EVENTS = 16

_PAYLOAD = """
    SELECT json_build_object(
        'v', 1,
        'kind', {kind},
        'count', (SELECT count(*) FROM changed),
        'truncated', (SELECT count(*) FROM changed) > {max},
        'bbox', (SELECT json_build_array(min(ST_X(geom)), min(ST_Y(geom)),
                                         max(ST_X(geom)), max(ST_Y(geom))) FROM changed),
        'events', coalesce((SELECT json_agg(json_build_object(
            'id', id, 'kind', {kind}, 'status', status, 'category', category,
            'grid_code', grid_code, 'community_code', community_code,
            'street_code', street_code, 'district_code', district_code,
            'lon', round(ST_X(geom)::numeric, 7), 'lat', round(ST_Y(geom)::numeric, 7),
            'reported_at', reported_at))
            FROM (SELECT * FROM changed ORDER BY id LIMIT {max}) e), '[]'::json)
    )::text
"""


def upgrade() -> None:
    insert_payload = _PAYLOAD.format(kind="'new'", max=_MAX_EVENTS)
    status_payload = _PAYLOAD.format(kind="'status'", max=_MAX_EVENTS)
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION geogrid_live_insert() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE payload text;
        BEGIN
            IF coalesce(current_setting('geogrid.live', true), '') = 'off' THEN
                RETURN NULL;
            END IF;
            WITH changed AS (SELECT * FROM new_rows)
            {insert_payload} INTO payload;
            IF payload IS NOT NULL AND payload::json->>'count' <> '0' THEN
                PERFORM pg_notify('geogrid_changes', payload);
            END IF;
            RETURN NULL;
        END $$;
        """
    )
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION geogrid_live_status() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE payload text;
        BEGIN
            IF coalesce(current_setting('geogrid.live', true), '') = 'off' THEN
                RETURN NULL;
            END IF;
            WITH changed AS (
                SELECT n.* FROM new_rows n JOIN old_rows o ON o.id = n.id
                WHERE o.status IS DISTINCT FROM n.status
            )
            {status_payload} INTO payload;
            IF payload IS NOT NULL AND payload::json->>'count' <> '0' THEN
                PERFORM pg_notify('geogrid_changes', payload);
            END IF;
            RETURN NULL;
        END $$;
        """
    )
    op.execute(
        "CREATE TRIGGER incident_live_insert AFTER INSERT ON incident "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION geogrid_live_insert()"
    )
    op.execute(
        "CREATE TRIGGER incident_live_status AFTER UPDATE ON incident "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION geogrid_live_status()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS incident_live_status ON incident")
    op.execute("DROP TRIGGER IF EXISTS incident_live_insert ON incident")
    op.execute("DROP FUNCTION IF EXISTS geogrid_live_status()")
    op.execute("DROP FUNCTION IF EXISTS geogrid_live_insert()")
