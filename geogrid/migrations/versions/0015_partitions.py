"""past one city (issue 12): incident history partitioned by month.

``incident`` becomes ``PARTITION BY RANGE (reported_at)`` with one partition per calendar
month in the city's zone (``settings.city.timezone``: the months of metrics and of the
GeoParquet history, so that a month's query reads one partition) and a DEFAULT partition.
Every column, CHECK, index, the ``incident_id_seq`` default and the two statement-level
NOTIFY triggers of 0014 are kept (recreated on the new parent); existing rows are copied.

**Why a key table.** A unique constraint of a partitioned table must contain the
partition key, so ``incident``'s primary key becomes ``(id, reported_at)`` and nothing can
reference ``incident(id)`` any more — yet seven foreign keys did (incident_attribution,
incident_event, dispute, notification, survey_link, satisfaction, follow_up), and
``source_id`` must stay unique across all months (the imports' idempotency).
``incident_key (id PK, source_id UNIQUE, reported_at)`` is a small non-partitioned table
with one row per incident: the seven foreign keys reference it (their ON DELETE actions
kept), and it carries the global uniqueness of ``id`` and ``source_id`` (its unique
constraint keeps the name ``incident_source_id_key``). ``reported_at`` in it tells which
partition holds an id (a lookup by id can prune).

**Who writes the key rows.** Triggers on ``incident`` rather than every writer: the
report workflow, Open311, transitions and every test or bench that INSERTs incidents are
covered without knowing of the table (the same argument as 0014's NOTIFY triggers).

* ``incident_key_insert`` BEFORE INSERT FOR EACH ROW: inserts ``(id, source_id,
  reported_at)`` — ``ON CONFLICT (id) DO UPDATE``, because an UPDATE moving a row to
  another month is a delete + insert in which this trigger fires again for the same id.
  A duplicate ``source_id`` still fails with ``incident_source_id_key``, as before. With
  ``SET LOCAL geogrid.keys = 'off'`` it does nothing: the bulk ingest writes the keys of
  a whole load in one ``INSERT … SELECT`` instead (:mod:`geogrid.store.incidents`).
* ``incident_key_delete`` AFTER DELETE FOR EACH STATEMENT (transition table): deletes the
  keys, which cascades to the dependants exactly as the old foreign keys did.
* ``incident_key_update`` AFTER UPDATE FOR EACH STATEMENT: a changed ``source_id`` or
  ``reported_at`` is copied to the key.

There is deliberately no foreign key from ``incident`` to ``incident_key``: its per-row
check would cost a bulk load more than the rest of the COPY. Detaching a partition (the
archive, :mod:`geogrid.services.partitions`) keeps its keys — and so the events, notes and
verdicts of archived incidents — and restoring the month re-attaches the same ids.

**Why a DEFAULT partition.** Writers make the month before they write
(:func:`geogrid.services.partitions.ensure`), so normally it stays empty; it is there so
that no INSERT can ever fail for want of a partition (a report while a partition cannot be
created within its lock timeout, a raw SQL writer). Making a month moves that month's rows
out of the default partition first (:func:`geogrid.store.partitions.add_partition`).

The primary key is ``(id, reported_at)``; ``source_id``'s uniqueness lives in the key
table only (a per-partition unique index on ``(source_id, reported_at)`` would cost every
bulk load an index and check nothing the key table does not).

**Hooks.** ``geogrid_incidents_attached(regclass)`` and ``geogrid_incidents_detached(regclass)``
are called by the bulk ingest and the restore (a month's table attached whole: no INSERT
trigger fired) and by the archive (before a detached month is dropped). They do nothing
here; a revision that maintains something from ``incident``'s triggers (the daily rollup)
replaces them to fold the table's rows in or out.

Downgrade copies the attached rows back into a plain table (rows of archived, i.e.
detached and dropped, months are only in their GeoParquet files).

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import op
from sqlalchemy import text

from geogrid.core.partitioning import month_of, month_range, next_month, partition_name
from geogrid.settings import get_settings

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

#: the 0014 triggers (recreated on the new parent)
_LIVE_TRIGGERS = (
    "CREATE TRIGGER incident_live_insert AFTER INSERT ON incident "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION geogrid_live_insert()",
    "CREATE TRIGGER incident_live_status AFTER UPDATE ON incident "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION geogrid_live_status()",
)

_KEY_FUNCTIONS = (
    """
    CREATE OR REPLACE FUNCTION geogrid_incident_key_insert() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF coalesce(current_setting('geogrid.keys', true), '') = 'off' THEN
            RETURN NEW;
        END IF;
        INSERT INTO incident_key (id, source_id, reported_at)
        VALUES (NEW.id, NEW.source_id, NEW.reported_at)
        ON CONFLICT (id) DO UPDATE
            SET source_id = EXCLUDED.source_id, reported_at = EXCLUDED.reported_at;
        RETURN NEW;
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION geogrid_incident_key_delete() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM incident_key k USING old_rows o WHERE k.id = o.id;
        RETURN NULL;
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION geogrid_incident_key_update() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE incident_key k SET source_id = n.source_id, reported_at = n.reported_at
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE k.id = n.id AND (o.source_id IS DISTINCT FROM n.source_id
                               OR o.reported_at IS DISTINCT FROM n.reported_at);
        RETURN NULL;
    END $$
    """,
)

#: hooks the bulk paths call for rows that join or leave ``incident`` without its row or
#: statement triggers (a month attached whole, a month detached for the archive): no-ops
#: here; a later revision maintaining something from the triggers replaces them
_HOOKS = (
    "CREATE OR REPLACE FUNCTION geogrid_incidents_attached(rel regclass) RETURNS void "
    "LANGUAGE plpgsql AS $$ BEGIN END $$",
    "CREATE OR REPLACE FUNCTION geogrid_incidents_detached(rel regclass) RETURNS void "
    "LANGUAGE plpgsql AS $$ BEGIN END $$",
)

_KEY_TRIGGERS = (
    "CREATE TRIGGER incident_key_insert BEFORE INSERT ON incident "
    "FOR EACH ROW EXECUTE FUNCTION geogrid_incident_key_insert()",
    "CREATE TRIGGER incident_key_delete AFTER DELETE ON incident "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION geogrid_incident_key_delete()",
    "CREATE TRIGGER incident_key_update AFTER UPDATE ON incident "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION geogrid_incident_key_update()",
)


def _rows(sql: str) -> list[tuple]:
    return [tuple(r) for r in op.get_bind().execute(text(sql)).all()]


def _foreign_keys(target: str) -> list[tuple[str, str, str]]:
    """(table, constraint, definition) of the foreign keys referencing ``target``."""
    return _rows(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
        f"FROM pg_constraint WHERE contype = 'f' AND confrelid = '{target}'::regclass "
        "ORDER BY conrelid::regclass::text, conname"
    )


def _index_definitions(table: str, skip: tuple[str, ...]) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of ``table``'s indexes except ``skip``."""
    rows = _rows(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        f"WHERE x.indrelid = '{table}'::regclass ORDER BY i.relname"
    )
    return [(n, d.replace(" ON ONLY ", " ON ")) for n, d in rows if n not in skip]


