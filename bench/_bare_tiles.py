"""The bare tile server of ``bench.tiles``: plain ``ST_AsMVT`` over HTTP, nothing else.

    uvicorn bench._bare_tiles:app --port P   (GEOGRID_DATABASE_URL: the database)

One route, ``GET /grids/{z}/{x}/{y}.mvt``: the grid layer's tile as pg_tileserv would make
it (:func:`geogrid.store.tiles.plain_unit_tile`: one statement, no metrics, no cache, no
limits, no validation), drawn in the thread pool over a pooled connection in autocommit
(one round trip, as pg_tileserv's pgx pool runs it), served by the same uvicorn as
``geogrid serve``. The cold tiles of geogrid over HTTP are compared with this — "plain
``ST_AsMVT`` measured the same way" (issue 12) — so that the ratio is what geogrid adds
to a tile, not what any HTTP server costs. Written here because no such server is on the
package registries this machine reaches (pg_tileserv and Martin are Go and Rust
binaries); Starlette and uvicorn are the ones geogrid runs on.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from geogrid.store import get_engine
from geogrid.store.engine import autocommit
from geogrid.store.tiles import plain_unit_tile

__all__ = ["app"]


_ENGINE = get_engine()  # once: resolving it reads the settings (~2 ms)


def _draw(z: int, x: int, y: int) -> bytes:
    with autocommit(_ENGINE) as conn:
        return plain_unit_tile(conn, "grid", "grids", z, x, y)


async def _tile(request: Request) -> Response:
    p = request.path_params
    data = await run_in_threadpool(_draw, p["z"], p["x"], p["y"])
    return Response(data, media_type="application/vnd.mapbox-vector-tile")


app = Starlette(routes=[Route("/grids/{z:int}/{x:int}/{y:int}.mvt", _tile)])
