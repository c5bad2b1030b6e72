"""The bodies and answers of ``/incidents`` and ``/register``.

Coordinates in requests are in the system named by ``crs``; answers give ``lon``/``lat``
in WGS84 (EPSG:4326) and the coordinate as received in ``src_crs``/``src_lon``/``src_lat``.
Times are ISO 8601; answers give them in UTC with an explicit offset.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from api.models.common import ApiModel
from api.models.media import MediaRef
from geogrid.core.hierarchy import Level
from geogrid.core.lifecycle import STATUSES

__all__ = [
    "CRS_DESCRIPTION",
    "IncidentIn",
    "TransitionIn",
    "NoteIn",
    "EscalateIn",
    "UnitRef",
    "IncidentEvent",
    "Incident",
    "OverdueIncident",
    "RegisterRow",
]

#: what a ``crs`` parameter accepts
CRS_DESCRIPTION = (
    "coordinate system of lon/lat: wgs84 (GPS, the default), gcj02 (AMap/Gaode, Tencent, "
    "WeChat), bd09 (Baidu) or an EPSG code (e.g. EPSG:4546, easting/northing in metres)"
)
_STATUS_LIST = ", ".join(STATUSES)

_SHA = "3f0a1c5b9d2e4f6a8b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a"
#: a file's SHA-256 (64 hexadecimal digits)
Sha256 = Annotated[
    str,
    Field(
        pattern="^[0-9a-fA-F]{64}$",
        description="SHA-256 of an uploaded file",
        examples=[_SHA],
    ),
]


class IncidentIn(ApiModel):
    """A new incident, as a worker or an admin reports it."""

    category: str = Field(
        description="category code (see GET /open311/v2/services.json)", examples=["garbage"]
    )
    lon: float = Field(
        description="longitude (or easting) in `crs`", examples=[110.1521], allow_inf_nan=False
    )
    lat: float = Field(
        description="latitude (or northing) in `crs`", examples=[22.6307], allow_inf_nan=False
    )
    crs: str = Field(
        "wgs84", description=CRS_DESCRIPTION, examples=["wgs84", "gcj02"], max_length=64
    )
    description: str | None = Field(
        None,
        description="what was found (at most 4,000 characters)",
        examples=["菜市场门口垃圾堆积"],
        max_length=4000,
    )
    reported_at: datetime | None = Field(
        None,
        description="when it was found (ISO 8601 with a time zone); default now",
        examples=["2026-05-04T09:00:00+08:00"],
    )
    # issue 13: photos uploaded first with PUT /media/{sha256}, and the GPS accuracy
    media: list[Sha256] | None = Field(
        None,
        max_length=20,
        description="sha256s of photos/videos uploaded with PUT /media/{sha256} (role report)",
        examples=[[_SHA]],
    )
    accuracy_m: float | None = Field(
        None,
        ge=0,
        le=100_000,
        allow_inf_nan=False,
        description="accuracy of the position in metres (the phone's GPS), kept",
        examples=[8.5],
    )


class TransitionIn(ApiModel):
    """A move of an incident to another status."""

    status: str = Field(
        description=f"the new status, one of {_STATUS_LIST}; the lifecycle decides which "
        "moves are allowed (409 otherwise)",
        examples=["accepted"],
    )
    note: str | None = Field(
        None,
        description="a note kept in the history (at most 2,000 characters)",
        examples=["已受理"],
        max_length=2000,
    )
    expected_updated_at: datetime | None = Field(
        None,
        description="the incident's `updated_at` as the caller last saw it: when it changed "
        "since, 409 with the current incident and nothing is changed",
        examples=["2026-05-04T01:00:00.123456+00:00"],
    )
    media: list[Sha256] | None = Field(
        None,
        max_length=20,
        description="sha256s of uploaded files (the 'after' photo when resolving)",
        examples=[[_SHA]],
    )


class NoteIn(ApiModel):
    """A note (and photos) added to an incident's history."""

    note: str = Field(
        min_length=1, max_length=2000, description="the note", examples=["已联系物业"]
    )
    media: list[Sha256] | None = Field(
        None, max_length=20, description="sha256s of uploaded files (role note)", examples=[[_SHA]]
    )
    public: bool = Field(
        False, description="a public status note, shown to residents", examples=[False]
    )
    expected_updated_at: datetime | None = Field(
        None,
        description="the incident's `updated_at` as last seen: 409 when it changed since",
        examples=["2026-05-04T01:00:00.123456+00:00"],
    )


