"""Identity numbers of the registry: citizen ID numbers (GB 11643-1999), unified social
credit codes (GB 32100-2015), phone numbers; their checks, normal forms and masks.

Every check has a scalar form (one value → a problem message or ``None``) and a vectorised
form over NumPy/pandas arrays (what the importer and the demo generator use on millions of
rows). Messages never contain the value itself: they are stored in rejects files and may
be logged.

Citizen ID number: 6-digit area code, birth date ``YYYYMMDD``, 3-digit sequence (odd =
male), check character ``"10X98765432"[Σ dᵢ·wᵢ mod 11]`` (ISO 7064 MOD 11-2). The standard's
own example and a second published one pass; a changed check character or digit fails:

>>> id_number_problem("11010519491231002X") is None
True
>>> id_number_problem("440524188001010014") is None
True
>>> id_number_problem("11010519491231002Y")
'not a citizen ID number: 17 digits and a digit or X'
>>> id_number_problem("110105194912310021")
'the check character does not match (GB 11643)'
>>> id_number_problem("110105194913310024")
'the birth date in the ID number is not a date'
>>> parse_id_number("11010519491231002x")
IdInfo(number='11010519491231002X', area='110105', birth_date=datetime.date(1949, 12, 31), sex='F')
>>> id_check_char("11010519491231002")
'X'
>>> mask_id("11010519491231002X")
'1101**********002X'

Unified social credit code: 18 characters of ``0123456789ABCDEFGHJKLMNPQRTUWXY`` (no I, O,
S, V, Z), the last one the check character ``31 − Σ cᵢ·wᵢ mod 31`` (31 → 0). The standard's
example and a published company's code pass:

>>> uscc_problem("91350100M000100Y43") is None, uscc_problem("91440300708461136T") is None
(True, True)
>>> uscc_problem("91350100M000100Y44")
'the check character does not match (GB 32100)'
>>> uscc_problem("91350100M00010OY43")
'not a unified social credit code: 18 characters of 0-9 and A-Y without I, O, S, V, Z'

Phones: a mobile (``1[3-9]`` and 9 digits, an optional +86) or a landline (``0``, a 2–3
digit area code, 7–8 digits, separators allowed):

>>> normalise_phone("+86 138-1234-5678"), normalise_phone("0775-2345678")
('13812345678', '07752345678')
>>> phone_problem("1381234567")
'not a phone number: a mobile (11 digits from 13-19) or a landline (0, area code, 7-8 digits)'
>>> mask_phone("13812345678")
'138****5678'
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from geogrid.core.masking import mask_phone

__all__ = [
    "ID_WEIGHTS",
    "ID_CHECK_CHARS",
    "USCC_ALPHABET",
    "USCC_WEIGHTS",
    "IdInfo",
    "arrow_strings",
    "fixed_width",
    "normalise_id",
    "id_check_char",
    "id_check_chars",
    "id_number_problem",
    "id_number_problems",
    "id_numbers_ok",
    "parse_id_number",
    "id_consistency_problem",
    "uscc_check_char",
    "uscc_problem",
    "uscc_problems",
    "normalise_phone",
    "normalise_phones",
    "phone_problem",
    "mask_id",
    "mask_ids",
    "mask_phone",
    "mask_phones",
]

#: GB 11643-1999 weights of the first 17 digits (2^(18-i) mod 11)
ID_WEIGHTS: Final[tuple[int, ...]] = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
#: the check character of each weighted sum mod 11
ID_CHECK_CHARS: Final[str] = "10X98765432"
#: GB 32100-2015 code characters (value = position)
USCC_ALPHABET: Final[str] = "0123456789ABCDEFGHJKLMNPQRTUWXY"
#: GB 32100-2015 weights of the first 17 characters (3^i mod 31)
USCC_WEIGHTS: Final[tuple[int, ...]] = (
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
)  # fmt: skip

_ID_FORMAT = "not a citizen ID number: 17 digits and a digit or X"
_ID_CHECK = "the check character does not match (GB 11643)"
_ID_DATE = "the birth date in the ID number is not a date"
_ID_FUTURE = "the birth date in the ID number is in the future or before 1850"
_USCC_FORMAT = (
    "not a unified social credit code: 18 characters of 0-9 and A-Y without I, O, S, V, Z"
)
_USCC_CHECK = "the check character does not match (GB 32100)"
_PHONE_FORMAT = (
    "not a phone number: a mobile (11 digits from 13-19) or a landline (0, area code, 7-8 digits)"
)
_ID_RE = re.compile(r"^\d{17}[\dX]$")
_USCC_RE = re.compile(r"^[0-9A-HJ-NP-RTUW-Y]{18}$")
_MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE_RE = re.compile(r"^0\d{9,11}$")
_USCC_VALUE = np.full(128, -1, dtype=np.int64)
for _i, _c in enumerate(USCC_ALPHABET):
    _USCC_VALUE[ord(_c)] = _i


@dataclass(frozen=True)
class IdInfo:
    """What a valid citizen ID number says: its normal form, area code, birth date and sex
    (``'M'`` when the 17th digit is odd)."""

    number: str
    area: str
    birth_date: dt.date
    sex: str


def normalise_id(value: object) -> str:
    """An ID number's normal form: stripped, full-width characters folded, ``x`` → ``X``.

    >>> normalise_id(" １１０１０５１９４９１２３１００２x ")
    '11010519491231002X'
    """
    return unicodedata.normalize("NFKC", str(value)).strip().upper()


def _as_str_array(values: npt.ArrayLike) -> np.ndarray:
    s = pd.Series(np.asarray(values, dtype=object)).fillna("").astype(str)
    return s.str.strip().str.upper().to_numpy(dtype=object)


def arrow_strings(values: object) -> pa.Array:
    """Strings (a pandas Series — Arrow-backed or of objects —, an Arrow array, a NumPy
    array or a list) as ONE Arrow ``large_string`` array; missing values are nulls. An
    Arrow-backed Series gives its buffers without a copy.

    >>> arrow_strings(pd.Series(["ab", None])).to_pylist()
    ['ab', None]
    """
    if isinstance(values, pd.Series):
        values = values.array
    arr = (
        values
        if isinstance(values, pa.Array | pa.ChunkedArray)
        else pa.array(values, from_pandas=True)
    )
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    return arr


def fixed_width(arr: pa.Array, width: int) -> np.ndarray | None:
    """The UTF-8 bytes of an Arrow string array as an ``(n, width)`` uint8 NumPy view when
    every value is present and exactly ``width`` bytes long (no copy); ``None`` otherwise.

    >>> fixed_width(pa.array(["12", "34"], pa.large_string()), 2).tolist()
    [[49, 50], [51, 52]]
    >>> fixed_width(pa.array(["12", "3"]), 2) is None
    True
    """
    arr = arrow_strings(arr)
    n = len(arr)
    if arr.null_count:
        return None
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
    if not n:
        return np.zeros((0, width), dtype=np.uint8)
    start = int(offsets[0])
    if int(offsets[-1]) - start != n * width or not (np.diff(offsets) == width).all():
        return None
    return np.frombuffer(arr.buffers()[2], dtype=np.uint8)[start : start + n * width].reshape(
        n, width
    )


def id_check_chars(first17: npt.ArrayLike) -> np.ndarray:
    """Check characters of many 17-digit prefixes (strings), vectorised.

    >>> id_check_chars(["11010519491231002", "44052418800101001"]).tolist()
    ['X', '4']
    """
    arr = np.asarray(first17, dtype="U17")
    digits = arr.view(np.uint32).reshape(len(arr), 17).astype(np.int64) - ord("0")
    s = (digits * np.asarray(ID_WEIGHTS, dtype=np.int64)).sum(axis=1) % 11
    return np.asarray(list(ID_CHECK_CHARS))[s]


def id_check_char(first17: str) -> str:
    """The check character of a 17-digit prefix."""
    return str(id_check_chars([first17])[0])


def id_number_problems(values: npt.ArrayLike, *, today: dt.date | None = None) -> np.ndarray:
    """Per value, the problem of a citizen ID number or ``None`` (vectorised).

    >>> id_number_problems(["11010519491231002X", "123", None]).tolist()[:2]
    [None, 'not a citizen ID number: 17 digits and a digit or X']
    """
    s = _as_str_array(values)
    out = np.full(len(s), None, dtype=object)
    if not len(s):
        return out
    ser = pd.Series(s)
    fmt = ser.str.fullmatch(r"\d{17}[\dX]").fillna(False).to_numpy(dtype=bool)
    out[~fmt] = _ID_FORMAT
    idx = np.flatnonzero(fmt)
    if not len(idx):
        return out
    good = np.asarray(s[idx], dtype="U18")
    codes = good.view(np.uint32).reshape(len(good), 18)
    digits = codes[:, :17].astype(np.int64) - ord("0")
    check = np.asarray(list(ID_CHECK_CHARS))[
        (digits * np.asarray(ID_WEIGHTS, dtype=np.int64)).sum(axis=1) % 11
    ]
    last = codes[:, 17].view("U1")
    bad_check = check != last
    births = (
        pd.to_datetime(pd.Series(good).str.slice(6, 14), format="%Y%m%d", errors="coerce")
        .to_numpy()
        .astype("datetime64[D]")
    )
    bad_date = np.isnat(births)
    today64 = np.datetime64(today or dt.date.today(), "D")
    with np.errstate(invalid="ignore"):
        bad_range = ~bad_date & ((births > today64) | (births < np.datetime64("1850-01-01", "D")))
    res = np.full(len(idx), None, dtype=object)
    res[bad_range] = _ID_FUTURE
    res[bad_date] = _ID_DATE
    res[bad_check & ~bad_date] = _ID_CHECK
    out[idx] = res
    return out


def id_numbers_ok(values: npt.ArrayLike, *, today: dt.date | None = None) -> np.ndarray:
    """Whether each value is a valid ID number in normal form (18 characters, upper-case
    X), in pure NumPy (no per-value Python): format, birth date and check character. The
    bulk loaders' check; :func:`id_number_problems` says why a value fails.

    >>> id_numbers_ok(["11010519491231002X", "11010519491231002x", "110105194902300021"]).tolist()
    [True, False, False]
    """
    fixed = fixed_width(arrow_strings(values), 18) if not isinstance(values, str) else None
    if fixed is not None:  # every value 18 bytes (the usual case): its bytes, no object
        n = len(fixed)
        u = fixed.astype(np.int32)
        lens = np.full(n, 18)
    else:
        arr = np.asarray(values, dtype=object)
        n = len(arr)
        if not n:
            return np.zeros(0, dtype=bool)
        lens = np.fromiter((len(v) if isinstance(v, str) else 0 for v in arr), np.int64, n)
        u = arr.astype("U19").view(np.uint32).reshape(n, 19).astype(np.int32)
    if not n:
        return np.zeros(0, dtype=bool)
    d = u[:, :17] - ord("0")
    ok = (lens == 18) & ((d >= 0) & (d <= 9)).all(axis=1)
    last = u[:, 17]
    ok &= ((last >= ord("0")) & (last <= ord("9"))) | (last == ord("X"))
    check = np.frombuffer(ID_CHECK_CHARS.encode(), dtype=np.uint8)[
        np.clip(d, 0, 9) @ np.asarray(ID_WEIGHTS, dtype=np.int32) % 11
    ]
    ok &= check == last
    y = d[:, 6] * 1000 + d[:, 7] * 100 + d[:, 8] * 10 + d[:, 9]
    m = d[:, 10] * 10 + d[:, 11]
    day = d[:, 12] * 10 + d[:, 13]
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    mdays = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(m, 0, 12)]
    mdays = mdays + ((m == 2) & leap)
    ok &= (m >= 1) & (m <= 12) & (day >= 1) & (day <= mdays)
    t = today or dt.date.today()
    ymd = y * 10_000 + m * 100 + day
    ok &= (ymd >= 18500101) & (ymd <= t.year * 10_000 + t.month * 100 + t.day)
    return ok


def id_number_problem(value: object) -> str | None:
    """The problem of one citizen ID number, or ``None`` when it is valid."""
    out: str | None = id_number_problems(np.array([value], dtype=object))[0]
    return out


def parse_id_number(value: object) -> IdInfo:
    """A valid ID number's parts.

    Raises
    ------
    ValueError
        The value is not a valid ID number (the message says why, without the value).
    """
    number = normalise_id(value)
    problem = id_number_problem(number)
    if problem is not None:
        raise ValueError(problem)
    birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    return IdInfo(number, number[:6], birth, "M" if int(number[16]) % 2 else "F")


def id_consistency_problem(number: str, birth_date: dt.date | None, sex: str | None) -> str | None:
    """Whether a stated birth date and sex agree with a valid ID number.

    >>> id_consistency_problem("11010519491231002X", dt.date(1949, 12, 31), "F") is None
    True
    >>> id_consistency_problem("11010519491231002X", dt.date(1950, 1, 1), "M")
    'the birth date does not match the ID number; the sex does not match the ID number'
    """
    info = parse_id_number(number)
    problems = []
    if birth_date is not None and birth_date != info.birth_date:
        problems.append("the birth date does not match the ID number")
    if sex is not None and sex != info.sex:
        problems.append("the sex does not match the ID number")
    return "; ".join(problems) or None


def uscc_check_char(first17: str) -> str:
    """The check character of a code's first 17 characters."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    v = 31 - total % 31
    return USCC_ALPHABET[0 if v == 31 else v]


