"""boundary_outline: the city outline kept with each boundary version (the area its top
level must cover exactly; gaps and parts outside it are validation findings).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "boundary_outline",
        sa.Column(
            "version_id",
            sa.Integer,
            sa.ForeignKey("boundary_version.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("source", sa.Text),
        sa.Column("area_m2", sa.Float),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("boundary_outline")
