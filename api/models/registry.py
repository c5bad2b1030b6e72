"""The bodies and answers of ``/registry``: people, households, buildings, organisations,
the care list, aggregates and the map's address search (issue 15).

Personal fields follow :mod:`geogrid.core.registry_access`: lists carry ``id_mask`` and
``phone_mask`` with ``id_number``/``phone`` null; one person's record has them decrypted.
Dates are ISO dates; positions WGS84 (EPSG:4326).
"""

from __future__ import annotations

from datetime import date

from pydantic import Field

from api.models.common import ApiModel

__all__ = [
    "PersonSearch",
    "Person",
    "CareGroupOut",
    "PersonRecord",
    "PersonPage",
    "Household",
    "HouseholdRow",
    "Building",
    "Org",
    "OrgPage",
    "CarePerson",
    "CareList",
    "AggregateRow",
    "Aggregates",
    "GeocodeMatch",
]


class PersonSearch(ApiModel):
    """A search of people in the caller's units. ID numbers and phones go in this body (not
    a query string) so they never reach an access log."""

    name: str | None = Field(
        None, description="part of a name (Chinese or not)", examples=["张"], max_length=100
    )
    id_number: str | None = Field(
        None,
        description="a full ID number (公民身份号码), exact; matched through the keyed blind index"
        " (the example is a synthetic placeholder: region 000000 exists nowhere)",
        examples=["000000200001010000"],
        max_length=100,
    )
    phone: str | None = Field(
        None,
        description="a full phone number, exact (the example is a placeholder number)",
        examples=["13800000000"],
        max_length=100,
    )
    address: str | None = Field(
        None,
        description="part of the household's or building's address (or the building's name)",
        examples=["江滨路"],
        max_length=100,
    )
    unit: str | None = Field(
        None,
        description="only people of this unit (code of any level)",
        examples=["450902001001001"],
        max_length=15,
    )
    limit: int = Field(50, ge=1, le=500, description="at most this many people", examples=[50])
    offset: int = Field(0, ge=0, le=10_000_000, description="skip this many first", examples=[0])
    reason: str | None = Field(
        None,
        description="why (written to the audit trail)",
        examples=["季度走访核对"],
        max_length=200,
    )


class Person(ApiModel):
    """A person of the registry as the caller may read them."""

    id: int
    household_id: int | None = None
    building_id: int | None = None
    name: str = Field(description="the name, in clear for callers whose units cover the person")
    sex: str | None = Field(None, description="M or F")
    birth_date: date | None = None
    age: int | None = Field(None, description="whole years today (the city's zone)")
    id_mask: str = Field(description="the ID number masked, e.g. 4509**********123X")
    id_number: str | None = Field(
        None, description="the ID number in clear: one person's record only (audited)"
    )
    phone_mask: str | None = None
    phone: str | None = Field(
        None, description="the phone in clear: one person's record only (audited)"
    )
    relation: str | None = Field(None, description="relation to the household head, as written")
    residence: str = Field(description="registered, floating or overseas")
    address: str | None = None
    grid_code: str | None = None
    community_code: str | None = None
    street_code: str | None = None
    district_code: str | None = None
    lon: float | None = None
    lat: float | None = None
    care_groups: list[str] = Field(default_factory=list, description="care-group codes")


class CareGroupOut(ApiModel):
    """One care group of a person."""

    group: str
    visit_every_days: int
    since: date | None = None
    note: str | None = None


class PersonRecord(Person):
    """One person's record: the ID number and phone decrypted, the care groups in full."""

    care: list[CareGroupOut] = Field(default_factory=list)


class PersonPage(ApiModel):
    """A page of people."""

    items: list[Person]
    limit: int
    offset: int
    more: bool = Field(description="a next page exists (ask with offset + limit)")


class _HouseholdBase(ApiModel):
    """A household's own fields."""

    id: int
    ref: str = Field(description="the household number (户号)")
    building_id: int | None = None
    dwelling_id: int | None = None
    room: str | None = None
    address: str | None = None
    grid_code: str | None = None
    community_code: str | None = None
    street_code: str | None = None
    district_code: str | None = None
    lon: float | None = None
    lat: float | None = None


class HouseholdRow(_HouseholdBase):
    """A household as listed in its building."""

    members: int = Field(description="people of the household")


class Household(_HouseholdBase):
    """One household with its members."""

    members: list[Person] = Field(default_factory=list)


class Building(ApiModel):
    """One building with its counts and households."""

    id: int
    ref: str
    name: str | None = None
    address: str | None = None
    floors: int | None = None
    use: str | None = None
    grid_code: str | None = None
    community_code: str | None = None
    street_code: str | None = None
    district_code: str | None = None
    lon: float | None = None
    lat: float | None = None
    households: int
    people: int
    orgs: int
    household_list: list[HouseholdRow] = Field(default_factory=list)


class Org(ApiModel):
    """An organisation (shop, company, school …)."""

    id: int
    uscc: str = Field(description="unified social credit code (统一社会信用代码)")
    name: str
    kind: str | None = None
    address: str | None = None
    building_id: int | None = None
    grid_code: str | None = None
    community_code: str | None = None
    street_code: str | None = None
    district_code: str | None = None
    lon: float | None = None
    lat: float | None = None


class OrgPage(ApiModel):
    """A page of organisations."""

    items: list[Org]
    limit: int
    offset: int
    more: bool


class CarePerson(ApiModel):
    """A person in a care group with their last and next visit."""

    person_id: int
    name: str
    sex: str | None = None
    age: int | None = None
    address: str | None = None
    phone_mask: str | None = None
    household_id: int | None = None
    building_id: int | None = None
    grid_code: str | None = None
    lon: float | None = None
    lat: float | None = None
    groups: list[str]
    visit_every_days: int
    last_visit: date | None = Field(None, description="latest service entry naming them")
    due: date | None = Field(None, description="next visit due (null: due now)")
    overdue: bool
    days_overdue: int | None = None


class CareList(ApiModel):
    """The care list of a grid."""

    grid: str
    today: date
    total: int
    overdue: int
    people: list[CarePerson]


class AggregateRow(ApiModel):
    """Registry counts of one unit; null where suppressed (fewer than k)."""

    code: str
    population: int | None
    households: int | None
    floating: int | None
    care: int | None = Field(description="people in any care group")
    care_groups: dict[str, int | None]
    suppressed: list[str] = Field(description="the counts suppressed (fewer than k)")


class Aggregates(ApiModel):
    """Registry counts per unit of a level."""

    level: str
    unit: str | None = None
    k: int | None = Field(None, description="the suppression threshold applied (null: none)")
    rows: list[AggregateRow]


class GeocodeMatch(ApiModel):
    """A place found by the address search."""

    kind: str = Field(description="building, household or unit")
    id: int | None = None
    code: str | None = Field(None, description="the unit's code (a building's: its grid)")
    name: str | None = None
    address: str | None = None
    level: str | None = None
    lon: float | None = None
    lat: float | None = None
    bbox: list[float] | None = Field(None, description="min lon, min lat, max lon, max lat")
    exact: bool = False
