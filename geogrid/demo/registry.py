"""A deterministic synthetic base-information registry for the demo city (issue 15).

No real person is in it: every name, ID number and phone is drawn from a seeded random
generator, vectorised with NumPy so that the full 6.62 million records are made in
seconds.

How the records are made
------------------------
* **Split** of ``n`` records (Yulin entered 6.62 million base records): buildings 5.45 %
  (at most one per demo building point, table ``building``), households 21.15 %,
  organisations 0.76 %, people the rest (72.64 %). For the default 6.62 M: 360,710
  buildings (every demo building point), 1,400,130 households, 50,312 organisations and
  4,808,848 people (≈ 3.4 people per household, Yulin's ≈ 5.8 M residents in
  ≈ 1.65 M households being the register's order of magnitude).
* **Buildings**: the demo's building points (their grid from the demo), a reference
  ``B`` + 9 digits, a name and address from the community's name and the building's rank
  in it (``<社区>12栋``), 2–33 floors, a use (住宅 most, 商住, 办公, 厂房, 学校).
* **Households**: spread over buildings in proportion to the demo's household counts;
  reference ``H`` + district code + 8 digits; a room ``<floor><unit>`` (e.g. ``502``);
  attributed with their building.
* **People**: one head per household, the others drawn into households at random (sizes
  1 to about 10). Names: common Guangxi surnames and given-name characters
  (:func:`geogrid.demo.people.random_names`). Sex: 51 % male. Age: a pyramid over 0–95
  years; the birth date is a day of that year. **ID numbers**: the household's district
  code as the area code, the birth date, a 3-digit sequence whose parity is the sex and
  which is unique among people of the same area, birth date and sex (rank in the group),
  and the GB 11643 check character: every number is valid and unique, none is real (no
  check of real registers; the area codes are the city's districts). **Phones**: 90 % of
  people aged 12 and over, a mobile prefix (13x, 15x, 17x, 18x, 19x) and 8 digits from a
  bijection of the person's number (unique). Relation: 户主 for the head, 配偶 for the
  second adult, 子女/父母/其他 otherwise. Residence: 80 % 户籍, 18 % 流动, 2 % 境外.
* **Care groups**: people aged 70+ living alone → 独居老人; children under 16 in a
  household without a member aged 20–55 (or 10 % of children) → 留守儿童; 2 % 残疾人;
  3 % of households' heads 低保户; 0.5 % 重点人群; each with the group's visit frequency.
* **Organisations**: at random building points, a kind (商铺, 企业, 学校, 诊所, 餐饮,
  社会组织), a name from the community and kind, and a unified social credit code
  ``91`` + district code + 9 random code characters + the GB 32100 check character.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from geogrid.core.hierarchy import CODE_LENGTH
from geogrid.core.registry.care import CARE_GROUPS
from geogrid.core.registry.ids import (
    ID_CHECK_CHARS,
    ID_WEIGHTS,
    USCC_ALPHABET,
    USCC_WEIGHTS,
    arrow_strings,
)
from geogrid.demo.people import random_name_strings

__all__ = ["DEFAULT_RECORDS", "SPLIT", "DemoRegistry", "split_records", "build_registry"]

#: Yulin's base records (基础信息资料)
DEFAULT_RECORDS: Final[int] = 6_620_000
#: share of each kind in the records (people: the rest)
SPLIT: Final[dict[str, float]] = {"buildings": 0.0545, "households": 0.2115, "orgs": 0.0076}
_REF_DAY = dt.date(2025, 1, 1)
_USES = ("住宅", "商住", "办公", "厂房", "学校")
_ORG_KINDS = ("商铺", "企业", "学校", "诊所", "餐饮", "社会组织")
_MOBILE = np.array([130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152, 155, 156, 157,
                    158, 159, 166, 173, 177, 180, 181, 182, 183, 185, 186, 187, 188, 189, 199])  # fmt: skip


@dataclass
class DemoRegistry:
    """The generated tables (ids are the row positions + 1; every frame carries the four
    unit codes). ``people.id_number`` and ``people.phone`` are the clear values the loader
    seals."""

    buildings: pd.DataFrame
    households: pd.DataFrame
    people: pd.DataFrame
    orgs: pd.DataFrame
    care: pd.DataFrame

    @property
    def records(self) -> int:
        """People + households + buildings + organisations."""
        return len(self.people) + len(self.households) + len(self.buildings) + len(self.orgs)


def split_records(n: int, building_points: int) -> dict[str, int]:
    """How many of each kind ``n`` records make (see the module doc).

    >>> split_records(6_620_000, 360_710)
    {'buildings': 360710, 'households': 1400130, 'orgs': 50312, 'people': 4808848}
    >>> sum(split_records(1000, 10_000).values())
    1000
    """
    b = min(round(n * SPLIT["buildings"]), building_points)
    h = round(n * SPLIT["households"])
    o = round(n * SPLIT["orgs"])
    return {"buildings": b, "households": h, "orgs": o, "people": max(n - b - h - o, 0)}


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers, as an (n, width) int array."""
    p = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (np.asarray(values, dtype=np.int64)[:, None] // p) % 10


def _ascii(codes: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Rows of ASCII codes (an ``(n, w)`` array) → an Arrow ``large_string`` array laid
    out from the bytes (no Python string per value); rows where ``valid`` is False are
    null."""
    n, w = codes.shape
    data = np.ascontiguousarray(codes.astype(np.uint8))
    if valid is not None:
        data = np.ascontiguousarray(data[valid])
        lens = np.where(valid, w, 0)
    else:
        lens = np.full(n, w)
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    mask = None if valid is None else pa.array(valid).buffers()[1]  # validity bitmap
    return pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(data), mask,
        null_count=-1 if valid is None else int(n - valid.sum()),
    )  # fmt: skip


def _labels(labels: Sequence[str], index: np.ndarray) -> pa.Array:
    """``labels[index]`` as an Arrow ``large_string`` array."""
    return pa.array(list(labels), pa.large_string()).take(pa.array(index, pa.int64()))


def _zfill(numbers: np.ndarray, width: int) -> pa.Array:
    """Decimal strings of non-negative integers, zero-padded to ``width``."""
    return pc.utf8_lpad(pa.array(numbers, pa.int64()).cast(pa.large_string()), width, "0")


def _cat(*parts: pa.Array | str) -> pa.Array:
    """Element-wise concatenation of Arrow string arrays and constant strings."""
    ls = pa.large_string()
    args = [pa.scalar(p, ls) if isinstance(p, str) else p.cast(ls) for p in parts]
    return pc.binary_join_element_wise(*args, pa.scalar("", ls))


def _id_numbers(area: np.ndarray, birth: np.ndarray, seq: np.ndarray) -> pa.Array:
    """Valid 18-character ID numbers from area codes, birth dates (datetime64[D]) and
    3-digit sequences."""
    ymd = pd.DatetimeIndex(birth)
    date_num = ymd.year.to_numpy() * 10_000 + ymd.month.to_numpy() * 100 + ymd.day.to_numpy()
    d = np.concatenate([_digits(area, 6), _digits(date_num, 8), _digits(seq, 3)], axis=1)
    check = d @ np.asarray(ID_WEIGHTS, dtype=np.int64) % 11
    last = np.frombuffer(ID_CHECK_CHARS.encode(), dtype=np.uint8)[check]
    return _ascii(np.concatenate([d + ord("0"), last[:, None]], axis=1))


def _uscc(area: np.ndarray, rng: np.random.Generator) -> pa.Array:
    """Valid unified social credit codes: 91 + area code + 9 random characters + check."""
    n = len(area)
    vals = np.concatenate(
        [np.tile([9, 1], (n, 1)), _digits(area, 6), rng.integers(0, 31, (n, 9))], axis=1
    )
    v = 31 - (vals * np.asarray(USCC_WEIGHTS)).sum(axis=1) % 31
    v[v == 31] = 0
    alphabet = np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)
    return _ascii(alphabet[np.concatenate([vals, v[:, None]], axis=1)])


def _codes(grid: pa.Array) -> dict[str, pa.Array]:
    """The four unit codes of grid codes (codes are hierarchical)."""
    return {
        "grid_code": grid,
        **{
            f"{lv}_code": pc.utf8_slice_codeunits(grid, 0, CODE_LENGTH[lv])
            for lv in ("community", "street", "district")
        },
    }


def _take(codes: dict[str, pa.Array], index: np.ndarray) -> dict[str, pa.Array]:
    idx = pa.array(index, pa.int64())
    return {k: v.take(idx) for k, v in codes.items()}


def _frame(columns: dict[str, Any]) -> pd.DataFrame:
    """A frame of NumPy and Arrow columns (Arrow strings stay in Arrow where pandas keeps
    strings in Arrow: no copy, no Python string per value)."""
    return pd.DataFrame(
        {k: v.to_pandas() if isinstance(v, pa.Array) else v for k, v in columns.items()}
    )


def _ref(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    return _cat(prefix, _zfill(numbers, width))


def build_registry(
    units: dict[str, gpd.GeoDataFrame],
    building_points: gpd.GeoDataFrame,
    *,
    n: int = DEFAULT_RECORDS,
    seed: int = 2016,
) -> DemoRegistry:
    """Generate ``n`` registry records on the demo city (see the module doc).

    Parameters
    ----------
    units : the demo's unit layers (``community`` names are used in addresses)
    building_points : the demo's buildings (``grid_code``, ``households``, point geometry,
        EPSG:4326), in the order of table ``building``
    """
    rng = np.random.default_rng(seed + 15)
    counts = split_records(n, len(building_points))
    # --- buildings: the first ones of a seeded permutation of the points
    pick = np.sort(rng.permutation(len(building_points))[: counts["buildings"]])
    bp = building_points.iloc[pick]
    nb = len(bp)
    bcodes = _codes(arrow_strings(bp["grid_code"]))
    comm_names = units["community"].set_index("code")["name"]
    comm = bcodes["community_code"].to_pandas()
    rank = comm.groupby(comm).cumcount().to_numpy() + 1
    bname = _cat(
        arrow_strings(comm.map(comm_names).fillna("")), _zfill(rank, 1), "栋"
    )  # fmt: skip
    floors = np.clip(np.round(rng.gamma(2.0, 3.5, nb)) + 2, 2, 33).astype(np.int32)
    use = _labels(_USES, rng.choice(len(_USES), nb, p=[0.82, 0.08, 0.05, 0.03, 0.02]))
    buildings = _frame(
        {
            "id": np.arange(1, nb + 1, dtype=np.int64),
            "ref": _ref("B", np.arange(1, nb + 1), 9),
            "name": bname,
            "address": bname,
            "floors": floors,
            "use": use,
            "lon": bp.geometry.x.to_numpy(),
            "lat": bp.geometry.y.to_numpy(),
            **bcodes,
        }
    )
    # --- households: over buildings in proportion to the demo's household counts
    nh = counts["households"] if nb else 0
    w = np.maximum(bp["households"].to_numpy(dtype=float), 1.0)
    hb = np.sort(rng.choice(nb, nh, p=w / w.sum())) if nh else np.zeros(0, dtype=np.int64)
    floor = 1 + (rng.random(nh) * floors[hb]).astype(np.int64)
    unit_no = rng.integers(1, 5, nh)
    room = _cat(_zfill(floor, 1), _zfill(unit_no, 2))
    hcodes = _take(bcodes, hb)
    h_area = pc.cast(hcodes["district_code"], pa.int64()).to_numpy()
    households = _frame(
        {
            "id": np.arange(1, nh + 1, dtype=np.int64),
            "ref": _cat("H", hcodes["district_code"], _zfill(np.arange(1, nh + 1), 8)),
            "building_id": hb.astype(np.int64) + 1,
            "room": room,
            "address": _cat(bname.take(pa.array(hb, pa.int64())), room, "室"),
            **hcodes,
        }
    )
    # --- people: a head per household, the rest at random households
    npp = counts["people"] if nh else 0
    heads = np.arange(min(nh, npp))
    rest = rng.integers(0, max(nh, 1), max(npp - len(heads), 0))
    ph = np.sort(np.concatenate([heads, rest]))
    size = np.bincount(ph, minlength=nh)
    member = np.arange(npp) - np.repeat(np.cumsum(size) - size, size)  # rank in household
    sex_m = rng.random(npp) < 0.51
    age = np.where(
        member == 0,
        rng.integers(22, 90, npp),
        np.where(member == 1, rng.integers(20, 85, npp), rng.integers(0, 96, npp)),
    )
    alone = size[ph] == 1
    age = np.where(alone & (rng.random(npp) < 0.35), rng.integers(70, 96, npp), age)
    birth_year = _REF_DAY.year - 1 - age
    day_of_year = rng.integers(0, 365, npp)
    birth = (birth_year - 1970).astype("datetime64[Y]").astype(
        "datetime64[D]"
    ) + day_of_year.astype("timedelta64[D]")
    area = h_area[ph] if len(ph) else np.zeros(0, dtype=np.int64)
    # unique sequence per (area, birth date, sex): the rank in the group, parity = sex
    key = pd.DataFrame({"a": area, "b": birth.astype(np.int64), "m": sex_m})
    rank_in = key.groupby(["a", "b", "m"], sort=False).cumcount().to_numpy()
    if rank_in.max(initial=0) >= 500:  # pragma: no cover - needs > 500 births a day
        raise ValueError("too many people per area, birth date and sex for 3-digit sequences")
    seq = rank_in * 2 + sex_m.astype(np.int64)
    id_number = _id_numbers(area, birth, seq)
    has_phone = (age >= 12) & (rng.random(npp) < 0.9)
    idx = np.arange(npp, dtype=np.int64)
    prefix = _MOBILE[rng.integers(0, len(_MOBILE), npp)]
    tail = (idx * 48_271 + 12_345_679) % 100_000_000  # a bijection on 0..10^8-1
    phone_digits = np.concatenate([_digits(prefix, 3), _digits(tail, 8)], axis=1) + ord("0")
    phone = _ascii(phone_digits, valid=has_phone)
    relation = _labels(
        ("户主", "配偶", "子女", "父母", "其他"),
        np.where(
            member == 0,
            0,
            np.where(
                (member == 1) & (age >= 20),
                1,
                np.where(age < 30, 2, np.where(age >= 60, 3, 4)),
            ),
        ),
    )
    residence = _labels(
        ("registered", "floating", "overseas"), rng.choice(3, npp, p=[0.80, 0.18, 0.02])
    )
    pcodes = _take(hcodes, ph)
    people = _frame(
        {
            "id": idx + 1,
            "household_id": ph.astype(np.int64) + 1,
            "building_id": hb[ph].astype(np.int64) + 1,
            "name": random_name_strings(npp, rng),
            "sex": _labels(("F", "M"), sex_m.astype(np.int64)),
            "birth_date": birth,
            "id_number": id_number,
            "phone": phone,
            "relation": relation,
            "residence": residence,
            **pcodes,
        }
    )
    # --- care groups
    has_carer = np.zeros(nh, dtype=bool)
    np.logical_or.at(has_carer, ph, (age >= 20) & (age <= 55))
    groups = []
    for code, mask in (
        ("elderly_alone", alone & (age >= 70)),
        ("left_behind_child", (age < 16) & (~has_carer[ph] | (rng.random(npp) < 0.10))),
        ("disability", rng.random(npp) < 0.02),
        ("low_income", (member == 0) & (rng.random(npp) < 0.03)),
        ("key_group", (age >= 16) & (rng.random(npp) < 0.005)),
    ):
        who = np.flatnonzero(mask)
        since = np.datetime64(_REF_DAY) - rng.integers(30, 2000, len(who)).astype("timedelta64[D]")
        groups.append(
            pd.DataFrame(
                {
                    "person_id": who + 1,
                    "group_code": code,
                    "visit_every_days": np.int32(CARE_GROUPS[code].visit_every_days),
                    "since": since,
                }
            )
        )
    care = pd.concat(groups, ignore_index=True)
    # --- organisations
    no = counts["orgs"] if nb else 0
    ob = rng.integers(0, max(nb, 1), no)
    kind = _labels(
        _ORG_KINDS, rng.choice(len(_ORG_KINDS), no, p=[0.45, 0.25, 0.05, 0.05, 0.15, 0.05])
    )
    ocodes = _take(bcodes, ob)
    ob_idx = pa.array(ob, pa.int64())
    comm_name = arrow_strings(comm.map(comm_names).fillna(""))
    orgs = _frame(
        {
            "id": np.arange(1, no + 1, dtype=np.int64),
            "uscc": _uscc(pc.cast(ocodes["district_code"], pa.int64()).to_numpy(), rng),
            "name": _cat(comm_name.take(ob_idx), kind, _zfill(np.arange(1, no + 1), 1), "号"),
            "kind": kind,
            "address": bname.take(ob_idx),
            "building_id": ob.astype(np.int64) + 1,
            "lon": buildings["lon"].to_numpy()[ob],
            "lat": buildings["lat"].to_numpy()[ob],
            **ocodes,
        }
    )
    return DemoRegistry(buildings, households, people, orgs, care)
