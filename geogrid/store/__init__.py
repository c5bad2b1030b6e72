"""The storage layer: the only part of geogrid that talks to the database."""

from geogrid.store.engine import database_url, get_engine
from geogrid.store.schema import migrate

__all__ = ["get_engine", "database_url", "migrate"]
