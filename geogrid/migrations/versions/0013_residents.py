"""residents close the loop (issue 14): satisfaction links and answers, follow-up calls, evaluation rounds, the worker's file (trainings, awards, notes), public status notes.

* ``survey_link``: a one-time satisfaction link of an incident — only the SHA-256 of its
  random token is stored; ``revoked_at`` when a newer link replaced it;
* ``satisfaction``: the resident's current verdict on an incident (one row per incident:
  a later answer — after a reopen, or a follow-up call — replaces it; every answer is
  also an ``incident_event`` of kind ``satisfaction``);
* ``follow_up``: the follow-up (回访) queue, one row per incident and reason;
* ``incident_event.public``: public status notes (Open311's ``status_notes``);
* ``evaluation_round`` / ``evaluation_answer``: residents' evaluation of their grid
  worker (群众测评); voters are an HMAC of a household reference or phone under the
  round's salt (never stored in clear), one answer per voter and round;
* ``worker_record``: trainings, awards, notes and complaints of a worker's file.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# the vocabularies of geogrid.core.satisfaction / evaluation, frozen as the migration ran
_SOLVED = ("yes", "partly", "no")
_SOURCES = ("link", "follow_up")
_REASONS = ("dissatisfied", "dispute", "sample")
_RECORD_KINDS = ("training", "award", "note", "complaint")


def _units() -> list[sa.Column]:
    return [
        sa.Column("grid_code", sa.Text),
        sa.Column("community_code", sa.Text),
        sa.Column("street_code", sa.Text),
        sa.Column("district_code", sa.Text),
    ]


def _now() -> sa.sql.elements.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.add_column(
        "incident_event",
        sa.Column("public", sa.Boolean, nullable=False, server_default=sa.text("false")),
    )
    op.create_table(
        "survey_link",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "incident_id",
            sa.BigInteger,
            sa.ForeignKey("incident.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("token_hash", sa.Text, nullable=False, unique=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("account.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.create_index("survey_link_incident", "survey_link", ["incident_id"])
    op.create_table(
        "satisfaction",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "incident_id",
            sa.BigInteger,
            sa.ForeignKey("incident.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("solved", sa.Text, nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("answers", sa.Integer, nullable=False, server_default="1"),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        *_units(),
        sa.CheckConstraint(f"source IN {_SOURCES!r}", name="satisfaction_source"),
        sa.CheckConstraint(f"solved IN {_SOLVED!r}", name="satisfaction_solved"),
        sa.CheckConstraint("score BETWEEN 1 AND 5", name="satisfaction_score"),
    )
    op.create_index("satisfaction_grid_at", "satisfaction", ["grid_code", "at"])
    op.create_table(
        "follow_up",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "incident_id",
            sa.BigInteger,
            sa.ForeignKey("incident.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True)),
        sa.Column("staff_id", sa.Integer, sa.ForeignKey("account.id", ondelete="SET NULL")),
        sa.Column("reached", sa.Boolean),
        sa.Column("satisfied", sa.Boolean),
        sa.Column("score", sa.Integer),
        sa.Column("note", sa.Text),
        *_units(),
        sa.UniqueConstraint("incident_id", "reason", name="follow_up_incident_reason"),
        sa.CheckConstraint(f"reason IN {_REASONS!r}", name="follow_up_reason"),
        sa.CheckConstraint("score IS NULL OR score BETWEEN 1 AND 5", name="follow_up_score"),
    )
    op.create_index("follow_up_open", "follow_up", ["done_at", "due_at"])
    op.create_table(
        "evaluation_round",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("grid_code", sa.Text, nullable=False),
        sa.Column("community_code", sa.Text),
        sa.Column("street_code", sa.Text),
        sa.Column("district_code", sa.Text),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("salt", sa.LargeBinary, nullable=False),
        sa.Column("token_hash", sa.Text, nullable=False, unique=True),
        sa.Column("criteria", postgresql.JSONB, nullable=False),
        sa.Column("worker_ids", postgresql.ARRAY(sa.Integer)),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("account.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.CheckConstraint("closes_at > opens_at", name="evaluation_round_window"),
    )
    op.create_index("evaluation_round_grid", "evaluation_round", ["grid_code", "opens_at"])
    op.create_table(
        "evaluation_answer",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "round_id",
            sa.BigInteger,
            sa.ForeignKey("evaluation_round.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("voter_hash", sa.LargeBinary, nullable=False),
        sa.Column("scores", postgresql.JSONB, nullable=False),
        sa.Column("mean_score", sa.Float, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("entered_by", sa.Integer, sa.ForeignKey("account.id", ondelete="SET NULL")),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.UniqueConstraint("round_id", "voter_hash", name="evaluation_answer_voter"),
        sa.CheckConstraint("source IN ('link', 'paper')", name="evaluation_answer_source"),
    )
    op.create_table(
        "worker_record",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey("account.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("verified", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("account.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.CheckConstraint(f"kind IN {_RECORD_KINDS!r}", name="worker_record_kind"),
    )
    op.create_index("worker_record_account", "worker_record", ["account_id", "at"])


def downgrade() -> None:
    op.drop_table("worker_record")
    op.drop_table("evaluation_answer")
    op.drop_table("evaluation_round")
    op.drop_table("follow_up")
    op.drop_table("satisfaction")
    op.drop_table("survey_link")
    op.drop_column("incident_event", "public")