def uscc_problems(values: npt.ArrayLike) -> np.ndarray:
    """Per value, the problem of a unified social credit code or ``None`` (vectorised)."""
    s = _as_str_array(values)
    out = np.full(len(s), None, dtype=object)
    if not len(s):
        return out
    fmt = pd.Series(s).str.fullmatch(_USCC_RE.pattern).fillna(False).to_numpy(dtype=bool)
    out[~fmt] = _USCC_FORMAT
    idx = np.flatnonzero(fmt)
    if len(idx):
        good = np.asarray(s[idx], dtype="U18")
        vals = _USCC_VALUE[good.view(np.uint32).reshape(len(good), 18)]
        v = 31 - (vals[:, :17] * np.asarray(USCC_WEIGHTS, dtype=np.int64)).sum(axis=1) % 31
        v[v == 31] = 0
        bad = v != vals[:, 17]
        res = np.full(len(idx), None, dtype=object)
        res[bad] = _USCC_CHECK
        out[idx] = res
    return out


def uscc_problem(value: object) -> str | None:
    """The problem of one unified social credit code, or ``None``."""
    out: str | None = uscc_problems(np.array([value], dtype=object))[0]
    return out


def normalise_phones(values: npt.ArrayLike) -> np.ndarray:
    """Phones as digits only (a ``+86``/``86`` prefix of a mobile dropped), vectorised:
    ``""`` for a missing value, ``None`` for a value that is not a phone number.

    >>> normalise_phones(["138 1234 5678", None, "12"]).tolist()
    ['13812345678', '', None]
    """
    ser = pd.Series(np.asarray(values, dtype=object))
    missing = ser.isna().to_numpy() | (ser.astype(str).str.strip() == "").to_numpy()
    digits = ser.astype(str).str.replace(r"\D", "", regex=True)
    digits = digits.where(~(digits.str.len().eq(13) & digits.str.startswith("86")), digits.str[2:])
    ok = digits.str.fullmatch(r"1[3-9]\d{9}|0\d{9,11}").fillna(False).to_numpy(dtype=bool)
    out = np.full(len(ser), None, dtype=object)
    out[ok] = digits.to_numpy(dtype=object)[ok]
    out[missing] = ""
    return out


