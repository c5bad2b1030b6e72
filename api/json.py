"""The one JSON encoder of the API.

Every answer of the app goes through :func:`jsonable` (via :class:`GeogridJSONResponse`,
the app's ``default_response_class``), so all routes agree on:

- aware datetimes → ISO 8601 in UTC with an explicit offset (``"2026-03-01T08:00:00+00:00"``);
  naive datetimes are taken as UTC;
- dates → ``"YYYY-MM-DD"``; times → ``"HH:MM:SS"``; timedeltas → seconds (float);
- NaN, ±infinity, ``None``, ``pandas.NaT`` and ``pandas.NA`` → ``null``;
- numpy scalars → JSON numbers/booleans, numpy arrays → (nested) lists;
- ``Decimal`` → float; tuples, sets and frozensets → lists (sets sorted when they can be);
- pydantic models → their ``model_dump()``; dataclasses → their fields;
  objects with ``__geo_interface__`` (shapely geometries) → GeoJSON mappings;
- ``UUID``, ``Path`` → text; ``Enum`` → its value; mapping keys → text.

Anything else raises ``TypeError`` (a bug to fix at its source, not a value to guess).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any
from uuid import UUID

import numpy as np
import pandas as pd
from fastapi.responses import JSONResponse
from pydantic import BaseModel

__all__ = ["jsonable", "dumps", "GeogridJSONResponse", "GeoJSONResponse"]

_SEPARATORS = (",", ":")


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON values (dict, list, str, int, float, bool, None).

    Parameters
    ----------
    obj : Any
        A value a route or service returned.

    Returns
    -------
    Any
        The same value made only of JSON types; floats are finite.

    Raises
    ------
    TypeError
        For a type the API has no rule for.

    Examples
    --------
    >>> from datetime import datetime, date, timedelta, timezone
    >>> jsonable(datetime(2026, 3, 1, 16, 0, tzinfo=timezone(timedelta(hours=8))))
    '2026-03-01T08:00:00+00:00'
    >>> jsonable(datetime(2026, 3, 1, 8, 0))  # naive: taken as UTC
    '2026-03-01T08:00:00+00:00'
    >>> jsonable(date(2026, 3, 1))
    '2026-03-01'
    >>> jsonable([float("nan"), float("inf"), -float("inf"), 1.5])
    [None, None, None, 1.5]
    >>> import numpy as np, pandas as pd
    >>> jsonable({"n": np.int64(3), "x": np.float32(0.5), "ok": np.bool_(True)})
    {'n': 3, 'x': 0.5, 'ok': True}
    >>> jsonable(np.array([[1, 2], [3, np.nan]]))
    [[1.0, 2.0], [3.0, None]]
    >>> jsonable([pd.NaT, pd.NA, pd.Timestamp("2026-03-01 16:00", tz="Asia/Shanghai")])
    [None, None, '2026-03-01T08:00:00+00:00']
    >>> jsonable(np.datetime64("2026-03-01T08:00"))
    '2026-03-01T08:00:00+00:00'
    >>> jsonable(np.array(["2026-03-01T08:00", "NaT"], dtype="datetime64[ns]"))
    ['2026-03-01T08:00:00+00:00', None]
    >>> from decimal import Decimal
    >>> jsonable((Decimal("1.25"), Decimal("NaN")))
    [1.25, None]
    >>> jsonable({3, 1, 2})
    [1, 2, 3]
    >>> jsonable({date(2026, 3, 1): 1})
    {'2026-03-01': 1}
    """
    # order matters: bool before int, NaT (a datetime subclass) before datetime
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, int) and not isinstance(obj, Enum):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if obj is pd.NaT or obj is pd.NA:
        return None
    if isinstance(obj, Mapping):
        return {_key(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        items = [jsonable(v) for v in obj]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(obj, datetime):
        return _utc_iso(obj)
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, time):
        return obj.isoformat()
    if isinstance(obj, timedelta):
        return jsonable(obj.total_seconds())
    if isinstance(obj, np.generic):
        return _numpy_scalar(obj)
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "Mm":  # tolist() would give integers for nanoseconds
            return [jsonable(v) for v in obj]
        return jsonable(obj.tolist())
    if isinstance(obj, Decimal):
        return jsonable(float(obj))
    if isinstance(obj, BaseModel):
        return jsonable(obj.model_dump())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Enum):
        return jsonable(obj.value)
    if isinstance(obj, (UUID, PurePath)):
        return str(obj)
    if isinstance(obj, (pd.Series, pd.Index)):
        return jsonable(obj.tolist())
    geo = getattr(obj, "__geo_interface__", None)
    if isinstance(geo, Mapping):
        return jsonable(geo)
    raise TypeError(f"no JSON rule for {type(obj).__module__}.{type(obj).__qualname__}")


def dumps(obj: Any) -> str:
    """``obj`` as compact JSON text (UTF-8 characters kept, never ``NaN``).

    >>> dumps({"name": "榆阳区", "area": float("nan")})
    '{"name":"榆阳区","area":null}'
    >>> dumps({"at": datetime(2026, 3, 1, 8, 0), "codes": ("450902",)})
    '{"at":"2026-03-01T08:00:00+00:00","codes":["450902"]}'
    """
    try:  # plain JSON values already (the common case): no walk in Python
        return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=_SEPARATORS)
    except (TypeError, ValueError):  # a datetime, NaN, numpy value, ...
        return json.dumps(
            jsonable(obj), ensure_ascii=False, allow_nan=False, separators=_SEPARATORS
        )


class GeogridJSONResponse(JSONResponse):
    """The app's default response: content rendered with :func:`jsonable`.

    >>> GeogridJSONResponse({"at": date(2026, 3, 1), "v": float("inf")}).body
    b'{"at":"2026-03-01","v":null}'
    """

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


def _utc_iso(value: datetime) -> str:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _numpy_scalar(value: np.generic) -> Any:
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            return None
        return _utc_iso(pd.Timestamp(value).to_pydatetime())
    if isinstance(value, np.timedelta64):
        if np.isnat(value):
            return None
        return jsonable(pd.Timedelta(value).total_seconds())
    return jsonable(value.item())


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    value = jsonable(key)
    return value if isinstance(value, str) else json.dumps(value)


class GeoJSONResponse(GeogridJSONResponse):
    """A GeoJSON answer (``application/geo+json``, RFC 7946), rendered like any other.

    Use it as a route's ``response_class`` with a GeoJSON ``response_model``.
    """

    media_type = "application/geo+json"
