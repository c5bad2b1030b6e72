"""A small base-information registry over the small test city (tests/small_city.py).

Buildings, households, people (with valid synthetic ID numbers and phones), organisations
and care groups in each of the four grids and one place outside every grid, written as
CSV files with the field names as headers and loaded through the registry's import
service (:func:`geogrid.services.registry_import.import_registry`), which attributes each
record to its grid from its position.

:data:`SPEC` is what is loaded; the tests count from it by hand (nothing is read back to
make an expectation).
"""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from small_city import CENTRES, CX, CY, GRIDS
from sqlalchemy import Engine, text

from geogrid.core.registry.ids import id_check_char, uscc_check_char
from geogrid.services.registry_import import import_registry
from geogrid.services.registry_keys import vault as make_vault
from geogrid.settings import Settings

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
#: the day every care group of the spec was joined
CARE_SINCE = dt.date(2026, 1, 1)
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


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def files(reg: Registry, folder: Path) -> dict[str, Path]:
    """The registry as the CSV files a community keeps (field names as headers)."""
    buildings, households, people, orgs, care = [], [], [], [], []
    for place in PLACES:
        lon, lat = point(place)
        ref = f"B-{place}"
        buildings.append(
            {
                "building_ref": ref,
                "name": building_name(place),
                "address": building_address(place),
                "floors": 6,
                "use": "residential",
                "lon": lon,
                "lat": lat,
            }
        )
        for h in range(HOUSEHOLDS[place]):
            households.append(
                {
                    "household_ref": f"H-{place}-{h}",
                    "address": household_address(place, h),
                    "building_ref": ref,
                    "room": f"{h + 1}0{h + 1}",
                    "lon": lon,
                    "lat": lat,
                }
            )
        orgs.append(
            {
                "uscc": uscc(place),
                "name": f"{_SEASON[place]}晖超市",
                "kind": "shop",
                "address": building_address(place),
                "building_ref": ref,
                "lon": lon,
                "lat": lat,
            }
        )
    for p in reg.people.values():
        lon, lat = point(p.place)
        people.append(
            {
                "name": p.name,
                "id_number": p.id_number,
                "sex": "男" if int(p.id_number[16]) % 2 else "女",
                "birth_date": f"{p.id_number[6:10]}-{p.id_number[10:12]}-{p.id_number[12:14]}",
                "phone": p.phone,
                "relation": "户主" if p.index < HOUSEHOLDS[p.place] else "子女",
                "household_ref": f"H-{p.place}-{p.household}",
                "residence": "流动人口" if p.floating else "户籍人口",
                "building_ref": f"B-{p.place}",
                "lon": lon,
                "lat": lat,
            }
        )
        for g in p.care:
            care.append(
                {
                    "id_number": p.id_number,
                    "care": g,
                    "visit_every_days": _EVERY[g],
                    "since": CARE_SINCE.isoformat(),
                }
            )
    return {
        "buildings": _write(folder / "buildings.csv", buildings),
        "households": _write(folder / "households.csv", households),
        "people": _write(folder / "people.csv", people),
        "orgs": _write(folder / "orgs.csv", orgs),
        "care": _write(folder / "care.csv", care),
    }


def load(engine: Engine, settings: Settings) -> Registry:
    """Import :func:`spec` through the registry's import service (CSV files, one per
    kind); returns it with the database ids (looked up by natural key)."""
    reg = spec()
    vault = make_vault(settings)
    with tempfile.TemporaryDirectory() as tmp:
        for kind, path in files(reg, Path(tmp)).items():
            import_registry(engine, path, kind=kind, settings=settings)
    with engine.connect() as c:
        for p in reg.people.values():
            p.id = int(
                c.execute(
                    text("SELECT id FROM reg_person WHERE id_blind = :b"),
                    {"b": vault.blind("id", p.id_number)},
                ).scalar_one()
            )
        for place in PLACES:
            reg.buildings[place] = int(
                c.execute(
                    text("SELECT id FROM reg_building WHERE ref = :r"), {"r": f"B-{place}"}
                ).scalar_one()
            )
            reg.orgs[place] = int(
                c.execute(
                    text("SELECT id FROM reg_org WHERE uscc = :u"), {"u": uscc(place)}
                ).scalar_one()
            )
            for h in range(HOUSEHOLDS[place]):
                reg.households[(place, h)] = int(
                    c.execute(
                        text("SELECT id FROM reg_household WHERE ref = :r"),
                        {"r": f"H-{place}-{h}"},
                    ).scalar_one()
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
