"""accounts (issue 10): a write to what a bearer token's account is made of notifies.

Every serving process keeps the accounts of the tokens it checked in a cache
(:class:`geogrid.services.accounts.TokenCache`). It used to keep them 2 s, so that a
revocation made by another process (the CLI, another worker) took effect within 2 s; with
a terminal reporting every few seconds that meant a sign-in query on most reports. Now a
statement changing accounts, tokens, unit bindings, teams or terminals sends
``NOTIFY geogrid_auth`` (one per statement, no payload: these writes are rare), every
process's listener empties its cache on it, and the cache keeps an entry longer while the
listener is up (:data:`geogrid.services.accounts.TOKEN_CACHE_TTL_WATCHED`).

Revision ID: 0021
Revises: 0020
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

#: tables whose every write may change an account's units
STATEMENT_TABLES = ("account_unit", "team_member", "team_grid")
#: tables written often for book-keeping (last use, failed logins): only a change of the
#: columns an authenticated account is made of notifies (rows, deduplicated per transaction)
ROW_TABLES = {
    "account": ("ref", "name", "role", "active", "username"),
    "account_token": ("account_id", "token_hash", "expires_at", "revoked_at"),
    "terminal": ("account_id", "token_id", "revoked_at"),
}


def upgrade() -> None:
    op.execute(
        "CREATE OR REPLACE FUNCTION geogrid_auth_changed() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('geogrid_auth', ''); "
        "RETURN NULL; END $$"
    )
    for table in STATEMENT_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_auth_changed AFTER INSERT OR UPDATE OR DELETE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION geogrid_auth_changed()"
        )
    for table, columns in ROW_TABLES.items():
        changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in columns)
        op.execute(
            f"CREATE TRIGGER {table}_auth_changed AFTER UPDATE ON {table} FOR EACH ROW "
            f"WHEN ({changed}) EXECUTE FUNCTION geogrid_auth_changed()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_auth_removed AFTER DELETE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION geogrid_auth_changed()"
        )


def downgrade() -> None:
    for table in (*STATEMENT_TABLES, *ROW_TABLES):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_auth_changed ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_auth_removed ON {table}")
    op.execute("DROP FUNCTION IF EXISTS geogrid_auth_changed()")
