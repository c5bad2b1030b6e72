"""Reading the registry's files: Excel ``.xlsx`` (openpyxl, read-only), CSV (UTF-8,
UTF-8 with BOM or GB18030) and (Geo)Parquet, as text cells with the file's row numbers.

>>> import tempfile
>>> p = Path(tempfile.mkdtemp()) / "people.csv"
>>> _ = p.write_bytes("姓名,身份证号\\n张三,11010519491231002X\\n".encode("gb18030"))
>>> frame, rows = read_table(p)
>>> list(frame.columns), frame.iloc[0].tolist(), rows.tolist()
(['姓名', '身份证号'], ['张三', '11010519491231002X'], [2])
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["SUFFIXES", "read_table"]

#: the file types read
SUFFIXES = (".xlsx", ".csv", ".txt", ".parquet", ".geoparquet")


def _cell(v: object) -> object:
    if v is None:
        return None
    if isinstance(v, dt.datetime | dt.date):
        return v
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    s = str(v).strip()
    return s or None


def _read_xlsx(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    from openpyxl import load_workbook  # heavy optional dependency, only for .xlsx

    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        ws = wb.worksheets[0]
        header: list[str] | None = None
        rows: list[list[object]] = []
        numbers: list[int] = []
        for i, values in enumerate(ws.iter_rows(values_only=True), start=1):
            cells = [_cell(v) for v in values]
            if all(c is None for c in cells):
                continue
            if header is None:
                header = ["" if c is None else str(c) for c in cells]
                continue
            rows.append(cells[: len(header)] + [None] * (len(header) - len(cells)))
            numbers.append(i)
    finally:
        wb.close()
    if header is None:
        raise ValueError("the sheet is empty (no header row)")
    return pd.DataFrame(rows, columns=header, dtype=object), np.asarray(numbers, dtype=np.int64)


def _read_csv(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    raw = path.read_bytes()
    for enc in ("utf-8-sig", "gb18030"):
        try:
            textual = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise ValueError("not UTF-8 or GB18030 text")
    frame = pd.read_csv(
        io.StringIO(textual), dtype=str, keep_default_na=False, skip_blank_lines=False
    )
    frame = frame.astype(object).map(lambda v: None if v is None or not str(v).strip() else v)
    numbers = np.arange(2, len(frame) + 2, dtype=np.int64)
    keep = ~frame.isna().all(axis=1).to_numpy()
    return frame[keep].reset_index(drop=True), numbers[keep]


def _read_parquet(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    if b"geo" in meta:
        import geopandas as gpd

        gdf = gpd.read_parquet(path)
        pts = gdf.geometry.representative_point()
        frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
        if "lon" not in frame and "经度" not in frame:
            frame["lon"] = pts.x.to_numpy()
            frame["lat"] = pts.y.to_numpy()
    else:
        frame = pd.read_parquet(path)
    return frame.reset_index(drop=True), np.arange(2, len(frame) + 2, dtype=np.int64)


def read_table(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """A file's header-named columns and, per line, its row number in the file (a sheet's
    or CSV's line number, header = 1; a Parquet row's index + 2). Blank lines are skipped.

    Raises
    ------
    ValueError  an unknown file type, an empty sheet, undecodable text
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return _read_xlsx(path)
    if suffix in (".csv", ".txt"):
        return _read_csv(path)
    if suffix in (".parquet", ".geoparquet"):
        return _read_parquet(path)
    raise ValueError(f"unknown file type {suffix!r}: one of {', '.join(SUFFIXES)}")
