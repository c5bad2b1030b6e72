"""A small base-information registry over the small test city (tests/small_city.py).

Buildings, households, people (with valid synthetic ID numbers and phones), organisations
and care groups in each of the four grids and one place outside every grid, written as
CSV files with the field names as headers and loaded through the registry's import
service when it is there (REG-A's); otherwise inserted with SQL the way the import stores
them (sealed ID numbers and phones, blind indexes, masks, grams, unit codes).

:data:`SPEC` is what is loaded; the tests count from it by hand (nothing is read back to
make an expectation).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from small_city import CENTRES, CX, CY, GRIDS
from sqlalchemy import Engine, text

from geogrid.core.registry.crypto import Vault
from geogrid.core.registry.grams import text_grams
from geogrid.core.registry.ids import id_check_char, mask_id, uscc_check_char
from geogrid.core.registry.ids import mask_phones as _mask_phones

#: the place outside every grid (a few km away, inside the city's tolerance)
OUTSIDE = "outside"
OUTSIDE_POINT = (CX + 0.02, CY + 0.02)
PLACES = [*GRIDS, OUTSIDE]
_SEASON = {GRIDS[0]: "春", GRIDS[1]: "夏", GRIDS[2]: "秋", GRIDS[3]: "冬", OUTSIDE: "野"}
_ORDINAL = "甲乙丙丁戊己庚辛"
#: people per place (GRIDS[0] has at least k = 5, GRIDS[1] and GRIDS[3] fewer)
PEOPLE = {GRIDS[0]: 6, GRIDS[1]: 2, GRIDS[2]: 3, GRIDS[3]: 1, OUTSIDE: 1}
#: households per place (people are spread over them in turn)
HOUSEHOLDS = {GRIDS[0]: 3, GRIDS[1]: 1, GRIDS[2]: 2, GRIDS[3]: 1, OUTSIDE: 1}
#: care groups of (place, person index)
CARE = {
    (GRIDS[0], 0): ["elderly_alone"],
    (GRIDS[0], 1): ["low_income", "disability"],
    (GRIDS[0], 2): ["left_behind_child"],
    (GRIDS[1], 0): ["elderly_alone"],
    (OUTSIDE, 0): ["key_group"],
}
_EVERY = {
    "elderly_alone": 7,
    "left_behind_child": 14,
    "disability": 14,
    "low_income": 30,
    "key_group": 30,
}


@dataclass
class Person:
    place: str
    index: int
    name: str
    id_number: str
    phone: str
    household: int  # index of the household in its place
    floating: bool
    care: list[str] = field(default_factory=list)
    id: int | None = None  # database id once loaded


@dataclass
class Registry:
    """What was loaded: people by (place, index), and the ids of the other records."""

    people: dict[tuple[str, int], Person] = field(default_factory=dict)
    buildings: dict[str, int] = field(default_factory=dict)  # place → id
    households: dict[tuple[str, int], int] = field(default_factory=dict)
    orgs: dict[str, int] = field(default_factory=dict)

    def in_place(self, place: str) -> list[Person]:
        return [p for (pl, _), p in sorted(self.people.items()) if pl == place]


def point(place: str) -> tuple[float, float]:
    return OUTSIDE_POINT if place == OUTSIDE else CENTRES[place]


def building_name(place: str) -> str:
    return f"{_SEASON[place]}晖苑{PLACES.index(place) + 1}栋"


def building_address(place: str) -> str:
    return f"滨河大道{PLACES.index(place) + 101}号"


def household_address(place: str, h: int) -> str:
    return f"{building_address(place)}{h + 1}0{h + 1}室"


def id_number(place: str, i: int) -> str:
    birth = dt.date(1940, 1, 1) + dt.timedelta(days=3650 * (i % 4) + 37 * PLACES.index(place))
    first17 = f"450902{birth:%Y%m%d}{PLACES.index(place)}{i:02d}"
    return first17 + id_check_char(first17)


def phone(place: str, i: int) -> str:
    return f"1395{PLACES.index(place)}{i:02d}{7700 + i:04d}"


def uscc(place: str) -> str:
    first17 = f"91450902MA5K{PLACES.index(place):05d}"
    return first17 + uscc_check_char(first17)


def spec() -> Registry:
    reg = Registry()
    for place in PLACES:
        for i in range(PEOPLE[place]):
            reg.people[(place, i)] = Person(
                place=place,
                index=i,
                name=f"欧{_SEASON[place]}{_ORDINAL[i]}",
                id_number=id_number(place, i),
                phone=phone(place, i),
                household=i % HOUSEHOLDS[place],
                floating=i % 3 == 2,
                care=list(CARE.get((place, i), [])),
            )
    return reg


def _codes(place: str) -> dict[str, str | None]:
    if place == OUTSIDE:
        return dict(g=None, cm=None, st=None, d=None)
    return dict(g=place, cm=place[:12], st=place[:9], d=place[:6])


def load(engine: Engine, vault: Vault) -> Registry:
    """Insert :func:`spec` (SQL, as the import stores it); returns it with the ids."""
    reg = spec()
    mask_phone = lambda p: str(_mask_phones([p])[0])  # noqa: E731
    with engine.begin() as c:
        for place in PLACES:
            lon, lat = point(place)
            name, addr = building_name(place), building_address(place)
            bid = c.execute(
                text(
                    "INSERT INTO reg_building (ref, name, address, floors, use, geom, grid_code, "
                    "community_code, street_code, district_code, addr_grams) VALUES (:ref, :n, "
                    ":a, 6, 'residential', ST_SetSRID(ST_MakePoint(:x, :y), 4326), :g, :cm, "
                    ":st, :d, :gr) RETURNING id"
                ),
                dict(
                    ref=f"B-{place}",
                    n=name,
                    a=addr,
                    x=lon,
                    y=lat,
                    gr=text_grams(f"{name} {addr}"),
                    **_codes(place),
                ),
            ).scalar_one()
            reg.buildings[place] = int(bid)
            for h in range(HOUSEHOLDS[place]):
                hid = c.execute(
                    text(
                        "INSERT INTO reg_household (ref, building_id, address, grid_code, "
                        "community_code, street_code, district_code, addr_grams) VALUES (:ref, "
                        ":b, :a, :g, :cm, :st, :d, :gr) RETURNING id"
                    ),
                    dict(
                        ref=f"H-{place}-{h}",
                        b=bid,
                        a=household_address(place, h),
                        gr=text_grams(household_address(place, h)),
                        **_codes(place),
                    ),
                ).scalar_one()
                reg.households[(place, h)] = int(hid)
            oid = c.execute(
                text(
                    "INSERT INTO reg_org (uscc, name, kind, address, building_id, geom, grid_code, "
                    "community_code, street_code, district_code, addr_grams) VALUES (:u, :n, "
                    "'shop', :a, :b, ST_SetSRID(ST_MakePoint(:x, :y), 4326), :g, :cm, :st, :d, "
                    ":gr) RETURNING id"
                ),
                dict(
                    u=uscc(place),
                    n=f"{_SEASON[place]}晖超市",
                    a=addr,
                    b=bid,
                    x=lon,
                    y=lat,
                    gr=text_grams(f"{_SEASON[place]}晖超市 {addr}"),
                    **_codes(place),
                ),
            ).scalar_one()
            reg.orgs[place] = int(oid)
        for p in reg.people.values():
            pid = c.execute(
                text(
                    "INSERT INTO reg_person (household_id, building_id, name, sex, birth_date, "
                    "id_enc, id_blind, id_mask, phone_enc, phone_blind, phone_mask, relation, "
                    "residence, grid_code, community_code, street_code, district_code, "
                    "name_grams) VALUES (:h, :b, :n, :sex, :bd, :ie, :ib, :im, :pe, :pb, :pm, "
                    ":rel, :res, :g, :cm, :st, :d, :ng) RETURNING id"
                ),
                dict(
                    h=reg.households[(p.place, p.household)],
                    b=reg.buildings[p.place],
                    n=p.name,
                    sex="M" if int(p.id_number[16]) % 2 else "F",
                    bd=dt.datetime.strptime(p.id_number[6:14], "%Y%m%d").date(),
                    ie=vault.seal(p.id_number),
                    ib=vault.blind("id", p.id_number),
                    im=mask_id(p.id_number),
                    pe=vault.seal(p.phone),
                    pb=vault.blind("phone", p.phone),
                    pm=mask_phone(p.phone),
                    rel="户主" if p.index < HOUSEHOLDS[p.place] else "子女",
                    res="floating" if p.floating else "registered",
                    ng=text_grams(p.name),
                    **_codes(p.place),
                ),
            ).scalar_one()
            p.id = int(pid)
            for g in p.care:
                c.execute(
                    text(
                        "INSERT INTO reg_care (person_id, group_code, visit_every_days, since) "
                        "VALUES (:p, :g, :e, :s)"
                    ),
                    dict(p=pid, g=g, e=_EVERY[g], s=dt.date(2026, 1, 1)),
                )
    return reg


def markers(reg: Registry) -> dict[str, Any]:
    """Personal values by kind → value → the place it belongs to."""
    out: dict[str, dict[str, str]] = {"name": {}, "id_number": {}, "phone": {}, "address": {}}
    for p in reg.people.values():
        out["name"][p.name] = p.place
        out["id_number"][p.id_number] = p.place
        out["phone"][p.phone] = p.place
    for place, h in reg.households:
        out["address"][household_address(place, h)] = place
    return out
