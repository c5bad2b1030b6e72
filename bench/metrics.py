"""Time ``geogrid.services.metrics.load_metrics`` on the configured database.

    GEOGRID_DATABASE_URL=postgresql://… python -m bench.metrics [--repeat 5] [--compare]
    python -m bench.metrics --incidents 1000000 10000000 [--span-days 365] [--repeat 15]

With ``--incidents`` (issue 12, the daily rollup) each size gets a scratch database of its
own (dropped at the end): the demo's boundaries, categories and workers, then that many
synthetic incidents made in SQL (``INSERT … SELECT generate_series``, triggers off, the
rollup rebuilt once after), spread over ``--span-days`` days — or, with ``--per-day N``,
over as many days as N a day makes (a city's history growing at a fixed pace: each larger
size adds older years, the last month is the same). ``--open-days D``: only incidents of
the last D days may still be open (older ones were all resolved, closed, rejected or
marked duplicate, in the same proportions) — a city that works its backlog off; without
it 9 % of every year's incidents stay open for ever. A month of grid metrics
(the 30 local days up to the last local midnight of the data, state read at its end) is
timed through the base-table aggregate (``store.metrics.aggregate_units``, the path before
0016) and through the rollup (``load_metrics`` as shipped): p50/p99 of ``--repeat`` warm
runs each (interleaved), the ratio, and whether both give the same numbers. The objects
made before the timing are frozen out of the garbage collector's sight (``gc.freeze``),
as the service does after start-up (``api.main``); the full collections of each run are
counted and shown; each timed run starts after a ``gc.collect()`` (outside the timing), so
one path's garbage is not collected in the other's time.

    python -m bench.metrics --incidents 1000000 10000000 --per-day 548 --open-days 90

is issue 12's "a month of grid metrics ≤ 100 ms at 10M incidents": the demo's pace
(200,000 a year), 5 and 50 years of history.

One month (the 30 days up to the last stored incident) at grid, community and district
level; prints the median of ``--repeat`` warm runs (the first, cold run — which fills the
context's :class:`~geogrid.services.unitcache.UnitCache` — is shown separately). ``--compare`` also times the vectorised pandas
path on the same window (fetch the rows, group in pandas; what time travel uses) and checks
that both give the same numbers.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import Engine, event, text

from bench._scratch import ADMIN_URL, scratch_database
from geogrid.core.loadindex import LoadWeights
from geogrid.core.timewindow import resolve_window
from geogrid.core.unitmetrics import aggregate_incident_rows
from geogrid.services import metrics as gm
from geogrid.services import partitions
from geogrid.services.context import AppContext
from geogrid.services.database import get_engine
from geogrid.services.demo import load_demo
from geogrid.services.unitcache import UnitCache
from geogrid.settings import get_settings
from geogrid.store import columns as store_columns
from geogrid.store import metrics as sm
from geogrid.store import rollup as store_rollup
from geogrid.store.units import resolve_version


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


#: status mix of the synthetic incidents: (upper bound of random(), status)
_STATUS_MIX = [
    (0.03, "reported"),
    (0.05, "accepted"),
    (0.07, "dispatched"),
    (0.09, "in_progress"),
    (0.12, "rejected"),
    (0.14, "duplicate"),
    (0.55, "resolved"),
    (1.01, "closed"),
]

#: the synthetic incidents of one statement (generate_series over :lo..:hi); the grid is
#: drawn with a skew (dense grids get more), times uniform over the span; resolved ones
#: take 0–1.5× their category's limit (a third late), closed ones 0–48 h more
_GENERATE = """
    INSERT INTO incident (category, reported_at, status, updated_at, resolved_at, closed_at,
                          due_at, version_id, grid_code, community_code, street_code,
                          district_code, geom, src_lon, src_lat)
    SELECT code, rep, status, GREATEST(rep, res, clo), res, clo, rep + lim * interval '1 hour',
           CAST(:vid AS int), grid, community, street, district,
           ST_SetSRID(ST_MakePoint(lon + jx, lat + jy), 4326), lon, lat
    FROM (
        SELECT y.rep, y.status, y.jx, y.jy, c.code, c.lim, g.grid, g.community, g.street,
               g.district, g.lon, g.lat,
               CASE WHEN y.status IN ('resolved', 'closed')
                    THEN y.rep + y.u * 1.5 * c.lim * interval '1 hour' END AS res,
               CASE WHEN y.status = 'closed'
                    THEN y.rep + (y.u * 1.5 * c.lim + 48 * y.v) * interval '1 hour'
                    WHEN y.status IN ('rejected', 'duplicate')
                    THEN y.rep + y.v * 48 * interval '1 hour' END AS clo
        FROM (
            SELECT s.rep,
                   CASE {cases} END AS status,
                   (random() - 0.5) * 0.002 AS jx, (random() - 0.5) * 0.002 AS jy,
                   floor(power(random(), 1.6) * CAST(:ngrids AS int))::int AS gi,
                   floor(random() * CAST(:ncats AS int))::int + 1 AS ci, random() AS u, random() AS v
            FROM (SELECT n, random() AS r,
                         CAST(:t0 AS timestamptz) + random() * CAST(:span AS float8) * interval '1 second' AS rep
                  FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) n) s
        ) y
        JOIN _bench_grids g ON g.i = y.gi
        JOIN _bench_cats c ON c.i = y.ci
    ) x
    ORDER BY rep
