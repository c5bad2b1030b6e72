"""Monthly partitions on demand (revision 0015): writers call :func:`ensure` before they
write, the service makes the coming months ahead (:func:`maintain`, hourly), and old months
are archived to GeoParquet and restored (:func:`archive_before`, :func:`restore_month`).

**Ensure, then insert.** :func:`ensure` makes the months (in the city's zone) holding the
given times when no partition covers them, in a transaction of its own with a short lock
timeout and without waiting for another maker (an import making months): a report never
waits behind a long query or an import for a partition; if one cannot be made at once the
row lands in the DEFAULT partition (nothing fails), further tries pause for a minute, and
the next :func:`maintain` moves the rows out. The ranges known to be covered are kept per engine, so a
report in a month already made costs no catalogue query (the cache is keyed by the
:class:`~sqlalchemy.Engine` — the writers take a bind, not an ``AppContext`` — and dies
with it; a month archived meanwhile by another process is not a problem: its rows go to the
DEFAULT partition and are moved into the month when it is restored).

**Archive.** A month is detached, written whole (every column; these are the table's
own rows, personal fields included — store them like a backup, unlike the analysts'
:mod:`geogrid.services.archive` export) to ``incident-archive-YYYY-MM.parquet``
(GeoParquet, written to a temporary name then renamed), and dropped — in one transaction,
so a failed write leaves the month attached. Its ``incident_key`` rows stay, and with them
the events, notes and verdicts of its incidents: restoring brings back the same ids. The
file records the month's bounds, row count and checksum; the restore checks both before it
attaches the month again.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import shapely
from pyproj import CRS
from sqlalchemy import Connection, Engine
from sqlalchemy import exc as sa_exc

from geogrid.core.partitioning import (
    Bounds,
    gaps,
    month_of,
    month_range,
    months_covering,
    next_month,
    parse_month,
    partition_name,
)
from geogrid.errors import Conflict, FileInputError, NotFound
from geogrid.settings import get_settings
from geogrid.store import incidents as incident_store
from geogrid.store import locks
from geogrid.store import partitions as store

__all__ = [
    "ArchiveReport",
    "ensure",
    "ensure_range",
    "maintain",
    "partition_list",
    "archive_before",
    "restore_month",
    "archive_file",
    "forget",
]

log = logging.getLogger("geogrid.partitions")

#: advisory-lock namespace of partition making (one maker at a time per database)
PARTITION_LOCK_NAMESPACE = 0x67670015
#: how long :func:`ensure` waits for a lock before leaving rows to the DEFAULT partition
LOCK_TIMEOUT_MS = 2000
#: seconds :func:`ensure` stops trying after it could not make a month at once
RETRY_S = 60.0
#: months made ahead of the current one by :func:`maintain`
MONTHS_AHEAD = 2
PARENT = "incident"


class _Known:
    """The ranges covered by attached partitions, as last read (per engine)."""

    def __init__(self) -> None:
        self.ranges: list[Bounds] = []
        self.lock = threading.Lock()
        self.until = 0.0

    def pause(self) -> None:
        """Stop trying to make months for :data:`RETRY_S` (a maker is busy or a lock
        timed out): writers meanwhile pay nothing, their rows wait in the DEFAULT
        partition until :func:`maintain`."""
        self.until = time.monotonic() + RETRY_S

    def paused(self) -> bool:
        return time.monotonic() < self.until

    def covers(self, t: datetime) -> bool:
        return any(b.contains(t) for b in self.ranges)

    def reset(self, parts: Iterable[store.Partition]) -> None:
        self.ranges = [p.bounds for p in parts if not p.is_default]


_KNOWN: weakref.WeakKeyDictionary[Engine, _Known] = weakref.WeakKeyDictionary()
_KNOWN_LOCK = threading.Lock()


def _known(engine: Engine) -> _Known:
    with _KNOWN_LOCK:
        k = _KNOWN.get(engine)
        if k is None:
            k = _KNOWN[engine] = _Known()
        return k


def forget(engine: Engine) -> None:
    """Drop what this process knows of ``engine``'s partitions (after a restore from a
    backup, or in tests)."""
    with _KNOWN_LOCK:
        _KNOWN.pop(engine, None)


def _engine(bind: Engine | Connection) -> Engine:
    return bind if isinstance(bind, Engine) else bind.engine


def _zone(tz: str | None) -> str:
    return tz or get_settings().city.timezone


def ensure(
    bind: Engine | Connection, times: datetime | Iterable[datetime], *, tz: str | None = None
) -> list[str]:
    """Make the monthly partitions holding ``times`` (aware) when none covers them.

    Cheap when the months are known to exist (no query). Runs in its own transaction on
    ``bind``'s engine; never raises for a lock it could not get in
    :data:`LOCK_TIMEOUT_MS` (the rows then wait in the DEFAULT partition). Returns the
    partitions made.
    """
    ts = [times] if isinstance(times, datetime) else list(times)
    engine = _engine(bind)
    known = _known(engine)
    missing = [t for t in ts if not known.covers(t)]
    if not missing or known.paused():
        return []
    zone = _zone(tz)
    months = sorted({month_of(t, zone) for t in missing})
    try:
        return _make(engine, months, zone, known)
    except sa_exc.OperationalError as exc:  # lock timeout: the DEFAULT partition takes the rows
        known.pause()
        log.warning(
            "partitions %s not made now (%s); rows wait in the default partition",
            months,
            type(exc.orig).__name__,
        )
        return []


def ensure_range(
    bind: Engine | Connection, first: datetime, last: datetime, *, tz: str | None = None
) -> list[str]:
    """:func:`ensure` every month from ``first``'s to ``last``'s."""
    zone = _zone(tz)
    months = months_covering(first, last, zone)
    return ensure(bind, [month_range(m, zone).start for m in months], tz=zone)


def _make(engine: Engine, months: list[str], zone: str, known: _Known) -> list[str]:
    made: list[str] = []
    with engine.begin() as conn:
        store.lock_timeout(conn, LOCK_TIMEOUT_MS)
        # never wait for another maker (an import making months holds the lock for its
        # whole transaction): what exists is read, the rest waits in the DEFAULT partition
        if locks.try_xact_lock(conn, PARTITION_LOCK_NAMESPACE, 0):
            made = make_months(conn, months, zone)
        else:
            known.pause()
        parts = store.list_partitions(conn, PARENT)
    with known.lock:
        known.reset(parts)
    return made


def make_months(conn: Connection, months: Iterable[str], zone: str) -> list[str]:
    """Inside the caller's transaction: add the partitions of ``months`` not covered yet
    (pieces of a month already partly covered get a suffix). Returns their names."""
    existing = [p.bounds for p in store.list_partitions(conn, PARENT) if not p.is_default]
    made = []
    for month in months:
        pieces = gaps(month_range(month, zone), existing)
        for i, piece in enumerate(pieces):
            name = partition_name(PARENT, month)
            if len(pieces) > 1 or piece != month_range(month, zone):
                name = f"{name}_{i + 1}"
            store.add_partition(conn, PARENT, name, piece)
            existing.append(piece)
            made.append(name)
    return made


def maintain(engine: Engine, *, ahead: int = MONTHS_AHEAD, tz: str | None = None) -> list[str]:
    """Make the current month and ``ahead`` months after it, and the months of rows waiting
    in the DEFAULT partition (moving them out). Called when the service starts and hourly."""
    zone = _zone(tz)
    now = month_of(datetime.now(UTC), zone)
    with engine.connect() as conn:
        waiting = incident_store.default_months(conn, zone)
    months = sorted({next_month(now, k) for k in range(ahead + 1)} | set(waiting))
    forget(engine)
    return ensure(engine, [month_range(m, zone).start for m in months], tz=zone)


def partition_list(bind: Engine | Connection) -> list[dict[str, Any]]:
    """The incident partitions: ``name``, ``start``, ``end`` (None for the DEFAULT one)."""
    with _engine(bind).connect() as conn:
        return [
            {"name": p.name, "start": p.start, "end": p.end}
            for p in store.list_partitions(conn, PARENT)
        ]


# --------------------------------------------------------------------------- archive
@dataclass
class ArchiveReport:
    """What an archive or a restore did: ``files`` (partition → path) and ``rows``."""

    folder: str
    files: dict[str, str] = field(default_factory=dict)
    rows: int = 0


def archive_file(folder: str | Path, name: str) -> Path:
    """The archive file of partition ``name`` in ``folder``."""
    suffix = name.removeprefix(PARENT + "_p").replace("_", "-")
    return Path(folder) / f"{PARENT}-archive-{suffix}.parquet"


_META = b"geogrid:partition"
_EPSG_4326 = CRS.from_epsg(4326).to_json_dict()


def archive_before(
    engine: Engine, before: str, folder: str | Path, *, tz: str | None = None
) -> ArchiveReport:
    """Detach every incident partition ending on or before the start of month ``before``
    (``YYYY-MM``, city zone), write it to ``folder`` as GeoParquet and drop it; one
    transaction per partition."""
    zone = _zone(tz)
    cutoff = month_range(parse_month(before, "before"), zone).start
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    report = ArchiveReport(folder=str(out))
    with engine.connect() as conn:
        parts = [
            p for p in store.list_partitions(conn, PARENT) if p.end is not None and p.end <= cutoff
        ]
    for part in parts:
        with engine.begin() as conn:
            digest = store.month_digest(conn, part.name)
            store.detach(conn, PARENT, part.name)
            table = incident_store.read_table(conn, part.name)
            path = archive_file(out, part.name)
            incident_store.detached_hook(conn, part.name)
            _write(
                table,
                path,
                {
                    "name": part.name,
                    "start": part.bounds.start.isoformat(),
                    "end": part.bounds.end.isoformat(),
                    **digest,
                },
            )
            store.drop(conn, part.name)
        report.files[part.name] = str(path)
        report.rows += digest["rows"]
    forget(engine)
    return report


def _write(table: pa.Table, path: Path, meta: dict[str, Any]) -> None:
    """Write ``table`` (``geom`` as ISO WKB) as GeoParquet 1.0 with our metadata.

    The ``geo`` metadata is written here rather than by GeoPandas: going through a
    GeoDataFrame would turn the nullable integer columns into floats (the archive must
    give back every value exactly) and costs a GEOS object per point. The CRS is EPSG:4326
    as PROJJSON (what GeoPandas writes for the analysts' history files)."""
    geom = table.column("geom")
    xy = shapely.get_coordinates(shapely.from_wkb(geom.to_numpy(zero_copy_only=False)))
    bbox = [float(v) for v in (*xy.min(axis=0), *xy.max(axis=0))] if len(xy) else []
    geo = {
        "version": "1.0.0",
        "primary_column": "geom",
        "columns": {
            "geom": {
                "encoding": "WKB",
                "geometry_types": ["Point"],
                "crs": _EPSG_4326,
                **({"bbox": bbox} if bbox else {}),
            }
        },
    }
    t = table.replace_schema_metadata(
        {b"geo": json.dumps(geo).encode(), _META: json.dumps(meta).encode()}
    )
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(t, tmp)
    os.replace(tmp, path)


def restore_month(engine: Engine, path: str | Path) -> ArchiveReport:
    """Load an archived month back: COPY its rows into a new table, check the count and
    checksum recorded in the file, move rows of that month waiting in the DEFAULT
    partition in, and attach it. When a partition covering those dates was made meanwhile,
    the rows are inserted into the parent instead."""
    p = Path(path)
    if not p.is_file():
        raise FileInputError(str(p), "file not found")
    try:
        t = pq.read_table(p)
        meta = json.loads((t.schema.metadata or {})[_META])
    except (KeyError, ValueError, OSError, pa.ArrowException) as exc:
        raise FileInputError(str(p), f"not an incident archive ({exc})") from exc
    name, bounds = (
        str(meta["name"]),
        Bounds(datetime.fromisoformat(meta["start"]), datetime.fromisoformat(meta["end"])),
    )
    geom = shapely.set_srid(shapely.from_wkb(t.column("geom").to_numpy(zero_copy_only=False)), 4326)
    ewkb = pa.array(shapely.to_wkb(geom, include_srid=True), type=pa.binary())
    t = t.replace_schema_metadata(None).set_column(t.schema.get_field_index("geom"), "geom", ewkb)
    report = ArchiveReport(folder=str(p.parent))
    with engine.begin() as conn:
        locks.xact_lock(conn, PARTITION_LOCK_NAMESPACE, 0)
        if store.table_exists(conn, name):
            raise Conflict(f"{p}: table {name} exists already (the month is attached)")
        store.create_month_table(conn, PARENT, name, bounds)
        incident_store.copy_table(conn, name, t)
        digest = store.month_digest(conn, name)
        if digest["rows"] != meta["rows"] or digest["md5"] != meta["md5"]:
            raise FileInputError(
                str(p),
                f"rows or checksum differ from the archive's ({digest} vs {meta['rows']}, {meta['md5']})",
            )
        incident_store.insert_keys(conn, name, restored=True)
        overlaps = [
            q
            for q in store.list_partitions(conn, PARENT)
            if not q.is_default
            and not (q.bounds.end <= bounds.start or q.bounds.start >= bounds.end)
        ]
        if overlaps:
            incident_store.insert_from(conn, name)
            store.drop(conn, name)
        else:
            incident_store.build_indexes(conn, name)
            store.attach(conn, PARENT, name, bounds)
            incident_store.attached_hook(conn, name)
    forget(engine)
    report.files[name] = str(p)
    report.rows = digest["rows"]
    return report


def require_month(month: str) -> str:
    """A checked ``YYYY-MM`` (InvalidInput otherwise)."""
    return parse_month(month)


def find_partition(engine: Engine, name: str) -> store.Partition:
    with engine.connect() as conn:
        for p in store.list_partitions(conn, PARENT):
            if p.name == name:
                return p
    raise NotFound(f"no incident partition {name}")
