"""registry (issue 15): search and bulk-load indexes.

One GIN index per registry table over its four unit codes AND its search grams
(``btree_gin`` gives GIN the ``=`` of text), instead of four btree indexes on the codes
plus a GIN on the grams:

* a scoped partial search (``street_code = ANY(:units) AND name_grams @> :grams``) is ONE
  GIN scan whose rare gram drives (GIN's fast scan skips through the scope's long posting
  list) — before, a bitmap of the whole street (≈ 100,000 people) was built and ANDed with
  the gram bitmap on every query (p99 108 ms for names, 433 ms for addresses at 6.62 M);
* a scope alone (``grid_code = ANY(:grids)``: care lists, exports) is a GIN lookup of the
  codes — the same bitmap the btree gave;
* the bulk load builds 4 GIN indexes instead of 16 btrees + 4 GINs.

The codes stay plain columns, so a re-attribution (an UPDATE of the codes) keeps the
index right by itself (nothing is denormalised into the gram arrays).

Revision ID: 0017
Revises: 0016
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_CODES = ("grid_code", "community_code", "street_code", "district_code")
_GRAMS = {
    "reg_building": "addr_grams",
    "reg_household": "addr_grams",
    "reg_person": "name_grams",
    "reg_org": "addr_grams",
}


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    for table, grams in _GRAMS.items():
        for c in _CODES:
            op.execute(f"DROP INDEX IF EXISTS {table}_{c}")
        op.execute(f"DROP INDEX IF EXISTS {table}_grams")
        op.execute(
            f"CREATE INDEX {table}_search ON {table} USING gin ({', '.join(_CODES)}, {grams})"
        )


def downgrade() -> None:
    for table, grams in _GRAMS.items():
        op.execute(f"DROP INDEX IF EXISTS {table}_search")
        op.execute(f"CREATE INDEX {table}_grams ON {table} USING gin ({grams})")
        for c in _CODES:
            op.execute(f"CREATE INDEX {table}_{c} ON {table} ({c})")
