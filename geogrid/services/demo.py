"""Store the deterministic demo city in the database (``geogrid demo load``).

The demo city is Yulin (玉林市), described by ``geogrid/demo/yulin.toml``
(:data:`DEMO_CITY_FILE`): serve it with ``GEOGRID_CITY_FILE`` set to that file, as
``scripts/run.sh`` does.

Boundaries (one published version), buildings, the category catalogue, worker and staff
accounts, and a year of synthetic incidents attributed with the in-memory locator and
loaded with ``COPY``. Everything is written in one transaction per part; the boundary
part and the rest are refused when boundaries are already stored (``if_empty`` makes that a
no-op, which is what the README's run command uses).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from geogrid.core.attribution import Attributor
from geogrid.core.catalogue import load_categories
from geogrid.core.incident_files import LIFECYCLE_TIMES, prepare_rows
from geogrid.demo.boundaries import build_demo
from geogrid.demo.city import CITY, CITY_FILE
from geogrid.demo.incidents import build_incidents
from geogrid.demo.people import build_workers
from geogrid.demo.registry import DEFAULT_RECORDS, build_registry
from geogrid.errors import Conflict
from geogrid.services import partitions
from geogrid.services.accounts import add_user
from geogrid.services.boundaries import save_hierarchy
from geogrid.services.registry_import import load_registry
from geogrid.services.registry_keys import vault as registry_vault
from geogrid.settings import get_settings
from geogrid.store import incidents as store_incidents
from geogrid.store import units as store_units
from geogrid.store.changes import record_change
from geogrid.store.people import copy_buildings, insert_accounts

__all__ = ["DEMO_CITY_FILE", "DEMO_REGISTRY_RECORDS", "load_demo"]

#: the demo registry's records by default (issue 15: Yulin's 6.62 million)
DEMO_REGISTRY_RECORDS: int = DEFAULT_RECORDS

#: the demo city's file (``GEOGRID_CITY_FILE`` for serving the demo)
DEMO_CITY_FILE: Path = CITY_FILE


class _Printer(Protocol):
    def print(self, *objects: Any, **kwargs: Any) -> None: ...


def load_demo(
    engine: Engine,
    *,
    incidents: int = 200_000,
    base_records: int = 0,
    seed: int = 2016,
    if_empty: bool = False,
    console: _Printer | None = None,
) -> dict[str, Any]:
    """Build and store the demo city; returns counts and timings.

    Parameters
    ----------
    engine : Engine
        A migrated, empty database.
    incidents : int
        Number of synthetic incidents (0: none).
    base_records : int
        Records of the synthetic base-information registry (issue 15: people, households,
        buildings, organisations; :mod:`geogrid.demo.registry`); 0 (the default here,
        for tests and benches): none; ``geogrid demo load`` asks for
        :data:`DEMO_REGISTRY_RECORDS` (Yulin's 6.62 million) unless told otherwise.
    seed : int
        Random seed of every builder.
    if_empty : bool
        Do nothing (``{"skipped": True}``) when boundaries are already stored.
    console : rich Console or anything with ``print``, optional
        Progress lines.

    Raises
    ------
    Conflict
        When the database already holds boundaries and not ``if_empty``.
    """
    say: Callable[..., None] = console.print if console is not None else _quiet
    t0 = time.perf_counter()
    with engine.connect() as conn:
        n_units = store_units.count_units(conn)
    if n_units:
        if if_empty:
            say("demo: boundaries already stored, nothing to do")
            return {"skipped": True}
        raise Conflict(
            "the database already holds boundaries: the demo loads into an "
            "empty database (use a fresh GEOGRID_DATABASE_URL or 'geogrid db')"
        )
    say("demo: building the hierarchy (districts → streets → communities → grids)…")
    city = build_demo(seed=seed)
    t_build = time.perf_counter() - t0
    cats = load_categories(CITY.categories)
    with engine.begin() as conn:
        store_incidents.upsert_categories(conn, cats)
        copy_buildings(conn, city.buildings, source=f"demo seed {seed}")
    vid = save_hierarchy(
        engine, city.units, label=f"{CITY.name_en} demo", source=f"demo seed {seed}"
    )
    summary: dict[str, Any] = {
        "version_id": vid,
        **{
            plural: len(city.units[lv])
            for lv, plural in (
                ("district", "districts"),
                ("street", "streets"),
                ("community", "communities"),
                ("grid", "grids"),
            )
        },
        "buildings": len(city.buildings),
        "households": int(city.units["grid"]["households"].sum()),
        "population": int(city.units["grid"]["population"].sum()),
    }
    say(
        f"demo: stored boundary version {vid} ({summary['grids']} grids) in "
        f"{time.perf_counter() - t0:.1f} s (build {t_build:.1f} s)"
    )

    ids: dict[str, int] = {}
    # people: one worker per grid (a few shared) and unit administrators
    workers, staff = build_workers(city.units["grid"], seed=seed)
    accounts = pd.concat(
        [
            pd.DataFrame(
                {
                    "ref": workers["worker_id"],
                    "name": workers["name"],
                    "role": "worker",
                    "units": workers["grid_codes"],
                }
            ),
            pd.DataFrame(
                {
                    "ref": staff["account_id"],
                    "name": staff["name"],
                    "role": staff["role"],
                    "units": staff["unit_code"].map(lambda c: [c]),
                }
            ),
        ],
        ignore_index=True,
    )
    with engine.begin() as conn:
        ids = insert_accounts(conn, accounts)
    summary["workers"] = len(workers)
    summary["staff"] = len(staff)
    summary["logins"] = _demo_logins(engine)

    # issue 15: the registry is generated in a thread while the incidents are stored (NumPy
    # and Arrow release the GIL for most of it; the incidents' time is mostly the server's)
    gen_pool = ThreadPoolExecutor(max_workers=1) if base_records > 0 else None
    gen: Future[Any] | None = None
    if gen_pool is not None:
        t2 = time.perf_counter()
        gen = gen_pool.submit(build_registry, city.units, city.buildings, n=base_records, seed=seed)
    if incidents > 0:
        t1 = time.perf_counter()
        frame = build_incidents(
            city.units["grid"],
            city.buildings,
            workers,
            cats,
            n=incidents,
            seed=seed,
        )
        att = Attributor.from_layers(city.units, vid)
        summary.update(_store_incidents(engine, frame, att, cats, ids))
        summary["incident_seconds"] = round(time.perf_counter() - t1, 1)
        say(f"demo: stored {summary['incidents']} incidents in {summary['incident_seconds']} s")
    if gen is not None and gen_pool is not None:  # issue 15: the registry, at the buildings
        reg = gen.result()
        gen_pool.shutdown()
        say(f"demo: generated {reg.records} registry records ({time.perf_counter() - t2:.1f} s)")
        loaded = load_registry(
            engine, reg, vault=registry_vault(get_settings()), replace=True, on_progress=say
        )
        summary["registry"] = {k: loaded[k] for k in ("records", "people", "households",
                                                      "buildings", "orgs", "care")}  # fmt: skip
        summary["registry_seconds"] = round(time.perf_counter() - t2, 1)
        say(f"demo: stored the registry in {summary['registry_seconds']} s")
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    return summary


def _demo_logins(engine: Engine) -> list[str]:
    """A leader and a planner who can sign in on the page, only when
    ``GEOGRID_DEMO_PASSWORD`` is set (there is no default password); their first tokens
    are born expired (people use the page; ``geogrid users issue`` gives tokens)."""
    secret = get_settings().demo_password
    if secret is None or not secret.get_secret_value():
        return []
    logins = [("demo-leader", "演示领导", "leader"), ("demo-planner", "演示规划员", "planner")]
    for username, name, role in logins:
        add_user(
            engine,
            name,
            role,
            username=username,
            password=secret.get_secret_value(),
            token_days=0,
        )
    return [u for u, _, _ in logins]


def _quiet(*objects: Any, **kwargs: Any) -> None:
    """No progress output."""


def _store_incidents(
    engine: Engine,
    frame: pd.DataFrame,
    att: Attributor,
    cats: pd.DataFrame,
    ids: dict[str, int],
    batch: int = 250_000,
) -> dict[str, int]:
    with engine.connect() as conn:
        workers = store_incidents.grid_workers(conn)
    frame = frame.reset_index(drop=True)
    frame["src_crs"] = "wgs84"
    frame["src_lon"] = frame["lon"]
    frame["src_lat"] = frame["lat"]
    if "reporter_id" in frame:
        frame["reporter_id"] = frame["reporter_id"].map(ids)
    for c in LIFECYCLE_TIMES:
        if c not in frame:
            frame[c] = pd.NaT
    loaded = outside = 0
    if len(frame):
        # the months' partitions first, so that no row waits in the DEFAULT partition: moving
        # rows out of it later (partitions.maintain) hides them from readers planned before
        times = pd.to_datetime(frame["reported_at"], utc=True)
        partitions.ensure_range(
            engine, times.min().to_pydatetime(), times.max().to_pydatetime(), tz=CITY.timezone
        )
    with engine.begin() as conn:
        for start in range(0, len(frame), batch):
            part = frame.iloc[start : start + batch].reset_index(drop=True)
            codes = att.attribute(part["lon"].to_numpy(), part["lat"].to_numpy())
            outside += int(codes["grid_code"].isna().sum())
            rows = prepare_rows(part, codes, cats, workers, att.version_id)
            loaded += store_incidents.copy_incidents(conn, rows)
        record_change(conn, "incidents", None, "demo")
        store_incidents.analyze_incidents(conn)
    return {
        "incidents": loaded,
        "incidents_outside": outside,
        "incident_grids": int(np.unique(frame.get("grid_code", pd.Series([]))).size),
    }