"""


def _admin_url() -> str:
    return os.environ.get("GEOGRID_TEST_ADMIN_URL", ADMIN_URL)


def _demo_city(url: str, t0: float, say) -> int:
    """The demo city (no incidents) in the scratch database ``url`` made since ``t0``: the
    published version id."""
    summary = load_demo(get_engine(url), incidents=0)
    vid = summary["version_id"]
    name = url.rsplit("/", 1)[1]
    say(
        f"  {name}: schema + demo city ({summary['grids']} grids) in {time.perf_counter() - t0:.0f} s"
    )
    return int(vid)


def _grow(
    url: str,
    vid: int,
    have: int,
    n: int,
    span_days: float,
    say,
    *,
    per_day: float | None = None,
    open_days: float | None = None,
) -> None:
    """Add synthetic incidents to ``url`` until it holds ``n`` (it holds ``have``): over
    ``span_days`` up to the end, or (``per_day``) over the days before the ``have`` already
    there, at that pace. Before the last ``open_days`` days none is open."""
    engine = get_engine(url)
    t1 = time.perf_counter()
    # the last year's months have their partitions, as a service makes them on demand;
    # older months wait in the DEFAULT partition (a long history would be archived)
    t_end = datetime(2026, 12, 1, tzinfo=UTC)  # the history ends before this moment
    partitions.ensure_range(engine, t_end - timedelta(days=400), t_end)
    # before :t_open only the done statuses (r moved past the open ones' share)
    x = "(CASE WHEN s.rep < CAST(:t_open AS timestamptz) THEN 0.09 + s.r * 0.92 ELSE s.r END)"
    cases = " ".join(f"WHEN {x} < {b} THEN '{s}'" for b, s in _STATUS_MIX)
    sql = _GENERATE.format(cases=cases)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE UNLOGGED TABLE _bench_grids AS SELECT (row_number() OVER (ORDER BY g.code)) - 1 AS i, "
            "g.code AS grid, c.code AS community, s.code AS street, s.parent_code AS district, "
            "ST_X(ST_PointOnSurface(g.geom)) AS lon, ST_Y(ST_PointOnSurface(g.geom)) AS lat "
            "FROM unit g JOIN unit c ON c.version_id = g.version_id AND c.code = g.parent_code "
            "JOIN unit s ON s.version_id = g.version_id AND s.code = c.parent_code "
            f"WHERE g.version_id = {int(vid)} AND g.level = 'grid'"
        )
        conn.exec_driver_sql(
            "CREATE UNLOGGED TABLE _bench_cats AS SELECT row_number() OVER (ORDER BY code) AS i, "
            "code, COALESCE(limit_hours, 72) AS lim FROM category"
        )
        ngrids = conn.exec_driver_sql("SELECT count(*) FROM _bench_grids").scalar_one()
        ncats = conn.exec_driver_sql("SELECT count(*) FROM _bench_cats").scalar_one()
        # secondary indexes are rebuilt after the load (sorted builds, not row-by-row
        # maintenance): the generation is setup, not what is measured
        indexes = conn.exec_driver_sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'incident' "
            "AND position('UNIQUE' IN indexdef) = 0"
        ).all()
        for name, _ in indexes:
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
    t_first = t_end - timedelta(days=span_days)
    if per_day:  # the older history: (n - have) incidents before the have already there
        t_first = t_end - timedelta(days=n / per_day)
        span_days = (n - have) / per_day
    t_open = None if open_days is None else t_end - timedelta(days=open_days)
    # in time order, as reports arrive (a month's rows lie together on disk): chunk k of
    # K covers the k-th slice of the span, its rows inserted sorted by report time
    chunk = 500_000
    slices = max(1, -(-(n - have) // chunk))
    for k, lo in enumerate(range(have + 1, n + 1, chunk)):
        with engine.begin() as conn:
            # triggers off while generating (session_replication_role): the rollup is
            # rebuilt once below, as the migration's backfill does
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            conn.exec_driver_sql("SET LOCAL jit = off")  # JIT compiled for seconds
            conn.execute(
                text(sql),
                {
                    "lo": lo,
                    "hi": min(lo + chunk - 1, n),
                    "t0": t_first + timedelta(days=span_days * k / slices),
                    "span": span_days / slices * 86400.0,
                    "t_open": t_open,
                    "vid": vid,
                    "ngrids": ngrids,
                    "ncats": ncats,
                },
            )
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
        for _, ddl in indexes:
            conn.exec_driver_sql(ddl.replace(" ON ONLY ", " ON "))
    t_gen = time.perf_counter() - t1
    t2 = time.perf_counter()
    with engine.begin() as conn:
        rows = conn.exec_driver_sql("SELECT incident_daily_rebuild()").scalar_one()
        conn.exec_driver_sql("DROP TABLE _bench_grids, _bench_cats")
    t_roll = time.perf_counter() - t2
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE incident")
        conn.exec_driver_sql("VACUUM ANALYZE incident_daily")
    say(
        f"  {n - have:,} incidents over {span_days} days generated in {t_gen:.0f} s "
        f"({(n - have) / t_gen:,.0f} rows/s); rollup rebuilt in {t_roll:.0f} s: {rows:,} rows "
        f"({n / max(rows, 1):.1f} incidents per row)"
    )


def _pct(runs: list[float]) -> tuple[float, float]:
    a = np.asarray(runs) * 1000.0
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def _rollup_vs_base(url: str, repeat: int, say) -> dict[str, float]:
    """A month of grid metrics, base-table aggregate vs rollup, interleaved."""
    engine = get_engine(url)
    tz = get_settings().city.timezone
    cache = UnitCache()
    zone = ZoneInfo(tz)
    _, last = gm.incident_time_range(engine)
    end_local = last.tz_convert(tz).normalize()
    end = datetime(end_local.year, end_local.month, end_local.day, tzinfo=zone)
    start = end - timedelta(days=30)
    with engine.connect() as conn:
        vid = resolve_version(conn, None, None)
        month = conn.execute(
            text("SELECT count(*) FROM incident WHERE reported_at >= :s AND reported_at < :e"),
            {"s": start, "e": end},
        ).scalar_one()
        rollup_rows = conn.execute(
            text("SELECT count(*) FROM incident_daily WHERE day >= :a AND day < :b"),
            {"a": (start - timedelta(days=30)).date(), "b": end.date()},
        ).scalar_one()
    win = dict(prev_start=start - (end - start), start=start, end=end, t=end,
               categories=None, version_id=vid, past=False)  # fmt: skip

    def base():
        agg = sm.aggregate_units(engine, "grid", **win)
        return gm.metrics_from_aggregates(
            engine, "grid", agg, version_id=vid, prev_start=win["prev_start"], start=start,
            end=end, t=end, categories=None, weights=LoadWeights(), cache=cache, path="sql",
        )  # fmt: skip

    def rolled():
        return gm.load_metrics(engine, "grid", start=start, end=end, now=end, tz=tz, cache=cache)

    a, b = base(), rolled()  # warm: unit geometries cached, buffers read
    cols = [c for c in b.columns if c != "geometry"]
    same = bool(
        np.array_equal(a["incidents"], b["incidents"])
        and np.array_equal(a["open_backlog"], b["open_backlog"])
        and np.array_equal(a["overdue"], b["overdue"])
        and np.allclose(
            pd.DataFrame(a[cols]).select_dtypes("number").to_numpy(float),
            pd.DataFrame(b[cols]).select_dtypes("number").to_numpy(float),
            rtol=1e-9,
            equal_nan=True,
        )
    )
    t_base: list[float] = []
    t_roll: list[float] = []
    gc.freeze()  # as the service after start-up (api.main)
    full = gc.get_stats()[2]["collections"]
    for _ in range(repeat):
        for fn, out in ((base, t_base), (rolled, t_roll)):
            gc.collect()  # one path's garbage is not collected in the other's time
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    full = gc.get_stats()[2]["collections"] - full - 2 * repeat  # not the gc.collect()s
    gc.unfreeze()
    (b50, b99), (r50, r99) = _pct(t_base), _pct(t_roll)
    say(
        f"  month {start.date()} – {end.date()} ({tz}): {month:,} incidents in the window, "
        f"{rollup_rows:,} rollup rows for it and the previous window"
    )
    say(
        f"  a month of grid metrics ({int(b['code'].size):,} grids), {repeat} warm runs each: "
        f"base table p50 {b50:.0f} ms p99 {b99:.0f} ms | rollup p50 {r50:.0f} ms "
        f"p99 {r99:.0f} ms | ratio base/rollup {b50 / r50:.2f}× | same numbers: {same} "
        f"| full garbage collections within the {2 * repeat} runs: {full}"
    )
    _where_time_goes(engine, base, rolled, say)
    return {"base_p50": b50, "rollup_p50": r50}


def _where_time_goes(engine: Engine, base, rolled, say) -> None:
    """Each statement of both paths that reads ``incident`` or the rollup, alone
    (EXPLAIN ANALYZE's execution time, serially), with the plan's top node: where a month's
    time goes in the database. Statements come from SQLAlchemy's events and from
    :func:`geogrid.store.columns.fetch_columns` (which runs on the driver's cursor)."""
    for name, fn in (("base table", base), ("rollup", rolled)):
        seen: list[tuple[str, Any]] = []

        def grab(conn, cursor, statement, parameters, context, executemany, seen=seen):
            if "FROM incident" in statement and "GROUP BY" in statement:
                seen.append((statement, parameters))

        def columns(conn, sql, params, names, seen=seen, real=store_columns.fetch_columns):
            seen.append((store_columns.driver_sql(sql), dict(params)))
            return real(conn, sql, params, names)

        event.listen(engine, "before_cursor_execute", grab)
        store_rollup.fetch_columns = columns
        try:
            fn()
        finally:
            event.remove(engine, "before_cursor_execute", grab)
            store_rollup.fetch_columns = store_columns.fetch_columns
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None  # a checked-out connection has its driver connection
            conn.exec_driver_sql("SET work_mem = '64MB'")
            for statement, parameters in seen:
                try:
                    with raw.cursor() as cur:
                        cur.execute("EXPLAIN (ANALYZE, TIMING OFF) " + statement, parameters)
                        plan = [r[0] for r in cur.fetchall()]
                except Exception as exc:  # a statement the driver cannot EXPLAIN as is
                    say(f"    {name}: EXPLAIN failed ({type(exc).__name__}: {exc})")
                    conn.rollback()
                    continue
                took = next((p for p in plan if p.startswith("Execution Time")), "?")
                what = " ".join(statement.split())[:70]
                say(
                    f"    {name}: {took.split(': ')[-1]:>12}  {plan[0].split('  (')[0]:<28} {what}…"
                )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--compare", action="store_true", help="also time the pandas path")
    ap.add_argument(
        "--incidents", type=int, nargs="+", help="scratch databases of these sizes (rollup)"
    )
    ap.add_argument("--span-days", type=int, default=365, help="days the incidents span")
    ap.add_argument(
        "--per-day", type=float, help="incidents a day: the history grows with the size"
    )
    ap.add_argument("--open-days", type=float, help="only incidents of the last D days may be open")
    ap.add_argument("--keep", action="store_true", help="keep the scratch databases")
    args = ap.parse_args(argv)
    if args.incidents:
        say = lambda *a: print(*a, flush=True)  # noqa: E731
        t0 = time.perf_counter()
        with scratch_database(_admin_url(), prefix="geogrid_bench_rollup", keep=args.keep) as url:
            try:
                vid = _demo_city(url, t0, say)
                have = 0
                for n in sorted(args.incidents):
                    say(f"{n:,} incidents (load average {os.getloadavg()[0]:.1f}):")
                    _grow(
                        url, vid, have, n, args.span_days, say,
                        per_day=args.per_day, open_days=args.open_days,
                    )  # fmt: skip
                    have = n
                    _rollup_vs_base(url, args.repeat, say)
            finally:
                if args.keep:
                    say(f"kept {url}")
        return

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
        holder: dict[str, pd.DataFrame] = {}

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
            out: dict[str, Any] = {}

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
