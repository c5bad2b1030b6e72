"""past one city (issue 12): daily incident rollups per grid and category.

``incident_daily`` holds, per local day of ``reported_at`` × boundary version × the four
unit codes × category, the number of incidents reported (``incidents``) and how many of
them are resolved or closed now (``resolved``, the trend's figure). Every count a window
needs that depends only on the day an incident was reported (incidents, previous
incidents, effort-weighted incidents, mismatched versions) is an exact sum over whole
days; :mod:`geogrid.store.rollup` reads the partial days at a window's edges from
``incident`` itself.

Which day. The day is the local date in the city's zone at migration time
(``incident_daily_zone()``, an IMMUTABLE SQL function; settings.city.timezone), because
windows are dates in that zone: a calendar month is whole rows. A reader given a window
in another zone still gets exact answers (the edges come from the base table), only
slower. To change the zone: replace the function and rebuild (``incident_daily_rebuild()``).

Keys carry the four codes and the version rather than only ``grid_code``: a level is a
``GROUP BY`` of its own column and an incident outside every grid keeps its other codes,
exactly as on the base table; within a version the codes are functionally dependent, so
this adds no rows. NULL codes are keys too (``UNIQUE NULLS NOT DISTINCT``, PostgreSQL 15).

Maintenance is three statement-level triggers on ``incident`` with transition tables (they
are allowed on a partitioned root, so they keep working after 0015 partitions the table):
one grouped upsert per statement, so a million-row COPY pays one aggregate, and a
report pays one small upsert. UPDATEs touch the rollup only for rows whose key
(reported_at's day, version, codes, category) or resolved-ness changed: a publish's
re-attribution moves counts between grids; an ordinary transition
(reported → accepted → …) writes nothing. Rows that reach zero are deleted.

Also a partial expression index on the time an incident was done, for done incidents
only (new reports are not in it, so a report pays nothing for it): the backlog at a past
time ``t`` (done after ``t``) is then an index range instead of a sequential scan.

Revision ID: 0016
Revises: 0015
"""

from alembic import op

from geogrid.core.lifecycle import DONE_STATUSES, HANDLED_STATUSES
from geogrid.settings import get_settings

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_KEY = "day, version_id, grid_code, community_code, street_code, district_code, category"
_HANDLED = ", ".join(f"'{s}'" for s in HANDLED_STATUSES)  # constants of core, not input
_DONE = ", ".join(f"'{s}'" for s in DONE_STATUSES)

#: one signed row per changed incident → grouped deltas, upserted; zero rows removed
_APPLY = f"""
        WITH up AS (
            INSERT INTO incident_daily AS d ({_KEY}, incidents, resolved)
            SELECT {_KEY}, sum(n), sum(r) FROM ({{delta}}) x
            GROUP BY {_KEY} HAVING sum(n) <> 0 OR sum(r) <> 0
            ORDER BY {_KEY}
            ON CONFLICT ({_KEY}) DO UPDATE
                SET incidents = d.incidents + EXCLUDED.incidents,
                    resolved = d.resolved + EXCLUDED.resolved
            RETURNING day, incidents, resolved)
        SELECT array_agg(DISTINCT day) INTO zero_days FROM up
        WHERE incidents = 0 AND resolved = 0;
        IF zero_days IS NOT NULL THEN  -- after a delete or a move: only those days' rows
            DELETE FROM incident_daily
            WHERE day = ANY(zero_days) AND incidents = 0 AND resolved = 0;
        END IF;
"""


#: an INSERT only adds: one plain upsert (no zero rows can appear), the cheapest for a report
_ADD = f"""
        INSERT INTO incident_daily AS d ({_KEY}, incidents, resolved)
        SELECT {_KEY}, sum(n), sum(r) FROM ({{delta}}) x
        GROUP BY {_KEY}
        ORDER BY {_KEY}
        ON CONFLICT ({_KEY}) DO UPDATE
            SET incidents = d.incidents + EXCLUDED.incidents,
                resolved = d.resolved + EXCLUDED.resolved;
"""


def _side(rows: str, sign: str) -> str:
    return (
        f"SELECT (reported_at AT TIME ZONE incident_daily_zone())::date AS day, version_id, "
        f"grid_code, community_code, street_code, district_code, category, {sign}1 AS n, "
        f"CASE WHEN status IN ({_HANDLED}) THEN {sign}1 ELSE 0 END AS r FROM {rows}"
    )


_CHANGED = (
    "(SELECT o.* FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE "
    "(o.reported_at AT TIME ZONE incident_daily_zone())::date "
    "IS DISTINCT FROM (n.reported_at AT TIME ZONE incident_daily_zone())::date "
    "OR (o.version_id, o.grid_code, o.community_code, o.street_code, o.district_code, "
    "o.category) IS DISTINCT FROM (n.version_id, n.grid_code, n.community_code, "
    "n.street_code, n.district_code, n.category) "
    f"OR (o.status IN ({_HANDLED})) IS DISTINCT FROM (n.status IN ({_HANDLED})))"
)