def upgrade() -> None:
    zone = get_settings().city.timezone
    fks = _foreign_keys("incident")
    indexes = _index_definitions("incident", ("incident_pkey", "incident_source_id_key"))
    for table, name, _ in fks:
        op.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    op.execute("DROP TRIGGER IF EXISTS incident_live_status ON incident")
    op.execute("DROP TRIGGER IF EXISTS incident_live_insert ON incident")
    for name, _ in indexes:
        op.execute(f'DROP INDEX "{name}"')
    op.execute("ALTER TABLE incident DROP CONSTRAINT incident_pkey")
    op.execute("ALTER TABLE incident DROP CONSTRAINT incident_source_id_key")
    op.execute("ALTER TABLE incident RENAME TO incident_old")

    op.execute(
        "CREATE TABLE incident (LIKE incident_old INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        "INCLUDING GENERATED INCLUDING STATISTICS INCLUDING STORAGE) "
        "PARTITION BY RANGE (reported_at)"
    )
    op.execute("ALTER SEQUENCE incident_id_seq OWNED BY incident.id")
    # one partition per month holding rows, and the months around now
    months = {
        str(m)
        for (m,) in _rows(
            "SELECT DISTINCT to_char(reported_at AT TIME ZONE "
            f"'{zone}', 'YYYY-MM') FROM incident_old"
        )
    }
    now = month_of(datetime.now(UTC), zone)
    months |= {next_month(now, k) for k in range(-1, 3)}
    for month in sorted(months):
        b = month_range(month, zone)
        op.execute(
            f"CREATE TABLE {partition_name('incident', month)} PARTITION OF incident "
            f"FOR VALUES FROM ('{b.start.isoformat()}') TO ('{b.end.isoformat()}')"
        )
    op.execute("CREATE TABLE incident_default PARTITION OF incident DEFAULT")
    op.execute("INSERT INTO incident SELECT * FROM incident_old")

    op.execute(
        # source_id in the C collation: an external id is compared byte for byte, and a
        # bulk load's key inserts then compare with memcmp instead of strcoll
        'CREATE TABLE incident_key (id bigint NOT NULL, source_id text COLLATE "C", '
        "reported_at timestamptz NOT NULL, "
        "CONSTRAINT incident_key_pkey PRIMARY KEY (id), "
        "CONSTRAINT incident_source_id_key UNIQUE (source_id))"
    )
    op.execute(
        "INSERT INTO incident_key (id, source_id, reported_at) "
        "SELECT id, source_id, reported_at FROM incident_old"
    )
    op.execute("DROP TABLE incident_old")
    op.execute("ALTER TABLE incident ADD CONSTRAINT incident_pkey PRIMARY KEY (id, reported_at)")
    for _, definition in indexes:
        op.execute(definition)
    for table, name, definition in fks:
        op.execute(
            f'ALTER TABLE {table} ADD CONSTRAINT "{name}" '
            + definition.replace("REFERENCES incident(id)", "REFERENCES incident_key(id)")
        )
    for sql in (*_KEY_FUNCTIONS, *_HOOKS, *_KEY_TRIGGERS, *_LIVE_TRIGGERS):
        op.execute(sql)
    op.execute("ANALYZE incident")
    op.execute("ANALYZE incident_key")


