"""Nothing lost, doubled or mis-attributed (issue 10): ``Idempotency-Key`` on every create,
the server killed during a stream of POSTs, and reports posted during a publish.

Each test builds the tiny city of ``tests/small_city.py`` (one community, four 500 m
grids) in its own database:

* retries with the same key return the first answer and store one incident; the same key
  with another body is refused (409 naming the header); a malformed key is a 400; two
  concurrent requests with one key make one incident; the same for Open311 (anonymous)
  and for transitions;
* a uvicorn server (a subprocess) is killed with SIGKILL during a stream of keyed POSTs,
  restarted, and every unacknowledged POST retried with its key: the stored incidents
  are exactly the acknowledged ones and the retried ones, once each;
* a report whose transaction is open when a publish starts, and reports posted while the
  publish runs, all land in the new version's grid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import httpx
import pytest
import small_city
from conftest import _free_port
from small_city import CENTRES, GRIDS
from sqlalchemy import text

from geogrid.services import idempotency, incidents, plans
from geogrid.services.context import AppContext
from geogrid.services.idempotency import HEADER

_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def city():
    with small_city.build() as c:
        yield c


@contextmanager
def _serve(city) -> Iterator[httpx.Client]:
    """The city served in a thread, and a client of it."""
    with small_city.serve(city) as http:
        yield cast(httpx.Client, http)


def _count(city, sql: str, **params) -> int:
    with city.engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def _body(description: str, grid: str = GRIDS[0]) -> dict:
    lon, lat = CENTRES[grid]
    return {"category": "garbage", "lon": lon, "lat": lat, "description": description}


# --------------------------------------------------------------------------- (a) retries
def test_same_key_returns_the_first_answer(city) -> None:
    admin = city.auth("admin")
    key = f"k-{uuid.uuid4()}"
    desc = f"retry {key}"
    with _serve(city) as http:
        first = http.post("/incidents", json=_body(desc), headers={**admin, HEADER: key})
        assert first.status_code == 201, first.text
        again = http.post("/incidents", json=_body(desc), headers={**admin, HEADER: key})
        assert again.status_code == 201
        assert again.json() == first.json()
        assert _count(city, "SELECT count(*) FROM incident WHERE description = :d", d=desc) == 1
        # the answer is made without reading the row back (issue 10): it equals a read
        read = http.get(f"/incidents/{first.json()['id']}", headers=admin)
        assert read.status_code == 200
        made = {k: v for k, v in first.json().items() if k not in ("outside", "history")}
        assert made == {k: v for k, v in read.json().items() if k in made}
        assert first.json()["outside"] is False
        # written by the same statement: the audit row of the create
        assert (
            _count(
                city,
                "SELECT count(*) FROM audit_log WHERE action = 'incident.create' "
                "AND resource_ids = ARRAY[:i]",
                i=str(first.json()["id"]),
            )
            == 1
        )

        # the same key with another request: refused, naming the header; nothing stored
        other = http.post("/incidents", json=_body(desc + "!"), headers={**admin, HEADER: key})
        assert other.status_code == 409
        assert HEADER in other.text
        assert (
            _count(city, "SELECT count(*) FROM incident WHERE description = :d", d=desc + "!") == 0
        )
        # another account's key space is its own
        w1 = http.post("/incidents", json=_body(desc), headers={**city.auth("w1"), HEADER: key})
        assert w1.status_code == 201 and w1.json()["id"] != first.json()["id"]

        # malformed keys: 400 naming the header
        for bad in ("x" * 201, ""):
            r = http.post("/incidents", json=_body(desc), headers={**admin, HEADER: bad})
            assert r.status_code == 400, (bad, r.text)
            assert HEADER in r.text

        # two requests with one key at once: one incident, the same answer twice
        key2, desc2 = f"k-{uuid.uuid4()}", f"concurrent {uuid.uuid4()}"
        with ThreadPoolExecutor(4) as pool:
            answers = list(
                pool.map(
                    lambda _: http.post(
                        "/incidents", json=_body(desc2), headers={**admin, HEADER: key2}
                    ),
                    range(4),
                )
            )
        assert {a.status_code for a in answers} == {201}
        assert len({a.json()["id"] for a in answers}) == 1
        assert _count(city, "SELECT count(*) FROM incident WHERE description = :d", d=desc2) == 1

        # transitions: a retried move answers as the first time (not a 409)
        iid = first.json()["id"]
        tkey = f"t-{uuid.uuid4()}"
        move = {"status": "accepted", "note": "on my way"}
        t1 = http.post(f"/incidents/{iid}/transitions", json=move, headers={**admin, HEADER: tkey})
        t2 = http.post(f"/incidents/{iid}/transitions", json=move, headers={**admin, HEADER: tkey})
        assert t1.status_code == t2.status_code == 200
        assert t2.json() == t1.json()
        assert (
            _count(
                city,
                "SELECT count(*) FROM incident_event WHERE incident_id = :i AND to_status = "
                "'accepted'",
                i=iid,
            )
            == 1
        )
        # without a key the same move is a conflict: the lifecycle refuses it
        t3 = http.post(f"/incidents/{iid}/transitions", json=move, headers=admin)
        assert t3.status_code == 409


def test_plan_create_and_edit_keys(city) -> None:
    """A planner's retried create makes one plan; a retried edit is applied once; every
    plan write leaves an audit row."""
    planner = city.auth("planner")
    key = f"p-{uuid.uuid4()}"
    name = f"retry plan {key}"
    body = {"name": name, "communities": [small_city.COMMUNITY]}
    with _serve(city) as http:
        first = http.post("/plans", json=body, headers={**planner, HEADER: key})
        assert first.status_code == 201, first.text
        again = http.post("/plans", json=body, headers={**planner, HEADER: key})
        assert again.status_code == 201
        pid = first.json()["id"]
        assert again.json()["id"] == pid
        assert _count(city, "SELECT count(*) FROM plan WHERE name = :n", n=name) == 1
        other = http.post(
            "/plans", json={**body, "name": name + "!"}, headers={**planner, HEADER: key}
        )
        assert other.status_code == 409 and HEADER in other.text

        ekey = f"e-{uuid.uuid4()}"
        edit = {"kind": "merge", "params": {"codes": [GRIDS[2], GRIDS[3]]}}
        e1 = http.post(f"/plans/{pid}/edits", json=edit, headers={**planner, HEADER: ekey})
        assert e1.status_code == 201, e1.text
        e2 = http.post(f"/plans/{pid}/edits", json=edit, headers={**planner, HEADER: ekey})
        assert e2.status_code == 201
        assert e2.json() == e1.json()
        assert _count(city, "SELECT count(*) FROM plan_edit WHERE plan_id = :p", p=pid) == 1
        assert http.post(f"/plans/{pid}/undo", headers=planner).status_code == 200
    ctx = AppContext.open(city.url)
    try:
        plans.delete_plan(ctx, pid)
    finally:
        ctx.close()
    actions = {
        r[0]
        for r in city.engine.connect().execute(
            text("SELECT action FROM audit_log WHERE resource = 'plan' AND :p = ANY(resource_ids)"),
            {"p": str(pid)},
        )
    }
    assert {"plan.create", "plan.edit", "plan.undo", "plan.delete"} <= actions


def test_open311_anonymous_key(city) -> None:
    lon, lat = CENTRES[GRIDS[1]]
    key = f"o-{uuid.uuid4()}"
    desc = f"open311 {key}"
    form = {"service_code": "garbage", "lat": str(lat), "long": str(lon), "description": desc}
    with _serve(city) as http:
        a = http.post("/open311/v2/requests.json", data=form, headers={HEADER: key})
        b = http.post("/open311/v2/requests.json", data=form, headers={HEADER: key})
        assert a.status_code == b.status_code == 201, a.text
        assert a.json() == b.json()
        assert _count(city, "SELECT count(*) FROM incident WHERE description = :d", d=desc) == 1
        c = http.post(
            "/open311/v2/requests.json",
            data={**form, "description": desc + " (edited)"},
            headers={HEADER: key},
        )
        assert c.status_code == 409 and HEADER in c.text
        # the header is documented on every create
        doc = http.get("/openapi.json").json()
        for path in (
            "/incidents",
            "/open311/v2/requests.{fmt}",
            "/incidents/{incident_id}/transitions",
            "/incidents/{incident_id}/escalate",
        ):
            params = doc["paths"][path]["post"]["parameters"]
            header = [p for p in params if p["in"] == "header" and p["name"] == HEADER]
            assert header and header[0]["description"], path


# --------------------------------------------------------------------------- (b) crash
class _Server:
    """``uvicorn api.main:app_from_env`` in a subprocess (its own process group)."""

    def __init__(self, url: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "GEOGRID_DATABASE_URL": url}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.main:app_from_env",
                "--factory",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            cwd=_ROOT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/health", timeout=2).status_code < 500:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.kill()
        raise RuntimeError("the server did not start")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


def test_killed_server_exactly_once(city) -> None:
    run = uuid.uuid4().hex[:8]
    admin = city.auth("admin")
    keys = [f"crash-{run}-{i}" for i in range(300)]
    acked: dict[str, int] = {}
    failed: list[str] = []
    lock = threading.Lock()

    def post(base: str, key: str) -> int | None:
        try:
            r = httpx.post(
                base + "/incidents",
                json=_body(key, GRIDS[int(key.rsplit("-", 1)[1]) % 4]),
                headers={**admin, HEADER: key},
                timeout=20,
            )
        except httpx.HTTPError:
            return None
        return int(r.json()["id"]) if r.status_code == 201 else None

    server = _Server(city.url)
    first_ack = threading.Event()

    def kill_mid_stream() -> None:
        # killed while POSTs are in flight: after the first acknowledgment (not at a fixed
        # time, which a loaded machine may reach before any answer)
        first_ack.wait(60)
        time.sleep(0.3)
        server.kill()

    killer = threading.Thread(target=kill_mid_stream, daemon=True)
    try:

        def worker(chunk: list[str]) -> None:
            for key in chunk:
                iid = post(server.base, key)
                with lock:
                    (failed.append(key) if iid is None else acked.__setitem__(key, iid))
                if iid is not None:
                    first_ack.set()

        killer.start()
        threads = [threading.Thread(target=worker, args=(keys[i::6],)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        first_ack.set()
        killer.join(90)
        server.kill()
    assert acked, "no POST was acknowledged before the kill"
    assert failed, "the kill came after every POST"

    server = _Server(city.url)  # restarted
    try:
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda k: post(server.base, k), failed))
        retried = dict(zip(failed, answers, strict=True))
        assert all(v is not None for v in retried.values()), retried
        # a retry of an acknowledged POST returns the same incident
        some = sorted(acked)[:5]
        assert {k: post(server.base, k) for k in some} == {k: acked[k] for k in some}
    finally:
        server.kill()

    with city.engine.connect() as conn:
        stored = dict(
            conn.execute(
                text(
                    "SELECT description, count(*) FROM incident WHERE description LIKE :p "
                    "GROUP BY description"
                ),
                {"p": f"crash-{run}-%"},
            ).all()
        )
        ids = dict(
            conn.execute(
                text("SELECT description, id FROM incident WHERE description LIKE :p"),
                {"p": f"crash-{run}-%"},
            ).all()
        )
    assert set(stored) == set(acked) | set(retried) == set(keys)
    assert max(stored.values()) == 1, "a POST was stored twice"
    assert all(ids[k] == v for k, v in acked.items())
    assert all(ids[k] == v for k, v in retried.items())


# --------------------------------------------------------------------------- (c) publish
def _waiting_advisory(city) -> int:
    return _count(
        city,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )


def test_report_during_publish_lands_in_the_new_grid(city) -> None:
    ctx = AppContext.open(city.url)
    try:
        p = plans.create_plan(ctx, [small_city.COMMUNITY], "merge north", author="t")
        plans.add_edit(ctx, p["id"], "merge", {"codes": [GRIDS[2], GRIDS[3]]})
        old_vid = _count(city, "SELECT id FROM boundary_version WHERE status = 'published'")
        lon, lat = CENTRES[GRIDS[3]]  # the grid the merge removes
        run = uuid.uuid4().hex[:8]

        # a report whose transaction is still open when the publish starts
        conn = city.engine.connect()
        tx = conn.begin()
        early = incidents.create_incident(
            conn,
            category="garbage",
            lon=lon,
            lat=lat,
            description=f"publish-{run}-early",
            actor=city.accounts["admin"],
            reporter_id=city.accounts["admin"].id,
        )
        assert early["grid_code"] == GRIDS[3]

        result: dict = {}
        publisher = threading.Thread(
            target=lambda: result.update(plans.publish_plan(ctx, p["id"], author="t"))
        )
        publisher.start()
        deadline = time.monotonic() + 30
        while _waiting_advisory(city) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _waiting_advisory(city) >= 1, "the publish did not wait for the open report"

        # reports posted while the publish waits or runs
        with _serve(city) as http:
            with ThreadPoolExecutor(4) as pool:
                futures = [
                    pool.submit(
                        http.post,
                        "/incidents",
                        json={
                            "category": "garbage",
                            "lon": lon,
                            "lat": lat,
                            "description": f"publish-{run}-{i}",
                        },
                        headers=city.auth("admin"),
                    )
                    for i in range(4)
                ]
                until = time.monotonic() + 10  # the reports queue behind the publish
                while _waiting_advisory(city) < 5 and time.monotonic() < until:
                    time.sleep(0.05)
                tx.commit()  # the open report commits; the publish goes on
                conn.close()
                answers = [f.result() for f in futures]
            publisher.join(timeout=60)
        assert result, "the publish did not finish"
        assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
        new_vid = result["version_id"]
        assert new_vid != old_vid
        assert {a.json()["grid_code"] for a in answers} == {GRIDS[2]}
        assert {a.json()["version_id"] for a in answers} == {new_vid}
        with city.engine.connect() as c:
            rows = c.execute(
                text("SELECT grid_code, version_id FROM incident WHERE description LIKE :p"),
                {"p": f"publish-{run}-%"},
            ).all()
        assert len(rows) == 5
        assert set(rows) == {(GRIDS[2], new_vid)}, rows
        # the version times are the publish's commit, after the reports it waited for
        with city.engine.connect() as c:
            published_at, retired_at = c.execute(
                text(
                    "SELECT (SELECT published_at FROM boundary_version WHERE id = :n), "
                    "(SELECT retired_at FROM boundary_version WHERE id = :o)"
                ),
                {"n": new_vid, "o": old_vid},
            ).one()
            early_at = c.execute(
                text("SELECT reported_at FROM incident WHERE id = :i"), {"i": early["id"]}
            ).scalar_one()
        assert published_at == retired_at
        assert published_at > early_at
    finally:
        ctx.close()


def test_keys_expire(city) -> None:
    """Keys older than the TTL are forgotten (the hourly task and ``db prune-keys`` call
    this); younger keys stay and still replay."""
    admin = city.auth("admin")
    old, young = f"old-{uuid.uuid4()}", f"young-{uuid.uuid4()}"
    with _serve(city) as http:
        for key in (old, young):
            r = http.post("/incidents", json=_body(key), headers={**admin, HEADER: key})
            assert r.status_code == 201
    with city.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE idempotency_key SET created_at = now() - interval '40 days' WHERE key = :k"
            ),
            {"k": old},
        )
    with pytest.raises(Exception, match="days"):
        idempotency.prune(city.engine, 0)
    assert idempotency.prune(city.engine, 30, now=datetime.now(UTC) + timedelta(seconds=1)) >= 1
    left = {
        r[0]
        for r in city.engine.connect().execute(
            text("SELECT key FROM idempotency_key WHERE key IN (:a, :b)"), {"a": old, "b": young}
        )
    }
    assert left == {young}
