"""The registry's pure parts: ID number and social credit code checksums on published
valid/invalid examples, birth date and sex consistency, phones, masks, the vault, the
search grams, the column mapping and row checks."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from geogrid.core.registry.care import CARE_GROUPS, care_codes
from geogrid.core.registry.columns import check_rows, load_mapping, resolve_columns
from geogrid.core.registry.crypto import Vault
from geogrid.core.registry.grams import query_grams, text_grams
from geogrid.core.registry.ids import (
    id_check_char,
    id_consistency_problem,
    id_number_problem,
    id_number_problems,
    id_numbers_ok,
    mask_id,
    normalise_phone,
    parse_id_number,
    phone_problem,
    uscc_check_char,
    uscc_problem,
)

# GB 11643-1999's own example, and a published example (a man born 1880-01-01)
VALID_IDS = ["11010519491231002X", "440524188001010014"]
# GB 32100-2015's example code, and a published company's code (Tencent, Shenzhen)
VALID_USCC = ["91350100M000100Y43", "91440300708461136T"]


@pytest.mark.parametrize("number", VALID_IDS)
def test_published_id_numbers_pass(number):
    assert id_number_problem(number) is None
    assert id_check_char(number[:17]) == number[17]


@pytest.mark.parametrize("number", VALID_IDS)
def test_every_single_digit_change_fails(number):
    """ISO 7064 MOD 11-2 catches every single-character substitution."""
    for pos in range(17):
        for d in "0123456789":
            if d == number[pos]:
                continue
            changed = number[:pos] + d + number[pos + 1 :]
            problem = id_number_problem(changed)
            assert problem is not None, (pos, d)


def test_id_format_and_date_problems():
    assert "17 digits" in id_number_problem("11010519491231002")
    assert "17 digits" in id_number_problem("1101051949123100XX")
    # a valid check character over an impossible date
    first = "11010519490231002"
    assert "not a date" in id_number_problem(first + id_check_char(first))
    first = "11010530000101002"
    assert "future" in id_number_problem(first + id_check_char(first))


def test_parse_and_consistency():
    info = parse_id_number("11010519491231002x")
    assert info.number == "11010519491231002X"
    assert (info.area, info.birth_date, info.sex) == ("110105", dt.date(1949, 12, 31), "F")
    assert parse_id_number("440524188001010014").sex == "M"  # 17th digit 1: odd = male
    assert id_consistency_problem("11010519491231002X", dt.date(1949, 12, 31), "F") is None
    assert "sex" in id_consistency_problem("11010519491231002X", None, "M")
    assert "birth" in id_consistency_problem("11010519491231002X", dt.date(1949, 12, 30), None)


def test_vectorised_matches_scalar():
    rng = np.random.default_rng(1)
    values = []
    for _ in range(300):
        first = "4509" + "".join(rng.choice(list("0123456789"), 13))
        values.append(first + rng.choice(list("0123456789X")))
    for _ in range(300):  # valid ones, and impossible dates with valid check characters
        first = f"4509021{rng.integers(8, 10)}{rng.integers(0, 99):02d}"
        first += f"{rng.integers(0, 14):02d}{rng.integers(0, 32):02d}{rng.integers(0, 999):03d}"
        values.append(first + id_check_char(first))
    vec = id_number_problems(values)
    assert [id_number_problem(v) for v in values] == vec.tolist()
    assert id_numbers_ok(values).tolist() == [p is None for p in vec]
    assert 0 < sum(p is None for p in vec) < len(values)


@pytest.mark.parametrize("code", VALID_USCC)
def test_published_uscc_pass_and_changes_fail(code):
    assert uscc_problem(code) is None
    assert uscc_check_char(code[:17]) == code[17]
    for pos in range(17):
        other = "1" if code[pos] != "1" else "2"
        assert uscc_problem(code[:pos] + other + code[pos + 1 :]) is not None


def test_uscc_alphabet():
    assert uscc_problem("91350100M000100Y4I") is not None  # I is not a code character
    assert uscc_problem("91350100M000100Y4") is not None  # 17 characters


def test_phones_and_masks():
    assert normalise_phone("+86 138 1234 5678") == "13812345678"
    assert normalise_phone("0775-2345678") == "07752345678"
    assert phone_problem("12812345678") is not None  # 12x is not a mobile prefix
    assert phone_problem("138123456789") is not None
    assert mask_id("450902198001011234") == "4509**********1234"


def test_vault_round_trip_and_blind_indexes():
    v = Vault(bytes(range(32)))
    sealed = v.seal("450902198001011234")
    assert b"450902198001011234" not in sealed
    assert v.open(sealed) == "450902198001011234"
    assert v.seal_many(["a", None])[1] is None
    assert v.blind_many("id", ["11010519491231002X"])[0] == v.blind("id", "11010519491231002x")
    assert v.blind_many("phone", ["13812345678"])[0] == v.blind("phone", "138-1234-5678")
    assert Vault(bytes(32)).blind("id", "1") != v.blind("id", "1")
    with pytest.raises(ValueError):
        Vault(b"short")


def test_grams_find_partial_names():
    name = text_grams("欧阳娜娜")
    assert set(query_grams("阳娜")) <= set(name)
    assert set(query_grams("娜")) <= set(name)
    assert not set(query_grams("欧娜")) <= set(name)


def test_care_groups():
    assert set(CARE_GROUPS) == {
        "elderly_alone", "left_behind_child", "disability", "low_income", "key_group",
    }  # fmt: skip
    assert care_codes("留守儿童；重点人群") == ["left_behind_child", "key_group"]


def test_mapping_file_and_missing_columns(tmp_path):
    p = tmp_path / "map.toml"
    p.write_text('[columns]\n"居民姓名" = "name"\n"证件号" = "id_number"\n', encoding="utf-8")
    cols = resolve_columns(["居民姓名", "证件号"], "people", load_mapping(p))
    assert cols == {"居民姓名": "name", "证件号": "id_number"}
    with pytest.raises(ValueError, match="id_number"):
        resolve_columns(["姓名"], "people")
    bad = tmp_path / "bad.json"
    bad.write_text('{"姓名": "nickname"}', encoding="utf-8")
    with pytest.raises(ValueError, match="nickname"):
        load_mapping(bad)


def test_row_checks_name_row_and_field_and_mask_values():
    frame = pd.DataFrame(
        {
            "name": ["张三", None, "王五", "赵六"],
            "id_number": ["11010519491231002X", "440524188001010014", "11010519491231002X",
                          "440524188001010014"],
            "sex": ["男", "男", "女", "男"],
            "birth_date": ["1949-12-31", "1880-01-01", None, "1880/1/2"],
            "residence": ["户籍", "流动", "境外", "外星"],
        }
    )  # fmt: skip
    checked = check_rows(frame, "people")
    got = {(r.row, r.field) for r in checked.errors.itertuples()}
    assert got == {
        (2, "sex"),  # 张三: the ID says female
        (3, "name"),  # missing
        (4, "id_number"),  # duplicate of row 2
        (5, "birth_date"),  # 1880-01-02 ≠ the ID's 1880-01-01
        (5, "id_number"),  # duplicate of row 3
        (5, "residence"),
    }
    assert "row 2" in checked.errors.query("row == 4")["message"].iloc[0]
    for v in checked.errors["value"]:
        assert "11010519491231002X" not in v and "440524188001010014" not in v
    assert checked.rows["residence"].tolist()[:3] == ["registered", "floating", "overseas"]


def _small_registry(n: int, seed: int = 3):
    import geopandas as gpd
    import small_city

    layers = small_city.layers()
    rng = np.random.default_rng(1)
    k = 400
    x = small_city.CX + (rng.random(k) - 0.5) * 2 * small_city.DX
    y = small_city.CY + (rng.random(k) - 0.5) * 2 * small_city.DY
    pts = gpd.GeoDataFrame(
        {
            "households": rng.integers(1, 30, k),
            "grid_code": np.where(x < small_city.CX, small_city.GRIDS[0], small_city.GRIDS[1]),
        },
        geometry=gpd.points_from_xy(x, y),
        crs=4326,
    )
    from geogrid.demo.registry import build_registry

    return layers, pts, build_registry(layers, pts, n=n, seed=seed)


def test_demo_registry_is_valid_unique_and_deterministic():
    from geogrid.core.registry.ids import uscc_problems
    from geogrid.demo.registry import split_records

    layers, pts, reg = _small_registry(5000)
    assert reg.records == 5000
    assert {k: len(getattr(reg, k)) for k in ("buildings", "households", "orgs", "people")} == (
        split_records(5000, len(pts))
    )
    ids = reg.people["id_number"].to_numpy(dtype=object)
    assert (id_number_problems(ids) == None).all()  # noqa: E711
    assert reg.people["id_number"].is_unique
    # sex and birth date agree with the ID number
    for r in reg.people.sample(200, random_state=1).itertuples():
        info = parse_id_number(r.id_number)
        assert info.sex == r.sex and info.birth_date == pd.Timestamp(r.birth_date).date()
        assert info.area == r.district_code
    phones = reg.people["phone"].dropna()
    assert phones.is_unique and all(normalise_phone(p) == p for p in phones)
    assert (uscc_problems(reg.orgs["uscc"].to_numpy(dtype=object)) == None).all()  # noqa: E711
    assert set(reg.care["group_code"]) <= set(CARE_GROUPS)
    # every household has a head, people live in existing households
    assert set(reg.people["household_id"]) == set(reg.households["id"])
    again = _small_registry(5000)[2]
    pd.testing.assert_frame_equal(again.people, reg.people)
