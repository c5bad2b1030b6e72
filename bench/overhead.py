"""Where the time of a small request goes: ``python -m bench.overhead [--db URL] [-n N]``.

Issue 12 measured ``GET /health`` at 13 ms median. This splits one request into layers,
measured in interleaved rounds (every variant once per round, so a loaded machine slows
them alike), p10 / median / p90 of ``-n`` rounds after 20 warm-up rounds:

1. a bare Starlette app returning a constant, called in-process (no socket): the ASGI
   floor of this interpreter;
2. our app in-process (ASGI call, no socket): ``/ogc/conformance`` (routing, the audit
   dependency of every router, the limits middleware, a sync endpoint in the threadpool,
   a pydantic response model — no database) and ``/health`` (the same plus its probe);
3. the same app over a socket (uvicorn in a thread, one keep-alive httpx client): adds
   HTTP parsing and the loopback;
4. the health probe's SQL alone through the pooled engine (checkout, query, rollback);
5. ``/health`` in-process with the rate limits on (the sliding-window counters).

Nothing is refactored by this script; it only reports.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.main import create_app
from geogrid.settings import Settings, get_settings
from geogrid.store import get_engine
from geogrid.store import health as store_health


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 1),
        "server": ("bench", 80),
    }


async def _asgi_call(app: Callable[..., Awaitable[None]], path: str) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(m: dict[str, Any]) -> None:
        nonlocal status
        if m["type"] == "http.response.start":
            status = m["status"]

    await app(_scope(path), receive, send)
    return status


def _report(label: str, ts: list[float]) -> None:
    ts = sorted(ts)
    print(
        f"{label:<48} p10 {ts[len(ts) // 10] * 1000:6.2f}   median "
        f"{statistics.median(ts) * 1000:6.2f}   p90 {ts[int(len(ts) * 0.9)] * 1000:6.2f} ms"
    )


async def _run(db: str, n: int) -> dict[str, list[float]]:
    """Every variant once per round, ``n`` rounds: the machine's load hits them alike."""
    bare = Starlette(routes=[Route("/x", lambda r: JSONResponse({"status": "ok"}))])
    app = create_app(db, Settings(rate_limits=False))
    limited = create_app(db, Settings(rate_limits=True))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(db, Settings(rate_limits=False)),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    while not server.started:
        await asyncio.sleep(0.05)
    engine = get_engine(db)

    async def probe() -> None:
        store_health.probe(engine)

    out: dict[str, list[float]] = {}
    try:
        async with (
            app.router.lifespan_context(app),
            limited.router.lifespan_context(limited),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
        ):
            variants: dict[str, Callable[[], Awaitable[Any]]] = {
                "1. bare Starlette, in-process": lambda: _asgi_call(bare, "/x"),
                "2. /ogc/conformance, in-process": lambda: _asgi_call(app, "/ogc/conformance"),
                "2. /health, in-process": lambda: _asgi_call(app, "/health"),
                "3. /ogc/conformance, uvicorn + httpx": lambda: client.get("/ogc/conformance"),
                "3. /health, uvicorn + httpx": lambda: client.get("/health"),
                "4. health probe SQL alone (pooled engine)": probe,
                "5. /health, in-process, rate limits on": lambda: _asgi_call(limited, "/health"),
            }
            for rnd in range(n + 20):
                for label, fn in variants.items():
                    t = time.perf_counter()
                    await fn()
                    if rnd >= 20:  # warm-up rounds
                        out.setdefault(label, []).append(time.perf_counter() - t)
    finally:
        server.should_exit = True
        th.join(10)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", help="database URL (default: GEOGRID_DATABASE_URL)")
    ap.add_argument("-n", type=int, default=300, help="rounds (calls per variant)")
    args = ap.parse_args(argv)
    db = args.db or get_settings().database_url
    if db is None:
        raise SystemExit("give --db or set GEOGRID_DATABASE_URL")
    for label, ts in asyncio.run(_run(db, args.n)).items():
        _report(label, ts)


if __name__ == "__main__":
    main()
