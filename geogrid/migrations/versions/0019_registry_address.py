"""registry (issue 15): the address search reads a matching building's people from the index.

``reg_person_building`` becomes ``(building_id) INCLUDE (household_id, id)``: an address
search that matches buildings (a community's name matches every building of it: ≈ 180
buildings, 21,000 people in the largest street at 6.62 M records) takes their people's
``(household_id, id)`` — its order — from the index alone (index-only: one descent per
building, no heap page per person), sorts them and reads the first page's rows only
(see :func:`geogrid.store.registry_read.search_people`). The index still serves every
``building_id =`` lookup it served (counts of a building's people, the foreign key).

Revision ID: 0019
Revises: 0018
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS reg_person_building")
    op.execute(
        "CREATE INDEX reg_person_building ON reg_person (building_id) INCLUDE (household_id, id)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS reg_person_building")
    op.execute("CREATE INDEX reg_person_building ON reg_person (building_id)")