def downgrade() -> None:
    fks = _foreign_keys("incident_key")
    indexes = _index_definitions("incident", ("incident_pkey",))
    for table, name, _ in fks:
        op.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    op.execute(
        "CREATE TABLE incident_flat (LIKE incident INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        "INCLUDING GENERATED INCLUDING STATISTICS INCLUDING STORAGE)"
    )
    op.execute("INSERT INTO incident_flat SELECT * FROM incident")
    op.execute("ALTER SEQUENCE incident_id_seq OWNED BY incident_flat.id")
    op.execute("DROP TABLE incident")  # its partitions and triggers with it
    op.execute("DROP TABLE incident_key")
    op.execute("ALTER TABLE incident_flat RENAME TO incident")
    op.execute("ALTER TABLE incident ADD CONSTRAINT incident_pkey PRIMARY KEY (id)")
    op.execute("ALTER TABLE incident ADD CONSTRAINT incident_source_id_key UNIQUE (source_id)")
    for _, definition in indexes:
        op.execute(definition)
    for table, name, definition in fks:
        op.execute(
            f'ALTER TABLE {table} ADD CONSTRAINT "{name}" '
            + definition.replace("REFERENCES incident_key(id)", "REFERENCES incident(id)")
        )
    for sql in _LIVE_TRIGGERS:
        op.execute(sql)
    for fn in ("insert", "delete", "update"):
        op.execute(f"DROP FUNCTION IF EXISTS geogrid_incident_key_{fn}()")
    for hook in ("attached", "detached"):
        op.execute(f"DROP FUNCTION IF EXISTS geogrid_incidents_{hook}(regclass)")