def normalise_phone(value: object) -> str | None:
    """A phone's digits, or ``None`` when it is not a phone number."""
    if value is None or str(value).strip() == "":
        return None
    v = normalise_phones(np.array([value], dtype=object))[0]
    return v or None


def phone_problem(value: object) -> str | None:
    """The problem of one phone number, or ``None``."""
    return _PHONE_FORMAT if normalise_phone(value) is None else None


def mask_id(number: str) -> str:
    """An ID number with all but its first and last four characters masked."""
    return number[:4] + "*" * max(len(number) - 8, 0) + number[-4:]


def mask_ids(numbers: npt.ArrayLike) -> np.ndarray:
    """:func:`mask_id` of many 18-character ID numbers (vectorised)."""
    s = pd.Series(np.asarray(numbers, dtype=object)).astype(str)
    return (s.str.slice(0, 4) + "**********" + s.str.slice(14, 18)).to_numpy(dtype=object)


def mask_phones(phones: npt.ArrayLike) -> np.ndarray:
    """:func:`mask_phone` of many normalised phones (digits; ``None`` stays ``None``)."""
    s = pd.Series(np.asarray(phones, dtype=object))
    out = (s.str.slice(0, 3) + "****" + s.str.slice(-4)).to_numpy(dtype=object)
    out[s.isna().to_numpy()] = None
    return out
