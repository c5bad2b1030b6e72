"""Registry search latency within a street admin's scope (issue 15).

    GEOGRID_DATABASE_URL=postgresql://… python -m bench.registry_search [--queries 200]

Against a database with a registry (``geogrid demo load`` with the full registry, 6.62 M
base records; or any size). For each of ``--streets`` streets (the largest by people), a
street admin's :class:`~geogrid.core.scope.Scope` searches people with
:func:`geogrid.services.registry.search_people` — the whole service path: validation,
blind index, the scoped SQL, care groups of the page, the audit row — by

* ``name``: two consecutive characters of a random resident's name (partial),
* ``id``: a random resident's full ID number (exact, through the blind index),
* ``phone``: a random resident's phone (exact),
* ``address``: four consecutive characters of a random household's address (partial),

with the values drawn from the street's own rows (the ID numbers and phones decrypted
with the registry's key, which must be the one the data was sealed with). Prints p50,
p90, p99 and max per kind, the rows matched, and the table sizes — twice: the whole
service call (its transaction: the search statement, the audit row, the commit's WAL
flush) and the search statement alone on an open connection (what the plans and indexes
decide; on a machine shared with other work the first also measures its wake-ups and
fsyncs) — and, when the server runs on this machine, the server process's CPU time of
that statement (what the load average does not inflate much). Audit rows written by
the run are real rows (a bench database).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from typing import Any

from sqlalchemy import text

from geogrid.core.registry.grams import query_grams
from geogrid.core.scope import Scope
from geogrid.services import registry
from geogrid.services.context import AppContext
from geogrid.services.registry_keys import vault
from geogrid.store import registry_read

KINDS = ("name", "id", "phone", "address")


def _pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def _samples(conn: Any, street: str, n: int, seed: int) -> dict[str, list[tuple[Any, ...]]]:
    """Random rows of the street: (name, id_enc, phone_enc) of people, household addresses."""
    rng = random.Random(seed)
    people = conn.execute(
        text(
            "SELECT name, id_enc, phone_enc FROM reg_person TABLESAMPLE SYSTEM (5) "
            "WHERE street_code = :s LIMIT :n"
        ),
        {"s": street, "n": n * 3},
    ).all()
    if len(people) < n:
        people = conn.execute(
            text("SELECT name, id_enc, phone_enc FROM reg_person WHERE street_code = :s LIMIT :n"),
            {"s": street, "n": n * 3},
        ).all()
    addrs = conn.execute(
        text(
            "SELECT address FROM reg_household WHERE street_code = :s AND address IS NOT NULL "
            "LIMIT :n"
        ),
        {"s": street, "n": n * 3},
    ).all()
    rng.shuffle(people)
    rng.shuffle(addrs)
    return {"people": people[:n], "addrs": addrs[:n]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--queries", type=int, default=200, help="queries per kind and street")
    ap.add_argument("--streets", type=int, default=3, help="streets (the largest)")
    ap.add_argument("--seed", type=int, default=15)
    args = ap.parse_args(argv)
    ctx = AppContext.open()
    engine, settings = ctx.engine, ctx.settings
    v = vault(settings)
    rng = random.Random(args.seed)
    with engine.connect() as conn:
        sizes: dict[str, int] = {
            t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() or 0)
            for t in ("reg_person", "reg_household", "reg_building", "reg_org", "reg_care")
        }
        streets = conn.execute(
            text(
                "SELECT street_code, count(*) FROM reg_person WHERE street_code IS NOT NULL "
                "GROUP BY 1 ORDER BY 2 DESC LIMIT :n"
            ),
            {"n": args.streets},
        ).all()
    base = sum(n for t, n in sizes.items() if t != "reg_care")
    print(
        f"registry: {base:,} base records ("
        + ", ".join(f"{k} {n:,}" for k, n in sizes.items())
        + " care-group rows)"
    )
    print(f"load average: {os.getloadavg()}")
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    stmt: dict[str, list[float]] = {k: [] for k in KINDS}
    cpu: dict[str, list[float]] = {k: [] for k in KINDS}
    found: dict[str, list[int]] = {k: [] for k in KINDS}
    for street, n_people in streets:
        scope = Scope("street_admin", None, (str(street),), "units")
        with engine.connect() as conn:
            smp = _samples(conn, str(street), args.queries, rng.randrange(1 << 30))
        print(f"street {street}: {int(n_people):,} people")
        queries: list[tuple[str, dict[str, Any]]] = []
        for name, id_enc, phone_enc in smp["people"]:
            i = rng.randrange(max(1, len(name) - 1))
            queries.append(("name", {"name": name[i : i + 2]}))
            queries.append(("id", {"id_number": v.open(bytes(id_enc))}))
            if phone_enc is not None:
                queries.append(("phone", {"phone": v.open(bytes(phone_enc))}))
        for (addr,) in smp["addrs"]:
            i = rng.randrange(max(1, len(addr) - 3))
            queries.append(("address", {"address": addr[i : i + 4]}))
        rng.shuffle(queries)
        for _kind, q in queries[:5]:  # warm the connection and the caches
            registry.search_people(engine, scope=scope, settings=settings, limit=50, **q)
        with engine.connect() as conn:
            backend = _backend_cpu(conn)
            for kind, q in queries:
                t0 = time.perf_counter()
                page = registry.search_people(engine, scope=scope, settings=settings, limit=50, **q)
                times[kind].append((time.perf_counter() - t0) * 1000)
                found[kind].append(len(page["items"]))
                args_ = _statement_args(v, q)
                c0 = backend()
                t0 = time.perf_counter()
                registry_read.search_people(conn, scope=scope, limit=51, **args_)
                stmt[kind].append((time.perf_counter() - t0) * 1000)
                c1 = backend()
                if c0 is not None and c1 is not None:
                    cpu[kind].append(c1 - c0)
            conn.rollback()
    print(f"load average: {os.getloadavg()}")
    for title, data in (("service call (with audit row and commit)", times),
                        ("search statement alone", stmt),
                        ("search statement alone, server backend CPU", cpu)):  # fmt: skip
        print(title)
        print(f"{'kind':8} {'n':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} rows/q")
        for kind in KINDS:
            xs = data[kind]
            if not xs:
                print(f"{kind:8} {0:5d}   (no samples)")
                continue
            print(
                f"{kind:8} {len(xs):5d} {_pct(xs, 50):8.1f} {_pct(xs, 90):8.1f} "
                f"{_pct(xs, 99):8.1f} {max(xs):8.1f} {statistics.mean(found[kind]):6.1f}"
            )
    ctx.close()


def _backend_cpu(conn: Any) -> Any:
    """A reader of the CPU milliseconds the connection's server process has run (from
    ``/proc/<pid>/schedstat``, nanoseconds: robust to a shared machine's load, unlike the
    wall clock) — None when the server is not on this machine."""
    pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    path = f"/proc/{pid}/schedstat"

    def read() -> float | None:
        try:
            with open(path) as f:
                return int(f.read().split()[0]) / 1e6
        except (OSError, ValueError, IndexError):
            return None

    return read


def _statement_args(v: Any, q: dict[str, Any]) -> dict[str, Any]:
    """The store's arguments of a service query (grams and blind indexes made outside
    the timing, as the service makes them before its statement)."""
    if "name" in q:
        return {"name": q["name"], "name_grams": query_grams(q["name"])}
    if "address" in q:
        return {"address": q["address"], "address_grams": query_grams(q["address"])}
    if "id_number" in q:
        return {"id_blind": v.blind("id", q["id_number"])}
    return {"phone_blind": v.blind("phone", q["phone"])}


if __name__ == "__main__":
    main()
