"""The registry's spreadsheet columns: the Chinese headers communities use, mapped to
field names (configurable with a TOML/JSON mapping file), and the check of every row.

>>> fields = resolve_columns(["姓名", "身份证号", "手机号", "户号", "备用"], "people")
>>> fields
{'姓名': 'name', '身份证号': 'id_number', '手机号': 'phone', '户号': 'household_ref'}
>>> frame = pd.DataFrame({"name": ["张三", "李四", "王五"],
...     "id_number": ["11010519491231002X", "110105194912310021", "11010519491231002X"],
...     "sex": ["女", "女", "女"], "phone": ["13812345678", "12", None]})
>>> checked = check_rows(frame, "people")
>>> checked.errors[["row", "field", "value", "message"]].to_dict("records")[0]
{'row': 3, 'field': 'id_number', 'value': '1101**********0021', 'message': 'the check character does not match (GB 11643)'}
>>> sorted(set(zip(checked.errors["row"], checked.errors["field"])))
[(3, 'id_number'), (3, 'phone'), (4, 'id_number')]
>>> checked.rows.loc[0, ["sex", "birth_date", "residence"]].tolist()
['F', datetime.date(1949, 12, 31), 'registered']
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from geogrid.core.masking import mask_name, mask_phone
from geogrid.core.registry.care import care_codes
from geogrid.core.registry.ids import (
    id_number_problems,
    mask_id,
    normalise_phones,
    uscc_problems,
)

__all__ = [
    "KINDS",
    "FIELDS",
    "REQUIRED",
    "HEADERS",
    "RESIDENCE",
    "EXPORT_ROLES",
    "CheckedRows",
    "load_mapping",
    "resolve_columns",
    "guess_kind",
    "check_rows",
    "mask_value",
]

#: what a registry file holds
KINDS: Final[tuple[str, ...]] = ("people", "households", "buildings", "orgs", "care")
#: the fields of each kind (column names after mapping)
FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "people": (
        "name", "id_number", "sex", "birth_date", "phone", "relation", "household_ref",
        "residence", "address", "building_ref", "room", "care", "lon", "lat",
    ),
    "households": ("household_ref", "address", "building_ref", "room", "lon", "lat"),
    "buildings": ("building_ref", "name", "address", "floors", "use", "lon", "lat"),
    "orgs": ("uscc", "name", "kind", "address", "building_ref", "lon", "lat"),
    "care": ("id_number", "care", "visit_every_days", "since", "note"),
}  # fmt: skip
#: the fields a file of each kind must have
REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "people": ("name", "id_number"),
    "households": ("household_ref",),
    "buildings": ("building_ref", "lon", "lat"),
    "orgs": ("uscc", "name"),
    "care": ("id_number", "care"),
}
#: the headers communities write, → field (field names themselves are accepted too)
HEADERS: Final[dict[str, str]] = {
    "姓名": "name", "名称": "name", "单位名称": "name", "楼栋名称": "name", "小区名称": "name",
    "公民身份号码": "id_number", "身份证号": "id_number", "身份证号码": "id_number",
    "身份证": "id_number", "证件号码": "id_number",
    "性别": "sex", "出生日期": "birth_date",
    "联系电话": "phone", "手机号": "phone", "手机号码": "phone", "电话": "phone",
    "联系方式": "phone",
    "与户主关系": "relation", "户号": "household_ref",
    "人口类型": "residence", "居住状态": "residence", "人员类型": "residence",
    "地址": "address", "住址": "address", "现住址": "address", "详细地址": "address",
    "楼栋": "building_ref", "楼栋编号": "building_ref", "楼栋编码": "building_ref",
    "房号": "room", "房间号": "room", "门牌号": "room",
    "关爱类型": "care", "关爱对象": "care", "关爱对象类型": "care",
    "经度": "lon", "纬度": "lat", "层数": "floors", "楼层数": "floors",
    "用途": "use", "建筑用途": "use",
    "统一社会信用代码": "uscc", "社会信用代码": "uscc", "单位类型": "kind", "类型": "kind",
    "走访周期": "visit_every_days", "走访周期(天)": "visit_every_days",
    "走访周期（天）": "visit_every_days", "开始日期": "since", "纳入日期": "since",
    "备注": "note",
}  # fmt: skip
#: roles that may export personal registry data (people), always with a reason, audited;
#: ``system`` is the CLI's own scope
EXPORT_ROLES: Final[frozenset[str]] = frozenset(
    {"system", "admin", "district_admin", "street_admin", "community_admin"}
)
#: residence statuses as written → stored value
RESIDENCE: Final[dict[str, str]] = {
    "户籍": "registered", "户籍人口": "registered", "常住": "registered",
    "registered": "registered",
    "流动": "floating", "流动人口": "floating", "外来": "floating", "floating": "floating",
    "境外": "overseas", "境外人员": "overseas", "境外人口": "overseas", "overseas": "overseas",
}  # fmt: skip
_SEX: Final[dict[str, str]] = {
    "男": "M", "女": "F", "m": "M", "f": "F", "male": "M", "female": "F",
}  # fmt: skip


def load_mapping(path: Path) -> dict[str, str]:
    """A header → field mapping file (TOML or JSON; either flat or under ``[columns]``).

    Raises
    ------
    ValueError  unreadable, or a field that is not a registry field (the message names it)
    """
    text = Path(path).read_text(encoding="utf-8-sig")
    try:
        data = json.loads(text) if Path(path).suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: not a mapping file ({exc})") from None
    cols = data.get("columns", data)
    if not isinstance(cols, dict):
        raise ValueError(f"{path}: the mapping must be a table of header = field")
    known = {f for fs in FIELDS.values() for f in fs}
    out: dict[str, str] = {}
    for header, field in cols.items():
        if field not in known:
            raise ValueError(
                f"{path}: header {header!r} maps to {field!r}, not a registry field "
                f"(one of {', '.join(sorted(known))})"
            )
        out[str(header).strip()] = str(field)
    return out


def resolve_columns(
    headers: Iterable[object], kind: str, mapping: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The file's headers that name a field of ``kind``, → that field (a mapping file's
    entries first, then :data:`HEADERS`, then the field names). Unknown headers are left
    out; a field named twice keeps its first header.

    Raises
    ------
    ValueError  ``kind`` is unknown, or a required field has no column (the message names
        the field and the headers that would do)
    """
    if kind not in FIELDS:
        raise ValueError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
    fields = FIELDS[kind]
    table = {**HEADERS, **{f: f for f in fields}, **dict(mapping or {})}
    out: dict[str, str] = {}
    for h in headers:
        key = str(h).strip() if h is not None else ""
        field = table.get(key)
        if field in fields and field not in out.values():
            out[str(h)] = field
    missing = [f for f in REQUIRED[kind] if f not in out.values()]
    if missing:
        names = {f: sorted(h for h, v in HEADERS.items() if v == f) + [f] for f in missing}
        raise ValueError(
            "missing column(s): "
            + "; ".join(f"{f} (a header such as {', '.join(names[f][:3])})" for f in missing)
        )
    return out


