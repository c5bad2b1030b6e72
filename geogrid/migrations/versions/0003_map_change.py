"""map_change: bboxes of edits, read by the tile servers to invalidate cached tiles.

Revision ID: 0003
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "map_change",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("layer", sa.Text, nullable=False),
        sa.Column("bbox", Geometry("POLYGON", srid=4326, spatial_index=False)),
        sa.Column("kind", sa.Text, nullable=False),
    )
    op.create_index("map_change_at", "map_change", ["at"])


def downgrade() -> None:
    op.drop_index("map_change_at", table_name="map_change")
    op.drop_table("map_change")
