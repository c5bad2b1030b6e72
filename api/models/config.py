"""The answer of ``GET /config``: the city, its vocabulary and catalogues, for clients."""

from __future__ import annotations

from pydantic import Field

from api.models.common import ApiModel

__all__ = ["CityInfo", "LevelInfo", "MetricInfo", "CategoryInfo", "ClientConfig"]


class CityInfo(ApiModel):
    """The city served: configured (``GEOGRID_CITY_FILE``), unset fields derived from the
    published boundaries."""

    code: str | None = Field(
        description="administrative code of the city, when configured", examples=["340100"]
    )
    name_zh: str = Field(description="the city's name in Chinese", examples=["合肥市"])
    name_en: str = Field(description="the city's name in English", examples=["Hefei"])
    timezone: str = Field(
        description="IANA time zone in which local times (days, weeks, months) are counted",
        examples=["Asia/Shanghai"],
    )
    metric_crs: str | None = Field(
        description="CRS of lengths and areas (configured, else the CGCS2000 3° Gauss-Kruger "
        "zone of the boundaries' centre); null before any boundaries are published",
        examples=["EPSG:4548"],
    )
    center: list[float] = Field(
        description="default map centre, WGS84 [lon, lat]", examples=[[117.23, 31.82]]
    )
    zoom: float = Field(description="default map zoom (Web Mercator)", examples=[9.0])
    source: str = Field(
        description="the data's source line (map attribution)", examples=["Hefei open data"]
    )


class LevelInfo(ApiModel):
    """One level of the unit hierarchy."""

    key: str = Field(description="level name used by the API", examples=["street"])
    name_zh: str = Field(description="display name in Chinese", examples=["街道/乡镇"])
    name_en: str = Field(description="display name in English", examples=["Street/town"])
    code_length: int = Field(description="length of a unit code at this level", examples=[9])


class MetricInfo(ApiModel):
    """One per-unit metric (``/metrics``, tiles, OGC collections)."""

    key: str = Field(description="metric name", examples=["incidents"])
    description: str = Field(
        description="meaning and unit", examples=["Incidents reported in the window (count)"]
    )


class CategoryInfo(ApiModel):
    """One active incident category."""

    code: str = Field(description="category code", examples=["garbage"])
    name_zh: str = Field(description="display name in Chinese", examples=["垃圾乱堆乱放"])
    name_en: str = Field(description="display name in English", examples=["Garbage dumped"])


class ClientConfig(ApiModel):
    """Everything a client (the web page) needs before its first request."""

    city: CityInfo = Field(description="the city served")
    levels: list[LevelInfo] = Field(description="the unit levels, district (top) to grid")
    metrics: list[MetricInfo] = Field(description="the per-unit metrics")
    statuses: list[str] = Field(
        description="incident statuses in lifecycle order",
        examples=[["reported", "accepted", "dispatched", "resolved", "closed"]],
    )
    categories: list[CategoryInfo] = Field(description="the active incident categories")
    # issue 13 (TERM-B): the phone app's register kinds and patrol sampling
    service_kinds: list[CategoryInfo] = Field(
        default_factory=list,
        description="the kinds of the daily service register (为民服务事项登记表)",
    )
    patrol: dict[str, float] = Field(
        default_factory=dict,
        description="GPS sampling of a patrol: interval_s (seconds between kept fixes), "
        "max_accuracy_m (fixes less accurate are dropped)",
        examples=[{"interval_s": 5.0, "max_accuracy_m": 50.0}],
    )
