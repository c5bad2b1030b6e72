"""The bodies and answers of ``/register/entries`` (issue 13: the daily service register,
为民服务事项登记表)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import Field

from api.models.common import ApiModel
from api.models.incidents import CRS_DESCRIPTION
from geogrid.core.service_register import MAX_PEOPLE, SERVICE_KINDS
from geogrid.services.service_register import MAX_NOTE, MAX_RESULT

__all__ = ["EntryIn", "Entry"]

#: the largest id (bigint)
_MAX_ID = 2**63 - 1
_KINDS = ", ".join(f"{k.code} ({k.name_zh})" for k in SERVICE_KINDS)


class EntryIn(ApiModel):
    """One service item of a worker's day."""

    day: date = Field(description="the day, in the city's time zone", examples=["2026-05-04"])
    kind: str = Field(description=f"one of {_KINDS}", examples=["visit"], max_length=32)
    result: str = Field(
        description="what was done / the outcome", examples=["已解决"], max_length=MAX_RESULT
    )
    household_id: int | None = Field(
        None, ge=1, le=_MAX_ID, description="a reg_household id", examples=[1]
    )
    building_id: int | None = Field(
        None,
        ge=1,
        le=_MAX_ID,
        description="a reg_building id (a building id before the registry is loaded)",
        examples=[1],
    )
    person_ids: list[Annotated[int, Field(ge=1, le=_MAX_ID)]] | None = Field(
        None, max_length=200, description="reg_person ids of the people served", examples=[[1]]
    )
    people_count: int | None = Field(
        None,
        ge=0,
        le=MAX_PEOPLE,
        description="people served (default: len(person_ids), ≥ 1)",
        examples=[1],
    )
    note: str | None = Field(
        None,
        max_length=MAX_NOTE,
        description="a free-text note of the worker's",
        examples=["下周复访"],
    )
    lon: float | None = Field(
        None, description="longitude in `crs`", examples=[110.1481], allow_inf_nan=False
    )
    lat: float | None = Field(
        None, description="latitude in `crs`", examples=[22.6277], allow_inf_nan=False
    )
    crs: str = Field("wgs84", description=CRS_DESCRIPTION, examples=["wgs84"], max_length=64)
    accuracy_m: float | None = Field(
        None,
        ge=0,
        description="horizontal accuracy of the position, metres",
        examples=[8.0],
        allow_inf_nan=False,
    )
    media: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="sha256 of uploaded photos (uploaded first with PUT /media)",
        examples=[["3f0a1c5b9d2e4f6a8b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a"]],
    )


class Entry(ApiModel):
    """A stored service entry (personal fields masked outside the caller's units)."""

    id: int
    account_id: int
    account_name: str | None = None
    day: date
    kind: str
    kind_zh: str
    kind_en: str
    household_id: int | None = None
    building_id: int | None = None
    person_ids: list[int] | None = None
    people_count: int
    result: str | None = None
    note: str | None = None
    lon: float | None = Field(None, description="WGS84")
    lat: float | None = Field(None, description="WGS84")
    src_crs: str | None = None
    accuracy_m: float | None = None
    media: list[str] = Field(default_factory=list)
    grid_code: str | None = None
    community_code: str | None = None
    street_code: str | None = None
    district_code: str | None = None
    created_at: datetime
