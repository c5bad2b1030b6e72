"""Bulk incident import: stream a file, check every row, convert CRS, attribute, COPY.

The pipeline per batch (default 200,000 rows) is vectorised end to end on Arrow: read and
check with ``pyarrow.compute`` (:mod:`geogrid.core.incident_files`: every bad row is
reported with file, row number and field; coordinates converted to WGS84 with
:mod:`geogrid.core.crs`) → attribute to the published boundary version in memory
(:class:`geogrid.core.attribution.Attributor`'s grid locator) → route per grid
(:class:`~geogrid.core.incident_files.Routing`) and binary ``COPY`` into PostgreSQL
(:mod:`geogrid.store.incident_copy`). A reading thread prepares batch n+1 while batch n
is COPYed; months without a partition are loaded, indexed and ANALYZEd by side
connections while the import's transaction writes their keys and rollup
(:class:`_MonthLoad`).

All or nothing: the whole import is one transaction, with its ``map_change`` row. With
bad rows and without ``skip_bad`` nothing is written (the file is still read to the end so
that every problem is reported at once). With ``skip_bad`` the good rows are loaded and
the bad ones are written, with the reason, to a rejects CSV. Re-running an import loads
nothing twice: each incident has a ``source_id`` (from the file, or a hash of its content
when the file has none) and rows whose ``source_id`` is already stored are skipped.

Naive timestamps are read in the city's time zone (``settings.city.timezone``, or the
``tz`` argument) and stored in UTC.

Bad rows, each reported with file, row and field (and rejected one by one with
``skip_bad``): missing or malformed coordinates, a record with more or fewer values than
the header, a NUL byte in any field, an unknown category or status, a timestamp that is
not one or lies outside 1970–2199 (mixed ``+08:00`` and naive values are fine: naive ones
are local time in the city's zone), and a point outside every grid that is more than
:data:`~geogrid.services.incidents.NEAR_CITY_M` from every grid (0/0, swapped lon/lat, a
wrong CRS) — the API's rules.

Concurrency: an import holds a transaction-level advisory lock keyed by the file's
SHA-256, so a second import of the same file WAITS for the first to finish (``on_wait`` is
called when it has to) and then loads nothing twice. A lost database connection (or the
server stopping) mid-import is one :class:`~geogrid.errors.DatabaseUnavailable` message;
the transaction is rolled back, nothing is half-written.
"""

from __future__ import annotations

import hashlib
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Engine
from sqlalchemy import exc as sa_exc

from geogrid.core import crs as gcrs
from geogrid.core.incident_files import (
    NearIndex,
    Routing,
    check_batch,
    prepare_table,
    read_batches,
    rejected_rows,
)
from geogrid.core.partitioning import (
    Bounds,
    month_of,
    month_range,
    months_covering,
    partition_name,
)
from geogrid.core.scope import Scope
from geogrid.errors import Conflict, DatabaseUnavailable, FileInputError, RowError
from geogrid.services import audit, partitions
from geogrid.services.attribution import attributor_for_version
from geogrid.services.incidents import NEAR_CITY_M
from geogrid.services.unitcache import UnitCache
from geogrid.settings import get_settings
from geogrid.store import incident_copy, locks
from geogrid.store import incidents as store
from geogrid.store import partitions as part_store
from geogrid.store.changes import record_incident_change

__all__ = ["IMPORT_LOCK_NAMESPACE", "ImportReport", "import_incidents", "import_lock"]

#: the advisory-lock namespace of incident imports (the key is the file's hash)
IMPORT_LOCK_NAMESPACE = 0x67670001
#: the advisory-lock namespace of an import's own month tables (``incident_bulk_<token>_…``,
#: key: the token), held by the import's transaction: a table whose lock is free belongs
#: to no running import and is dropped by the next import
BULK_LOCK_NAMESPACE = 0x67670002
#: side connections that COPY, index and ANALYZE the months without a partition in
#: parallel with the import's transaction (0: all in the transaction's connection)
SIDE_CONNECTIONS = 2

