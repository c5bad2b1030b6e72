"""Bulk incident import: stream a file, check every row, convert CRS, attribute, COPY.

Files: CSV (lon/lat or x/y columns, names configurable), GeoJSON and GeoParquet (point
geometry). The pipeline per batch (default 200,000 rows) is vectorised end to end:
parse → check (every bad row is reported with file, row number and field) → convert to
WGS84 (:mod:`geogrid.core.crs`) → attribute to the published boundary version in memory
(:class:`geogrid.core.attribution.Attributor`) → ``COPY`` into PostgreSQL.

All or nothing: the whole import is one transaction. With bad rows and without
``skip_bad`` nothing is written (the file is still read to the end so that every problem
is reported at once). With ``skip_bad`` the good rows are loaded and the bad ones are
written, with the reason, to a rejects CSV. Re-running an import loads nothing twice: each
incident has a ``source_id`` (from the file, or a hash of its content when the file has
none) and rows whose ``source_id`` is already stored are skipped.

Naive timestamps are read as China Standard Time (Asia/Shanghai) and stored in UTC.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from geogrid.core import crs as gcrs
from geogrid.core.lifecycle import STATUSES
from geogrid.errors import FileInputError, InvalidInput, RowError

__all__ = [
    "ImportReport",
    "read_batches",
    "check_batch",
    "import_incidents",
    "LOCAL_TZ",
    "LIFECYCLE_TIMES",
]

LOCAL_TZ = "Asia/Shanghai"
LIFECYCLE_TIMES = ["accepted_at", "dispatched_at", "resolved_at", "closed_at"]
_STATUSES = frozenset(STATUSES)
_LON_NAMES = ("lon", "lng", "longitude", "long", "x")
_LAT_NAMES = ("lat", "latitude", "y")
_TIME_NAMES = ("reported_at", "requested_datetime", "datetime", "time", "timestamp")
_CATEGORY_NAMES = ("category", "service_code", "type")


@dataclass
class ImportReport:
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

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else float("nan")


def read_batches(
    path: str | Path,
    *,
    batch_size: int = 200_000,
    lon_field: str | None = None,
    lat_field: str | None = None,
) -> Iterator[tuple[int, pd.DataFrame]]:
    """Yield ``(first_row_number, frame)`` with ``lon``/``lat`` columns as read (strings
    or numbers, not yet checked). Row numbers are 1-based data rows (CSV header excluded)."""
    path = Path(path)
    if not path.exists():
        raise FileInputError(str(path), "file not found")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".gz"):
        first = 1
        for chunk in _csv_chunks(path, batch_size):
            yield first, _pick_xy(chunk, str(path), lon_field, lat_field)
            first += len(chunk)
        return
    if suffix in (".geojson", ".json", ".parquet", ".gpkg"):
        import geopandas as gpd

        try:
            gdf = gpd.read_parquet(path) if suffix == ".parquet" else gpd.read_file(path)
        except Exception as exc:
            raise FileInputError(str(path), f"cannot be read: {exc}") from exc
        geom = gdf.geometry.values
        is_point = np.asarray(shapely.get_type_id(geom) == 0)
        empty = np.asarray(shapely.is_empty(geom) | shapely.is_missing(geom))
        ok = is_point & ~empty
        df = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
        lon = np.full(len(df), None, dtype=object)
        lat = np.full(len(df), None, dtype=object)
        lon[ok] = shapely.get_x(geom[ok])
        lat[ok] = shapely.get_y(geom[ok])
        lon[~ok & ~empty] = "(not a Point geometry)"
        df["lon"], df["lat"] = lon, lat
        for start in range(0, len(df), batch_size):
            yield start + 1, df.iloc[start : start + batch_size].reset_index(drop=True)
        return
    raise InvalidInput("path", str(path), "a .csv, .geojson, .json or .parquet file")


def _csv_chunks(path: Path, batch_size: int) -> Iterator[pd.DataFrame]:
    """CSV as frames of ``batch_size`` rows, every column a string (empty → missing),
    streamed with pyarrow's multithreaded reader (several times faster than pandas')."""
    import csv
    import gzip

    import pyarrow as pa
    import pyarrow.csv as pacsv

    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as f:
            header = next(csv.reader(f), None)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise FileInputError(str(path), f"cannot be read as UTF-8 CSV: {exc}") from exc
    if not header:
        raise FileInputError(str(path), "the file is empty (no header row)")
    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in header}, strings_can_be_null=True, null_values=[""]
    )
    try:
        reader = pacsv.open_csv(
            path, read_options=pacsv.ReadOptions(block_size=1 << 24), convert_options=convert
        )
        pending: list[pd.DataFrame] = []
        size = 0
        for rb in reader:
            df = rb.to_pandas()
            pending.append(df)
            size += len(df)
            while size >= batch_size:
                whole = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
                yield whole.iloc[:batch_size].reset_index(drop=True)
                rest = whole.iloc[batch_size:].reset_index(drop=True)
                pending, size = ([rest], len(rest)) if len(rest) else ([], 0)
        if size:
            yield pd.concat(pending, ignore_index=True)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise FileInputError(str(path), f"cannot be read as CSV: {exc}") from exc


def _pick_xy(
    df: pd.DataFrame, file: str, lon_field: str | None, lat_field: str | None
) -> pd.DataFrame:
    cols = {c.lower(): c for c in df.columns}
    lon = lon_field or next((cols[n] for n in _LON_NAMES if n in cols), None)
    lat = lat_field or next((cols[n] for n in _LAT_NAMES if n in cols), None)
    missing = [
        (w, f)
        for w, f in (("longitude", lon), ("latitude", lat))
        if f is None or f not in df.columns
    ]
    if missing:
        raise FileInputError(
            file,
            [
                RowError(
                    file,
                    None,
                    f,
                    f"no {w} column (looked for "
                    f"{f or '/'.join(_LON_NAMES if w == 'longitude' else _LAT_NAMES)}; "  # noqa: E501
                    "set --lon-field/--lat-field)",
                )
                for w, f in missing
            ],
        )
    out = df.rename(columns={lon: "lon", lat: "lat"})
    return out


def _col(df: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    cols = {c.lower(): c for c in df.columns}
    return next((cols[n] for n in names if n in cols), None)


def check_batch(
    df: pd.DataFrame,
    *,
    file: str,
    first_row: int,
    crs: str,
    categories: set[str],
) -> tuple[pd.DataFrame, pd.Series, list[RowError]]:
    """Check and normalise a batch.

    Returns the normalised frame (source_id, category, description, lon, lat in WGS84,
    src_crs, src_lon, src_lat, reported_at UTC, reporter_kind, status, lifecycle times),
    a boolean Series of good rows, and the errors (one per bad field).
    """
    n = len(df)
    rows = np.arange(first_row, first_row + n)
    errors: list[RowError] = []
    bad = np.zeros(n, dtype=bool)

    def flag(mask: np.ndarray, fld: str, msg: Callable[[object], str], values) -> None:
        nonlocal bad
        idx = np.flatnonzero(mask)
        for i in idx:
            errors.append(RowError(file, int(rows[i]), fld, msg(values[i]), values[i]))
        bad |= mask

    # coordinates
    coords = {}
    for fld, lo, hi in (("lon", -180.0, 180.0), ("lat", -90.0, 90.0)):
        raw = df[fld].to_numpy(dtype=object) if fld in df else np.full(n, None, object)
        num = pd.to_numeric(pd.Series(raw), errors="coerce").to_numpy(dtype=float)
        missing = pd.isna(pd.Series(raw)).to_numpy()
        flag(missing, fld, lambda v: "coordinate is missing", raw)
        nonnum = ~missing & np.isnan(num)
        flag(nonnum, fld, lambda v: f"{v!r} is not a number", raw)
        out_range = ~np.isnan(num) & ((num < lo) | (num > hi))
        flag(out_range, fld, lambda v, lo=lo, hi=hi: f"{v} is outside [{lo}, {hi}]", raw)
        coords[fld] = num
    src_lon, src_lat = coords["lon"], coords["lat"]

    # category
    cat_col = _col(df, _CATEGORY_NAMES)
    if cat_col is None:
        cats = np.full(n, None, dtype=object)
        errors.append(RowError(file, None, "category", "no category column"))
        bad[:] = True
    else:
        cats = df[cat_col].astype(object).where(df[cat_col].notna(), None).to_numpy()
        unknown = ~pd.Series(cats, dtype=object).isin(list(categories)).to_numpy()
        allowed = ", ".join(sorted(categories))
        flag(unknown, cat_col, lambda v: f"unknown category {v!r} (known: {allowed})", cats)

    # reported_at
    t_col = _col(df, _TIME_NAMES)
    if t_col is None:
        errors.append(RowError(file, None, "reported_at", "no reported_at column"))
        bad[:] = True
        reported = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns, UTC]")
    else:
        reported = _parse_times(df[t_col])
        raw_t = df[t_col].to_numpy(dtype=object)
        flag(
            reported.isna().to_numpy(),
            t_col,
            lambda v: (
                "timestamp is missing"
                if pd.isna(v)
                else f"{v!r} is not a timestamp (ISO 8601 expected)"
            ),
            raw_t,
        )

    # status and lifecycle times (optional, for historical imports)
    status = (
        df["status"].fillna("reported").astype(str).str.strip().to_numpy(dtype=object)
        if "status" in df
        else np.full(n, "reported", dtype=object)
    )
    flag(
        ~pd.Series(status, dtype=object).isin(list(_STATUSES)).to_numpy(),
        "status",
        lambda v: f"unknown status {v!r} (known: {', '.join(sorted(_STATUSES))})",
        status,
    )
    times = {}
    for c in LIFECYCLE_TIMES:
        if c in df:
            parsed = _parse_times(df[c])
            given = df[c].notna().to_numpy()
            flag(
                given & parsed.isna().to_numpy(),
                c,
                lambda v: f"{v!r} is not a timestamp",
                df[c].to_numpy(dtype=object),
            )
            times[c] = parsed
        else:
            times[c] = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns, UTC]")

    # convert to WGS84 (only good coordinates; others stay NaN)
    ok_xy = ~np.isnan(src_lon) & ~np.isnan(src_lat)
    lon = np.full(n, np.nan)
    lat = np.full(n, np.nan)
    if ok_xy.any():
        lon[ok_xy], lat[ok_xy] = gcrs.to_wgs84(src_lon[ok_xy], src_lat[ok_xy], crs)

    desc_col = _col(df, ("description", "desc", "text"))
    desc = (
        df[desc_col].astype(object).where(df[desc_col].notna(), None)
        if desc_col
        else pd.Series([None] * n, dtype=object)
    )
    sid_col = _col(df, ("source_id", "id", "service_request_id"))
    if sid_col is not None:
        sid = df[sid_col].astype(object).where(df[sid_col].notna(), None).to_numpy()
        no_sid = np.array([s is None for s in sid])
    else:
        sid = np.full(n, None, dtype=object)
        no_sid = np.ones(n, dtype=bool)
    if no_sid.any():
        # content hash: the same row imported twice gets the same id
        def text_of(values) -> pd.Series:  # missing values hash as "" (never NaN)
            arr = np.asarray(values, dtype=object)
            return pd.Series(np.where(pd.isna(arr), "", arr).astype(str), dtype=object)

        key = (
            text_of(cats)
            + "|"
            + text_of(pd.Series(src_lon).map("{:.7f}".format))
            + "|"
            + text_of(pd.Series(src_lat).map("{:.7f}".format))
            + "|"
            + text_of(reported.astype(object).to_numpy())
            + "|"
            + text_of(desc)
        )
        hashed = np.array(
            ["sha1:" + hashlib.sha1(k.encode("utf-8")).hexdigest()[:20] for k in key[no_sid]],
            dtype=object,
        )
        sid[no_sid] = hashed
    kind_col = _col(df, ("reporter_kind",))
    reporter_kind = (
        df[kind_col].fillna("resident").astype(str).to_numpy(dtype=object)
        if kind_col
        else np.full(n, "resident", dtype=object)
    )

    out = pd.DataFrame(
        {
            "source_id": pd.Series(sid, dtype=object).astype(str),
            "category": cats,
            "description": desc.to_numpy(),
            "lon": lon,
            "lat": lat,
            "src_crs": crs,
            "src_lon": src_lon,
            "src_lat": src_lat,
            "reported_at": reported.reset_index(drop=True),
            "reporter_kind": reporter_kind,
            "status": status,
            **{c: times[c].reset_index(drop=True) for c in LIFECYCLE_TIMES},
        }
    )
    out["_row"] = rows
    return out, pd.Series(~bad), errors


def _parse_times(s: pd.Series) -> pd.Series:
    """Parse ISO 8601 strings (or datetimes); naive values are China Standard Time."""
    if pd.api.types.is_datetime64_any_dtype(s):
        t = s
    else:
        t = pd.to_datetime(s, errors="coerce", utc=False, format="ISO8601")
        if t.dtype == object:  # mixed offsets
            t = pd.to_datetime(s, errors="coerce", utc=True, format="ISO8601")
    if getattr(t.dt, "tz", None) is None:
        t = t.dt.tz_localize(LOCAL_TZ, ambiguous="NaT", nonexistent="NaT")
    return t.dt.tz_convert("UTC")


def import_incidents(
    engine,
    path: str | Path,
    *,
    crs: str = "wgs84",
    skip_bad: bool = False,
    rejects_path: str | Path | None = None,
    batch_size: int = 200_000,
    lon_field: str | None = None,
    lat_field: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import incidents from a file into the database (one transaction).

    Parameters
    ----------
    crs : coordinate system of the file's coordinates: ``wgs84``, ``gcj02``, ``bd09`` or
        an EPSG code; stored points are WGS84 (EPSG:4326) and the source CRS and
        coordinates are kept with each incident.
    skip_bad : load the good rows and write the bad ones to ``rejects_path`` (default
        ``<file>.rejects.csv``) instead of refusing the whole file.
    progress : called with the number of rows done after each batch.

    Raises
    ------
    FileInputError listing every bad row (file, row, field) when ``skip_bad`` is False.
    """
    import time

    from geogrid.services.attribution import attributor_for_version
    from geogrid.store import incidents as store
    from geogrid.store.changes import record_incident_change

    crs = gcrs.normalize_crs(crs)
    path = Path(path)
    report = ImportReport(file=str(path))
    t0 = time.perf_counter()
    att = attributor_for_version(engine)
    rejects: list[pd.DataFrame] = []
    seen: set[str] = set()
    with engine.connect() as conn:
        cats = store.category_table(conn)
        workers = store.grid_workers(conn)

    def produce() -> Iterator[tuple[bytes | None, tuple | None]]:
        """Parse, check, attribute and encode batches (runs one batch ahead of COPY)."""
        with engine.connect() as lookup:
            for first, raw in read_batches(
                path, batch_size=batch_size, lon_field=lon_field, lat_field=lat_field
            ):
                batch, good, errors = check_batch(
                    raw, file=str(path), first_row=first, crs=crs, categories=set(cats.index)
                )
                report.rows += len(batch)
                if errors:
                    report.errors.extend(errors)
                    if skip_bad:
                        rejects.append(_rejects(raw, batch, good, errors))
                        report.rejected += int((~good).sum())
                if report.errors and not skip_bad:
                    yield None, None  # keep reading to report every problem
                    continue
                batch = batch.loc[good.to_numpy()].reset_index(drop=True)
                # idempotency: drop ids seen earlier in this file or already stored
                dup_in_file = batch["source_id"].duplicated() | batch["source_id"].isin(seen)
                report.duplicates_in_file += int(dup_in_file.sum())
                batch = batch.loc[~dup_in_file.to_numpy()]
                seen.update(batch["source_id"])
                stored = store.existing_source_ids(lookup, batch["source_id"].tolist())
                report.already_stored += len(stored)
                batch = batch.loc[~batch["source_id"].isin(stored).to_numpy()]
                batch = batch.reset_index(drop=True)
                codes = att.attribute(batch["lon"].to_numpy(), batch["lat"].to_numpy())
                report.outside += int(codes["grid_code"].isna().sum())
                frame = store.prepare_rows(batch, codes, cats, workers, att.version_id)
                lon, lat = batch["lon"].to_numpy(), batch["lat"].to_numpy()
                yield store.encode_rows(frame), (lon, lat, len(frame))

    with engine.begin() as conn:
        for encoded, pts in _prefetch(produce()):
            if encoded is not None and not (report.errors and not skip_bad):
                store.copy_encoded(conn, encoded)
                report.loaded += pts[2]
                record_incident_change(conn, pts[0], pts[1], kind="import")
            if progress:
                progress(report.rows)
        if report.errors and not skip_bad:
            raise FileInputError(str(path), report.errors)
    if rejects:
        rp = Path(rejects_path) if rejects_path else path.with_suffix(".rejects.csv")
        pd.concat(rejects).to_csv(rp, index=False)
        report.rejects_path = str(rp)
    report.seconds = time.perf_counter() - t0
    return report


def _rejects(
    raw: pd.DataFrame, batch: pd.DataFrame, good: pd.Series, errors: list[RowError]
) -> pd.DataFrame:
    """The bad rows as read, with their row number and the reasons."""
    bad = ~good.to_numpy()
    rej = raw.loc[bad].copy()
    rej.insert(0, "row", batch.loc[bad, "_row"].to_numpy())
    by_row: dict[int, list[str]] = {}
    for e in errors:
        if e.row is not None:
            by_row.setdefault(e.row, []).append(f"{e.field}: {e.message}")
    rej["error"] = ["; ".join(by_row.get(int(r), [])) for r in rej["row"]]
    return rej


def _prefetch(items: Iterator, depth: int = 1) -> Iterator:
    """Run a generator one item ahead in a thread, so that parsing and attributing the
    next batch (NumPy/pandas/pyarrow, which release the GIL) overlaps the server's COPY of
    this one."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
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
