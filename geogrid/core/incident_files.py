"""Incident files and rows, pure: read a file in batches, check every row, build the rows
to load.

Files: CSV (lon/lat or x/y columns, names configurable; ``.gz`` too), GeoJSON and
GeoParquet (point geometry). :func:`read_batches` streams a file as Arrow tables of raw
values; :func:`check_batch` checks and normalises one batch with ``pyarrow.compute``
(every bad row is reported with file, row number and field; only the rows that fail are
turned into Python values, to word their messages), converting coordinates to WGS84
(EPSG:4326) with :mod:`geogrid.core.crs`; :func:`prepare_table` routes the checked rows
(due time, responsible unit and account, from a :class:`Routing` built once per import)
into the columns of the ``incident`` table as an Arrow table ready for binary ``COPY``
(:func:`prepare_rows` does the same for a pandas frame). No database: the import
workflow is :func:`geogrid.services.ingest.import_incidents`.

Naive timestamps are read in the time zone ``tz`` the caller passes (the city's,
``settings.city.timezone``) and returned in UTC.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
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
    "INCIDENT_COPY_SCHEMA",
    "read_batches",
    "check_batch",
    "NearIndex",
    "Routing",
    "parse_times",
    "prepare_rows",
    "prepare_table",
    "ewkb_points",
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
#: timestamps as Arrow holds them for COPY (PostgreSQL's timestamptz is microseconds)
_TS = pa.timestamp("us", tz="UTC")
#: the Arrow type of each COPY column (binary COPY encodes by Arrow type: int32 for
#: ``integer``, ``geom`` as EWKB, which PostGIS's binary input reads)
INCIDENT_COPY_SCHEMA = pa.schema(
    [
        (
            c,
            _TS
            if c in ("reported_at", "updated_at", "due_at", *LIFECYCLE_TIMES)
            else pa.int32()
            if c in ("reporter_id", "assignee_id", "version_id")
            else pa.float64()
            if c in ("src_lon", "src_lat")
            else pa.binary()
            if c == "geom"
            else pa.string(),
        )
        for c in INCIDENT_COPY_COLUMNS
    ]
)
_STATUSES = frozenset(STATUSES)
_LON_NAMES = ("lon", "lng", "longitude", "long", "x")
_LAT_NAMES = ("lat", "latitude", "y")
_TIME_NAMES = ("reported_at", "requested_datetime", "datetime", "time", "timestamp")
_CATEGORY_NAMES = ("category", "service_code", "type")
#: a column of the raw batches: why a CSV record could not be split into the header's
#: columns (null for good records)
_MALFORMED = "_malformed"
#: a decimal number as pandas' ``to_numeric`` reads one (after trimming blanks)
_NUMBER_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|infinity|nan)$"
#: an ISO 8601 timestamp with a zone (``Z``, ``+08``, ``+0800``, ``+08:00``) at its end
_OFFSET_RE = r"(Z|z|[+-]\d\d(:?\d\d)?)$"
#: an ISO 8601 date or date-time Arrow's cast may read (others go to pandas one by one)
_ISO_RE = r"^\d{4}-\d\d-\d\d([T ]\d\d(:\d\d(:\d\d([.,]\d{1,9})?)?)?)?(Z|[+-]\d\d(:?\d\d)?)?$"
_ISO_PY = re.compile(
    r"^\d{4}-\d\d-\d\d([T ]\d\d(:\d\d(:\d\d([.,](?P<frac>\d{1,9}))?)?)?)?"
    r"(?P<zone>Z|[+-]\d\d(:?\d\d)?)?$"
)
_US = 1_000_000
_TIME_LO = int(TIME_RANGE[0].timestamp()) * _US
_TIME_HI = int(TIME_RANGE[1].timestamp()) * _US


def read_batches(
    path: str | Path,
    *,
    batch_size: int = 200_000,
    lon_field: str | None = None,
    lat_field: str | None = None,
) -> Iterator[tuple[int, pa.Table]]:
    """Stream an incident file as Arrow tables of raw values.

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
    ``(first_row_number, table)`` with ``lon``/``lat`` columns as read (strings or
    numbers, not yet checked); CSV columns are all strings (empty → null). Row numbers
    are 1-based data rows (CSV header excluded).

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
            first += chunk.num_rows
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
        table = _arrow_of(df)
        for start in range(0, len(df), batch_size):
            yield start + 1, table.slice(start, batch_size)
        return
    raise InvalidInput("path", str(path), "a .csv, .geojson, .json or .parquet file")


