"""Sign-in: usernames and argon2id password hashes on accounts, tokens with a lifecycle
(``account_token``: expiry, revocation, last use) and browser sessions (``web_session``).

The single ``account.token_hash`` of revision 0001 moves into ``account_token`` (each
copied token expires 90 days after the upgrade) and the column is dropped; a downgrade
copies the newest live token of each account back.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("account", sa.Column("username", sa.Text))
    op.add_column("account", sa.Column("password_hash", sa.Text))
    op.add_column(
        "account",
        sa.Column("failed_logins", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    op.add_column("account", sa.Column("locked_until", _TZ))
    op.add_column("account", sa.Column("password_changed_at", _TZ))
    op.create_unique_constraint("account_username_key", "account", ["username"])

    op.create_table(
        "account_token",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey("account.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("token_hash", sa.Text, nullable=False, unique=True),
        sa.Column("label", sa.Text),
        sa.Column("created_at", _TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", _TZ),
        sa.Column("revoked_at", _TZ),
        sa.Column("last_used_at", _TZ),
    )
    op.create_index("account_token_account", "account_token", ["account_id"])
    op.execute(
        "INSERT INTO account_token (account_id, token_hash, label, expires_at) "
        "SELECT id, token_hash, 'token of revision 0001', now() + interval '90 days' "
        "FROM account WHERE token_hash IS NOT NULL"
    )
    op.drop_constraint("account_token_hash_key", "account", type_="unique")
    op.drop_column("account", "token_hash")

    op.create_table(
        "web_session",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey("account.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("csrf_hash", sa.Text, nullable=False),
        sa.Column("created_at", _TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", _TZ, nullable=False),
        sa.Column("revoked_at", _TZ),
        sa.Column("ip", sa.Text),
    )
    op.create_index("web_session_account", "web_session", ["account_id"])


def downgrade() -> None:
    op.drop_index("web_session_account", table_name="web_session")
    op.drop_table("web_session")
    op.add_column("account", sa.Column("token_hash", sa.Text))
    op.execute(
        "UPDATE account a SET token_hash = t.token_hash FROM ("
        "  SELECT DISTINCT ON (account_id) account_id, token_hash FROM account_token"
        "  WHERE revoked_at IS NULL ORDER BY account_id, created_at DESC, id DESC"
        ") t WHERE t.account_id = a.id"
    )
    op.create_unique_constraint("account_token_hash_key", "account", ["token_hash"])
    op.drop_index("account_token_account", table_name="account_token")
    op.drop_table("account_token")
    op.drop_constraint("account_username_key", "account", type_="unique")
    for column in ("password_changed_at", "locked_until", "failed_logins", "password_hash"):
        op.drop_column("account", column)
    op.drop_column("account", "username")
