"""Time windows: reading dates and times from users, and the ``[start, end)`` windows that
metrics, tiles, plans and registers are computed over.

Times are stored in UTC and read in a city's time zone: every function takes the zone
``tz`` (an IANA name, e.g. ``"Asia/Shanghai"``) as a parameter; services pass
``settings.city.timezone``. Dates and naive date-times are local time in ``tz``; aware
values keep their offset.

>>> s, e = month_bounds("2026-12", tz="Asia/Shanghai")
>>> s.isoformat(), e.isoformat()
('2026-12-01T00:00:00+08:00', '2027-01-01T00:00:00+08:00')
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from geogrid.errors import InvalidInput

__all__ = [
    "DEFAULT_DAYS",
    "MAX_WINDOW_DAYS",
    "TIME_RANGE",
    "check_window_length",
    "month_bounds",
    "parse_time",
    "resolve_window",
    "round_window",
]

#: default window length (days) when a window's start is not given
DEFAULT_DAYS = 30

#: the longest window (days) metrics, hot spots and maps are computed over: two years
MAX_WINDOW_DAYS = 732

#: The dates geogrid accepts (windows, as-of, reports): wide enough for any real record,
#: narrow enough that window arithmetic never overflows.
TIME_RANGE = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))


def parse_time(value: Any, parameter: str, tz: str) -> datetime | None:
    """A timezone-aware datetime from a user's value.

    Parameters
    ----------
    value : datetime, date, pandas.Timestamp, ISO 8601 string or None
        None and ``""`` give None.
    parameter : str
        The parameter's name, for errors.
    tz : str
        IANA time zone of dates and naive values.

    Returns
    -------
    datetime (aware) or None

    Raises
    ------
    InvalidInput
        Not a date/time, or outside :data:`TIME_RANGE`.

    >>> parse_time("2026-05-01", "from", "Asia/Shanghai").isoformat()
    '2026-05-01T00:00:00+08:00'
    >>> parse_time("2026-05-01T08:00:00Z", "from", "Asia/Shanghai").isoformat()
    '2026-05-01T08:00:00+00:00'
    """
    if value is None or (isinstance(value, str) and value == ""):
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(
                parameter,
                value,
                "an ISO 8601 date or date-time, e.g. 2026-05-01 or 2026-05-01T08:00:00+08:00",
            ) from None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise InvalidInput(parameter, value, "a datetime or an ISO 8601 string")
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(tz))
    if not TIME_RANGE[0] <= value < TIME_RANGE[1]:
        raise InvalidInput(
            parameter,
            value.isoformat(),
            f"a date-time from {TIME_RANGE[0].date()} to before {TIME_RANGE[1].date()}",
        )
    return value


def resolve_window(
    start: Any = None,
    end: Any = None,
    now: Any = None,
    *,
    tz: str,
    days: int = DEFAULT_DAYS,
    names: tuple[str, str] = ("from", "to"),
    max_days: int | None = MAX_WINDOW_DAYS,
) -> tuple[datetime, datetime, datetime]:
    """``(start, end, now)`` of a window ``[start, end)`` as aware datetimes.

    Defaults: ``now`` = the current time; ``end`` = ``now`` (or ``start + days`` when
    ``start`` is after now); ``start`` = ``end - days``. Values are read with
    :func:`parse_time` in ``tz``; errors name ``names`` (the start and end parameters).
    The previous window of the same length must lie within :data:`TIME_RANGE` too, and the
    window may be at most ``max_days`` long (None: no limit).

    >>> s, e, _ = resolve_window("2026-05-01", "2026-06-01", tz="Asia/Shanghai")
    >>> (e - s).days, s.isoformat()
    (31, '2026-05-01T00:00:00+08:00')
    """
    now_d = parse_time(now, "now", tz) or datetime.now(UTC)
    end_d = parse_time(end, names[1], tz)
    start_d = parse_time(start, names[0], tz)
    if end_d is None:
        end_d = now_d if start_d is None or start_d < now_d else start_d + timedelta(days=days)
    if start_d is None:
        start_d = end_d - timedelta(days=days)
    if not start_d < end_d:
        raise InvalidInput(
            names[0], start_d.isoformat(), f"a time before {names[1]}={end_d.isoformat()}"
        )
    check_window_length(start_d, end_d, max_days, names[0])
    if start_d - (end_d - start_d) < TIME_RANGE[0]:  # the previous window must exist too
        raise InvalidInput(
            names[0],
            start_d.isoformat(),
            "a window whose previous window "
            f"of the same length starts after {TIME_RANGE[0].date()}",
        )
    return start_d, end_d, now_d


def check_window_length(
    start: datetime, end: datetime, max_days: int | None, parameter: str = "from"
) -> None:
    """Refuse (naming ``parameter``) a window ``[start, end)`` longer than ``max_days``.

    >>> check_window_length(datetime(2020, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), 732)
    Traceback (most recent call last):
    geogrid.errors.InvalidInput: from='2020-01-01T00:00:00+00:00' is not valid: expected a window of at most 732 days (this one: 2192)
    """
    if max_days is not None and end - start > timedelta(days=max_days):
        raise InvalidInput(
            parameter,
            start.isoformat(),
            f"a window of at most {max_days} days (this one: {(end - start).days})",
        )


def round_window(
    start: datetime | None, end: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """``start`` down and ``end`` up to whole hours, so that a window's cache key changes at
    most hourly (whole hours of UTC are whole hours of every zone with a whole-hour offset).

    >>> s, e = round_window(datetime(2026, 5, 1, 8, 13, tzinfo=UTC), datetime(2026, 5, 2, 9, 1, tzinfo=UTC))
    >>> s.isoformat(), e.isoformat()
    ('2026-05-01T08:00:00+00:00', '2026-05-02T10:00:00+00:00')
    """

    def down(t: datetime) -> datetime:
        return t.replace(minute=0, second=0, microsecond=0)

    r_start = None if start is None else down(start)
    r_end = None
    if end is not None:
        r_end = end if down(end) == end else down(end) + timedelta(hours=1)
    return r_start, r_end


def month_bounds(month: str, tz: str) -> tuple[datetime, datetime]:
    """``[start, end)`` of a calendar month ``YYYY-MM`` in time zone ``tz``.

    >>> [d.isoformat() for d in month_bounds("2026-12", "Asia/Shanghai")]
    ['2026-12-01T00:00:00+08:00', '2027-01-01T00:00:00+08:00']
    """
    m = re.fullmatch(r"(\d{4})-(\d{2})", str(month or ""))
    if not m or not 1 <= int(m.group(2)) <= 12 or not 1970 <= int(m.group(1)) < 2200:
        raise InvalidInput(
            "month", month, "a month as YYYY-MM from 1970-01 to 2199-12, e.g. 2026-05"
        )
    y, mo = int(m.group(1)), int(m.group(2))
    zone = ZoneInfo(tz)
    start = datetime(y, mo, 1, tzinfo=zone)
    end = datetime(y + (mo == 12), mo % 12 + 1, 1, tzinfo=zone)
    return start, end