def _arrow_of(df: pd.DataFrame) -> pa.Table:
    """A frame as an Arrow table; a column Arrow cannot type (mixed values) becomes strings
    (``repr`` of a float reads back as the same float)."""
    arrays = []
    for c in df.columns:
        s = df[c]
        try:
            arr = pa.array(s, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            arr = pa.array([None if _missing(v) else str(v) for v in s], pa.string())
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, names=[str(c) for c in df.columns])


def _missing(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _open_text(path: Path) -> IO[str]:
    """A UTF-8 text file (a BOM is skipped), gzip-compressed when it ends with ``.gz``."""
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _csv_chunks(path: Path, batch_size: int) -> Iterator[pa.Table]:
    """CSV as tables of ``batch_size`` rows, every column a string (empty → null),
    streamed with pyarrow's reader.

    A record with more or fewer values than the header is kept in its place as a row of
    nulls whose ``_malformed`` column says why, so that row numbers stay those of the
    file and the row is rejected like any other bad row.
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

    def with_malformed(table: pa.Table, good_before: int, last: bool) -> pa.Table:
        """Number the good rows of a block and put the malformed records among them."""
        nonlocal emitted
        n = table.num_rows
        table = table.append_column(_MALFORMED, pa.nulls(n, pa.string()))
        if not malformed:
            emitted = max(emitted, good_before + n)
            return table
        shifted = np.array([r for r, _ in malformed], dtype=np.int64) - np.arange(len(malformed))
        # the g-th good row (1-based) is data row g + (malformed records before it)
        g = np.arange(good_before + 1, good_before + n + 1)
        rows = g + np.searchsorted(shifted, g, side="right")
        until = np.inf if last or not len(rows) else rows[-1]
        take = [(r, why) for r, why in malformed if emitted < r < until]
        emitted = int(max([emitted, *rows[-1:], *(r for r, _ in take)]))
        if not take:
            return table
        extra = pa.Table.from_arrays(
            [pa.nulls(len(take), f.type) for f in table.schema][:-1]
            + [pa.array([why for _, why in take], pa.string())],
            schema=table.schema,
        )
        order = np.concatenate([rows, np.array([r for r, _ in take], dtype=np.int64)])
        both = pa.concat_tables([table, extra])
        return both.take(pa.array(np.argsort(order, kind="stable")))

    def cut(pending: list[pa.Table], final: bool) -> Iterator[pa.Table]:
        whole = pa.concat_tables(pending) if len(pending) > 1 else pending[0]
        pending.clear()
        start = 0
        while whole.num_rows - start >= batch_size or (final and start < whole.num_rows):
            yield whole.slice(start, batch_size)
            start += batch_size
        if start < whole.num_rows:
            pending.append(whole.slice(start))

    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=1 << 24, use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=convert,
        )
        pending: list[pa.Table] = []
        size = 0
        good = 0
        for rb in reader:
            block = with_malformed(pa.Table.from_batches([rb]), good, last=False)
            good += rb.num_rows
            pending.append(block)
            size += block.num_rows
            if size >= batch_size:
                yield from cut(pending, final=False)
                size = sum(t.num_rows for t in pending)
        schema = pa.schema([(c, pa.string()) for c in header])
        tail = with_malformed(schema.empty_table(), good, True)
        if tail.num_rows:
            pending.append(tail)
        if any(t.num_rows for t in pending):
            yield from cut([t.cast(pending[0].schema) for t in pending], final=True)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise FileInputError(str(path), f"cannot be read as CSV: {exc}") from exc


def _pick_xy(table: pa.Table, file: str, lon_field: str | None, lat_field: str | None) -> pa.Table:
    names = table.column_names
    lon = lon_field or _col(names, _LON_NAMES)
    lat = lat_field or _col(names, _LAT_NAMES)
    missing = [
        (w, f) for w, f in (("longitude", lon), ("latitude", lat)) if f is None or f not in names
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
    rename = {lon: "lon", lat: "lat"}
    return table.rename_columns([rename.get(c, c) for c in names])


def _col(names: Sequence[str], candidates: tuple[str, ...]) -> str | None:
    cols = {str(c).lower(): str(c) for c in names}
    return next((cols[n] for n in candidates if n in cols), None)


class _Flags:
    """The errors of a batch, found by masks; values are read (as Python objects) only for
    the flagged rows."""

    def __init__(self, file: str, rows: np.ndarray) -> None:
        self.file, self.rows = file, rows
        self.errors: list[RowError] = []
        self.bad = np.zeros(len(rows), dtype=bool)

    def flag(self, mask: np.ndarray, fld: str, msg: Callable[[Any], str], values: pa.Array) -> None:
        idx = np.flatnonzero(mask)
        if not len(idx):
            return
        picked = values.take(pa.array(idx)).to_pylist()
        for i, v in zip(idx, picked, strict=True):
            self.errors.append(RowError(self.file, int(self.rows[i]), fld, msg(v), v))
        self.bad[idx] = True


def _array(table: pa.Table, name: str) -> pa.Array:
    col = table.column(name)
    return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)


def _mask(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow array as a NumPy mask (null → False)."""
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _as_strings(arr: pa.Array) -> pa.Array:
    if pa.types.is_string(arr.type):
        return arr
    if pa.types.is_large_string(arr.type) or pa.types.is_dictionary(arr.type):
        return arr.cast(pa.string())
    try:
        return arr.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([None if v is None else str(v) for v in arr.to_pylist()], pa.string())


def _numbers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(values as float64 with NaN where missing or not a number, missing mask) — as
    pandas' ``to_numeric(errors="coerce")`` reads the values."""
    n = len(arr)
    if pa.types.is_null(arr.type):
        return np.full(n, np.nan), np.ones(n, dtype=bool)
    if (
        pa.types.is_integer(arr.type)
        or pa.types.is_floating(arr.type)
        or pa.types.is_decimal(arr.type)
    ):
        num = np.asarray(arr.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
        return num, np.isnan(num)  # NaN is missing, as pandas says
    s = _as_strings(arr)
    missing = _mask(s.is_null())
    try:
        num_arr = s.cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # blanks, or not numbers
        s = pc.utf8_trim_whitespace(s)
        ok = pc.match_substring_regex(s, _NUMBER_RE, ignore_case=True)
        num_arr = pc.if_else(ok, s, pa.scalar(None, pa.string())).cast(pa.float64())
    num = np.asarray(num_arr.to_numpy(zero_copy_only=False), dtype=float)
    return num, missing


def _localize(us: np.ndarray, tz: str) -> np.ndarray:
    """Naive local times (int64 microseconds, NaT as int64 min) in ``tz`` → UTC
    microseconds; times that do not exist or are ambiguous (daylight saving) → NaT."""
    idx = pd.DatetimeIndex(us.view("datetime64[us]"))
    local = idx.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    return np.asarray(local.as_unit("us").asi8, dtype=np.int64)


_NAT = np.iinfo(np.int64).min


def _guess(s: pa.Array) -> tuple[bool, str] | None:
    """(has a zone, unit) of the first value of ``s`` that looks like an ISO timestamp:
    the cast to try first (a cast that fails costs ~20x one that succeeds)."""
    valid = s.drop_null()
    first = valid[0].as_py() if len(valid) else None
    m = None if first is None else _ISO_PY.match(first)
    if m is None:
        return None
    return m.group("zone") is not None, "ns" if len(m.group("frac") or "") > 6 else "us"


def _cast_times(s: pa.Array, aware: bool, unit: str = "us") -> np.ndarray:
    """Arrow's ISO 8601 cast of strings to UTC (``aware``: each has a zone) or naive
    microseconds; values it does not read are NaT. Halves a failing array until the
    values that fail are found (few: the caller sends only ISO-looking strings)."""
    out = np.full(len(s), _NAT, dtype=np.int64)
    if not len(s):
        return out
    # pandas writes nanoseconds; ns cannot hold years past 2262
    for u in (unit, "ns" if unit == "us" else "us"):
        try:
            t = s.cast(pa.timestamp(u, "UTC" if aware else None))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        vals = t.cast(pa.timestamp("us", t.type.tz), safe=False).cast(pa.int64())
        out[:] = np.asarray(pc.fill_null(vals, _NAT).to_numpy(zero_copy_only=False))
        return out
    if len(s) == 1:
        return out
    half = len(s) // 2
    out[:half] = _cast_times(s.slice(0, half), aware, unit)
    out[half:] = _cast_times(s.slice(half), aware, unit)
    return out


def _times(arr: pa.Array, tz: str) -> np.ndarray:
    """Timestamps (ISO 8601 strings, or Arrow timestamps/dates) as UTC microseconds, NaT
    (int64 min) where missing or not a timestamp. Naive values are local time in ``tz``;
    ``+08:00``/``Z`` and naive values may be mixed. Vectorised: Arrow's cast reads the
    column (in one cast when its values are alike, as the first one), and only values it
    does not read are parsed by pandas, one by one."""
    n = len(arr)
    if pa.types.is_timestamp(arr.type):
        vals = arr.cast(pa.timestamp("us", arr.type.tz), safe=False).cast(pa.int64())
        us = np.asarray(pc.fill_null(vals, _NAT).to_numpy(zero_copy_only=False), dtype=np.int64)
        return us if arr.type.tz is not None else _localize(us, tz)
    if pa.types.is_date(arr.type):
        return _times(arr.cast(pa.timestamp("us")), tz)
    if pa.types.is_null(arr.type):
        return np.full(n, _NAT, dtype=np.int64)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return _us_of(parse_times(pd.Series(arr.to_pylist(), dtype=object), tz))
    s = arr.cast(pa.string())
    guess = _guess(s)
    if guess is not None:  # the common case: every value like the first one
        aware, unit = guess
        try:
            t = s.cast(pa.timestamp(unit, "UTC" if aware else None))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        else:
            t = t.cast(pa.timestamp("us", t.type.tz), safe=False).cast(pa.int64())
            us = np.asarray(pc.fill_null(t, _NAT).to_numpy(zero_copy_only=False), np.int64)
            return us if aware else _localize(us, tz)
    out = np.full(n, _NAT, dtype=np.int64)
    given = ~_mask(s.is_null())
    iso = _mask(pc.match_substring_regex(s, _ISO_RE))
    zoned = _mask(pc.match_substring_regex(s, _OFFSET_RE))
    read = np.zeros(n, dtype=bool)
    for aware in (True, False):
        idx = np.flatnonzero(iso & (zoned if aware else ~zoned))
        if len(idx):
            part = s.take(pa.array(idx))
            unit = (_guess(part) or (aware, "us"))[1]
            us = _cast_times(part, aware, unit)
            read[idx] = us != _NAT
            out[idx] = us if aware else _localize(us, tz)
    rest = np.flatnonzero(given & ~read)
    if len(rest):  # what Arrow did not read: pandas, as before (few values)
        values = pc.utf8_trim_whitespace(s.take(pa.array(rest))).to_pylist()
        out[rest] = _us_of(parse_times(pd.Series(values, dtype=object), tz))
    return out


def _us_of(parsed: pd.Series) -> np.ndarray:
    """UTC times of :func:`parse_times` as int64 microseconds (NaT = int64 min)."""
    return np.asarray(pd.DatetimeIndex(parsed).as_unit("us").asi8, dtype=np.int64)


def _ts_array(us: np.ndarray) -> pa.Array:
    """UTC microseconds (NaT = int64 min) as an Arrow ``timestamp[us, UTC]`` array."""
    return pa.array(us, type=pa.int64(), mask=us == _NAT).cast(_TS)


def _const_strings(value: str, n: int) -> pa.Array:
    """``n`` copies of one string, laid out directly (no Python object per row)."""
    b = value.encode("utf-8")
    offsets = np.arange(0, len(b) * (n + 1), len(b) or 1, dtype=np.int32)[: n + 1]
    if not b:
        offsets = np.zeros(n + 1, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(b * n)])


def _has_nul(arr: pa.Array) -> np.ndarray | None:
    """True where a string value holds a NUL byte; None when none does (the common case,
    seen in the data buffer at memchr speed)."""
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return None
    data = arr.buffers()[2]
    if data is None or np.frombuffer(data, dtype=np.uint8).all():
        return None
    return _mask(pc.match_substring(arr, "\x00"))


def check_batch(
    raw: pa.Table | pd.DataFrame,
    *,
    file: str,
    first_row: int,
    crs: str,
    categories: set[str],
    tz: str,
) -> tuple[pa.Table, np.ndarray, list[RowError]]:
    """Check and normalise a batch of :func:`read_batches`, vectorised with
    ``pyarrow.compute`` (Python values are made only for the rows that fail, to word their
    messages).

    Parameters
    ----------
    raw : the raw batch (``lon``/``lat`` and the other columns as read; a pandas frame is
        converted)
    file : the file's name, for the errors
    first_row : row number of the batch's first row (1-based)
    crs : the coordinates' system (a name :func:`geogrid.core.crs.normalize_crs` returned)
    categories : the known category codes
    tz : IANA time zone of naive timestamps (e.g. the city's ``Asia/Shanghai``)

    Returns
    -------
    table : the normalised rows (source_id, category, description, lon, lat in WGS84,
        src_crs, src_lon, src_lat, reported_at UTC, reporter_kind, status, lifecycle times
        UTC, ``_row`` the row number); a missing ``source_id`` is a hash of the row's
        content, so the same row imported twice gets the same id
    good : boolean array, True for the rows without errors
    errors : one :class:`~geogrid.errors.RowError` per bad field
    """
    table = (_arrow_of(raw) if isinstance(raw, pd.DataFrame) else raw).combine_chunks()
    names = table.column_names
    n = table.num_rows
    rows = np.arange(first_row, first_row + n)
    flags = _Flags(file, rows)
    flag = flags.flag

    # coordinates
    coords: dict[str, np.ndarray] = {}
    for fld, lo, hi in (("lon", -180.0, 180.0), ("lat", -90.0, 90.0)):
        raw_xy = _array(table, fld) if fld in names else pa.nulls(n, pa.string())
        num, missing = _numbers(raw_xy)
        flag(missing, fld, lambda v: "coordinate is missing", raw_xy)
        nan = np.isnan(num)
        flag(~missing & nan, fld, lambda v: f"{v!r} is not a number", raw_xy)
        with np.errstate(invalid="ignore"):
            out_range = ~nan & ((num < lo) | (num > hi))
        flag(out_range, fld, _outside_message(lo, hi), raw_xy)
        coords[fld] = num
    src_lon, src_lat = coords["lon"], coords["lat"]

    # category
    cat_col = _col(names, _CATEGORY_NAMES)
    if cat_col is None:
        cats = pa.nulls(n, pa.string())
        flags.errors.append(RowError(file, None, "category", "no category column"))
        flags.bad[:] = True
    else:
        cats = _as_strings(_array(table, cat_col))
        known = pa.array(sorted(categories), pa.string())
        unknown = ~_mask(pc.is_in(cats, value_set=known))
        allowed = ", ".join(sorted(categories))
        flag(unknown, cat_col, lambda v: f"unknown category {v!r} (known: {allowed})", cats)

    # reported_at
    t_col = _col(names, _TIME_NAMES)
    if t_col is None:
        flags.errors.append(RowError(file, None, "reported_at", "no reported_at column"))
        flags.bad[:] = True
        reported = np.full(n, _NAT, dtype=np.int64)
    else:
        raw_t = _array(table, t_col)
        reported = _times(raw_t, tz)
        flag(
            reported == _NAT,
            t_col,
            lambda v: (
                "timestamp is missing"
                if v is None
                else f"{v!r} is not a timestamp (ISO 8601 expected)"
            ),
            raw_t,
        )

    # status and lifecycle times (optional, for historical imports)
    if "status" in names:
        status = pc.utf8_trim_whitespace(
            pc.fill_null(_as_strings(_array(table, "status")), INITIAL_STATUS)
        )
    else:
        status = _const_strings(INITIAL_STATUS, n)
    flag(
        ~_mask(pc.is_in(status, value_set=pa.array(sorted(_STATUSES)))),
        "status",
        lambda v: f"unknown status {v!r} (known: {', '.join(sorted(_STATUSES))})",
        status,
    )
    times: dict[str, np.ndarray] = {}
    for c in LIFECYCLE_TIMES:
        if c in names:
            raw_c = _array(table, c)
            parsed = _times(raw_c, tz)
            given = ~_mask(raw_c.is_null())
            flag(given & (parsed == _NAT), c, lambda v: f"{v!r} is not a timestamp", raw_c)
            times[c] = parsed
        else:
            times[c] = np.full(n, _NAT, dtype=np.int64)

    # dates outside what geogrid accepts anywhere (the API's rule, 1970 to 2199)
    given_times = [(t_col, reported)] if t_col is not None else []
    for c, parsed in [*given_times, *((c, t) for c, t in times.items() if c in names)]:
        outside = (parsed != _NAT) & ((parsed < _TIME_LO) | (parsed >= _TIME_HI))
        flag(outside, c, _range_message, _array(table, c))

    # NUL bytes (PostgreSQL text cannot hold them)
    for c in names:
        if c == _MALFORMED:
            continue
        has_nul = _has_nul(_array(table, c))
        if has_nul is not None:
            flag(has_nul, c, lambda v: "contains a NUL byte (\\x00)", _array(table, c))

    # records that did not split into the header's columns: that is their only error
    if _MALFORMED in names:
        why = _array(table, _MALFORMED)
        malformed = ~_mask(why.is_null())
        if malformed.any():
            rows_bad = set(rows[malformed].tolist())
            flags.errors[:] = [e for e in flags.errors if e.row not in rows_bad]
            flag(malformed, "columns", lambda v: str(v), why)
    errors, bad = flags.errors, flags.bad

    # convert to WGS84 (only good coordinates; others stay NaN)
    ok_xy = ~np.isnan(src_lon) & ~np.isnan(src_lat)
    lon = np.full(n, np.nan)
    lat = np.full(n, np.nan)
    if ok_xy.all():
        lon, lat = (np.asarray(v, dtype=float) for v in gcrs.to_wgs84(src_lon, src_lat, crs))
    elif ok_xy.any():
        lon[ok_xy], lat[ok_xy] = gcrs.to_wgs84(src_lon[ok_xy], src_lat[ok_xy], crs)

    desc_col = _col(names, ("description", "desc", "text"))
    desc = _as_strings(_array(table, desc_col)) if desc_col else pa.nulls(n, pa.string())
    sid_col = _col(names, ("source_id", "id", "service_request_id"))
    sid = _as_strings(_array(table, sid_col)) if sid_col else pa.nulls(n, pa.string())
    no_sid = _mask(sid.is_null())
    if no_sid.any():
        idx = np.flatnonzero(no_sid)
        hashed = _content_ids(
            cats.take(pa.array(idx)).to_pylist(),
            src_lon[idx],
            src_lat[idx],
            reported[idx],
            desc.take(pa.array(idx)).to_pylist(),
        )
        full = np.empty(n, dtype=object)
        full[~no_sid] = None
        full[idx] = hashed
        sid = pc.if_else(pa.array(no_sid), pa.array(full, pa.string()), sid)
    kind_col = _col(names, ("reporter_kind",))
    reporter_kind = (
        pc.fill_null(_as_strings(_array(table, kind_col)), RESIDENT)
        if kind_col
        else _const_strings(RESIDENT, n)
    )

    out = pa.table(
        {
            "source_id": sid,
            "category": cats,
            "description": desc,
            "lon": lon,
            "lat": lat,
            "src_crs": _const_strings(crs, n),
            "src_lon": src_lon,
            "src_lat": src_lat,
            "reported_at": _ts_array(reported),
            "reporter_kind": reporter_kind,
            "status": status,
            **{c: _ts_array(times[c]) for c in LIFECYCLE_TIMES},
            "_row": rows,
        }
    )
    return out, ~bad, errors


def _content_ids(
    cats: list[Any], lon: np.ndarray, lat: np.ndarray, reported: np.ndarray, desc: list[Any]
) -> list[str]:
    """``sha1:`` ids from a row's content (category, source coordinates to 7 decimals,
    time, description): the same row imported twice gets the same id."""
    when = pd.Series(reported.view("datetime64[us]")).dt.tz_localize("UTC").astype(object)
    out = []
    for c, x, y, t, d in zip(cats, lon, lat, when, desc, strict=True):
        key = "|".join(
            (
                "" if c is None else str(c),
                f"{x:.7f}",
                f"{y:.7f}",
                "" if pd.isna(t) else str(t),
                "" if d is None else str(d),
            )
        )
        out.append("sha1:" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:20])
    return out


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


