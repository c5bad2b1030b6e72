"""Incident files and rows, pure: read a file in batches, check every row, build the rows
to load.

Files: CSV (lon/lat or x/y columns, names configurable; ``.gz`` too), GeoJSON and
GeoParquet (point geometry). :func:`read_batches` streams a file as frames of raw values;
:func:`check_batch` checks and normalises one batch (every bad row is reported with file,
row number and field), converting coordinates to WGS84 (EPSG:4326) with
:mod:`geogrid.core.crs`; :func:`prepare_rows` routes the checked rows (due time,
responsible unit and account) into the columns of the ``incident`` table. No database:
the import workflow is :func:`geogrid.services.ingest.import_incidents`.

Naive timestamps are read in the time zone ``tz`` the caller passes (the city's,
``settings.city.timezone``) and returned in UTC.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyproj
import shapely

from geogrid.core import crs as gcrs
from geogrid.core.accounts import RESIDENT
from geogrid.core.geometry import points_ewkb_hex
from geogrid.core.hierarchy import LEVEL_COLUMN, LEVELS_UP
from geogrid.core.lifecycle import INITIAL_STATUS, STATUSES, TIMESTAMP_COLUMN
from geogrid.core.timewindow import TIME_RANGE
from geogrid.errors import FileInputError, InvalidInput, RowError

__all__ = [
    "LIFECYCLE_TIMES",
    "INCIDENT_COPY_COLUMNS",
    "read_batches",
    "check_batch",
    "NearIndex",
    "parse_times",
    "prepare_rows",
    "rejected_rows",
]

#: optional lifecycle timestamps of historical records (besides ``reported_at``)
LIFECYCLE_TIMES = list(dict.fromkeys(TIMESTAMP_COLUMN.values()))
#: the columns of ``incident`` a bulk load writes, in COPY order
INCIDENT_COPY_COLUMNS = [
    "source_id",
    "category",
    "description",
    "src_crs",
    "src_lon",
    "src_lat",
    "reported_at",
    "reporter_kind",
    "reporter_id",
    "status",
    "updated_at",
    *LIFECYCLE_TIMES,
    "due_at",
    "assigned_level",
    "assigned_unit",
    "assignee_id",
    "version_id",
    *LEVEL_COLUMN.values(),
    "geom",
]
_STATUSES = frozenset(STATUSES)
_LON_NAMES = ("lon", "lng", "longitude", "long", "x")
_LAT_NAMES = ("lat", "latitude", "y")
_TIME_NAMES = ("reported_at", "requested_datetime", "datetime", "time", "timestamp")
_CATEGORY_NAMES = ("category", "service_code", "type")
#: a column of the raw frames: why a CSV record could not be split into the header's
#: columns (None for good records)
_MALFORMED = "_malformed"


def read_batches(
    path: str | Path,
    *,
    batch_size: int = 200_000,
    lon_field: str | None = None,
    lat_field: str | None = None,
) -> Iterator[tuple[int, pd.DataFrame]]:
    """Stream an incident file as batches of raw values.

    Parameters
    ----------
    path : a ``.csv`` (``.txt``, ``.gz``), ``.geojson``/``.json``, ``.parquet`` or ``.gpkg``
        file; points of GeoJSON/GeoParquet/GeoPackage are read as given (their CRS is the
        caller's ``crs``)
    batch_size : rows per batch
    lon_field, lat_field : the CSV columns of longitude/x and latitude/y (default: the
        first of ``lon``, ``lng``, ``longitude``, ``long``, ``x`` / ``lat``,
        ``latitude``, ``y``, case-insensitive)

    Yields
    ------
    ``(first_row_number, frame)`` with ``lon``/``lat`` columns as read (strings or
    numbers, not yet checked). Row numbers are 1-based data rows (CSV header excluded).

    Raises
    ------
    FileInputError : the file is missing, unreadable, or has no coordinate columns.
    InvalidInput : the file type is not supported.
    """
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


def _open_text(path: Path) -> IO[str]:
    """A UTF-8 text file (a BOM is skipped), gzip-compressed when it ends with ``.gz``."""
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _csv_chunks(path: Path, batch_size: int) -> Iterator[pd.DataFrame]:
    """CSV as frames of ``batch_size`` rows, every column a string (empty → missing),
    streamed with pyarrow's reader (several times faster than pandas').

    A record with more or fewer values than the header is kept in its place as a row of
    missing values whose ``_malformed`` column says why, so that row numbers stay those
    of the file and the row is rejected like any other bad row.
    """
    try:
        with _open_text(path) as f:
            header = next(csv.reader(f), None)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise FileInputError(str(path), f"cannot be read as UTF-8 CSV: {exc}") from exc
    if not header:
        raise FileInputError(str(path), "the file is empty (no header row)")
    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in header}, strings_can_be_null=True, null_values=[""]
    )
    malformed: list[tuple[int, str]] = []  # (data row number, reason), in file order

    def on_invalid(row: Any) -> str:
        if row.number is None:  # pragma: no cover - only with use_threads=True
            return "error"
        text = row.text if len(row.text) <= 200 else row.text[:200] + "…"
        malformed.append(
            (
                int(row.number) - 1,  # pyarrow counts the header as record 1
                f"{row.actual_columns} values where the header has {row.expected_columns} "
                f"columns: {text!r}",
            )
        )
        return "skip"

    emitted = 0  # the last data row number emitted

    def with_malformed(df: pd.DataFrame, good_before: int, last: bool) -> pd.DataFrame:
        """Number the good rows of a block and put the malformed records among them."""
        nonlocal emitted
        shifted = np.array([r for r, _ in malformed], dtype=np.int64) - np.arange(len(malformed))
        # the g-th good row (1-based) is data row g + (malformed records before it)
        g = np.arange(good_before + 1, good_before + len(df) + 1)
        rows = g + np.searchsorted(shifted, g, side="right")
        until = np.inf if last or not len(rows) else rows[-1]
        take = [(r, why) for r, why in malformed if emitted < r < until]
        emitted = int(max([emitted, *rows[-1:], *(r for r, _ in take)]))
        df = df.assign(**{_MALFORMED: None})
        if not take:
            return df
        extra = pd.DataFrame({c: pd.Series([None] * len(take), dtype=object) for c in df.columns})
        extra[_MALFORMED] = [why for _, why in take]
        order = np.concatenate([rows, np.array([r for r, _ in take], dtype=np.int64)])
        both = pd.concat([df, extra], ignore_index=True)
        return both.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)

    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=1 << 24, use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=convert,
        )
        pending: list[pd.DataFrame] = []
        size = 0
        good = 0
        for rb in reader:
            df = with_malformed(rb.to_pandas(), good, last=False)
            good += rb.num_rows
            pending.append(df)
            size += len(df)
            while size >= batch_size:
                whole = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
                yield whole.iloc[:batch_size].reset_index(drop=True)
                rest = whole.iloc[batch_size:].reset_index(drop=True)
                pending, size = ([rest], len(rest)) if len(rest) else ([], 0)
        tail = with_malformed(
            pd.DataFrame({c: pd.Series(dtype=object) for c in header}), good, True
        )
        if len(tail):
            pending.append(tail)
            size += len(tail)
        while size:
            whole = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
            yield whole.iloc[:batch_size].reset_index(drop=True)
            rest = whole.iloc[batch_size:].reset_index(drop=True)
            pending, size = ([rest], len(rest)) if len(rest) else ([], 0)
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
                    f"{f or '/'.join(_LON_NAMES if w == 'longitude' else _LAT_NAMES)}; "
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
    tz: str,
) -> tuple[pd.DataFrame, pd.Series, list[RowError]]:
    """Check and normalise a batch of :func:`read_batches`.

    Parameters
    ----------
    df : the raw batch (``lon``/``lat`` and the other columns as read)
    file : the file's name, for the errors
    first_row : row number of the batch's first row (1-based)
    crs : the coordinates' system (a name :func:`geogrid.core.crs.normalize_crs` returned)
    categories : the known category codes
    tz : IANA time zone of naive timestamps (e.g. the city's ``Asia/Shanghai``)

    Returns
    -------
    frame : the normalised rows (source_id, category, description, lon, lat in WGS84,
        src_crs, src_lon, src_lat, reported_at UTC, reporter_kind, status, lifecycle times
        UTC, ``_row`` the row number); a missing ``source_id`` is a hash of the row's
        content, so the same row imported twice gets the same id
    good : boolean Series, True for the rows without errors
    errors : one :class:`~geogrid.errors.RowError` per bad field
    """
    n = len(df)
    rows = np.arange(first_row, first_row + n)
    errors: list[RowError] = []
    bad = np.zeros(n, dtype=bool)

    def flag(mask: np.ndarray, fld: str, msg: Callable[[Any], str], values: Any) -> None:
        nonlocal bad
        idx = np.flatnonzero(mask)
        for i in idx:
            errors.append(RowError(file, int(rows[i]), fld, msg(values[i]), values[i]))
        bad |= mask

    # coordinates
    coords: dict[str, np.ndarray] = {}
    for fld, lo, hi in (("lon", -180.0, 180.0), ("lat", -90.0, 90.0)):
        raw = df[fld].to_numpy(dtype=object) if fld in df else np.full(n, None, object)
        num = pd.to_numeric(pd.Series(raw), errors="coerce").to_numpy(dtype=float)
        missing = pd.isna(pd.Series(raw)).to_numpy()
        flag(missing, fld, lambda v: "coordinate is missing", raw)
        nonnum = ~missing & np.isnan(num)
        flag(nonnum, fld, lambda v: f"{v!r} is not a number", raw)
        out_range = ~np.isnan(num) & ((num < lo) | (num > hi))
        flag(out_range, fld, _outside_message(lo, hi), raw)
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
        reported = parse_times(df[t_col], tz)
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
        df["status"].fillna(INITIAL_STATUS).astype(str).str.strip().to_numpy(dtype=object)
        if "status" in df
        else np.full(n, INITIAL_STATUS, dtype=object)
    )
    flag(
        ~pd.Series(status, dtype=object).isin(list(_STATUSES)).to_numpy(),
        "status",
        lambda v: f"unknown status {v!r} (known: {', '.join(sorted(_STATUSES))})",
        status,
    )
    times: dict[str, pd.Series] = {}
    for c in LIFECYCLE_TIMES:
        if c in df:
            parsed = parse_times(df[c], tz)
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

    # dates outside what geogrid accepts anywhere (the API's rule, 1970 to 2199)
    given_times = [(t_col, reported)] if t_col is not None else []
    for c, parsed in [*given_times, *((c, t) for c, t in times.items() if c in df)]:
        outside = (
            parsed.notna() & ((parsed < TIME_RANGE[0]) | (parsed >= TIME_RANGE[1]))
        ).to_numpy()
        flag(outside, c, _range_message, df[c].to_numpy(dtype=object))

    # NUL bytes (PostgreSQL text cannot hold them)
    for c in df.columns:
        if c == _MALFORMED:
            continue
        has_nul = _has_nul(df[c])
        if has_nul.any():
            flag(has_nul, c, lambda v: "contains a NUL byte (\\x00)", df[c].to_numpy(dtype=object))

    # records that did not split into the header's columns: that is their only error
    if _MALFORMED in df:
        why = df[_MALFORMED].to_numpy(dtype=object)
        malformed = pd.notna(why)
        if malformed.any():
            rows_bad = set(rows[malformed].tolist())
            errors[:] = [e for e in errors if e.row not in rows_bad]
            flag(malformed, "columns", lambda v: str(v), why)

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
        sid = df[sid_col].astype(object).where(df[sid_col].notna(), None).to_numpy(copy=True)
        no_sid = np.array([s is None for s in sid])
    else:
        sid = np.full(n, None, dtype=object)
        no_sid = np.ones(n, dtype=bool)
    if no_sid.any():
        # content hash: the same row imported twice gets the same id
        def text_of(values: Any) -> pd.Series:  # missing values hash as "" (never NaN)
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
        df[kind_col].fillna(RESIDENT).astype(str).to_numpy(dtype=object)
        if kind_col
        else np.full(n, RESIDENT, dtype=object)
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


def _parse_each(s: pd.Series, tz: str) -> pd.Series:
    """:func:`parse_times` value by value (for columns mixing offsets or naive values)."""
    parsed = [_parse_time(v, tz) for v in s]
    return pd.Series(pd.to_datetime(parsed, utc=True), index=s.index)


def _parse_time(value: Any, tz: str) -> Any:
    """One value of :func:`parse_times` (NaT when it is not a timestamp)."""
    try:
        t = pd.Timestamp(value)
    except (TypeError, ValueError):
        return pd.NaT
    if pd.isna(t):
        return pd.NaT
    if t.tzinfo is None:
        try:
            local = t.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        except (TypeError, ValueError):
            return pd.NaT
        return local if pd.isna(local) else local.tz_convert("UTC")
    return t.tz_convert("UTC")


def _has_nul(values: pd.Series) -> np.ndarray:
    """True where a value is a string holding a NUL byte."""
    if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        return np.zeros(len(values), dtype=bool)
    try:
        return values.str.contains("\x00", regex=False, na=False).to_numpy(dtype=bool)
    except AttributeError:  # an object column mixing strings and other values
        return np.fromiter(
            (isinstance(v, str) and "\x00" in v for v in values), dtype=bool, count=len(values)
        )


def _range_message(v: Any) -> str:
    return f"{v!r} is outside the supported dates (1970-01-01 to 2199-12-31)"


def _outside_message(lo: float, hi: float) -> Callable[[Any], str]:
    def message(v: Any) -> str:
        return f"{v} is outside [{lo}, {hi}]"

    return message


def parse_times(s: pd.Series, tz: str) -> pd.Series:
    """Parse ISO 8601 strings (or datetimes) to UTC; naive values are local time in ``tz``.

    Values that are not timestamps, and naive times that do not exist or are ambiguous in
    ``tz`` (daylight-saving changes), become NaT.

    >>> [str(t) for t in parse_times(pd.Series(["2026-05-01T08:00:00", "2026-05-01T08:00:00Z",
    ...                                           "x"]), "Asia/Shanghai")]
    ['2026-05-01 00:00:00+00:00', '2026-05-01 08:00:00+00:00', 'NaT']
    """
    if pd.api.types.is_datetime64_any_dtype(s):
        t = s
    else:
        try:
            t = pd.to_datetime(s, errors="coerce", utc=False, format="ISO8601")
        except ValueError:  # mixed offsets, or naive and aware values together
            return _parse_each(s, tz)
        if t.dtype == object:  # mixed offsets (older pandas)
            return _parse_each(s, tz)
    if getattr(t.dt, "tz", None) is None:
        t = t.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    return t.dt.tz_convert("UTC")


def prepare_rows(
    batch: pd.DataFrame,
    codes: pd.DataFrame,
    cats: pd.DataFrame,
    workers: dict[tuple[str, str], int],
    version_id: int | None,
) -> pd.DataFrame:
    """Build the rows to load (:data:`INCIDENT_COPY_COLUMNS`).

    Parameters
    ----------
    batch : checked rows (:func:`check_batch`'s frame, good rows only), WGS84 lon/lat
    codes : their attribution (``grid_code`` … ``district_code``, None outside), aligned
        with ``batch``
    cats : the category catalogue indexed by code (``limit_hours``, ``escalate_level``)
    workers : (level, unit code) → id of the account responsible there
    version_id : the boundary version the codes belong to

    Returns
    -------
    The rows: due date from the category's limit, the responsible unit (the category's
    level, as :func:`geogrid.core.lifecycle.route` does for one incident: the nearest level
    above that the point has, else below), that unit's account as assignee,
    ``updated_at`` the latest lifecycle time, ``geom`` as EWKB hex (SRID 4326).
    """
    n = len(batch)
    limit_h = batch["category"].map(cats["limit_hours"]).astype(float).to_numpy()
    due = batch["reported_at"] + pd.to_timedelta(limit_h, unit="h")
    level = (
        batch["category"].map(cats["escalate_level"]).fillna(LEVELS_UP[0]).to_numpy(dtype=object)
    )
    codes = codes.reset_index(drop=True)
    assigned_unit = np.full(n, None, dtype=object)
    assigned_level = np.full(n, None, dtype=object)
    unassigned = np.ones(n, dtype=bool)
    order = list(LEVELS_UP)
    values = {lv: codes[LEVEL_COLUMN[lv]].to_numpy(dtype=object) for lv in order}
    present = {lv: pd.notna(v) for lv, v in values.items()}
    for lv in order:
        wanted = level == lv
        r = order.index(lv)
        for cand in order[r:] + order[:r][::-1]:
            take = wanted & unassigned & present[cand]
            assigned_unit[take] = values[cand][take]
            assigned_level[take] = cand
            unassigned &= ~take
    level = assigned_level
    assignee = np.full(n, None, dtype=object)
    if workers:
        keys = pd.MultiIndex.from_tuples(list(workers), names=["level", "unit"])
        pos = keys.get_indexer(pd.MultiIndex.from_arrays([level, assigned_unit]))
        ids = np.array(list(workers.values()), dtype=object)
        assignee[pos >= 0] = ids[pos[pos >= 0]]
    reporter_id = (
        batch["reporter_id"].to_numpy(dtype=object)
        if "reporter_id" in batch
        else np.full(n, None, dtype=object)
    )
    # the latest lifecycle time (NaT is the smallest int64, so it never wins)
    times = np.stack(
        [
            batch[c].to_numpy(dtype="datetime64[us]").view("int64")
            for c in ("reported_at", *LIFECYCLE_TIMES)
        ]
    )
    last = pd.Series(pd.to_datetime(times.max(axis=0).view("datetime64[us]"), utc=True))
    frame = pd.DataFrame(
        {
            "source_id": batch["source_id"].to_numpy(),
            "category": batch["category"].to_numpy(),
            "description": batch["description"].to_numpy(),
            "src_crs": batch["src_crs"].to_numpy(),
            "src_lon": batch["src_lon"].to_numpy(),
            "src_lat": batch["src_lat"].to_numpy(),
            "reported_at": batch["reported_at"].reset_index(drop=True),
            "reporter_kind": batch["reporter_kind"].to_numpy(),
            "reporter_id": pd.array(reporter_id, dtype="Int64"),
            "status": batch["status"].to_numpy(),
            "updated_at": last.reset_index(drop=True),
            **{c: batch[c].reset_index(drop=True) for c in LIFECYCLE_TIMES},
            "due_at": due.reset_index(drop=True),
            "assigned_level": level,
            "assigned_unit": assigned_unit,
            "assignee_id": pd.array(assignee, dtype="Int64"),
            "version_id": version_id,
            **{LEVEL_COLUMN[lv]: values[lv] for lv in order},
            "geom": points_ewkb_hex(batch["lon"].to_numpy(), batch["lat"].to_numpy()),
        }
    )
    return frame


def rejected_rows(
    raw: pd.DataFrame, batch: pd.DataFrame, good: pd.Series, errors: Sequence[RowError]
) -> pd.DataFrame:
    """The bad rows of a batch as read, with the ``file``, their ``row`` number, the bad
    ``field`` names and the ``error`` reasons (``field: reason; …``) first.

    ``raw`` is the batch as read, ``batch``/``good``/``errors`` what :func:`check_batch`
    returned for it (or any mask and errors of the same rows).
    """
    bad = ~good.to_numpy()
    rej = raw.loc[bad].drop(columns=[_MALFORMED], errors="ignore").copy()
    rows = batch.loc[bad, "_row"].to_numpy()
    by_row: dict[int, list[RowError]] = {}
    for e in errors:
        if e.row is not None:
            by_row.setdefault(e.row, []).append(e)
    files = {e.file for e in errors}
    rej.insert(0, "file", next(iter(files)) if len(files) == 1 else None)
    rej.insert(1, "row", rows)
    rej.insert(2, "field", ["; ".join(str(e.field) for e in by_row.get(int(r), [])) for r in rows])
    rej["error"] = [
        "; ".join(f"{e.field}: {e.message}" for e in by_row.get(int(r), [])) for r in rows
    ]
    return rej


class NearIndex:
    """Which points are too far from the city to be one of its reports.

    A report outside every unit is kept when it is within ``distance_m`` metres of one
    (GPS error, a river bank, a new estate); farther away it is a mistake (swapped
    lon/lat, a wrong CRS, 0/0) and refused, as the API does.

    Parameters
    ----------
    units : the city's units (polygons, EPSG:4326), e.g. its grids
    distance_m : the distance in metres
    metric_crs : a projected CRS in metres over the city (``settings.city.metric_crs``);
        None: the CGCS2000 Gauss-Kruger zone of the units (:func:`geogrid.core.crs.metric_crs_of`)

    >>> import shapely
    >>> idx = NearIndex(gpd.GeoSeries([shapely.box(109.7, 38.2, 109.8, 38.3)], crs=4326),
    ...                 20_000, "EPSG:4546")
    >>> idx.far(np.array([109.75, 109.95, 0.0]), np.array([38.25, 38.25, 0.0])).tolist()
    [False, False, True]
    """

    def __init__(
        self, units: gpd.GeoSeries, distance_m: float, metric_crs: str | pyproj.CRS | None
    ) -> None:
        self._units = units
        self._distance_m = distance_m
        self._crs = metric_crs if metric_crs is not None else gcrs.metric_crs_of(units)
        self._tree: shapely.STRtree | None = None

    def far(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """True for the WGS84 points (degrees) farther than ``distance_m`` from every unit."""
        if len(lon) == 0:
            return np.zeros(0, dtype=bool)
        if self._tree is None:  # projected once, when first needed
            projected = self._units.to_crs(self._crs).to_numpy()
            self._tree = shapely.STRtree(projected)
        pts = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4326").to_crs(self._crs)
        xy = shapely.get_coordinates(pts.to_numpy())
        finite = np.isfinite(xy).all(axis=1) & (np.abs(xy) < 1e9).all(axis=1)
        near = np.zeros(len(lon), dtype=bool)
        if finite.any():
            idx = np.flatnonzero(finite)
            hits = self._tree.query(
                pts.to_numpy()[idx], predicate="dwithin", distance=self._distance_m
            )
            near[idx[np.unique(hits[0])]] = True
        return ~near
