"""The interactive impact preview equals a from-scratch recomputation (geogrid.core.plans.impact).

The tiny city of ``tests/small_city.py`` (own database) with random buildings and a
year of incidents; a plan is edited step by step (split, merge, move an edge, reassign,
auto-partition, undo), and after every step the incrementally updated table of the
cached :class:`ImpactSession` must equal :func:`plan_metrics` on the plan's grids.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import small_city
from small_city import CX, CY, DX, DY, GRIDS
from test_plan_publish import add_points

from geogrid.core.plans.impact import GRID_COLUMNS, plan_metrics, shape_metrics, totals
from geogrid.services import plans
from geogrid.services.context import AppContext


@pytest.fixture(scope="module")
def city():
    with small_city.build() as c:
        add_points(c.engine, n_incidents=5000, n_buildings=400, seed=11)
        yield c


@pytest.fixture(scope="module")
def ctx(city):
    """The service context on the city's database (its plan sessions are ``ctx.plans``)."""
    c = AppContext.open(city.url)
    yield c
    c.close()


def _check(ctx, pid) -> dict:
    rep = plans.impact(ctx, pid)
    sess = plans.impact_session(ctx, pid)  # the session kept by ctx.plans, updated in place
    _, cov = plans.plan_coverage(ctx, pid)
    scratch = plan_metrics(sess.data, cov.grids)
    inc = sess.table
    assert inc["code"].tolist() == scratch["code"].tolist()
    num = [c for c in GRID_COLUMNS if c not in ("code", "name", "parent_code")]
    pd.testing.assert_frame_equal(
        inc[num].astype(float), scratch[num].astype(float), rtol=1e-9, atol=1e-6
    )
    assert totals(inc) == pytest.approx(totals(scratch))
    return rep


def test_incremental_equals_scratch(ctx) -> None:
    p = plans.create_plan(ctx, [small_city.COMMUNITY], "impact")
    pid = p["id"]
    rep = _check(ctx, pid)
    assert rep["plan"]["totals"] == pytest.approx(rep["published"]["totals"])
    n_inc = rep["plan"]["totals"]["incidents"]
    assert n_inc > 0
    line = {
        "type": "LineString",
        "coordinates": [[CX - DX / 3, CY - DY - 0.001], [CX - DX / 3, CY + 0.001]],
    }
    plans.add_edit(ctx, pid, "split", {"code": GRIDS[0], "line": line})
    rep = _check(ctx, pid)
    assert rep["relocated_points"] > 0
    assert rep["plan"]["totals"]["incidents"] == n_inc  # nothing lost or counted twice
    plans.add_edit(ctx, pid, "merge", {"codes": [GRIDS[2], GRIDS[3]]})
    _check(ctx, pid)
    edge = {
        "type": "LineString",
        "coordinates": [[CX - DX - 0.001, CY + DY / 5], [CX + DX + 0.001, CY + DY / 5]],
    }
    block = {
        "type": "Polygon",
        "coordinates": [
            [
                [CX + 0.1 * DX, CY - 0.2 * DY],
                [CX + 0.5 * DX, CY - 0.2 * DY],
                [CX + 0.5 * DX, CY + 0.2 * DY],
                [CX + 0.1 * DX, CY + 0.2 * DY],
                [CX + 0.1 * DX, CY - 0.2 * DY],
            ]
        ],
    }
    plans.add_edit(ctx, pid, "reassign", {"polygon": block, "from": GRIDS[1], "to": GRIDS[2]})
    _check(ctx, pid)
    plans.add_edit(ctx, pid, "move_edge", {"a": GRIDS[1], "b": GRIDS[2], "line": edge})
    _check(ctx, pid)
    plans.autopartition_plan(ctx, pid, n=5, cell_m=60)
    rep = _check(ctx, pid)
    assert rep["plan"]["totals"]["grids"] == 5
    plans.undo(ctx, pid)
    _check(ctx, pid)
    plans.redo(ctx, pid)
    rep = _check(ctx, pid)
    assert rep["plan"]["totals"]["incidents"] == n_inc
    assert rep["plan"]["totals"]["households"] == pytest.approx(
        rep["published"]["totals"]["households"]
    )


def test_shape_metrics_reference() -> None:
    import shapely

    sq = shapely.box(CX, CY, CX + DX, CY + DY)  # ~500 m square
    disc = shapely.Point(CX, CY).buffer(DX / 2, quad_segs=64)
    two = shapely.MultiPolygon(
        [
            shapely.box(CX, CY, CX + DX / 4, CY + DY / 4),
            shapely.box(CX + DX / 2, CY, CX + DX, CY + DY / 4),
        ]
    )
    m = shape_metrics([sq, disc, two])
    assert m["area_m2"][0] == pytest.approx(250_000, rel=0.01)
    assert m["polsby_popper"][0] == pytest.approx(np.pi / 4, rel=0.01)
    assert m["polsby_popper"][1] > 0.95  # nearly a disc (in degrees an ellipse on the ground)
    assert m["hull_ratio"][0] == pytest.approx(1.0)
    assert m["hull_ratio"][2] == pytest.approx(0.75, rel=1e-3)
    assert m["parts"].tolist() == [1, 1, 2]
