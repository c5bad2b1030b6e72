"""field work (issue 13): patrol tracks and check-ins, the daily service register entries.

* ``patrol``: one uploaded patrol — the cleaned track (MultiLineString, EPSG:4326; parts
  are split at GPS gaps and jumps), the time and accuracy of each kept point, its
  distance and duration, the grid it spent most time in (the four unit codes: scope);
* ``patrol_grid``: per patrol and grid, seconds in the grid, metres walked in it and the
  share of the grid's area within 50 m of the track (coverage);
* ``patrol_checkin``: a check-in at a place (a building of ``reg_building`` or
  ``building``, or a free place name), with or without a patrol;
* ``service_entry``: one item of the daily service register (为民服务事项登记表).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# the kinds of geogrid.core.service_register.SERVICE_KINDS, frozen here as the migration ran
_KINDS = ("visit", "mediation", "paperwork", "hazard", "policy", "other")


def _units() -> list[sa.Column]:
    return [
        sa.Column("grid_code", sa.Text),
        sa.Column("community_code", sa.Text),
        sa.Column("street_code", sa.Text),
        sa.Column("district_code", sa.Text),
    ]


def upgrade() -> None:
    op.create_table(
        "patrol",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey("account.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("track", Geometry("MULTILINESTRING", srid=4326, spatial_index=False)),
        sa.Column("point_times", postgresql.ARRAY(sa.DateTime(timezone=True))),
        sa.Column("accuracy_m", postgresql.ARRAY(sa.Float)),
        sa.Column("points_received", sa.Integer, nullable=False, server_default="0"),
        sa.Column("distance_m", sa.Float, nullable=False, server_default="0"),
        sa.Column("duration_s", sa.Float, nullable=False, server_default="0"),
        sa.Column("buildings_visited", sa.Integer, nullable=False, server_default="0"),
        sa.Column("src_crs", sa.Text, nullable=False, server_default="wgs84"),
        sa.Column("metric_crs", sa.Text),
        sa.Column("client_key", sa.Text),
        sa.Column("media", postgresql.ARRAY(sa.Text)),
        *_units(),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("ended_at >= started_at", name="patrol_times"),
    )
    op.create_index("patrol_account_started", "patrol", ["account_id", "started_at"])
    op.create_index("patrol_started", "patrol", ["started_at"])
    op.create_index("patrol_track", "patrol", ["track"], postgresql_using="gist")
    op.create_table(
        "patrol_grid",
        sa.Column(
            "patrol_id",
            sa.BigInteger,
            sa.ForeignKey("patrol.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("grid_code", sa.Text, primary_key=True),
        sa.Column("seconds_in_grid", sa.Float, nullable=False),
        sa.Column("length_m", sa.Float, nullable=False),
        sa.Column("coverage", sa.Float, nullable=False),
        sa.Column("buildings_visited", sa.Integer, nullable=False, server_default="0"),
        sa.CheckConstraint("coverage >= 0 AND coverage <= 1", name="patrol_grid_coverage"),
    )
    op.create_index("patrol_grid_code", "patrol_grid", ["grid_code"])
    op.create_table(
        "patrol_checkin",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "patrol_id",
            sa.BigInteger,
            sa.ForeignKey("patrol.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey("account.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("accuracy_m", sa.Float),
        sa.Column("building_id", sa.BigInteger),
        sa.Column("building_source", sa.Text),
        sa.Column("place", sa.Text),
        *_units(),
        sa.CheckConstraint(
            "building_source IS NULL OR building_source IN ('reg_building', 'building')",
            name="patrol_checkin_building_source",
        ),
    )
    op.create_index("patrol_checkin_patrol", "patrol_checkin", ["patrol_id"])
    op.create_index("patrol_checkin_account_at", "patrol_checkin", ["account_id", "at"])
    op.create_table(
        "service_entry",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey("account.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("household_id", sa.BigInteger),
        sa.Column("building_id", sa.BigInteger),
        sa.Column("person_ids", postgresql.ARRAY(sa.BigInteger)),
        sa.Column("people_count", sa.Integer, nullable=False, server_default="1"),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False)),
        sa.Column("src_crs", sa.Text),
        sa.Column("src_lon", sa.Float),
        sa.Column("src_lat", sa.Float),
        sa.Column("accuracy_m", sa.Float),
        sa.Column("media", postgresql.ARRAY(sa.Text)),
        *_units(),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(f"kind IN {_KINDS!r}", name="service_entry_kind"),
        sa.CheckConstraint("people_count >= 0", name="service_entry_people"),
    )
    op.create_index("service_entry_account_day", "service_entry", ["account_id", "day"])
    op.create_index("service_entry_day", "service_entry", ["day"])
    op.create_index("service_entry_household", "service_entry", ["household_id"])
    op.create_index(
        "service_entry_person_ids", "service_entry", ["person_ids"], postgresql_using="gin"
    )


def downgrade() -> None:
    op.drop_table("service_entry")
    op.drop_table("patrol_checkin")
    op.drop_table("patrol_grid")
    op.drop_table("patrol")