_T = TypeVar("_T")


@dataclass
class ImportReport:
    """What an import did.

    Attributes
    ----------
    file : the file imported
    rows : data rows read
    loaded : incidents stored
    already_stored : rows whose ``source_id`` was stored before (skipped)
    duplicates_in_file : rows repeating a ``source_id`` seen earlier in the file (skipped)
    rejected : bad rows (written to ``rejects_path`` with ``skip_bad``)
    outside : stored incidents outside every grid (kept, with null codes)
    seconds : wall time
    phases : seconds per phase (``read``, ``check``, ``dedupe``, ``attribute``, ``encode`` in
        the reading thread, which overlaps the COPY; ``copy``, ``insert``, ``wait``,
        ``keys``, ``rollup``, ``attach`` in the transaction; ``index`` and ``analyze`` of
        the new months on the side connections, summed over them and overlapping
        ``keys``/``rollup``), so they add up to more than ``seconds``
    months_new : the month tables loaded standalone and attached
    months_existing : rows loaded into months that had a partition already
    rejects_path : the rejects CSV, when rows were rejected
    errors : every problem found (file, row, field)
    """

    file: str
    rows: int = 0
    loaded: int = 0
    already_stored: int = 0
    duplicates_in_file: int = 0
    rejected: int = 0
    outside: int = 0
    seconds: float = 0.0
    rejects_path: str | None = None
    errors: list[RowError] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    months_new: list[str] = field(default_factory=list)
    months_existing: int = 0

    @property
    def rows_per_second(self) -> float:
        """Rows read per second of wall time (NaN before the import ran)."""
        return self.rows / self.seconds if self.seconds else float("nan")


#: one batch encoded for COPY, split by month: (month or None for months with a partition
#: already, binary COPY body, rows), with its WGS84 points and row count; or None while
#: only errors are collected
_Encoded = tuple[list[tuple[str | None, bytes, int]], np.ndarray, np.ndarray, int] | None


def import_incidents(
    engine: Engine,
    path: str | Path,
    *,
    crs: str = "wgs84",
    tz: str | None = None,
    skip_bad: bool = False,
    rejects_path: str | Path | None = None,
    batch_size: int = 200_000,
    lon_field: str | None = None,
    lat_field: str | None = None,
    progress: Callable[[int], None] | None = None,
    cache: UnitCache | None = None,
    on_wait: Callable[[], None] | None = None,
    sides: int = SIDE_CONNECTIONS,
) -> ImportReport:
    """Import incidents from a file into the database (one transaction).

    Parameters
    ----------
    engine : the database
    path : a CSV (``.csv``/``.txt``/``.gz``), GeoJSON or GeoParquet file (see
        :func:`geogrid.core.incident_files.read_batches`)
    crs : coordinate system of the file's coordinates: ``wgs84``, ``gcj02``, ``bd09`` or
        an EPSG code; stored points are WGS84 (EPSG:4326) and the source CRS and
        coordinates are kept with each incident.
    tz : IANA time zone of naive timestamps (default: ``settings.city.timezone``)
    skip_bad : load the good rows and write the bad ones to ``rejects_path`` (default
        ``<file>.rejects.csv``) instead of refusing the whole file.
    batch_size : rows per batch
    lon_field, lat_field : CSV columns of the coordinates (default: found by name)
    progress : called with the number of rows done after each batch.
    cache : where the published version's attributor is kept (``AppContext.unit_cache``)
    on_wait : called once when another import of the same file runs and this one waits
        for it
    sides : side connections that load the months without a partition in parallel (0:
        everything in the import's own connection); see :class:`_MonthLoad`

    Returns
    -------
    ImportReport

    Raises
    ------
    FileInputError listing every bad row (file, row, field) when ``skip_bad`` is False.
    NotFound when no boundary version is published.
    DatabaseUnavailable when the database connection is lost (nothing was written).
    Conflict when another import stored some of the same incidents at the same time.
    """
    path = Path(path)
    try:
        return _import(
            engine,
            path,
            crs=crs,
            tz=tz,
            skip_bad=skip_bad,
            rejects_path=rejects_path,
            batch_size=batch_size,
            lon_field=lon_field,
            lat_field=lat_field,
            progress=progress,
            cache=cache,
            on_wait=on_wait,
            sides=sides,
        )
    except (sa_exc.IntegrityError, psycopg.IntegrityError) as exc:
        raise Conflict(
            f"{path}: another import stored some of the same incidents (source_id) at the "
            "same time; nothing was written — run the import again (stored rows are skipped)"
        ) from exc
    except (
        sa_exc.OperationalError,
        sa_exc.InterfaceError,
        psycopg.OperationalError,
        psycopg.InterfaceError,
    ) as exc:
        raise DatabaseUnavailable(
            f"{path}: the database connection was lost during the import ({_first_line(exc)}); "
            "nothing was written (the import is one transaction) — run it again when the "
            "database is back"
        ) from exc
    except (sa_exc.DBAPIError, psycopg.Error) as exc:
        raise FileInputError(
            str(path), f"the database refused the import ({_first_line(exc)}); nothing was written"
        ) from exc


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


