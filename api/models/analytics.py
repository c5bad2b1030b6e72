"""The answers of the analytics routes: ``/metrics`` (the catalogue), ``/metrics/{level}``
(per-unit load metrics as rows or GeoJSON), ``/metrics/{level}/{code}/trend`` and
``/hotspots`` (Getis-Ord Gi*).

The per-unit fields are generated from the one metric catalogue
(:data:`geogrid.core.metric_catalogue.METRICS`), so their descriptions cannot drift.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, create_model

from api.models.common import ApiModel, FeatureCollection
from geogrid.core.metric_catalogue import METRICS

__all__ = [
    "HotspotUnit",
    "Hotspots",
    "MetricCatalogue",
    "MetricsFeatureCollection",
    "TrendPeriod",
    "UnitMetrics",
    "UnitMetricsPage",
    "UnitTrend",
    "WindowMeta",
]

Level = Literal["district", "street", "community", "grid"]

#: metrics that are whole counts (the others are numbers that may be null)
_COUNTS = {"incidents", "open_backlog", "overdue", "previous_incidents", "change"}


class MetricCatalogue(ApiModel):
    """Every metric with its meaning and unit, and the levels metrics are computed for."""

    metrics: dict[str, str] = Field(
        description="metric name → description with its unit",
        examples=[{"incidents": METRICS["incidents"]}],
    )
    levels: list[Level] = Field(
        description="levels, from the grid up", examples=[["grid", "community", "street"]]
    )


class WindowMeta(ApiModel):
    """What a metrics answer was computed over."""

    version_id: int = Field(description="boundary version of the units", examples=[3])
    level: Level = Field(description="level of the units", examples=["grid"])
    start: datetime = Field(description="start of the window (inclusive)")
    end: datetime = Field(description="end of the window (exclusive)")
    as_at: datetime = Field(description="the time the state (backlog, overdue) is read at")
    previous_start: datetime = Field(
        description="start of the previous window of the same length (for change)"
    )
    categories: list[str] | None = Field(
        None, description="the categories counted (null: all)", examples=[["sanitation"]]
    )
    weights: dict[str, float] = Field(
        description="weights of the load index terms",
        examples=[{"incidents": 0.6, "households": 0.3, "area": 0.1}],
    )


def _metric_field(name: str, description: str) -> tuple[Any, Any]:
    if name in _COUNTS:
        return (int, Field(description=description, examples=[12]))
    return (float | None, Field(None, description=description + " (null when undefined)"))


_UnitFields: dict[str, Any] = {
    "code": (str, Field(description="unit code", examples=["450902001001001"])),
    "name": (str, Field(description="unit name", examples=["江滨社区第1网格"])),
    "level": (Level, Field(description="level of the unit", examples=["grid"])),
    "parent_code": (
        str | None,
        Field(None, description="code of the unit above", examples=["450902001001"]),
    ),
    **{k: _metric_field(k, v) for k, v in METRICS.items()},
}

#: one unit's metrics (fields: the unit, then every metric of the catalogue)
UnitMetrics: type[ApiModel] = create_model(
    "UnitMetrics",
    __base__=ApiModel,
    __doc__="One unit's load metrics for the window (see GET /metrics for the definitions).",
    **_UnitFields,
)


class UnitMetricsPage(WindowMeta):
    """Load metrics of every unit of a level, ordered by code."""

    units: list[UnitMetrics] = Field(description="one row per unit of the level")


class MetricsFeatureCollection(FeatureCollection):
    """Load metrics of every unit as GeoJSON (EPSG:4326): properties as ``units`` rows of
    ``format=json``; ``metadata`` says what they were computed over."""

    metadata: WindowMeta = Field(description="the window, version and weights")


class TrendPeriod(ApiModel):
    """Incidents of one period (week from Monday, or calendar month) of a unit."""

    period: date = Field(
        description="local date the period starts on (the city's time zone)",
        examples=["2026-03-02"],
    )
    period_start: datetime = Field(description="the instant the period starts")
    incidents: int = Field(description="incidents reported in the period", examples=[14])
    resolved: int = Field(description="of those, resolved or closed now", examples=[11])


class UnitTrend(ApiModel):
    """Incidents of one unit per week or month; every period of the window appears."""

    level: Level = Field(description="level of the unit", examples=["community"])
    code: str = Field(description="unit code", examples=["450902001001"])
    interval: Literal["week", "month"] = Field(description="period length", examples=["week"])
    periods: list[TrendPeriod] = Field(description="the periods, oldest first")


class HotspotUnit(ApiModel):
    """The Gi* result of one unit."""

    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    code: str = Field(description="unit code", examples=["450902001001001"])
    name: str = Field(description="unit name", examples=["江滨社区第1网格"])
    value: float = Field(description="the metric's value (null counted as 0)", examples=[17.0])
    z: float | None = Field(None, description="Gi* z-score (null when the metric is constant)")
    p_value: float | None = Field(None, description="two-sided p-value of z")
    p_fdr: float | None = Field(None, description="p-value after Benjamini–Hochberg")
    class_: str = Field(
        alias="class",
        description="hot_99, hot_95, hot_90, not_significant, cold_90, cold_95 or cold_99",
        examples=["hot_95"],
    )


class Hotspots(WindowMeta):
    """Getis-Ord Gi* hot and cold spots of a metric over the units of a level."""

    metric: str = Field(description="the metric tested", examples=["incidents"])
    classes: dict[str, int] = Field(
        description="number of units per class", examples=[{"hot_99": 41, "not_significant": 8700}]
    )
    units: list[HotspotUnit] = Field(description="one row per unit, ordered by code")
