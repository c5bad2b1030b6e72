"""Open311 GeoReport v2 bodies and answers, with the spec's field names.

See https://wiki.open311.org/GeoReport_v2. The one extension is ``crs`` on
``POST requests``: ``lat``/``long`` may be GCJ-02 or BD-09 coordinates from Chinese phone
maps. Times are ISO 8601 (W3C) with an offset, in UTC, to the second.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from api.models.common import ApiModel
from api.models.incidents import CRS_DESCRIPTION

__all__ = [
    "Open311Error",
    "Open311Service",
    "Open311ServiceDefinition",
    "Open311RequestIn",
    "Open311Created",
    "Open311Request",
]

_NOT_STORED = "accepted and not stored (personal data)"


class Open311Error(ApiModel):
    """An Open311 error; error answers are a list of these with the same HTTP status."""

    code: int = Field(description="the HTTP status", examples=[400])
    description: str = Field(
        description="what went wrong", examples=["format 'xml' not supported: use .json"]
    )


class Open311Service(ApiModel):
    """A service: one active incident category."""

    service_code: str = Field(description="the category code", examples=["garbage"])
    service_name: str = Field(description="the category name", examples=["垃圾乱堆乱放"])
    description: str = Field(description="names and the time limit")
    metadata: bool = Field(description="always false: no extra attributes", examples=[False])
    type: str = Field(description="always realtime", examples=["realtime"])
    keywords: str = Field(description="comma-separated names and code")
    group: str = Field(description="the service group", examples=["sanitation 环境卫生"])


class Open311ServiceDefinition(ApiModel):
    """A service definition (no extra attributes are asked for)."""

    service_code: str = Field(description="the category code", examples=["dispute"])
    attributes: list[dict[str, Any]] = Field(description="always empty", examples=[[]])


class Open311RequestIn(ApiModel):
    """The body of ``POST requests.json`` (form-encoded, or a JSON object); text fields
    hold at most 4,000 characters."""

    model_config = ConfigDict(extra="ignore", str_max_length=4000)

    service_code: str = Field(description="a service code from services.json", examples=["garbage"])
    lat: float | None = Field(
        None,
        description="latitude, WGS84 degrees (or in `crs`); required with `long` (this "
        "server cannot place an address alone)",
        examples=[22.6307],
        allow_inf_nan=False,
    )
    long: float | None = Field(
        None,
        description="longitude, WGS84 degrees (or in `crs`)",
        examples=[110.1521],
        allow_inf_nan=False,
    )
    crs: str = Field(
        "wgs84", description=f"extension: {CRS_DESCRIPTION}", examples=["wgs84", "gcj02"]
    )
    address_string: str | None = Field(
        None, description="the address as the resident wrote it", examples=["江滨路12号"]
    )
    address_id: str | None = Field(
        None, description="ignored (no address database)", examples=["A-1024"]
    )
    description: str | None = Field(
        None,
        description="what the problem is (at most 4,000 characters)",
        examples=["小区门口垃圾三天没人清"],
    )
    media_url: str | None = Field(
        None, description="a photo's URL", examples=["https://example.org/p.jpg"]
    )
    api_key: str | None = Field(
        None,
        description="a bearer token of an account (optional: without it the report is an "
        "anonymous resident report; an unknown key is refused with 401)",
        examples=["k3R9v0Qm2Zb7…"],
    )
    jurisdiction_id: str | None = Field(
        None, description="ignored (one jurisdiction)", examples=["city.example.org"]
    )
    email: str | None = Field(
        None, description=f"the resident's e-mail: {_NOT_STORED}", examples=["a@example.org"]
    )
    device_id: str | None = Field(
        None, description=f"the device's id: {_NOT_STORED}", examples=["d-7f3a"]
    )
    account_id: str | None = Field(
        None, description=f"the resident's account: {_NOT_STORED}", examples=["r-42"]
    )
    first_name: str | None = Field(
        None, description=f"first name: {_NOT_STORED}", examples=["小红"]
    )
    last_name: str | None = Field(None, description=f"last name: {_NOT_STORED}", examples=["王"])
    phone: str | None = Field(
        None, description=f"phone number: {_NOT_STORED}", examples=["13800000000"]
    )


class Open311Created(ApiModel):
    """The answer to a new service request."""

    service_request_id: str = Field(description="the new request's id", examples=["1024"])
    service_notice: str | None = Field(None, description="due time and the unit it was assigned to")
    account_id: str | None = Field(None, description="always null", examples=[None])


class Open311Request(ApiModel):
    """A service request (an incident) with the spec's fields."""

    service_request_id: str = Field(description="the request's id", examples=["1024"])
    status: str = Field(
        description="open, or closed once resolved/closed/rejected/duplicate",
        examples=["open"],
    )
    status_notes: str | None = Field(
        None,
        description="the public text of the status (never a staff note or a name)",
        examples=["已处理 resolved"],
    )
    service_name: str = Field(description="the category name", examples=["垃圾乱堆乱放"])
    service_code: str = Field(description="the category code", examples=["garbage"])
    description: str | None = Field(
        None, description="what the problem is (phones, ID numbers and e-mails masked)"
    )
    agency_responsible: str | None = Field(
        None,
        description="the unit it is assigned to: name (code)",
        examples=["江滨社区第2网格 (450902001001002)"],
    )
    service_notice: str | None = Field(None, description="a notice (e.g. outside every grid)")
    requested_datetime: datetime | None = Field(None, description="when it was reported")
    updated_datetime: datetime | None = Field(None, description="its last change")
    expected_datetime: datetime | None = Field(None, description="its time limit")
    address: str | None = Field(None, description="the address given")
    address_id: str | None = Field(None, description="always null")
    zipcode: str | None = Field(None, description="always null")
    lat: float | None = Field(None, description="latitude, WGS84 degrees", examples=[22.6307])
    long: float | None = Field(None, description="longitude, WGS84 degrees", examples=[110.1521])
    media_url: str | None = Field(None, description="the photo's URL")
