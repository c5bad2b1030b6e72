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

#: the listed events of a small statement (``rows``: the changed rows, ordered by id)
_EVENTS = """
    (SELECT json_agg(json_build_object(
        'id', id, 'kind', {kind}, 'status', status, 'category', category,
        'grid_code', grid_code, 'community_code', community_code,
        'street_code', street_code, 'district_code', district_code,
        'lon', round(ST_X(geom)::numeric, 7), 'lat', round(ST_Y(geom)::numeric, 7),
        'reported_at', reported_at) ORDER BY id)
     FROM ({rows}) e)
"""

#: the body of a trigger function: one pass for the count and the extent; the events are
#: listed only for a small statement (a bulk import pays one aggregate, not a sort)
_BODY = """
    DECLARE n bigint; ext box2d; payload json;
    BEGIN
        IF coalesce(current_setting('geogrid.live', true), '') = 'off' THEN
            RETURN NULL;
        END IF;
        SELECT count(*), ST_Extent(geom) INTO n, ext FROM ({changed}) c;
        IF n = 0 THEN
            RETURN NULL;
        END IF;
        payload := json_build_object(
            'v', 1, 'kind', {kind}, 'count', n, 'truncated', n > {max},
            'bbox', json_build_array(ST_XMin(ext), ST_YMin(ext), ST_XMax(ext), ST_YMax(ext)),
            'events', CASE WHEN n > {max} THEN '[]'::json ELSE {events} END);
        PERFORM pg_notify('geogrid_changes', payload::text);
        RETURN NULL;
    END
"""

_INSERTED = "SELECT * FROM new_rows"
_STATUS_CHANGED = (
    "SELECT n.* FROM new_rows n JOIN old_rows o ON o.id = n.id "
    "WHERE o.status IS DISTINCT FROM n.status"
)


def _function(name: str, kind: str, changed: str) -> str:
    events = _EVENTS.format(kind=kind, rows=changed)
    body = _BODY.format(kind=kind, changed=changed, max=_MAX_EVENTS, events=events)
    return f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $${body}$$"


def upgrade() -> None:
    op.execute(_function("geogrid_live_insert", "'new'", _INSERTED))
    op.execute(_function("geogrid_live_status", "'status'", _STATUS_CHANGED))
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
