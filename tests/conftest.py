"""Shared fixtures: a real PostGIS database per test session.

The admin connection comes from ``GEOGRID_TEST_ADMIN_URL`` (default: the server on
127.0.0.1:5432 as user postgres). Each test session creates its own database, enables
PostGIS, applies the migrations, and drops the database at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
import pytest

# the shared test servers take many requests from one address on purpose: no rate limits
# there (tests/test_limits.py and bench/abuse.py switch them on explicitly)
os.environ.setdefault("GEOGRID_RATE_LIMITS", "false")

ADMIN_URL = os.environ.get(
    "GEOGRID_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _admin() -> psycopg.Connection:
    return psycopg.connect(ADMIN_URL, autocommit=True)


def create_database(prefix: str = "geogrid_t", revision: str | None = "head") -> str:
    """Create a new database with the migrations applied up to ``revision`` (None: none,
    not even PostGIS); returns its URL."""
    from geogrid.store.schema import migrate

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    if revision is not None:
        try:
            migrate(url, revision)
        except BaseException:
            drop_database(url)
            raise
    return url


def drop_database(url: str) -> None:
    """Dispose the pooled engine of ``url`` and drop its database."""
    from geogrid.store import get_engine

    get_engine(url).dispose()
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


@pytest.fixture(scope="session")
def db_url() -> str:
    """SQLAlchemy URL of a fresh migrated PostGIS database (psycopg 3 driver)."""
    url = create_database("geogrid_test")
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def pg_dsn(db_url: str) -> str:
    """The same database as a plain libpq DSN (for psycopg / GDAL)."""
    return db_url.replace("postgresql+psycopg://", "postgresql://", 1)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """A real uvicorn server running ``api.main.create_app(url, settings)`` in a thread."""

    def __init__(self, url: str, settings=None):
        import threading
        import time

        import uvicorn

        from api.main import create_app

        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(url, settings),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                break
            time.sleep(0.05)
        else:  # pragma: no cover
            raise RuntimeError("uvicorn did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextmanager
def serving(url: str, settings=None, **client: Any) -> Iterator[httpx.Client]:
    """A :class:`LiveServer` on ``url`` and an httpx client bound to it (``client``: more
    arguments of ``httpx.Client``, timeout 60 s unless given); both stopped on exit."""
    srv = LiveServer(url, settings)
    try:
        with httpx.Client(base_url=srv.base, **{"timeout": 60, **client}) as http:
            yield http
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def live_server(db_url: str):
    """Base URL of a real HTTP server on the session database."""
    srv = LiveServer(db_url)
    yield srv.base
    srv.stop()


@pytest.fixture(scope="session")
def http(live_server: str):
    """An httpx client bound to the live server."""
    with httpx.Client(base_url=live_server, timeout=60) as client:
        yield client


DEMO_INCIDENTS = int(os.environ.get("GEOGRID_TEST_DEMO_INCIDENTS", "60000"))


@pytest.fixture(scope="session")
def demo_db_url() -> str:
    """A separate database holding the full Yulin demo (8,798 grids, workers and
    ``GEOGRID_TEST_DEMO_INCIDENTS`` incidents, default 60,000), loaded once per test
    session. Treat it as read-only; tests that write use their own database."""
    from geogrid.services.demo import load_demo
    from geogrid.store import get_engine

    url = create_database("geogrid_demo")
    load_demo(get_engine(url), incidents=DEMO_INCIDENTS)
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def demo_server(demo_db_url: str):
    """Base URL of a real HTTP server on the demo database, serving the demo's city
    (``geogrid/demo/yulin.toml``)."""
    from geogrid.services.demo import DEMO_CITY_FILE
    from geogrid.settings import Settings, load_city

    srv = LiveServer(demo_db_url, Settings(city=load_city(DEMO_CITY_FILE)))
    yield srv.base
    srv.stop()


@pytest.fixture(scope="session")
def demo_http(demo_server: str):
    with httpx.Client(base_url=demo_server, timeout=60) as client:
        yield client


@pytest.fixture(scope="session")
def make_db():
    """Factory: ``make_db()`` returns the URL of a new migrated PostGIS database of its own
    (all dropped at the end of the session)."""
    made: list[str] = []

    def factory() -> str:
        made.append(create_database())
        return made[-1]

    yield factory
    for url in made:
        drop_database(url)


def pytest_runtest_logreport(report) -> None:
    """With GEOGRID_TEST_TIMES set, append each phase's duration to that file (to find the
    slow tests of a run while it runs)."""
    path = os.environ.get("GEOGRID_TEST_TIMES")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{report.duration:.2f}\t{report.when}\t{report.nodeid}\n")