class Routing:
    """Who answers for a point, precomputed per grid: for each wanted level (a category's
    ``escalate_level``) and each grid of a boundary version, the responsible unit (that
    level's, else the nearest level above the grid that it has, else below, as
    :func:`geogrid.core.lifecycle.route` does for one incident) and its account. A batch
    is then routed with array lookups by (wanted level, grid position).

    Parameters
    ----------
    codes : level → unit codes aligned with the version's grids (``grid`` … ``district``,
        None where a grid has no unit at that level)
    cats : the category catalogue indexed by code (``limit_hours``, ``escalate_level``)
    workers : (level, unit code) → id of the account responsible there
    version_id : the boundary version the codes belong to
    """

    def __init__(
        self,
        codes: Mapping[str, Sequence[Any]],
        cats: pd.DataFrame,
        workers: Mapping[tuple[str, str], int],
        version_id: int | None,
    ) -> None:
        order = list(LEVELS_UP)
        g = len(codes[order[0]])
        self.grids = g
        self.version_id = version_id
        # per level: codes of grids 0..g-1 and None at position g (outside every grid)
        vals = {
            lv: np.array([*(None if _missing(v) else str(v) for v in codes[lv]), None], object)
            for lv in order
        }
        self._codes = {lv: pa.array(vals[lv], pa.string()) for lv in order}
        present = {lv: np.array([v is not None for v in vals[lv]]) for lv in order}
        unit = np.full((len(order), g + 1), None, dtype=object)
        level = np.full((len(order), g + 1), None, dtype=object)
        assignee = np.full((len(order), g + 1), None, dtype=object)
        for r in range(len(order)):
            free = np.ones(g + 1, dtype=bool)
            for cand in order[r:] + order[:r][::-1]:
                take = free & present[cand]
                unit[r, take] = vals[cand][take]
                level[r, take] = cand
                free &= ~take
            for k in np.flatnonzero(~free):
                assignee[r, k] = workers.get((str(level[r, k]), str(unit[r, k])))
        self._unit = pa.array(unit.reshape(-1), pa.string())
        self._level = pa.array(level.reshape(-1), pa.string())
        self._assignee = pa.array(assignee.reshape(-1), pa.int32())
        self._cats = pa.array([str(c) for c in cats.index], pa.string())
        self._limit_us = np.round(
            pd.to_numeric(cats["limit_hours"], errors="coerce").to_numpy(dtype=float) * 3.6e9
        )
        esc = cats["escalate_level"].where(cats["escalate_level"].notna(), LEVELS_UP[0])
        self._wanted = np.array([order.index(v) if v in order else 0 for v in esc], np.int64)

    @classmethod
    def from_attributor(
        cls, att: Any, cats: pd.DataFrame, workers: Mapping[tuple[str, str], int]
    ) -> Routing:
        """The routing of an :class:`~geogrid.core.attribution.Attributor`'s version."""
        codes: dict[str, Any] = {
            "grid": att.grids["code"].to_numpy(dtype=object),
            **{lv: att.chain[LEVEL_COLUMN[lv]].to_numpy(dtype=object) for lv in LEVELS_UP[1:]},
        }
        return cls(codes, cats, workers, att.version_id)

    def codes(self, pos: np.ndarray) -> dict[str, pa.Array]:
        """The unit codes of every level (``grid_code`` …) of points at grid positions
        ``pos`` (-1: outside every grid → null)."""
        gg = pa.array(np.where(pos >= 0, pos, self.grids))
        return {LEVEL_COLUMN[lv]: self._codes[lv].take(gg) for lv in LEVELS_UP}


