"""Monthly range partitions: which month a time falls in, the bounds of a partition and
the pieces of a time range that no partition covers yet (pure; the SQL is in
:mod:`geogrid.store.partitions`).

Months are calendar months in the city's zone (``settings.city.timezone``), the months
metrics and the GeoParquet history use, so that a month's query reads one partition. A
partition's bounds are ``[start, end)``; when a month overlaps partitions made earlier
(e.g. under another zone), only the uncovered pieces of it are made (:func:`gaps`).

>>> from datetime import UTC
>>> month_of(datetime(2026, 1, 31, 17, tzinfo=UTC), "Asia/Shanghai")
'2026-02'
>>> partition_name("incident", "2026-02")
'incident_p2026_02'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from geogrid.core.timewindow import month_bounds
from geogrid.errors import InvalidInput

__all__ = [
    "Bounds",
    "month_of",
    "months_covering",
    "month_range",
    "partition_name",
    "gaps",
    "next_month",
    "parse_month",
]

_MONTH = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True)
class Bounds:
    """A partition's ``[start, end)``, with the month it was made for (or None)."""

    start: datetime
    end: datetime
    month: str | None = None

    def contains(self, t: datetime) -> bool:
        return self.start <= t < self.end


def parse_month(month: str, parameter: str = "month") -> str:
    """``YYYY-MM`` checked (1970-01 to 2199-12), or InvalidInput naming ``parameter``.

    >>> parse_month("2026-05")
    '2026-05'
    """
    m = _MONTH.fullmatch(str(month or ""))
    if not m or not 1 <= int(m.group(2)) <= 12 or not 1970 <= int(m.group(1)) < 2200:
        raise InvalidInput(parameter, month, "a month as YYYY-MM from 1970-01 to 2199-12")
    return str(month)


def month_of(t: datetime, tz: str) -> str:
    """The month ``YYYY-MM`` (in ``tz``) holding the aware time ``t``."""
    local = t.astimezone(ZoneInfo(tz))
    return f"{local.year:04d}-{local.month:02d}"


def next_month(month: str, n: int = 1) -> str:
    """The month ``n`` months after ``month``.

    >>> next_month("2026-12"), next_month("2026-01", -1)
    ('2027-01', '2025-12')
    """
    y, m = int(month[:4]), int(month[5:7])
    k = y * 12 + (m - 1) + n
    return f"{k // 12:04d}-{k % 12 + 1:02d}"


def months_covering(first: datetime, last: datetime, tz: str) -> list[str]:
    """Every month (in ``tz``) from the one holding ``first`` to the one holding ``last``.

    >>> from datetime import UTC
    >>> months_covering(datetime(2026, 1, 31, 17, tzinfo=UTC),
    ...                 datetime(2026, 3, 2, tzinfo=UTC), "Asia/Shanghai")
    ['2026-02', '2026-03']
    """
    a, b = month_of(first, tz), month_of(last, tz)
    out = []
    while a <= b:
        out.append(a)
        a = next_month(a)
    return out


def month_range(month: str, tz: str) -> Bounds:
    """The bounds of ``month`` in ``tz``."""
    start, end = month_bounds(month, tz)
    return Bounds(start, end, month)


def partition_name(parent: str, month: str) -> str:
    """The name of ``parent``'s partition of ``month`` (a piece of a month clipped by an
    older partition gets a suffix from :func:`gaps`)."""
    return f"{parent}_p{month[:4]}_{month[5:7]}"


def gaps(want: Bounds, existing: Iterable[Bounds]) -> list[Bounds]:
    """The pieces of ``want`` that no ``existing`` range covers (ranges are ``[a, b)``).

    >>> from datetime import UTC
    >>> d = lambda day: datetime(2026, 1, day, tzinfo=UTC)
    >>> [(g.start.day, g.end.day) for g in gaps(Bounds(d(1), d(31)), [Bounds(d(10), d(20))])]
    [(1, 10), (20, 31)]
    >>> gaps(Bounds(d(1), d(31)), [Bounds(d(1), d(31))])
    []
    """
    pieces = [want]
    for e in existing:
        out = []
        for p in pieces:
            if e.end <= p.start or e.start >= p.end:
                out.append(p)
                continue
            if p.start < e.start:
                out.append(Bounds(p.start, e.start, p.month))
            if e.end < p.end:
                out.append(Bounds(e.end, p.end, p.month))
        pieces = out
    return pieces
