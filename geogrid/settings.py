"""Settings read once from the environment (prefix ``GEOGRID_``), with pydantic-settings.

``GEOGRID_DATABASE_URL``  SQLAlchemy URL of a PostGIS database. Unset: the embedded
                          cluster (see :mod:`geogrid.store.cluster`).
``GEOGRID_DATABASE_REPLICA_URL`` a streaming replica for read-only work (optional; see
                          :mod:`geogrid.services.replica`).
``GEOGRID_HOME``          folder for the embedded cluster and caches (default ``./var``).
``GEOGRID_PG_PORT``       port of the embedded cluster (default 55432).
``GEOGRID_REDIS_URL``     Redis for the shared tile cache (optional; memory cache otherwise).
``GEOGRID_BODY_LIMIT``, ``GEOGRID_RATE_LIMITS``, ``GEOGRID_RATE_LIMITS_ANONYMOUS`` (JSON), …
                          request limits (see :class:`Settings` and :mod:`api.limits`).
``GEOGRID_CATEGORIES``    CSV overriding the incident category catalogue.
``GEOGRID_CITY_FILE``     a JSON or TOML file describing the city (:class:`City`).
``GEOGRID_CITY__<FIELD>`` one field of the city (e.g. ``GEOGRID_CITY__NAME_ZH``); overrides
                          the file's. With neither, a city with no name (the page then
                          shows the top unit's name, or "geogrid") in China Standard Time.

A city is configuration, not code: its name, time zone, metric CRS, default map view and
category catalogue live in :class:`City`. Times are stored in UTC and shown in
``city.timezone``; lengths and areas are measured in ``city.metric_crs`` (when unset, the
CGCS2000 3° Gauss-Kruger zone of the published boundaries' central longitude, see
:mod:`geogrid.services.city`). The demo's city file lives in ``geogrid/demo/``.

A city file holds the :class:`City` fields at its top level or under a ``[city]`` table;
``timezone`` is required in a file. A relative ``categories`` path is read relative to the
file::

    [city]
    code = "340100"
    name_zh = "合肥市"
    name_en = "Hefei"
    timezone = "Asia/Shanghai"
    center = [117.23, 31.82]
    zoom = 9
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyproj
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pyproj.exceptions import CRSError

__all__ = ["DEFAULT_TIMEZONE", "City", "CityFileError", "Settings", "get_settings", "load_city"]

DEFAULT_TIMEZONE = "Asia/Shanghai"
"""China Standard Time (UTC+8), the zone of a city configured without a file. A city file
must name its zone."""


class City(BaseModel):
    """What makes one city's service differ from another's.

    Every field is optional except in a city file, which must name the ``timezone``; unset
    fields are derived from the published boundaries when the service needs them
    (:func:`geogrid.services.city.city_profile`).

    >>> City().timezone
    'Asia/Shanghai'
    >>> City(name_en="Testcity", timezone="Asia/Urumqi", metric_crs="epsg:4548").metric_crs
    'EPSG:4548'
    """

    model_config = {"frozen": True}

    code: str | None = Field(default=None, description="administrative code of the city (6 digits)")
    name_zh: str | None = Field(default=None, description="the city's name in Chinese")
    name_en: str | None = Field(default=None, description="the city's name in English")
    timezone: str = Field(
        default=DEFAULT_TIMEZONE,
        description="IANA time zone in which times are shown and read",
    )
    metric_crs: str | None = Field(
        default=None,
        description="projected CRS for lengths and areas, as 'EPSG:n'; unset: the CGCS2000 3° "
        "Gauss-Kruger zone of the published boundaries' central longitude",
    )
    center: tuple[float, float] | None = Field(
        default=None,
        description="default map centre, WGS84 (lon, lat); unset: the boundaries' centre",
    )
    zoom: float | None = Field(
        default=None,
        description="default map zoom (Web Mercator zoom level); unset: fit the boundaries",
    )
    categories: Path | None = Field(
        default=None,
        description="CSV of the incident category catalogue (default: the shipped one)",
    )
    source: str | None = Field(
        default=None, description="the data's source line shown on maps (attribution)"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r} (an IANA name, e.g. Asia/Shanghai)") from exc
        return v

    @field_validator("metric_crs")
    @classmethod
    def _projected(cls, v: str | None) -> str | None:
        if v is None:
            return None
        try:
            crs = pyproj.CRS.from_user_input(v)
        except CRSError as exc:
            raise ValueError(f"unknown CRS {v!r} (a projected CRS, e.g. EPSG:4548)") from exc
        if not crs.is_projected:
            raise ValueError(f"{v!r} is not a projected (metric) CRS")
        auth = crs.to_authority()
        return f"{auth[0]}:{auth[1]}" if auth else crs.to_string()

    @field_validator("center")
    @classmethod
    def _lon_lat(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not (-180 <= v[0] <= 180 and -90 <= v[1] <= 90):
            raise ValueError(f"center {v!r} is not a WGS84 (lon, lat) pair")
        return v


class CityFileError(ValueError):
    """A city file that is missing, unreadable or invalid (the message names the file and
    the field). Settings sit below :mod:`geogrid.errors` in the layers, so this is a plain
    ``ValueError``."""

    def __init__(self, path: Path, problem: str):
        self.path = path
        super().__init__(f"city file {str(path)!r}: {problem}")


def load_city(path: str | Path) -> City:
    """Read a :class:`City` from a JSON or TOML file (fields at the top or under ``city``).

    Raises
    ------
    CityFileError
        When the file is missing, unreadable, has no ``timezone`` or an invalid field.
    """
    p = Path(path)
    if not p.is_file():
        raise CityFileError(p, "no such file (GEOGRID_CITY_FILE names a .toml or .json file)")
    try:
        text = p.read_text(encoding="utf-8")
        raw: Any = tomllib.loads(text) if p.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise CityFileError(p, f"cannot be read as TOML or JSON: {exc}") from exc
    fields = raw.get("city", raw) if isinstance(raw, dict) else None
    if not isinstance(fields, dict) or "timezone" not in fields:
        raise CityFileError(p, "timezone is required (an IANA name, e.g. Asia/Shanghai)")
    categories = fields.get("categories")
    if categories is not None and not Path(categories).is_absolute():
        fields = {**fields, "categories": str(p.resolve().parent / categories)}
    try:
        return City.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise CityFileError(p, problems) from exc


class Settings(BaseSettings):
    """The process's settings, read once (:func:`get_settings`).

    >>> Settings(city=City(name_en="Testcity")).city.name_en
    'Testcity'
    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "city.json"
    >>> _ = f.write_text('{"name_zh": "测试市", "timezone": "Asia/Urumqi", '
    ...                  '"metric_crs": "EPSG:4548"}', encoding="utf-8")
    >>> s = Settings(city_file=f, city=City(name_en="Testcity"))
    >>> s.city.name_zh, s.city.name_en, s.city.metric_crs, s.city.timezone
    ('测试市', 'Testcity', 'EPSG:4548', 'Asia/Urumqi')
    """

    model_config = SettingsConfigDict(
        env_prefix="GEOGRID_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    database_url: str | None = None
    #: issue 12 (replicas, geogrid.services.replica): a streaming replica of the database
    #: for read-only work (tiles, OGC items, metrics, locate, incident lists); reads leave
    #: it for the primary when it is down or lags more than ``replica_max_lag_s`` seconds
    #: (checked at most every ``replica_check_s`` seconds)
    database_replica_url: str | None = None
    replica_max_lag_s: float = Field(default=5.0, ge=0)
    replica_check_s: float = Field(default=2.0, gt=0)
    home: Path = Path("var")
    pg_port: int = 55432
    redis_url: str | None = None
    #: FastAPI's native OpenTelemetry spans, metrics and logs (off: with no provider
    #: configured they cost ~0.3 ms of CPU per request looking the providers up; turn on
    #: with a provider set up, e.g. by ``opentelemetry-instrument``)
    opentelemetry: bool = False
    #: the serving process's GIL switch interval in ms (None: Python's 5 ms). Routes run
    #: in threads beside the event loop; a thread whose database answer has arrived waits
    #: up to this long for the GIL while another runs Python, at each round trip
    switch_interval_ms: float | None = Field(default=None, gt=0, le=100)
    #: issue 10: requests of a serving process running in threads at once (the sync
    #: routes; anyio's default is 40) — and the database connections each process keeps
    #: open for them (``geogrid.store.engine``), so a burst never opens and closes
    #: connections. Two cores gain nothing from more than a few transactions at once
    request_threads: int = Field(default=20, ge=1, le=200)
    tile_cache_size: int = 20_000
    city_file: Path | None = None
    city: City = City()
    #: password of the demo's logins ``demo-leader`` and ``demo-planner``
    #: (``GEOGRID_DEMO_PASSWORD``); without it the demo has no logins (no default password)
    demo_password: SecretStr | None = None
    #: request limits (api/limits.py): bytes of a request body; of a plan's body (/plans)
    body_limit: int = 262_144
    body_limit_plans: int = 8_388_608
    #: issue 13: bytes of a patrol upload (a day's track with its check-ins)
    body_limit_patrols: int = 4_194_304
    #: issue 13 (media): bytes of a photo (PUT /media, the whole file) and of a video
    media_image_limit: int = 10 * 1024 * 1024
    media_video_limit: int = 50 * 1024 * 1024
    #: issue 13 (media): where files are stored: "local" (``<home>/media``, the default)
    #: or "s3" (an S3-compatible store through boto3: bucket, optional endpoint and prefix;
    #: credentials from boto3's usual environment/config)
    media_store: str = "local"
    media_s3_bucket: str | None = None
    media_s3_endpoint: str | None = None
    media_s3_prefix: str = "media/"
    #: rate limits (the ``limits`` library's notation) per request class ("cheap",
    #: "standard", "expensive"): per IP for anonymous callers, per credential otherwise;
    #: stored in ``redis_url`` when set (shared by workers), in memory otherwise
    rate_limits: bool = True
    rate_limits_anonymous: dict[str, str] = {
        "cheap": "200/second",
        "standard": "50/second;1200/minute",
        "expensive": "60/minute",
        # issue 14: the residents' public forms (/s/, /e/, /satisfaction/, /evaluations/)
        "public_form": "20/minute;200/hour",
    }
    rate_limits_account: dict[str, str] = {
        "cheap": "500/second",
        "standard": "500/second",
        "expensive": "300/minute",
    }
    #: server time per caller (standard and expensive requests), in tenths of a second of
    #: the time requests took: a caller whose requests used it up waits (429)
    time_budget_anonymous: str = "60/minute"
    time_budget_account: str = "1200/minute"
    #: heavy requests (api/limits.py) running at once in the whole deployment: the worker
    #: processes share the gate in ``redis_url`` when set (``expensive_gate = "shared"``),
    #: else each process has its own; of them at most ``expensive_concurrency_anonymous``
    #: for anonymous callers. Up to ``expensive_queue`` per process wait at most
    #: ``expensive_wait`` seconds; the others get 503 with Retry-After at once
    expensive_concurrency: int = 2
    expensive_concurrency_anonymous: int = 1
    expensive_queue: int = 16
    expensive_wait: float = 15.0
    expensive_gate: Literal["shared", "process"] = "shared"
    #: seconds a slot of the shared gate lasts unless renewed (renewed every third of it
    #: while its request runs; the slot of a worker killed mid-request frees after this)
    expensive_lease_s: float = Field(default=15.0, gt=0)
    #: issue 10: processes per worker running the CPU-heavy part of expensive analytics
    #: (Gi* with its permutations, windowed metrics) out of the serving process, at this
    #: niceness (0 processes: in the serving process's thread pool)
    expensive_processes: int = Field(default=1, ge=0)
    expensive_nice: int = Field(default=10, ge=0, le=19)
    #: statement_timeout (ms) of the database per request class; an anonymous caller's
    #: requests take ``statement_timeouts_anonymous`` for the classes it names
    statement_timeouts: dict[str, int] = {"cheap": 5_000, "standard": 30_000, "expensive": 60_000}
    statement_timeouts_anonymous: dict[str, int] = {"expensive": 15_000}
    #: ``GEOGRID_CATEGORIES``: a catalogue CSV for a city that names none
    categories: Path | None = None
    #: issue 13 (notifications, geogrid.services.notifications): outbound channels
    #: ("webhook", "log"; none: in the app only), the webhook's URL and HMAC secret, its
    #: tries per run and backoff (s), the due-soon window (h) and the app's refresh period
    #: (s; 0 = no periodic task)
    notify_channels: list[str] = []
    notify_webhook_url: str | None = None
    notify_webhook_secret: SecretStr | None = None
    notify_webhook_tries: int = 3
    notify_webhook_backoff: float = 0.5
    notify_due_soon_hours: float = 2.0
    notify_interval: float = 60.0
    #: issue 13 (patrols, geogrid.core.patrol): keep a GPS point at most every this many
    #: seconds; drop points whose reported accuracy is worse than this many metres
    patrol_min_interval_s: float = 5.0
    patrol_max_accuracy_m: float = 50.0
    #: issue 10: how long an Idempotency-Key is remembered (days). A retry after this is a
    #: new request: keep it longer than a terminal may stay offline.
    idempotency_ttl_days: int = Field(default=30, ge=1)
    #: issue 15: the registry's master key (``GEOGRID_REGISTRY_KEY``, base64 of 32 bytes);
    #: unset: the key file ``<home>/registry.key`` (created 0600 when missing)
    registry_key: SecretStr | None = None
    #: issue 15 (registry reads, geogrid.services.registry): counts from 1 to k − 1 in the
    #: aggregates read by leaders, analysts and planners are suppressed
    registry_k: int = Field(default=5, ge=1, le=1000)
    #: issue 14 (residents): a satisfaction link's lifetime (days); what an answer does
    #: (geogrid.core.satisfaction.SatisfactionRules); the follow-up sample
    #: (FollowUpRules: share of other closed incidents, per-category shares, dispute
    #: categories, days a follow-up is due); evaluation criteria (code → {zh, en}; empty:
    #: geogrid.core.evaluation.DEFAULT_CRITERIA); the year-end review's scheme
    #: (geogrid.core.review.ReviewScheme fields, e.g. {"weights": {"satisfaction": 0.3}})
    survey_link_days: float = Field(default=14.0, gt=0)
    satisfaction_reopen: bool = True
    satisfaction_reopen_max_score: int = Field(default=2, ge=0, le=5)
    satisfaction_close_min_score: int = Field(default=3, ge=1, le=6)
    follow_up_rate: float = Field(default=0.10, ge=0, le=1)
    follow_up_rates: dict[str, float] = {}
    follow_up_dispute_categories: list[str] = ["dispute"]
    follow_up_due_days: float = Field(default=7.0, gt=0)
    evaluation_criteria: dict[str, dict[str, str]] = {}
    review_scheme: dict[str, Any] = {}

    def model_post_init(self, __context: Any) -> None:
        object.__setattr__(self, "home", Path(self.home).resolve())
        if not self.database_url:
            object.__setattr__(self, "database_url", None)
        if not self.redis_url:
            object.__setattr__(self, "redis_url", None)
        if not self.database_replica_url:
            object.__setattr__(self, "database_replica_url", None)
        if self.city_file is not None:
            city = load_city(self.city_file)
            if "city" in self.model_fields_set:  # given fields override the file's
                given = self.city.model_dump(include=self.city.model_fields_set)
                city = City.model_validate({**city.model_dump(), **given})
            object.__setattr__(self, "city", city)
        if self.categories is not None and self.city.categories is None:
            city = City.model_validate({**self.city.model_dump(), "categories": self.categories})
            object.__setattr__(self, "city", city)

    @property
    def pg_data(self) -> Path:
        """Data folder of the embedded cluster."""
        return self.home / "pg"

    @property
    def embedded(self) -> bool:
        """Whether the embedded cluster is used (no ``GEOGRID_DATABASE_URL``)."""
        return not self.database_url


def get_settings() -> Settings:
    """Read the ``GEOGRID_*`` settings from the environment. The app factory and each CLI
    command read them once and pass them on."""
    return Settings()