def guess_kind(fields: Iterable[str]) -> str:
    """The kind of a file from the fields its columns name.

    >>> guess_kind(["uscc", "name"]), guess_kind(["id_number", "care"]), guess_kind(["name", "id_number"])
    ('orgs', 'care', 'people')
    >>> guess_kind(["building_ref", "lon", "lat", "floors"]), guess_kind(["household_ref", "address"])
    ('buildings', 'households')
    """
    f = set(fields)
    if "uscc" in f:
        return "orgs"
    if "id_number" in f:
        return "people" if "name" in f else "care"
    if "household_ref" in f:
        return "households"
    return "buildings"


def mask_value(field: str, value: object) -> str:
    """A value as it may appear in a rejects file or a message: ID numbers, phones and
    names masked, other values cut to 60 characters.

    >>> mask_value("id_number", "11010519491231002X"), mask_value("phone", "13812345678")
    ('1101**********002X', '138****5678')
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    s = str(value).strip()
    if field == "id_number":
        return mask_id(s) if len(s) > 8 else "*" * len(s)
    if field == "phone":
        return mask_phone(s) or ""
    if field == "name":
        return mask_name(s) or ""
    return s[:60]


@dataclass
class CheckedRows:
    """The result of :func:`check_rows`.

    ``rows``: every row with its fields normalised (``row``: the file's row number; dates
    as ``datetime.date``, sex ``M``/``F``, phones as digits, ``care`` as a list of codes);
    ``errors``: one line per problem (``row``, ``field``, ``value`` (masked), ``message``).
    """

    rows: pd.DataFrame
    errors: pd.DataFrame

    @property
    def bad_rows(self) -> set[int]:
        return set(self.errors["row"].astype(int))


def _cell_text(v: object) -> str | None:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float):
        if np.isnan(v):
            return None
        if v.is_integer() and abs(v) < 1e15:  # a number typed into a sheet: 13812345678.0
            return str(int(v))
    s = str(v).strip()
    return s or None


def _text(frame: pd.DataFrame, field: str) -> pd.Series:
    if field not in frame:
        return pd.Series([None] * len(frame), dtype=object)
    col = frame[field]
    if col.dtype == object and not col.isna().any():
        out = col.astype(str).str.strip()
        return out.astype(object).where(out != "", None)
    return pd.Series([_cell_text(v) for v in col.tolist()], dtype=object)


def _raw_values(frame: pd.DataFrame, field: str) -> pd.Series:
    """A column's cells with missing values as None (dates and datetimes kept)."""
    if field not in frame:
        return pd.Series([None] * len(frame), dtype=object)
    return pd.Series(
        [v if isinstance(v, dt.date) else _cell_text(v) for v in frame[field].tolist()],
        dtype=object,
    )