def _file_key(path: Path) -> int:
    """A 32-bit lock key from the file's SHA-256 (the same content → the same key)."""
    if not path.is_file():
        raise FileInputError(str(path), "file not found")
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return int.from_bytes(h.digest()[:4], "big", signed=True)


def _lock(conn: Connection, key: int, on_wait: Callable[[], None] | None) -> None:
    if not locks.try_xact_lock(conn, IMPORT_LOCK_NAMESPACE, key):
        if on_wait:
            on_wait()
        locks.xact_lock(conn, IMPORT_LOCK_NAMESPACE, key)


@contextmanager
def import_lock(engine: Engine, path: str | Path) -> Iterator[None]:
    """Hold the lock an import of this file takes (imports of it wait meanwhile), e.g.
    while checking the database by hand."""
    with engine.begin() as conn:
        locks.xact_lock(conn, IMPORT_LOCK_NAMESPACE, _file_key(Path(path)))
        yield


def _import(
    engine: Engine,
    path: Path,
    *,
    crs: str,
    tz: str | None,
    skip_bad: bool,
    rejects_path: str | Path | None,
    batch_size: int,
    lon_field: str | None,
    lat_field: str | None,
    progress: Callable[[int], None] | None,
    cache: UnitCache | None,
    on_wait: Callable[[], None] | None,
    sides: int,
) -> ImportReport:
    crs = gcrs.normalize_crs(crs)
    city = get_settings().city
    zone = tz or city.timezone
    key = _file_key(path)
    report = ImportReport(file=str(path))
    t0 = time.perf_counter()
    att = attributor_for_version(engine, cache=cache)
    near = NearIndex(att.grids.geometry, NEAR_CITY_M, city.metric_crs)
    rejects: list[pd.DataFrame] = []
    seen: list[pa.Array] = []  # the source ids of the batches before
    with engine.connect() as conn:
        cats = store.category_table(conn)
        workers = store.grid_workers(conn)
        covered = [
            p.bounds
            for p in part_store.list_partitions(conn)
            if not p.is_default and not (sides and _replaceable(conn, p, zone))
        ]
    known = set(cats.index)
    routing = Routing.from_attributor(att, cats, workers)
    phases = report.phases

    def clock(name: str, since: float) -> float:
        now = time.perf_counter()
        phases[name] = phases.get(name, 0.0) + now - since
        return now

    def refused() -> bool:
        return bool(report.errors) and not skip_bad

    def produce() -> Iterator[_Encoded]:
        """Read, check, attribute and encode batches (runs one batch ahead of COPY)."""
        with engine.connect() as lookup:
            t = time.perf_counter()
            for first, raw in read_batches(
                path, batch_size=batch_size, lon_field=lon_field, lat_field=lat_field
            ):
                t = clock("read", t)
                checked, good, errors = check_batch(
                    raw, file=str(path), first_row=first, crs=crs, categories=known, tz=zone
                )
                report.rows += checked.num_rows
                if errors:
                    report.errors.extend(errors)
                    if skip_bad:
                        rejects.append(rejected_rows(raw, checked, good, errors))
                        report.rejected += int((~good).sum())
                if refused():  # keep reading to report every problem
                    report.errors.extend(_far_errors(str(path), checked.filter(pa.array(good))))
                    yield None
                    continue
                batch = checked if good.all() else checked.filter(pa.array(good))
                # idempotency: drop ids seen earlier in this file or already stored
                sid = batch.column("source_id").combine_chunks()
                fresh = _first_seen(sid)
                if seen:
                    fresh &= ~_mask(pc.is_in(sid, value_set=pa.chunked_array(seen, pa.string())))
                report.duplicates_in_file += int((~fresh).sum())
                if not fresh.all():
                    batch, sid = batch.filter(pa.array(fresh)), sid.filter(pa.array(fresh))
                seen.append(sid)
                t = clock("check", t)
                stored = incident_copy.stored_source_ids(lookup, sid)
                if len(stored):
                    report.already_stored += len(stored)
                    batch = batch.filter(pc.invert(pc.is_in(sid, value_set=stored)))
                lon = np.asarray(batch.column("lon").to_numpy(), dtype=float)
                lat = np.asarray(batch.column("lat").to_numpy(), dtype=float)
                t = clock("dedupe", t)
                pos = att.positions(lon, lat)
                far = _far(pos, lon, lat)
                if far.any():
                    far_errors = _far_errors(str(path), batch.filter(pa.array(far)))
                    report.errors.extend(far_errors)
                    if refused():
                        yield None
                        continue
                    far_rows = np.asarray(batch.column("_row").filter(pa.array(far)))
                    keep = ~np.isin(np.asarray(checked.column("_row")), far_rows)
                    rejects.append(rejected_rows(raw, checked, keep, far_errors))
                    report.rejected += len(far_errors)
                    batch = batch.filter(pa.array(~far))
                    pos, lon, lat = pos[~far], lon[~far], lat[~far]
                report.outside += int((pos < 0).sum())
                rows = prepare_table(batch, pos, routing)
                t = clock("attribute", t)
                parts = _by_month(rows, covered, zone)
                t = clock("encode", t)
                yield parts, lon, lat, rows.num_rows
                t = time.perf_counter()

    def _far(pos: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Points outside every grid and too far from all of them."""
        outside = pos < 0
        far = np.zeros(len(lon), dtype=bool)
        if outside.any():
            far[outside] = near.far(lon[outside], lat[outside])
        return far

    def _far_errors(file: str, rows: pa.Table) -> list[RowError]:
        """Errors for the checked ``rows`` that are too far (their coordinates as given)."""
        lon = np.asarray(rows.column("lon").to_numpy(), dtype=float)
        lat = np.asarray(rows.column("lat").to_numpy(), dtype=float)
        far = _far(att.positions(lon, lat), lon, lat)
        if not far.any():
            return []
        km = NEAR_CITY_M / 1000
        picked = rows.filter(pa.array(far))
        return [
            RowError(
                file,
                int(r),
                "lon/lat",
                f"({x:g}, {y:g}) is more than {km:g} km from every grid "
                "(swapped lon/lat, a wrong --crs, or 0/0?)",
                f"{x:g}, {y:g}",
            )
            for r, x, y in zip(
                picked.column("_row").to_pylist(),
                picked.column("src_lon").to_pylist(),
                picked.column("src_lat").to_pylist(),
                strict=True,
            )
        ]

    def load_all(conn: Connection, load: _MonthLoad) -> None:
        for encoded in _prefetch(produce()):
            if encoded is not None and not refused():
                parts, lon, lat, n = encoded
                t = time.perf_counter()
                for month, body, k in parts:
                    load.copy(month, body, k)
                clock("copy", t)
                report.loaded += n
                load.extent(lon, lat)
                record_incident_change(conn, lon, lat, kind="import")
            if progress:
                progress(report.rows)
        if refused():
            raise FileInputError(str(path), report.errors)
        load.finish()
        audit.record(
            conn,
            actor=Scope.system(),
            action="incident.import",
            resource="incident",
            detail={"file": str(path), "loaded": report.loaded},
        )

    load: _MonthLoad | None = None
    try:
        with engine.begin() as conn:
            _lock(conn, key, on_wait)  # before reading: a second import sees the first's rows
            load = _MonthLoad(conn, zone, report, engine, sides)
            load_all(conn, load)
    except BaseException:
        if load is not None:  # its side connections' tables, committed but never attached
            load.abort()
        raise
    if rejects:
        rp = Path(rejects_path) if rejects_path else path.with_suffix(".rejects.csv")
        pd.concat(rejects).sort_values("row", kind="stable").to_csv(rp, index=False)
        report.rejects_path = str(rp)
    report.seconds = time.perf_counter() - t0
    return report


def _replaceable(conn: Connection, part: part_store.Partition, zone: str) -> bool:
    """Issue 12: True for the empty partition of a whole month that is over (the service
    makes the last month's, this one's and the next two ahead). An import replaces it
    with the month loaded standalone (:meth:`_MonthLoad._replace`): through the parent, a
    province's month (8.7 M rows) took 418 s of index upkeep. Never this month's or a
    later one: reports arrive there, and the replacement holds ``incident`` exclusively."""
    if part.is_default:
        return False
    b = part.bounds
    whole = month_range(month_of(b.start, zone), zone)
    return (
        b.end <= datetime.now(UTC)
        and (whole.start, whole.end) == (b.start, b.end)
        and part_store.is_empty(conn, part.name)
    )


def _mask(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow array as a NumPy mask (null → False)."""
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _first_seen(values: pa.Array) -> np.ndarray:
    """True at the first occurrence of each value (dictionary codes are numbered in the
    order values first appear, so a first occurrence is a code above all before it)."""
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    codes = np.asarray(pc.dictionary_encode(values).indices.to_numpy(zero_copy_only=False))
    before = np.maximum.accumulate(np.concatenate([[-1], codes[:-1]]))
    return codes > before


def _by_month(
    table: pa.Table, covered: list[Bounds], zone: str
) -> list[tuple[str | None, bytes, int]]:
    """Split a batch's rows by the month (in ``zone``) of ``reported_at`` and encode each
    part for binary COPY: months that no partition covers (when the import started) are
    named, to be loaded as tables of their own; the others are None (loaded through
    ``incident``)."""
    t = table.column("reported_at").cast(pa.int64()).to_numpy()
    if len(t) == 0:
        return []
    first = datetime.fromtimestamp(int(t.min()) / 1e6, UTC)
    last = datetime.fromtimestamp(int(t.max()) / 1e6, UTC)
    months = months_covering(first, last, zone)
    starts = np.array([int(month_range(m, zone).start.timestamp() * 1e6) for m in months])
    which = np.searchsorted(starts, t, side="right") - 1
    groups: dict[str | None, list[np.ndarray]] = {}
    for i, m in enumerate(months):
        rows = np.flatnonzero(which == i)
        if len(rows) == 0:
            continue
        b = month_range(m, zone)
        taken = any(not (c.end <= b.start or c.start >= b.end) for c in covered)
        groups.setdefault(None if taken else m, []).append(rows)
    return [
        (m, store.encode_rows(table.take(pa.array(np.concatenate(idx)))), int(sum(map(len, idx))))
        for m, idx in groups.items()
    ]


class _Aborted(Exception):
    """The import failed: a side connection rolls back what it has not committed."""


class _Side:
    """A side connection of an import (a thread): it loads some of the months without a
    partition as standalone tables ``incident_bulk_<token>_YYYY_MM`` — created and COPYed
    in one transaction, committed when the import's rows are all read, then indexed and
    ANALYZEd — while the import's own transaction writes their keys and rollup and loads
    the other months. The tables are part of nothing until the import's transaction
    renames and attaches them: all or nothing still holds for ``incident``; a failed
    import drops them (or, if it could not, the next import does)."""

    def __init__(self, engine: Engine) -> None:
        self.queue: queue.Queue[tuple[str, Bounds | None, bytes] | None] = queue.Queue(4)
        self.tables: list[str] = []
        self.copied = threading.Event()
        self.done = threading.Event()
        self.stop = threading.Event()
        self.failure: list[BaseException] = []
        self.seconds: dict[str, float] = {}
        self.thread = threading.Thread(target=self._run, args=(engine,), daemon=True)
        self.thread.start()

    def _run(self, engine: Engine) -> None:
        try:
            with engine.connect() as conn:
                with conn.begin():
                    while (item := self.queue.get()) is not None:
                        name, bounds, body = item
                        if bounds is not None:  # a month's first rows: its table
                            part_store.create_month_table(conn, "incident", name, bounds)
                            self.tables.append(name)
                        incident_copy.copy_body(conn, body, name)
                    if self.stop.is_set():
                        raise _Aborted
                self.copied.set()
                for name in self.tables:
                    for phase, step in (
                        ("index", incident_copy.build_indexes),
                        ("analyze", store.analyze_incidents),
                    ):
                        if self.stop.is_set():
                            raise _Aborted
                        t = time.perf_counter()
                        with conn.begin():
                            step(conn, name)
                        self.seconds[phase] = self.seconds.get(phase, 0.0) + (
                            time.perf_counter() - t
                        )
        except BaseException as exc:  # re-raised in the import's thread
            self.failure.append(exc)
        finally:
            self.copied.set()
            self.done.set()

    def check(self) -> None:
        if self.failure:
            raise self.failure[0]

    def put(self, item: tuple[str, Bounds | None, bytes] | None) -> None:
        while True:
            self.check()
            if not self.thread.is_alive():
                raise RuntimeError("a side connection of the import ended early")
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def wait(self, event: threading.Event) -> None:
        while not event.wait(0.2):
            self.check()
        self.check()

    def abort(self) -> None:
        self.stop.set()
        while self.thread.is_alive():
            try:
                self.queue.put_nowait(None)
            except queue.Full:
                try:
                    self.queue.get_nowait()
                except queue.Empty:
                    pass
            self.thread.join(timeout=0.2)


class _MonthLoad:
    """The write side of one import, inside its transaction.

    Months without a partition are COPYed into tables of their own (with a CHECK
    constraint equal to the month: the attach then skips its scan), their keys written in
    one statement, their indexes built once after the COPY, ANALYZEd, and the tables
    attached — no per-row index maintenance. With side connections (:class:`_Side`) those
    tables are loaded, indexed and ANALYZEd by the side connections in parallel (months
    dealt out in turn) while this transaction writes their keys and rollup; without, all
    of it happens here. Rows of months that have a partition already are COPYed into an
    unindexed temporary table and go into ``incident`` with one INSERT sorted by time
    (through the parent: its indexes and triggers) — except an empty partition of a
    month that is over, which the month loaded standalone replaces (with side
    connections: :meth:`_replace`). The partition lock
    (:data:`geogrid.services.partitions.PARTITION_LOCK_NAMESPACE`) is held from the first
    new month on, so no other writer makes the same month meanwhile; a month made by
    someone between the start of the import and that moment goes through the parent.
    """

    def __init__(
        self, conn: Connection, zone: str, report: ImportReport, engine: Engine, sides: int
    ) -> None:
        self.conn, self.zone, self.report, self.engine = conn, zone, report, engine
        self.tables: dict[str | None, str] = {}
        self.rows: dict[str, int] = {}
        self.locked = False
        self.bbox = [np.inf, np.inf, -np.inf, -np.inf]
        self.sides_wanted = max(0, sides)
        self.sides: list[_Side] = []
        self.side_of: dict[str, _Side] = {}  # bulk table → its side connection
        self.replaces: dict[str, str] = {}  # bulk table → the empty partition it replaces
        self.token = secrets.token_hex(4)
        if self.sides_wanted:
            key = int.from_bytes(bytes.fromhex(self.token), "big", signed=True)
            locks.xact_lock(conn, BULK_LOCK_NAMESPACE, key)
            self._sweep()

    def _sweep(self) -> None:
        """Drop the month tables of imports that failed and could not drop them."""
        for name in incident_copy.bulk_tables(self.conn):
            token = name.removeprefix("incident_bulk_").split("_", 1)[0]
            if len(token) != 8 or token == self.token:
                continue
            key = int.from_bytes(bytes.fromhex(token), "big", signed=True)
            if locks.try_xact_lock(self.conn, BULK_LOCK_NAMESPACE, key):
                incident_copy.drop_bulk_table(self.conn, name)

    def _clock(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.report.phases[name] = self.report.phases.get(name, 0.0) + now - since
        return now

    def _table(self, month: str | None) -> str:
        if month in self.tables:
            return self.tables[month]
        name = None
        if month is not None:
            if not self.locked:
                locks.xact_lock(self.conn, partitions.PARTITION_LOCK_NAMESPACE, 0)
                self.locked = True
            bounds = month_range(month, self.zone)
            meets = [
                q
                for q in part_store.list_partitions(self.conn)
                if not q.is_default
                and not (q.bounds.end <= bounds.start or q.bounds.start >= bounds.end)
            ]
            empty = (
                meets[0].name
                if self.sides_wanted
                and len(meets) == 1
                and _replaceable(self.conn, meets[0], self.zone)
                else None
            )
            taken = bool(meets) and empty is None
            if not taken and self.sides_wanted:
                name = f"incident_bulk_{self.token}_{month[:4]}_{month[5:7]}"
                if len(self.sides) < self.sides_wanted:
                    self.sides.append(_Side(self.engine))
                self.side_of[name] = self.sides[len(self.side_of) % len(self.sides)]
                if empty is not None:
                    self.replaces[name] = empty
            elif not taken:
                name = partition_name("incident", month)
                part_store.create_month_table(self.conn, "incident", name, bounds)
        if name is None:
            if None not in self.tables:
                self.tables[None] = store.create_stage(self.conn)
            name = self.tables[None]
        self.tables[month] = name
        return name

    def copy(self, month: str | None, body: bytes, n: int) -> None:
        new = month not in self.tables
        name = self._table(month)
        side = self.side_of.get(name)
        if side is not None and month is not None:
            side.put((name, month_range(month, self.zone) if new else None, body))
        else:
            incident_copy.copy_body(self.conn, body, name)
        self.rows[name] = self.rows.get(name, 0) + n

    def extent(self, lon: np.ndarray, lat: np.ndarray) -> None:
        ok = np.isfinite(lon) & np.isfinite(lat)
        if ok.any():
            b = self.bbox
            b[0], b[1] = min(b[0], float(lon[ok].min())), min(b[1], float(lat[ok].min()))
            b[2], b[3] = max(b[2], float(lon[ok].max())), max(b[3], float(lat[ok].max()))

    def abort(self) -> None:
        """After a failure: stop the side connections and drop their tables (best effort:
        with the database gone, the next import drops them)."""
        for side in self.sides:
            side.abort()
        if not self.side_of:
            return
        try:
            with self.engine.begin() as conn:
                for name in self.side_of:
                    incident_copy.drop_bulk_table(conn, name)
        except (sa_exc.DBAPIError, psycopg.Error):
            pass

    def _replace(self, old: str, name: str) -> None:
        """Detach and drop the month's partition ``old`` (empty when the import began),
        its rows written meanwhile moved into the loaded table ``name`` first: their keys
        and rollup were written when they were inserted, and this table's rows have
        theirs already, so nothing is counted twice. The detach waits for the statements
        reading ``incident`` and holds it exclusively to the commit: the attaches and the
        commit that follow are short. Months that are over only: no report waits on
        the import's rollup rows while the import waits on the report."""
        part_store.detach(self.conn, "incident", old)
        part_store.move_rows(self.conn, old, name)
        part_store.drop(self.conn, old)

    def finish(self) -> None:
        conn, report = self.conn, self.report
        t = time.perf_counter()
        incident_copy.bulk_settings(conn)  # sorts and aggregates below in memory
        for side in self.sides:
            side.put(None)  # every row is read: the side connections commit their COPY
        stage = self.tables.get(None)
        if stage is not None:
            store.insert_from(conn, stage)  # keys, then one sorted INSERT
            report.months_existing = self.rows.get(stage, 0)
            t = self._clock("insert", t)
        months = {m: n for m, n in self.tables.items() if m is not None and n != stage}
        for side in self.sides:
            side.wait(side.copied)
        t = self._clock("wait", t)
        for name in months.values():
            store.insert_keys(conn, name)
        t = self._clock("keys", t)
        if self.sides:
            # the rollup while the side connections build the indexes (the same rows)
            for name in months.values():
                store.attached_hook(conn, name)
            t = self._clock("rollup", t)
            for side in self.sides:
                side.wait(side.done)
                for phase, seconds in side.seconds.items():  # overlapping the above
                    report.phases[phase] = report.phases.get(phase, 0.0) + seconds
            t = self._clock("wait", t)
        else:
            for name in months.values():
                store.build_indexes(conn, name)
            t = self._clock("index", t)
            for name in months.values():  # statistics before the month is read
                store.analyze_incidents(conn, name)
            t = self._clock("analyze", t)
        attached = 0
        for month, name in sorted(months.items()):
            final = name
            if name in self.side_of:
                final = partition_name("incident", month)
                if name in self.replaces:
                    self._replace(self.replaces[name], name)
                part_store.rename_table(conn, name, final)
                incident_copy.primary_key_from_index(conn, final)
            part_store.attach(conn, "incident", final, month_range(month, self.zone))
            if not self.sides:
                store.attached_hook(conn, final)
            attached += self.rows.get(name, 0)
            report.months_new.append(month)
        if attached and np.isfinite(self.bbox[0]):
            # the attached rows passed no INSERT trigger: the live map's one message
            b = self.bbox
            store.notify_loaded(conn, attached, (b[0], b[1], b[2], b[3]))
        self._clock("attach", t)


def _prefetch(items: Iterator[_T], depth: int = 1) -> Iterator[_T]:
    """Run a generator one item ahead in a thread, so that parsing and attributing the
    next batch (NumPy/pandas/pyarrow, which release the GIL) overlaps the server's COPY of
    this one."""
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    done = object()
    failure: list[BaseException] = []
    stop = threading.Event()

    def run() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put(item)
        except BaseException as exc:  # re-raised in the consumer
            failure.append(exc)
        finally:
            q.put(done)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                break
            yield item
    finally:
        stop.set()
        while t.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                pass
            t.join(timeout=0.05)
    if failure:
        raise failure[0]