class EscalateIn(ApiModel):
    """A hand-over of an incident to a higher level."""

    to_level: Level | None = Field(
        None,
        description="community, street or district; default the next level up",
        examples=["community"],
    )
    note: str | None = Field(
        None,
        description="a note kept in the history (at most 2,000 characters)",
        examples=["需要社区协调"],
        max_length=2000,
    )


class UnitRef(ApiModel):
    """A unit an incident lies in."""

    code: str = Field(description="unit code", examples=["450902001001"])
    name: str | None = Field(None, description="unit name", examples=["江滨社区"])


class IncidentEvent(ApiModel):
    """One event of an incident's history (events are never changed)."""

    id: int = Field(description="event id", examples=[17])
    at: datetime = Field(description="when it happened (UTC)")
    actor_id: int | None = Field(None, description="the account that did it", examples=[3])
    actor_name: str | None = Field(
        None,
        description="that account's name (masked, e.g. 李*, outside the caller's units)",
        examples=["李梅"],
    )
    kind: str = Field(description="status, flag or escalate", examples=["status"])
    from_status: str | None = Field(None, description="status before", examples=["reported"])
    to_status: str | None = Field(None, description="status after", examples=["accepted"])
    note: str | None = Field(
        None, description="the note given (*** outside the caller's units)", examples=["已受理"]
    )
    data: dict[str, Any] | None = Field(
        None, description="facts of the event (assignment, escalation levels, flags)"
    )


class Incident(ApiModel):
    """An incident with its attribution, assignment and lifecycle times."""

    id: int = Field(description="incident id", examples=[1024])
    source_id: str | None = Field(None, description="id in the source system, if imported")
    category: str = Field(description="category code", examples=["garbage"])
    category_name_zh: str | None = Field(None, description="category name (Chinese)")
    category_name_en: str | None = Field(None, description="category name (English)")
    description: str | None = Field(None, description="what was found")
    status: str = Field(description=f"one of {_STATUS_LIST}", examples=["reported"])
    src_crs: str | None = Field(None, description="the CRS the coordinate arrived in")
    src_lon: float | None = Field(None, description="longitude/easting as received")
    src_lat: float | None = Field(None, description="latitude/northing as received")
    lon: float | None = Field(None, description="longitude, WGS84 degrees", examples=[110.1521])
    lat: float | None = Field(None, description="latitude, WGS84 degrees", examples=[22.6307])
    reported_at: datetime = Field(description="when it was reported (UTC)")
    reporter_kind: str | None = Field(
        None, description="resident or the reporter's role", examples=["worker"]
    )
    reporter_id: int | None = Field(None, description="the reporting account")
    updated_at: datetime | None = Field(None, description="last change (UTC)")
    accepted_at: datetime | None = Field(None, description="when it was accepted")
    dispatched_at: datetime | None = Field(None, description="when it was dispatched")
    resolved_at: datetime | None = Field(None, description="when it was resolved")
    closed_at: datetime | None = Field(None, description="when it was closed/rejected")
    due_at: datetime | None = Field(None, description="the time limit (reported + limit)")
    assigned_level: str | None = Field(
        None, description="level of the responsible unit", examples=["grid"]
    )
    assigned_unit: str | None = Field(None, description="code of the responsible unit")
    assigned_unit_name: str | None = Field(None, description="name of the responsible unit")
    assignee_id: int | None = Field(None, description="the responsible account")
    version_id: int | None = Field(None, description="boundary version of the attribution")
    grid_code: str | None = Field(None, description="grid code (None outside every grid)")
    community_code: str | None = Field(None, description="community code")
    street_code: str | None = Field(None, description="street code")
    district_code: str | None = Field(None, description="district code")
    last_note: str | None = Field(
        None, description="the latest note of the history (*** outside the caller's units)"
    )
    address: str | None = Field(None, description="address given with the report")
    media_url: str | None = Field(None, description="photo URL given with the report")
    overdue: bool = Field(description="past its time limit and not resolved", examples=[False])
    units: dict[str, UnitRef] = Field(
        default_factory=dict, description="level → the unit it lies in, district first"
    )
    history: list[IncidentEvent] | None = Field(
        None, description="every event, oldest first (GET /incidents/{id} only)"
    )
    outside: bool | None = Field(
        None, description="on creation: True when it lies outside every grid (kept, flagged)"
    )
    # issue 13
    accuracy_m: float | None = Field(None, description="accuracy of the reported position (m)")
    resolved_by: int | None = Field(None, description="the account that resolved it")
    media: list[MediaRef] | None = Field(
        None,
        description="photos and videos (sha256, role, URLs): only to callers who see the "
        "incident's personal fields (its units' staff, admin); null for the others",
    )


