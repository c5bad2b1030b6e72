"""notifications (issue 10): the city-wide derivation remembers where it stopped.

The periodic derivation of notifications (``geogrid.services.notifications``) looked at
every open incident and every recipient each minute, in each of the service's workers. Its
cost grew with the open backlog: with ~150,000 open incidents it ran 2.6 s of a core, once
or twice a minute, and the reports arriving meanwhile waited behind it (a 10-second slice
of a 200 reports/s run went from p99 ~20 ms to 65 ms).

One row now records the last city-wide run: the time it derived for (``swept_at``), the
oldest transaction still running when it started (``since_xmin``: every write by an older
transaction was visible to it), a digest of who receives what (``recipients``: the active
accounts' units and the teams' grids) and the time of the last full run (``full_at``). The
next run looks only at the incidents written since (``xmin`` of the row version not older
than ``since_xmin``) or whose due time it may have crossed; another digest of the
recipients or an hour since the last full run makes it a full run again.

Revision ID: 0023
Revises: 0022
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE TABLE notification_sweep ("
        "id smallint PRIMARY KEY CHECK (id = 1), "
        "swept_at timestamptz NOT NULL, "
        "since_xmin xid8 NOT NULL, "
        "recipients text NOT NULL, "
        "full_at timestamptz NOT NULL)"
    )


def downgrade() -> None:
    op.execute("DROP TABLE notification_sweep")
