"""The database schema as SQLAlchemy Core tables (the Alembic migrations create them).

Everything spatial is stored in EPSG:4326. Boundaries are versioned like MapIt's
generations: every unit row belongs to one ``boundary_version``; exactly one version is
``published`` at a time and queries default to it; retired versions stay queryable (time
travel by version or by date via ``published_at``/``retired_at``).

Scale note: ``incident`` is the only large table (a city: millions of rows a year). It is
indexed on time, units and geometry and, since revision 0015 (issue 12), range-partitioned
by month on ``reported_at`` (primary key ``(id, reported_at)``); ``incident_key`` holds one
row per incident (unique ``id`` and ``source_id``) and is what other tables' foreign keys
reference (the ``ForeignKey("incident.id")`` below are the Core view of those links).
"""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from geogrid.core.accounts import ROLES
from geogrid.core.hierarchy import LEVELS
from geogrid.core.lifecycle import STATUSES

metadata = MetaData()

boundary_version = Table(
    "boundary_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("label", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="draft"),
    Column("based_on", Integer, ForeignKey("boundary_version.id")),
    Column("source", Text),
    Column("author", Text),
    Column("note", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True)),
    Column("retired_at", DateTime(timezone=True)),
    CheckConstraint("status IN ('draft', 'published', 'retired')", name="version_status"),
)
Index(
    "one_published_version",
    boundary_version.c.status,
    unique=True,
    postgresql_where=text("status = 'published'"),
)