def _function(name: str, delta: str, template: str = _APPLY) -> str:
    body = template.format(delta=delta)
    return (
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"    DECLARE zero_days date[];\n    BEGIN{body}        RETURN NULL;\n    END\n$$"
    )


def upgrade() -> None:
    zone = get_settings().city.timezone.replace("'", "''")
    op.execute(
        "CREATE OR REPLACE FUNCTION incident_daily_zone() RETURNS text "
        f"LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT text '{zone}' $$"
    )
    op.execute(
        """
        CREATE TABLE incident_daily (
            day date NOT NULL,
            version_id integer,
            grid_code text,
            community_code text,
            street_code text,
            district_code text,
            category text NOT NULL,
            incidents bigint NOT NULL,
            resolved bigint NOT NULL
        )
        """
    )
    op.execute(
        f"CREATE UNIQUE INDEX incident_daily_key ON incident_daily ({_KEY}) NULLS NOT DISTINCT"
    )
    op.execute(
        "CREATE INDEX incident_done_at ON incident "
        "((COALESCE(resolved_at, closed_at, updated_at))) "
        f"WHERE status IN ({_DONE})"
    )
    op.execute(_function("incident_daily_insert", _side("new_rows", "+"), _ADD))
    op.execute(_function("incident_daily_delete", _side("old_rows", "-")))
    changed_new = _CHANGED.replace("SELECT o.*", "SELECT n.*")
    op.execute(
        _function(
            "incident_daily_update",
            f"{_side(_CHANGED + ' o', '-')} UNION ALL {_side(changed_new + ' n', '+')}",
        )
    )
    op.execute(
        "CREATE TRIGGER incident_daily_insert AFTER INSERT ON incident "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION incident_daily_insert()"
    )
    op.execute(
        "CREATE TRIGGER incident_daily_update AFTER UPDATE ON incident "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION incident_daily_update()"
    )
    op.execute(
        "CREATE TRIGGER incident_daily_delete AFTER DELETE ON incident "
        "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION incident_daily_delete()"
    )
    # rebuild from the base table (the backfill now; after a zone change later)
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION incident_daily_rebuild() RETURNS bigint
        LANGUAGE plpgsql AS $$
            DECLARE k bigint;
            BEGIN
                LOCK TABLE incident IN SHARE MODE;  -- no write may slip between the two
                DELETE FROM incident_daily;
                INSERT INTO incident_daily ({_KEY}, incidents, resolved)
                SELECT {_KEY}, sum(n), sum(r) FROM ({_side("incident", "+")}) x
                GROUP BY {_KEY};
                GET DIAGNOSTICS k = ROW_COUNT;
                RETURN k;
            END
        $$
        """
    )
    # a month loaded standalone and attached whole (the bulk ingest, an archive restored)
    # or detached for the archive never passes the statement triggers: 0015's hooks,
    # no-ops there, fold the table's rows in or out here
    op.execute(
        "CREATE OR REPLACE FUNCTION geogrid_incidents_attached(rel regclass) RETURNS void "
        "LANGUAGE plpgsql AS $hook$ BEGIN EXECUTE format($q$"
        + _ADD.format(delta=_side("%s", "+"))
        + "$q$, rel); END $hook$"
    )
    op.execute(
        "CREATE OR REPLACE FUNCTION geogrid_incidents_detached(rel regclass) RETURNS void "
        "LANGUAGE plpgsql AS $hook$ DECLARE zero_days date[]; BEGIN EXECUTE format($q$"
        + _APPLY.format(delta=_side("%s", "-"))
        .replace(
            "SELECT array_agg(DISTINCT day) INTO zero_days FROM up",
            "SELECT array_agg(DISTINCT day) FROM up",
        )
        .split(";")[0]
        + "$q$, rel) INTO zero_days; "
        "IF zero_days IS NOT NULL THEN DELETE FROM incident_daily "
        "WHERE day = ANY(zero_days) AND incidents = 0 AND resolved = 0; END IF; END $hook$"
    )
    op.execute("SELECT incident_daily_rebuild()")
    op.execute("ANALYZE incident_daily")


def downgrade() -> None:
    for t in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS incident_daily_{t} ON incident")
        op.execute(f"DROP FUNCTION IF EXISTS incident_daily_{t}()")
    op.execute("DROP FUNCTION IF EXISTS incident_daily_rebuild()")
    for hook in ("attached", "detached"):  # back to 0015's no-ops
        op.execute(
            f"CREATE OR REPLACE FUNCTION geogrid_incidents_{hook}(rel regclass) RETURNS void "
            "LANGUAGE plpgsql AS $$ BEGIN END $$"
        )
    op.execute("DROP INDEX IF EXISTS incident_done_at")
    op.execute("DROP TABLE IF EXISTS incident_daily")
    op.execute("DROP FUNCTION IF EXISTS incident_daily_zone()")
