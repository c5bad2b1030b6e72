"""Settings read once from the environment (prefix ``GEOGRID_``), with pydantic-settings.

``GEOGRID_DATABASE_URL``  SQLAlchemy URL of a PostGIS database. Unset: the embedded
                          cluster (see :mod:`geogrid.store.cluster`).
``GEOGRID_HOME``          folder for the embedded cluster and caches (default ``./var``).
``GEOGRID_PG_PORT``       port of the embedded cluster (default 55432).
``GEOGRID_REDIS_URL``     Redis for the shared tile cache (optional; memory cache otherwise).
``GEOGRID_CATEGORIES``    CSV overriding the incident category catalogue.
``GEOGRID_CITY_FILE``     a JSON or TOML file describing the city (:class:`City`); without
                          it, ``GEOGRID_CITY__<FIELD>`` variables, else the Yulin demo.

A city is configuration, not code: its name, time zone, metric CRS, default map view and
category catalogue live in :class:`City`. Times are stored in UTC and shown in
``city.timezone``; lengths and areas are measured in ``city.metric_crs`` (when unset, the
CGCS2000 3° Gauss-Kruger zone of the data's longitude).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["City", "Settings", "get_settings", "load_city"]


class City(BaseModel):
    """What makes one city's service differ from another's.

    >>> City(code="450900", name_zh="玉林市", name_en="Yulin").timezone
    'Asia/Shanghai'
    """

    model_config = {"frozen": True}

    code: str = Field("450900", description="administrative code of the city (6 digits)")
    name_zh: str = Field("玉林市", description="the city's name in Chinese")
    name_en: str = Field("Yulin", description="the city's name in English")
    timezone: str = Field(
        "Asia/Shanghai", description="IANA time zone in which times are shown and read"
    )
    metric_crs: str | None = Field(
        None,
        description="CRS for lengths and areas (e.g. EPSG:4546); unset: the CGCS2000 3° "
        "Gauss-Kruger zone of the data's central longitude",
    )
    center: tuple[float, float] = Field(
        (110.16, 22.65), description="default map centre, WGS84 (lon, lat)"
    )
    zoom: float = Field(8.5, description="default map zoom (Web Mercator zoom level)")
    categories: Path | None = Field(
        None, description="CSV of the incident category catalogue (default: the shipped one)"
    )
    source: str = Field(
        "Yulin demo data (synthetic hierarchy on the real county outlines)",
        description="the data's source line shown on maps",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r} (an IANA name, e.g. Asia/Shanghai)") from exc
        return v


def load_city(path: str | Path) -> City:
    """Read a :class:`City` from a JSON or TOML file."""
    p = Path(path)
    raw: dict[str, Any]
    if p.suffix.lower() == ".toml":
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    else:
        raw = json.loads(p.read_text(encoding="utf-8"))
    return City.model_validate(raw.get("city", raw))


class Settings(BaseSettings):
    """The process's settings, read once (:func:`get_settings`)."""

    model_config = SettingsConfigDict(
        env_prefix="GEOGRID_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    database_url: str | None = None
    home: Path = Path("var")
    pg_port: int = 55432
    redis_url: str | None = None
    tile_cache_size: int = 20_000
    city_file: Path | None = None
    city: City = City()

    def model_post_init(self, __context: Any) -> None:
        object.__setattr__(self, "home", Path(self.home).resolve())
        if not self.database_url:
            object.__setattr__(self, "database_url", None)
        if not self.redis_url:
            object.__setattr__(self, "redis_url", None)
        if self.city_file is not None:
            object.__setattr__(self, "city", load_city(self.city_file))

    @property
    def pg_data(self) -> Path:
        return self.home / "pg"

    @property
    def embedded(self) -> bool:
        return not self.database_url


def get_settings() -> Settings:
    """Read the ``GEOGRID_*`` settings from the environment. The app factory and each CLI
    command read them once and pass them on."""
    return Settings()