def _dates(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Dates from text (2001-02-03, 2001/2/3, 20010203, 2001年2月3日) or datetimes;
    returns the dates (None when missing or bad) and the bad mask."""
    out: list[dt.date | None] = []
    bad = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        if isinstance(v, dt.datetime):
            out.append(v.date())
            continue
        if isinstance(v, dt.date):
            out.append(v)
            continue
        s = str(v).strip().replace("年", "-").replace("月", "-").replace("日", "")
        s = s.replace("/", "-").replace(".", "-").split(" ")[0]
        try:
            if len(s) == 8 and s.isdigit():
                out.append(dt.date(int(s[:4]), int(s[4:6]), int(s[6:])))
            else:
                y, m, d = s.split("-")
                out.append(dt.date(int(y), int(m), int(d)))
        except ValueError:
            out.append(None)
            bad[i] = True
    return pd.Series(out, index=values.index, dtype=object), bad


def check_rows(
    frame: pd.DataFrame,
    kind: str,
    *,
    first_row: int = 2,
    row_numbers: np.ndarray | None = None,
) -> CheckedRows:
    """Check and normalise the rows of one file (columns already mapped to fields).

    Every problem is reported with the row (``first_row`` is the file row of the frame's
    first line: 2 below a header), the field and a masked value. Within the file, a person
    (ID number), household, building or organisation given twice is a problem of the later
    rows ("duplicate … as row N").
    """
    n = len(frame)
    rows = pd.DataFrame(index=pd.RangeIndex(n))
    frame = frame.reset_index(drop=True)
    rownum = (
        np.arange(first_row, first_row + n)
        if row_numbers is None
        else np.asarray(row_numbers, dtype=np.int64)
    )
    rows["row"] = rownum
    errs: list[tuple[int, str, str, str]] = []

    def flag(mask: np.ndarray, field: str, message: str | np.ndarray, raw: pd.Series) -> None:
        for i in np.flatnonzero(mask):
            msg = message if isinstance(message, str) else str(message[i])
            errs.append((int(rownum[i]), field, mask_value(field, raw.iloc[i]), msg))

    for field in FIELDS[kind]:
        rows[field] = _text(frame, field) if field not in ("birth_date", "since") else None
    for field in REQUIRED[kind]:
        missing = rows[field].isna().to_numpy()
        flag(missing, field, f"{field} is required", rows[field])
    if "name" in rows:
        long = rows["name"].map(lambda v: v is not None and len(v) > 100).to_numpy(dtype=bool)
        flag(long, "name", "name longer than 100 characters", rows["name"])
    if "id_number" in rows:
        ids = rows["id_number"].map(lambda v: None if v is None else v.upper())
        rows["id_number"] = ids
        probs = id_number_problems(ids.fillna("").to_numpy(dtype=object))
        has = ids.notna().to_numpy()
        flag(has & (probs != None), "id_number", probs, ids)  # noqa: E711
        ok = has & (probs == None)  # noqa: E711
        info_birth = pd.Series([None] * n, dtype=object)
        info_sex = pd.Series([None] * n, dtype=object)
        if ok.any():
            good = ids[ok].astype(str)
            info_birth[ok] = [dt.date(int(s[6:10]), int(s[10:12]), int(s[12:14])) for s in good]
            info_sex[ok] = np.where(good.str.slice(16, 17).astype(int) % 2 == 1, "M", "F")
        if kind == "people":
            sex_raw = _text(frame, "sex")
            sex = sex_raw.map(lambda v: None if v is None else _SEX.get(v.lower(), "?"))
            flag((sex == "?").to_numpy(), "sex", "sex must be 男/女 (M/F)", sex_raw)
            flag(
                ok & sex.isin(["M", "F"]).to_numpy() & (sex != info_sex).to_numpy(),
                "sex",
                "the sex does not match the ID number (17th digit: odd = male)",
                sex_raw,
            )
            rows["sex"] = sex.where(sex.isin(["M", "F"]), info_sex)
            birth_raw = _raw_values(frame, "birth_date")
            birth, bad_birth = _dates(birth_raw)
            flag(bad_birth, "birth_date", "not a date (YYYY-MM-DD)", birth_raw)
            mismatch = ok & birth.notna().to_numpy() & (birth != info_birth).to_numpy()
            flag(mismatch, "birth_date", "the birth date does not match the ID number", birth_raw)
            rows["birth_date"] = birth.where(birth.notna(), info_birth)
        # duplicates within the file
        dup = ids.notna() & ids.duplicated(keep="first")
        if kind == "people" and dup.any():
            first = {v: int(rownum[i]) for i, v in enumerate(ids) if v is not None and not dup[i]}
            msgs = np.array([f"duplicate person: the same ID number as row {first.get(v)}"
                             for v in ids], dtype=object)  # fmt: skip
            flag(dup.to_numpy(), "id_number", msgs, ids)
    if "phone" in rows:
        digits = normalise_phones(rows["phone"].to_numpy(dtype=object))
        bad = np.array([d is None for d in digits])
        flag(
            bad,
            "phone",
            "not a phone number: a mobile (11 digits from 13-19) or a landline "
            "(0, area code, 7-8 digits)",
            rows["phone"],
        )
        rows["phone"] = [d if d else None for d in digits]
    if "residence" in rows:
        res = rows["residence"].map(lambda v: "registered" if v is None else RESIDENCE.get(v, "?"))
        flag(
            (res == "?").to_numpy(),
            "residence",
            "residence must be 户籍/流动/境外 (registered/floating/overseas)",
            rows["residence"],
        )
        rows["residence"] = res
    if "care" in rows:
        codes: list[list[str]] = []
        for i, v in enumerate(rows["care"]):
            try:
                codes.append(care_codes(v))
            except ValueError as exc:
                codes.append([])
                errs.append((int(rownum[i]), "care", mask_value("care", v), str(exc)))
        rows["care"] = codes
    for field, lo, hi in (("lon", -180.0, 180.0), ("lat", -90.0, 90.0)):
        if field in rows:
            num = pd.to_numeric(rows[field], errors="coerce")
            bad = rows[field].notna().to_numpy() & (num.isna() | (num < lo) | (num > hi)).to_numpy()
            flag(bad, field, f"{field} must be a number from {lo:g} to {hi:g}", rows[field])
            rows[field] = num
    for field in ("floors", "visit_every_days"):
        if field in rows:
            num = pd.to_numeric(rows[field], errors="coerce")
            bad = (
                rows[field].notna().to_numpy()
                & (num.isna() | (num < 0) | (num > 10_000) | (num % 1 != 0)).to_numpy()
            )
            flag(bad, field, f"{field} must be a whole number ≥ 0", rows[field])
            rows[field] = num.astype("Int64").mask(bad)
    if "since" in rows:
        raw = _raw_values(frame, "since")
        since, bad = _dates(raw)
        flag(bad, "since", "not a date (YYYY-MM-DD)", raw)
        rows["since"] = since
    if kind == "orgs":
        uscc = rows["uscc"].map(lambda v: None if v is None else v.upper())
        rows["uscc"] = uscc
        probs = uscc_problems(uscc.fillna("").to_numpy(dtype=object))
        has = uscc.notna().to_numpy()
        flag(has & (probs != None), "uscc", probs, uscc)  # noqa: E711
    for kind_, field, what in (
        ("orgs", "uscc", "organisation"),
        ("households", "household_ref", "household"),
        ("buildings", "building_ref", "building"),
    ):
        if kind == kind_:
            keys = rows[field]
            dups = (keys.notna() & keys.duplicated(keep="first")).to_numpy(dtype=bool)
            if dups.any():
                first = {v: int(rownum[i]) for i, v in enumerate(keys) if not dups[i]}
                msgs = np.array(
                    [f"duplicate {what}: the same {field} as row {first.get(v)}" for v in keys],
                    dtype=object,
                )
                flag(dups, field, msgs, keys)
    errors = pd.DataFrame(errs, columns=["row", "field", "value", "message"])
    errors = errors.sort_values(["row", "field"], kind="stable").reset_index(drop=True)
    return CheckedRows(rows=rows, errors=errors)