class OverdueIncident(ApiModel):
    """An incident past its time limit and not resolved."""

    unit_code: str | None = Field(None, description="the unit it is grouped by")
    id: int = Field(description="incident id", examples=[1024])
    category: str = Field(description="category code", examples=["garbage"])
    status: str = Field(description="its status", examples=["accepted"])
    reported_at: datetime = Field(description="when it was reported (UTC)")
    due_at: datetime = Field(description="its time limit (UTC)")
    reported_at_local: str | None = Field(
        None,
        description="when it was reported, in the city's time zone (YYYY-MM-DD HH:MM)",
        examples=["2026-03-02 09:30"],
    )
    due_at_local: str | None = Field(
        None,
        description="its time limit in the city's time zone (YYYY-MM-DD HH:MM)",
        examples=["2026-03-03 09:30"],
    )
    hours_overdue: float = Field(description="hours past the time limit", examples=[6.5])
    assigned_level: str | None = Field(None, description="level of the responsible unit")
    assigned_unit: str | None = Field(None, description="code of the responsible unit")
    assignee_id: int | None = Field(None, description="the responsible account")
    grid_code: str | None = Field(None, description="grid code")
    community_code: str | None = Field(None, description="community code")
    street_code: str | None = Field(None, description="street code")
    district_code: str | None = Field(None, description="district code")


class RegisterRow(ApiModel):
    """One row of the monthly register (为民服务事项登记表): a worker, or a unit's workers."""

    month: str = Field(description="YYYY-MM", examples=["2026-05"])
    worker_id: int | None = Field(None, description="the worker (level=worker)")
    worker_name: str | None = Field(None, description="the worker's name (level=worker)")
    ref: str | None = Field(None, description="the worker's staff number (level=worker)")
    grid_codes: str | None = Field(
        None,
        description="the worker's grids, comma-separated (level=worker)",
        examples=["450902001001003,450902001001004"],
    )
    community_code: str | None = Field(None, description="community of the worker's grid")
    street_code: str | None = Field(None, description="street of the worker's grid")
    district_code: str | None = Field(None, description="district of the worker's grid")
    level: str | None = Field(None, description="the unit's level (roll-ups)")
    code: str | None = Field(None, description="the unit's code (roll-ups)")
    name: str | None = Field(None, description="the unit's name (roll-ups)")
    workers: int | None = Field(None, description="workers in the unit (roll-ups)")
    reported: int = Field(description="incidents the worker(s) reported in the month")
    handled: int = Field(description="incidents resolved in the month")
    on_time: int = Field(description="of those, resolved by their time limit")
    on_time_rate: float | None = Field(None, description="on_time / handled (null: none)")
    median_hours: float | None = Field(
        None, description="median hours from report to resolution (null: none)"
    )
    # issue 13: the daily service register's entries of the month, per kind
    svc_visit: int = Field(0, description="service entries 走访入户 (household visits)")
    svc_mediation: int = Field(0, description="service entries 矛盾调解 (dispute mediation)")
    svc_paperwork: int = Field(0, description="service entries 代办服务 (help with paperwork)")
    svc_hazard: int = Field(0, description="service entries 隐患排查 (hazard checks)")
    svc_policy: int = Field(0, description="service entries 政策宣传 (policy explained)")
    svc_other: int = Field(0, description="service entries 其他 (other)")
    entries: int = Field(0, description="service entries of the month, all kinds")
    people_served: int = Field(0, description="people served by those entries")
