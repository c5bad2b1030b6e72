"""Time ``geogrid.services.metrics.load_metrics`` on the configured database.

    GEOGRID_DATABASE_URL=postgresql://… python -m bench.metrics [--repeat 5] [--compare]

One month (the 30 days up to the last stored incident) at grid, community and district
level; prints the median of ``--repeat`` warm runs (the first, cold run — which fills the
context's :class:`~geogrid.services.unitcache.UnitCache` — is shown separately). ``--compare`` also times the vectorised pandas
path on the same window (fetch the rows, group in pandas; what time travel uses) and checks
that both give the same numbers.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from geogrid.core.timewindow import resolve_window
from geogrid.core.unitmetrics import aggregate_incident_rows
from geogrid.services import metrics as gm
from geogrid.services.context import AppContext
from geogrid.store import metrics as sm


def _time(fn, repeat: int) -> tuple[float, list[float]]:
    t0 = time.perf_counter()
    fn()
    cold = time.perf_counter() - t0
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return cold, runs


def _pandas_path(engine: Engine, level: str, start, end, tz: str):
    """The same metrics through the vectorised path (rows fetched, grouped in pandas)."""
    s, e, _ = resolve_window(start, end, end, tz=tz)
    ps = s - (e - s)
    with engine.connect() as conn:
        rows = sm.metric_rows(
            conn,
            prev_start=ps,
            start=s,
            end=e,
            t=e,
            categories=None,
            version_id=0,
            with_points=False,
            past=False,
        )
    return aggregate_incident_rows(rows, level, prev_start=ps, start=s, end=e, t=e), len(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--compare", action="store_true", help="also time the pandas path")
    args = ap.parse_args(argv)

    ctx = AppContext.open()
    engine, tz = ctx.engine, ctx.settings.city.timezone
    with engine.connect() as conn:
        n = conn.exec_driver_sql("SELECT count(*) FROM incident").scalar_one()
    _, last = gm.incident_time_range(engine)
    end = last.normalize()
    start = end - pd.Timedelta(days=30)
    print(
        f"{n:,} incidents; window {start.date()} – {end.date()} (30 days), "
        f"median of {args.repeat} warm runs"
    )
    for level in ("grid", "community", "district"):
        holder = {}

        def run(level=level, holder=holder):
            holder["m"] = gm.load_metrics(
                engine, level, start=start, end=end, now=end, tz=tz, cache=ctx.unit_cache
            )

        cold, runs = _time(run, args.repeat)
        m = holder["m"]
        print(
            f"  load_metrics {level:<9} {len(m):>5} units  "
            f"median {statistics.median(runs) * 1000:7.1f} ms  (cold {cold * 1000:.0f} ms, "
            f"{int(m['incidents'].sum()):,} incidents, path {m.attrs['path']})"
        )
        if args.compare:
            s, e, _ = resolve_window(start, end, end, tz=tz)

            def sql_only(level=level, s=s, e=e, vid=m.attrs["version_id"]):
                sm.aggregate_units(
                    engine,
                    level,
                    prev_start=s - (e - s),
                    start=s,
                    end=e,
                    t=e,
                    categories=None,
                    version_id=vid,
                    past=False,
                )

            _, sql_runs = _time(sql_only, args.repeat)
            out = {}

            def pandas_only(level=level, out=out):
                out["agg"], out["rows"] = _pandas_path(engine, level, start, end, tz)

            _, pd_runs = _time(pandas_only, args.repeat)
            agg = out["agg"].set_index("code").reindex(m["code"])
            same = np.array_equal(
                agg["incidents"].fillna(0).to_numpy(), m["incidents"].to_numpy()
            ) and np.allclose(
                agg["median_hours"].to_numpy(float),
                m["median_hours_to_resolve"].to_numpy(float),
                equal_nan=True,
            )
            print(
                f"      aggregation only: SQL {statistics.median(sql_runs) * 1000:7.1f} ms | "
                f"pandas {statistics.median(pd_runs) * 1000:7.1f} ms "
                f"({out['rows']:,} rows fetched); same numbers: {same}"
            )
    ctx.close()


if __name__ == "__main__":
    main()