unit = Table(
    "unit",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column(
        "version_id", Integer, ForeignKey("boundary_version.id", ondelete="CASCADE"), nullable=False
    ),
    Column("code", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("level", Text, nullable=False),
    Column("parent_code", Text),
    Column("population", BigInteger, nullable=False, server_default="0"),
    Column("households", BigInteger, nullable=False, server_default="0"),
    Column("area_m2", Float, nullable=False),
    Column("attrs", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False),
    Column("valid_from", DateTime(timezone=True)),  # 0007: NULL = the version's published_at
    UniqueConstraint("version_id", "code", name="unit_version_code"),
    CheckConstraint(f"level IN {LEVELS!r}", name="unit_level"),
)
# 0022: covering what metrics read of every unit (index-only scans)
Index(
    "unit_version_level_facts",
    unit.c.version_id,
    unit.c.level,
    postgresql_include=["id", "code", "parent_code", "households", "area_m2"],
)
Index("unit_geom", unit.c.geom, postgresql_using="gist")

building = Table(
    "building",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("households", Integer, nullable=False),
    Column("population", Integer, nullable=False),
    Column("source", Text),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
)
Index("building_geom", building.c.geom, postgresql_using="gist")

category = Table(
    "category",
    metadata,
    Column("code", Text, primary_key=True),
    Column("name_zh", Text, nullable=False),
    Column("name_en", Text, nullable=False),
    Column("limit_hours", Float, nullable=False),
    Column("effort", Float, nullable=False, server_default="1"),
    Column("escalate_level", Text, nullable=False, server_default="grid"),
    Column("share", Float),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    # revision 0010 (issue 13): how resolutions are closed, geogrid.core.verification
    Column("verify", Text, nullable=False, server_default="other"),
)

account = Table(
    "account",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ref", Text, unique=True),
    Column("name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # sign-in (revision 0004): argon2id hash; lock-out after repeated failures
    Column("username", Text, unique=True),
    Column("password_hash", Text),
    Column("failed_logins", Integer, nullable=False, server_default=text("0")),
    Column("locked_until", DateTime(timezone=True)),
    Column("password_changed_at", DateTime(timezone=True)),
    CheckConstraint(f"role IN {ROLES!r}", name="account_role"),
)

# bearer tokens of machines and devices (revision 0004): only SHA-256 hashes are stored
account_token = Table(
    "account_token",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("account.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", Text, nullable=False, unique=True),
    Column("label", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
)
Index("account_token_account", account_token.c.account_id)

# browser sessions (revision 0004): ``id`` and ``csrf_hash`` are hashes, never the secrets
web_session = Table(
    "web_session",
    metadata,
    Column("id", Text, primary_key=True),
    Column("account_id", Integer, ForeignKey("account.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("ip", Text),
)
Index("web_session_account", web_session.c.account_id)

account_unit = Table(
    "account_unit",
    metadata,
    Column("account_id", Integer, ForeignKey("account.id", ondelete="CASCADE"), primary_key=True),
    Column("unit_code", Text, primary_key=True),
)
Index("account_unit_code", account_unit.c.unit_code)

# The fact table. Its references (category, reporter/assignee account, boundary version)
# are checked by the writers (geogrid.services.ingest, geogrid.store.workflow) rather than by
# foreign keys: per-row RI triggers cost more than the rest of a million-row COPY.
incident = Table(
    "incident",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("source_id", Text, unique=True),
    Column("category", Text, nullable=False),
    Column("description", Text),
    Column("src_crs", Text, nullable=False, server_default="wgs84"),
    Column("src_lon", Float),
    Column("src_lat", Float),
    Column("reported_at", DateTime(timezone=True), nullable=False),
    Column("reporter_kind", Text, nullable=False, server_default="resident"),
    Column("reporter_id", Integer),
    Column("status", Text, nullable=False, server_default="reported"),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("accepted_at", DateTime(timezone=True)),
    Column("dispatched_at", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
    Column("due_at", DateTime(timezone=True)),
    Column("assigned_level", Text),
    Column("assigned_unit", Text),
    Column("assignee_id", Integer),
    Column("version_id", Integer),
    Column("grid_code", Text),
    Column("community_code", Text),
    Column("street_code", Text),
    Column("district_code", Text),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
    Column("resolved_by", Integer),  # revision 0010 (issue 13): who resolved it
    CheckConstraint(f"status IN {STATUSES!r}", name="incident_status"),
)
Index("incident_reported_at", incident.c.reported_at)
Index("incident_grid", incident.c.grid_code, incident.c.reported_at)
Index("incident_status_due", incident.c.status, incident.c.due_at)
Index("incident_geom", incident.c.geom, postgresql_using="gist")

#: one row per incident, kept by triggers on ``incident`` (revision 0015)
incident_key = Table(
    "incident_key",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("source_id", Text, unique=True),
    Column("reported_at", DateTime(timezone=True), nullable=False),
)

incident_event = Table(
    "incident_event",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column(
        "incident_id", BigInteger, ForeignKey("incident.id", ondelete="CASCADE"), nullable=False
    ),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor_id", Integer, ForeignKey("account.id")),
    Column("kind", Text, nullable=False),
    Column("from_status", Text),
    Column("to_status", Text),
    Column("note", Text),
    Column("data", JSONB),
)
Index("incident_event_incident", incident_event.c.incident_id, incident_event.c.at)

incident_attribution = Table(
    "incident_attribution",
    metadata,
    Column(
        "incident_id", BigInteger, ForeignKey("incident.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("version_id", Integer, ForeignKey("boundary_version.id"), primary_key=True),
    Column("grid_code", Text),
    Column("community_code", Text),
    Column("street_code", Text),
    Column("district_code", Text),
    Column("superseded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

plan = Table(
    "plan",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("author", Text),
    Column("base_version_id", Integer, ForeignKey("boundary_version.id"), nullable=False),
    Column("community_codes", ARRAY(Text), nullable=False),
    Column("status", Text, nullable=False, server_default="draft"),
    Column("published_version_id", Integer, ForeignKey("boundary_version.id")),
    Column("state", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("owner_id", Integer, ForeignKey("account.id", ondelete="SET NULL")),  # 0007
    CheckConstraint("status IN ('draft', 'published', 'discarded')", name="plan_status"),
)

# Created by revision 0007: planners' staffing decisions, and reference lines (roads, rivers).
plan_staffing = Table(
    "plan_staffing",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("plan_id", Integer, ForeignKey("plan.id", ondelete="CASCADE"), nullable=False),
    Column("action", Text, nullable=False),
    Column("grid_code", Text),
    Column("account_id", Integer, ForeignKey("account.id", ondelete="CASCADE")),
    Column("decided_by", Integer, ForeignKey("account.id", ondelete="SET NULL")),
    Column("decided_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "action IN ('assign', 'move', 'vacancy', 'release')", name="plan_staffing_action"
    ),
)
Index("plan_staffing_plan", plan_staffing.c.plan_id)

reference_line = Table(
    "reference_line",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("layer", Text, nullable=False),
    Column("kind", Text, nullable=False, server_default="road"),
    Column("name", Text),
    Column("source", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("geom", Geometry("MULTILINESTRING", srid=4326, spatial_index=False), nullable=False),
)
Index("reference_line_geom", reference_line.c.geom, postgresql_using="gist")

plan_edit = Table(
    "plan_edit",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("plan_id", Integer, ForeignKey("plan.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", Text, nullable=False),
    Column("params", JSONB, nullable=False),
    Column("undone", Boolean, nullable=False, server_default=text("false")),
    Column("author", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("plan_id", "seq", name="plan_edit_seq"),
)

# Created by revision 0003: the bboxes of edits, read by tile servers to invalidate caches.
map_change = Table(
    "map_change",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("layer", Text, nullable=False),
    Column("bbox", Geometry("POLYGON", srid=4326, spatial_index=False)),
    Column("kind", Text, nullable=False),
)

# Created by revision 0005: the first answer of each create made with an Idempotency-Key.
idempotency_key = Table(
    "idempotency_key",
    metadata,
    Column("principal", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("operation", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("status_code", Integer),
    Column("response", JSONB),
    Column("resource_id", BigInteger),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("char_length(key) BETWEEN 1 AND 200", name="idempotency_key_length"),
)
Index("idempotency_key_created_at", idempotency_key.c.created_at)

# Created by revision 0006: the append-only audit trail (a trigger refuses UPDATE/DELETE).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=text("clock_timestamp()")),
    Column("actor_id", Integer),
    Column("actor_role", Text),
    Column("action", Text, nullable=False),
    Column("resource", Text, nullable=False),
    Column("resource_ids", ARRAY(Text)),
    Column("fields", ARRAY(Text)),
    Column("ip", Text),
    Column("user_agent", Text),
    Column("detail", JSONB),
)
Index("audit_log_at", audit_log.c.at)
Index("audit_log_actor_at", audit_log.c.actor_id, audit_log.c.at)