def prepare_table(batch: pa.Table, pos: np.ndarray, routing: Routing) -> pa.Table:
    """Build the rows to load as an Arrow table of :data:`INCIDENT_COPY_SCHEMA` (the
    Arrow counterpart of :func:`prepare_rows`, vectorised).

    Parameters
    ----------
    batch : checked rows (:func:`check_batch`'s table, good rows only), WGS84 lon/lat
    pos : their grid positions in the routing's version (-1 outside every grid)
    routing : the version's :class:`Routing`

    Returns
    -------
    The rows: due date from the category's limit, the responsible unit and its account,
    ``updated_at`` the latest lifecycle time, ``geom`` as EWKB (SRID 4326).
    """
    batch = batch.combine_chunks()
    n = batch.num_rows
    col = batch.column
    found = pc.index_in(col("category"), value_set=routing._cats)
    cat = np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    known = cat >= 0
    wanted = np.where(known, routing._wanted[np.where(known, cat, 0)], 0)
    gg = np.where(pos >= 0, pos, routing.grids)
    key = pa.array(wanted * (routing.grids + 1) + gg)
    reported = col("reported_at")
    rep_us = np.asarray(
        pc.fill_null(reported.cast(pa.int64()), _NAT).to_numpy(zero_copy_only=False), np.int64
    )
    limit = np.where(known, routing._limit_us[np.where(known, cat, 0)], np.nan)
    no_due = np.isnan(limit) | (rep_us == _NAT)
    due = np.where(no_due, _NAT, rep_us + np.where(no_due, 0, limit).astype(np.int64))
    updated = pc.max_element_wise(
        *(col(c).cast(pa.int64()) for c in ("reported_at", *LIFECYCLE_TIMES)), skip_nulls=True
    ).cast(_TS)
    version = (
        pa.nulls(n, pa.int32())
        if routing.version_id is None
        else pa.array(np.full(n, routing.version_id, dtype=np.int32))
    )
    reporter_id = (
        col("reporter_id").cast(pa.int32())
        if "reporter_id" in batch.column_names
        else pa.nulls(n, pa.int32())
    )
    lon = np.asarray(col("lon").to_numpy(), dtype="f8")
    lat = np.asarray(col("lat").to_numpy(), dtype="f8")
    values: dict[str, Any] = {
        "source_id": col("source_id"),
        "category": col("category"),
        "description": col("description"),
        "src_crs": col("src_crs"),
        "src_lon": col("src_lon"),
        "src_lat": col("src_lat"),
        "reported_at": reported,
        "reporter_kind": col("reporter_kind"),
        "reporter_id": reporter_id,
        "status": col("status"),
        "updated_at": updated,
        **{c: col(c) for c in LIFECYCLE_TIMES},
        "due_at": _ts_array(due),
        "assigned_level": routing._level.take(key),
        "assigned_unit": routing._unit.take(key),
        "assignee_id": routing._assignee.take(key),
        "version_id": version,
        **routing.codes(pos),
        "geom": ewkb_points(lon, lat),
    }
    return pa.Table.from_arrays(
        [values[f.name] for f in INCIDENT_COPY_SCHEMA], schema=INCIDENT_COPY_SCHEMA
    )


