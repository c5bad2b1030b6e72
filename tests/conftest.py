"""Shared fixtures: a real PostGIS database per test session.

The admin connection comes from ``GEOGRID_TEST_ADMIN_URL`` (default: the server on
127.0.0.1:5432 as user postgres). Each test session creates its own database, enables
PostGIS, applies the migrations, and drops the database at the end.
"""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest

ADMIN_URL = os.environ.get(
    "GEOGRID_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _admin() -> psycopg.Connection:
    return psycopg.connect(ADMIN_URL, autocommit=True)


@pytest.fixture(scope="session")
def db_url() -> str:
    """SQLAlchemy URL of a fresh PostGIS database (psycopg 3 driver)."""
    name = f"geogrid_test_{uuid.uuid4().hex[:10]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    with psycopg.connect(f"{base}/{name}", autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    try:
        from geogrid.store.schema import migrate  # noqa: PLC0415
    except ImportError:  # schema not written yet (early development)
        migrate = None
    if migrate is not None:
        migrate(url)
    yield url
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_dsn(db_url: str) -> str:
    """The same database as a plain libpq DSN (for psycopg / GDAL)."""
    return db_url.replace("postgresql+psycopg://", "postgresql://", 1)
