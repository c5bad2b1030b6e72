"""grid teams, disputes (矛盾纠纷) with mediation sessions, notifications and their outbound deliveries (issue 13).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _units() -> list[sa.Column]:
    return [
        sa.Column(c, sa.Text)
        for c in ("grid_code", "community_code", "street_code", "district_code")
    ]


def _now() -> sa.sql.elements.TextClause:
    return sa.text("now()")


#: the open statuses of geogrid.core.lifecycle.OPEN_STATUSES when this revision was written
_OPEN = "status IN ('reported', 'accepted', 'dispatched', 'in_progress')"


def upgrade() -> None:
    # the tasks of an account and the notifications derived from them read open incidents
    # by assigned unit and by assignee (geogrid.store.sync, geogrid.store.notifications)
    op.create_index(
        "incident_open_assigned_unit",
        "incident",
        ["assigned_unit", "due_at"],
        postgresql_where=sa.text(_OPEN),
    )
    op.create_index(
        "incident_open_assignee", "incident", ["assignee_id"], postgresql_where=sa.text(_OPEN)
    )
    op.create_table(
        "team",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("community_code", sa.Text, nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("account.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.UniqueConstraint("community_code", "name", name="team_community_name"),
    )
    op.create_table(
        "team_member",
        sa.Column(
            "team_id", sa.BigInteger, sa.ForeignKey("team.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey("account.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.create_index("team_member_account", "team_member", ["account_id"])
    op.create_table(
        "team_grid",
        sa.Column(
            "team_id", sa.BigInteger, sa.ForeignKey("team.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("grid_code", sa.Text, primary_key=True),
    )
    op.create_index("team_grid_code", "team_grid", ["grid_code"])

    op.create_table(
        "dispute",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("incident_id", sa.BigInteger, sa.ForeignKey("incident.id", ondelete="SET NULL")),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="open"),
        sa.Column("parties", JSONB, nullable=False),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False)),
        *_units(),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("account.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("outcome", sa.Text),
        sa.Column("outcome_note", sa.Text),
        sa.CheckConstraint(
            "status IN ('open', 'mediating', 'resolved', 'referred', 'agreement')",
            name="dispute_status",
        ),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('resolved', 'referred', 'agreement')",
            name="dispute_outcome",
        ),
    )
    op.create_index("dispute_grid", "dispute", ["grid_code", "created_at"])
    op.create_index("dispute_community", "dispute", ["community_code", "created_at"])
    op.create_index("dispute_incident", "dispute", ["incident_id"])
    op.create_table(
        "dispute_session",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "dispute_id",
            sa.BigInteger,
            sa.ForeignKey("dispute.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("mediator_id", sa.Integer, sa.ForeignKey("account.id", ondelete="SET NULL")),
        sa.Column("note", sa.Text),
        sa.Column("outcome", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.create_index("dispute_session_dispute", "dispute_session", ["dispute_id", "at"])

    op.create_table(
        "notification",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey("account.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column(
            "incident_id",
            sa.BigInteger,
            sa.ForeignKey("incident.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("read_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("account_id", "kind", "incident_id", name="notification_once"),
        sa.CheckConstraint(
            "kind IN ('assigned', 'due_soon', 'overdue', 'escalated')", name="notification_kind"
        ),
    )
    op.create_index("notification_account_created", "notification", ["account_id", "created_at"])
    op.create_table(
        "notification_delivery",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "notification_id",
            sa.BigInteger,
            sa.ForeignKey("notification.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.UniqueConstraint("notification_id", "channel", name="notification_delivery_once"),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name="delivery_status"),
    )
    op.create_index(
        "notification_delivery_due",
        "notification_delivery",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    for t in (
        "notification_delivery",
        "notification",
        "dispute_session",
        "dispute",
        "team_grid",
        "team_member",
        "team",
    ):
        op.drop_table(t)
    op.drop_index("incident_open_assignee", table_name="incident")
    op.drop_index("incident_open_assigned_unit", table_name="incident")
