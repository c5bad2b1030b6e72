"""Plans: owners, staffing decisions, reference lines, per-unit ``valid_from``, the
``lead_planner`` role.

* ``plan.owner_id`` — the account that owns a plan (others may read it; only the owner or
  a lead planner / admin edits or publishes it); filled for existing plans from their
  ``author`` (an account's ``ref`` or ``name``).
* ``plan_staffing`` — a planner's decision for a grid with no worker or a worker with no
  grid after the plan (``assign``, ``move``, ``vacancy``, ``release``).
* ``reference_line`` — imported line layers (roads, rivers, block edges; EPSG:4326) that
  auto-partition cuts along.
* ``unit.valid_from`` — when a unit row's geometry and name took effect; NULL means "when
  its version was published". A publish carries it over for the units it does not change.
* ``account.role`` may be ``lead_planner``.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ROLES_BEFORE = (
    "worker",
    "community_admin",
    "street_admin",
    "district_admin",
    "planner",
    "leader",
    "analyst",
    "admin",
)
_ROLES_AFTER = (*_ROLES_BEFORE, "lead_planner")


def _role_check(roles: tuple[str, ...]) -> None:
    op.execute("ALTER TABLE account DROP CONSTRAINT IF EXISTS account_role")
    listed = ", ".join(f"'{r}'" for r in roles)
    op.execute(f"ALTER TABLE account ADD CONSTRAINT account_role CHECK (role IN ({listed}))")


def upgrade() -> None:
    _role_check(_ROLES_AFTER)
    # IF NOT EXISTS: an earlier revision of the sign-in work may have added it already
    op.execute(
        "ALTER TABLE plan ADD COLUMN IF NOT EXISTS owner_id integer "
        "REFERENCES account(id) ON DELETE SET NULL"
    )
    op.execute(
        "UPDATE plan p SET owner_id = a.id FROM account a "
        "WHERE p.owner_id IS NULL AND p.author IS NOT NULL AND a.ref = p.author"
    )
    op.execute("ALTER TABLE unit ADD COLUMN IF NOT EXISTS valid_from timestamptz")
    op.create_table(
        "plan_staffing",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(
            "plan_id", sa.Integer, sa.ForeignKey("plan.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("grid_code", sa.Text),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("account.id", ondelete="CASCADE")),
        sa.Column("decided_by", sa.Integer, sa.ForeignKey("account.id", ondelete="SET NULL")),
        sa.Column(
            "decided_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "action IN ('assign', 'move', 'vacancy', 'release')", name="plan_staffing_action"
        ),
    )
    op.create_index("plan_staffing_plan", "plan_staffing", ["plan_id"])
    op.create_table(
        "reference_line",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("layer", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False, server_default="road"),
        sa.Column("name", sa.Text),
        sa.Column("source", sa.Text),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "geom", Geometry("MULTILINESTRING", srid=4326, spatial_index=False), nullable=False
        ),
    )
    op.create_index("reference_line_geom", "reference_line", ["geom"], postgresql_using="gist")


def downgrade() -> None:
    op.drop_index("reference_line_geom", table_name="reference_line")
    op.drop_table("reference_line")
    op.drop_index("plan_staffing_plan", table_name="plan_staffing")
    op.drop_table("plan_staffing")
    op.execute("ALTER TABLE unit DROP COLUMN IF EXISTS valid_from")
    op.execute("ALTER TABLE plan DROP COLUMN IF EXISTS owner_id")
    op.execute("DELETE FROM account WHERE role = 'lead_planner'")
    _role_check(_ROLES_BEFORE)
