"""Property-based tests of the whole API with schemathesis, from the live server's
``/openapi.json``: every operation, with generated (valid and invalid) inputs, anonymous
and with an admin's bearer token. No answer may be a server error, and every status must
be one the document lists for the operation.

Bounded: a few examples per operation (``GEOGRID_SCHEMATHESIS_EXAMPLES``, default 5), on
the small test city (four grids), so the whole run stays within a couple of minutes.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager

import httpx
import pytest
import schemathesis
import small_city
from conftest import LiveServer
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from api.main import create_app
from geogrid.settings import Settings

EXAMPLES = int(os.environ.get("GEOGRID_SCHEMATHESIS_EXAMPLES", "5"))
CHECKS = [not_a_server_error, status_code_conformance]


@pytest.fixture(scope="module")
def city():
    with small_city.build() as c:
        yield c


@pytest.fixture(scope="module")
def server(city):
    # rate limits off: the run sends many requests from one address on purpose
    srv = LiveServer(city.url, Settings(rate_limits=False))
    yield srv.base
    srv.stop()


def _document() -> dict:
    """The OpenAPI document of the app (built without a database; the live server serves
    the same document, checked by :func:`test_live_document_is_the_one_tested`)."""
    return create_app(settings=Settings(rate_limits=False)).openapi()


schema = schemathesis.openapi.from_dict(_document())


def test_live_document_is_the_one_tested(server):
    assert httpx.get(f"{server}/openapi.json", timeout=60).json() == schema.raw_schema


_BOUNDED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


#: seconds each operation took in this run (reported on stderr at the end of the module)
TIMES: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_times():
    yield
    slow = sorted(TIMES.items(), key=lambda kv: -kv[1])[:5]
    print(
        "\nslowest operations:",
        *(f"{k} {v:.1f} s" for k, v in slow),
        sep="\n  ",
        file=sys.__stderr__,
    )


@contextmanager
def _timed(case):
    t0 = time.perf_counter()
    try:
        yield
    finally:
        key = f"{case.method} {case.path}"
        TIMES[key] = TIMES.get(key, 0.0) + time.perf_counter() - t0


def _bounded(case) -> None:
    """Keep a run within minutes: Gi* p-values by permutation compile numba code (a minute
    on first use in a process); that path is covered by tests/test_hotspots.py."""
    if case.path == "/hotspots" and isinstance(case.query, dict) and "permutations" in case.query:
        case.query["permutations"] = 0


@schema.parametrize()
@_BOUNDED
def test_api_anonymous(case, server):
    _bounded(case)
    with _timed(case):
        case.call_and_validate(base_url=server, checks=CHECKS, timeout=60)


@schema.parametrize()
@_BOUNDED
def test_api_with_token(case, server, city):
    _bounded(case)
    case.call_and_validate(base_url=server, headers=city.auth("admin"), checks=CHECKS, timeout=60)
