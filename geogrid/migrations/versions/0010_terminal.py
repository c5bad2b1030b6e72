"""the worker's terminal (issue 13): enrolled devices and enrolment codes, media stored by content hash, verification of resolutions.

- ``terminal``: a device enrolled for an account; its credential is an ``account_token``
  row (``token_id``), so revoking the device revokes that token and nothing else.
- ``terminal_enrolment``: one-time enrolment codes (SHA-256 digests only), with expiry.
- ``media``: photos and videos stored by content hash (``<home>/media/ab/cd/<sha256>``),
  with the EXIF position and time read from them (``media_uploader``: everyone who sent
  the same bytes); ``media_link`` attaches a file to an
  owner (incident, service entry, dispute, patrol) with a role; ``incident_media`` is the
  incidents' view of it.
- ``category.verify`` ('other': a resolution is closed by someone other than the
  resolver; 'none': the resolver may close) and ``incident.resolved_by``.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "terminal",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey("account.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("label", sa.Text),
        sa.Column(
            "token_id",
            sa.Integer,
            sa.ForeignKey("account_token.id", ondelete="SET NULL"),
            unique=True,
        ),
        sa.Column("app_version", sa.Text),
        sa.Column("user_agent", sa.Text),
        sa.Column("enrolled_at", _TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("enrolment_id", sa.BigInteger),
        sa.Column("last_seen_at", _TZ),
        sa.Column("revoked_at", _TZ),
        sa.Column("revoked_reason", sa.Text),
        sa.Column("revoked_by", sa.Integer, sa.ForeignKey("account.id", ondelete="SET NULL")),
    )
    op.create_index("terminal_account", "terminal", ["account_id"])

    op.create_table(
        "terminal_enrolment",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey("account.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("code_hash", sa.Text, nullable=False, unique=True),
        sa.Column("created_at", _TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", _TZ, nullable=False),
        sa.Column("used_at", _TZ),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("account.id", ondelete="SET NULL")),
    )
    op.create_index("terminal_enrolment_account", "terminal_enrolment", ["account_id"])

    op.create_table(
        "media",
        sa.Column("sha256", sa.Text, primary_key=True),
        sa.Column("mime", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("duration_s", sa.Float),
        sa.Column("exif_lon", sa.Float),
        sa.Column("exif_lat", sa.Float),
        sa.Column("exif_taken_at", _TZ),
        sa.Column("uploaded_by", sa.Integer, sa.ForeignKey("account.id", ondelete="SET NULL")),
        sa.Column("uploaded_at", _TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("thumb", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="media_sha256"),
    )
    op.create_index("media_uploaded_by", "media", ["uploaded_by"])
    op.create_table(
        "media_uploader",
        sa.Column(
            "sha256",
            sa.Text,
            sa.ForeignKey("media.sha256", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey("account.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("uploaded_at", _TZ, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("sha256", "account_id", name="media_uploader_pkey"),
    )

    op.create_table(
        "media_link",
        sa.Column(
            "sha256",
            sa.Text,
            sa.ForeignKey("media.sha256", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("owner_kind", sa.Text, nullable=False),
        sa.Column("owner_id", sa.BigInteger, nullable=False),
        sa.Column("role", sa.Text, nullable=False, server_default="attachment"),
        sa.Column("added_by", sa.Integer, sa.ForeignKey("account.id", ondelete="SET NULL")),
        sa.Column("added_at", _TZ, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("sha256", "owner_kind", "owner_id", name="media_link_pkey"),
        sa.CheckConstraint(
            "owner_kind IN ('incident', 'service_entry', 'dispute', 'patrol')",
            name="media_link_owner_kind",
        ),
    )
    op.create_index("media_link_owner", "media_link", ["owner_kind", "owner_id"])
    op.execute(
        "CREATE VIEW incident_media AS SELECT owner_id AS incident_id, sha256, role, "
        "added_by, added_at FROM media_link WHERE owner_kind = 'incident'"
    )

    op.add_column(
        "category",
        sa.Column("verify", sa.Text, nullable=False, server_default="other"),
    )
    op.create_check_constraint("category_verify", "category", "verify IN ('other', 'none')")
    op.add_column("incident", sa.Column("resolved_by", sa.Integer))


def downgrade() -> None:
    op.drop_column("incident", "resolved_by")
    op.drop_constraint("category_verify", "category", type_="check")
    op.drop_column("category", "verify")
    op.execute("DROP VIEW incident_media")
    op.drop_index("media_link_owner", table_name="media_link")
    op.drop_table("media_link")
    op.drop_table("media_uploader")
    op.drop_index("media_uploaded_by", table_name="media")
    op.drop_table("media")
    op.drop_index("terminal_enrolment_account", table_name="terminal_enrolment")
    op.drop_table("terminal_enrolment")
    op.drop_index("terminal_account", table_name="terminal")
    op.drop_table("terminal")
