"""Alembic environment: runs against the URL passed in the config (``sqlalchemy.url``)."""

from alembic import context
from sqlalchemy import create_engine

from geogrid.store.tables import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")
connectable = config.attributes.get("connection")


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


if connectable is not None:
    _run(connectable)
elif url:
    engine = create_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
else:  # pragma: no cover - geogrid.store.schema.migrate always passes one of them
    raise RuntimeError("alembic: no connection and no sqlalchemy.url")
