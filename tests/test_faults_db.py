"""Fault test: PostgreSQL stopped and started while the service runs.

A SEPARATE embedded cluster (``geogrid db up`` in a temporary GEOGRID_HOME on a free port;
the shared server on 5432 is never touched) holds a small city; a live server runs on it.
With the cluster stopped every operation of the OpenAPI document answers without a 500 —
those that need the database with 503 and ``Retry-After`` — on kept-alive connections;
once the cluster is started again the same server and the same client are answered
without a restart.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import small_city
from conftest import _free_port, serving
from small_city import CENTRES, GRIDS
from sqlalchemy import create_engine

from geogrid.settings import Settings
from geogrid.store import cluster

pytestmark = pytest.mark.skipif(
    not any(os.path.exists(f"/usr/lib/postgresql/{v}/bin/initdb") for v in range(12, 20)),
    reason="no PostgreSQL server binaries",
)

LON, LAT = CENTRES[GRIDS[0]]
#: operations that need the database (each must answer 503 while it is down)
NEEDS_DATABASE = [
    ("GET", "/incidents", {}),
    ("GET", "/hotspots", {"level": "grid"}),
    ("GET", "/metrics/grid", {"from": "2026-01-01", "to": "2026-02-01"}),
    ("GET", "/open311/v2/requests.json", {}),
    ("GET", "/open311/v2/services.json", {}),
    ("GET", "/health", {}),
]


@pytest.fixture(scope="module")
def cluster_env():
    # not under pytest's basetemp: other pytest sessions reset its mode to 0700, and the
    # server (user postgres) must reach the data folder
    home = Path(tempfile.mkdtemp(prefix="gghome_faults_"))
    os.chmod(home, 0o711)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "GEOGRID_DATABASE_URL"}
    env.update(GEOGRID_HOME=str(home), GEOGRID_PG_PORT=str(port))

    def cli(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "-m", "geogrid.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr
        return done

    cli("db", "up")
    try:
        cli("db", "migrate")
        settings = Settings(home=home, pg_port=port)
        yield cli, settings, cluster.url(settings)
    finally:
        subprocess.run(
            [sys.executable, "-m", "geogrid.cli", "db", "down"],
            env=env,
            capture_output=True,
            timeout=180,
        )
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def token(cluster_env) -> str:
    _, _, url = cluster_env
    engine = create_engine(url)
    try:
        return small_city.populate(engine, url, source="tests/faults").tokens["admin"]
    finally:
        engine.dispose()


def _example(param: dict[str, Any]) -> Any:
    schema = param.get("schema", {})
    for source in (param.get("examples"), schema.get("examples")):
        if isinstance(source, dict) and source:
            return next(iter(source.values())).get("value")
        if isinstance(source, list) and source:
            return source[0]
    if "example" in param:
        return param["example"]
    return schema.get("default")


def _operations(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every GET of the document as (path with examples filled in, query parameters)."""
    found = []
    for path, item in doc["paths"].items():
        op = item.get("get")
        if not op:
            continue
        query: dict[str, Any] = {}
        filled = path
        for p in op.get("parameters", []):
            value = _example(p)
            if p["in"] == "path":
                filled = filled.replace("{" + p["name"] + "}", str(value))
            elif p["in"] == "query" and p.get("required") and value is not None:
                query[p["name"]] = value
        if not re.search(r"\{", filled):
            found.append((filled, query))
    return found


def _wait_until(check, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def test_database_stopped_and_started_while_serving(cluster_env, token):
    cli, settings, url = cluster_env
    auth = {"Authorization": f"Bearer {token}"}
    with serving(url, settings, headers=auth) as client:
        doc = client.get("/openapi.json").json()
        ops = _operations(doc)
        assert len(ops) > 20
        for method, path, params in NEEDS_DATABASE:
            r = client.request(method, path, params=params)
            assert r.status_code < 500, (path, r.status_code, r.text)

        cli("db", "down")
        statuses: dict[str, int] = {}
        for path, params in ops:
            t0 = time.monotonic()
            r = client.get(path, params=params)
            assert time.monotonic() - t0 < 15, path  # answered, not hung
            statuses[path] = r.status_code
            assert r.status_code != 500, (path, r.text)
            assert r.headers.get("connection", "").lower() != "close", path
            if r.status_code == 503:
                assert int(r.headers["Retry-After"]) >= 1, path
                if path != "/health":  # a HealthReport, documented as such
                    assert r.json()["error"] in ("DatabaseUnavailable", "Busy"), r.text
        for method, path, params in NEEDS_DATABASE:
            r = client.request(method, path, params=params)
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert "Retry-After" in r.headers
            assert r.headers.get("connection", "").lower() != "close"
        # the locator may answer from its memory (200), never with a 500
        r = client.get("/locate", params={"lon": LON, "lat": LAT})
        assert r.status_code in (200, 503), r.text
        # a write too
        r = client.post("/incidents", json={"category": "garbage", "lon": LON, "lat": LAT})
        assert r.status_code == 503, r.text
        assert sum(s == 503 for s in statuses.values()) >= len(ops) // 2, statuses

        cli("db", "up")  # the same server, no restart
        _wait_until(
            lambda: client.get("/locate", params={"lon": LON, "lat": LAT}).status_code == 200
        )
        for method, path, params in NEEDS_DATABASE:
            r = client.request(method, path, params=params)
            assert r.status_code < 500, (path, r.status_code, r.text)
        r = client.post("/incidents", json={"category": "garbage", "lon": LON, "lat": LAT})
        assert r.status_code == 201, r.text