#: EWKB of a 2D point with SRID 4326: little-endian, type 0x20000001, srid, x, y
_EWKB_POINT = np.dtype([("o", "u1"), ("t", "<u4"), ("s", "<u4"), ("x", "<f8"), ("y", "<f8")])


def ewkb_points(lon: np.ndarray, lat: np.ndarray, srid: int = 4326) -> pa.Array:
    """EWKB points as an Arrow binary array, laid out with NumPy in one pass (25 bytes a
    point; no GEOS object per point)."""
    n = len(lon)
    rec = np.empty(n, dtype=_EWKB_POINT)
    rec["o"], rec["t"], rec["s"] = 1, 0x20000001, srid
    rec["x"], rec["y"] = lon, lat
    offsets = np.arange(0, 25 * (n + 1), 25, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(rec.tobytes())]
    )


def rejected_rows(
    raw: pa.Table, batch: pa.Table, good: np.ndarray, errors: Sequence[RowError]
) -> pd.DataFrame:
    """The bad rows of a batch as read, with the ``file``, their ``row`` number, the bad
    ``field`` names and the ``error`` reasons (``field: reason; …``) first.

    ``raw`` is the batch as read, ``batch``/``good``/``errors`` what :func:`check_batch`
    returned for it (or any mask and errors of the same rows).
    """
    idx = pa.array(np.flatnonzero(~np.asarray(good, dtype=bool)))
    picked = raw.take(idx)
    if _MALFORMED in picked.column_names:
        picked = picked.drop_columns([_MALFORMED])
    rej = picked.to_pandas()
    rows = np.asarray(batch.column("_row").take(idx).to_numpy())
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
