"""The demo's city: Yulin (玉林市), configured by ``geogrid/demo/yulin.toml``.

``scripts/run.sh`` serves the demo with ``GEOGRID_CITY_FILE`` set to :data:`CITY_FILE`; the
builders read their metric CRS and time zone from :data:`CITY`.

>>> CITY.name_en, CITY.metric_crs, CITY.timezone
('Yulin', 'EPSG:4546', 'Asia/Shanghai')
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from geogrid.settings import City, load_city

__all__ = ["CITY", "CITY_FILE", "METRIC_CRS", "TIMEZONE"]

#: the demo's city file (TOML)
CITY_FILE: Final[Path] = Path(__file__).resolve().with_name("yulin.toml")
#: the demo's city
CITY: Final[City] = load_city(CITY_FILE)
#: CRS of the demo's areas (CGCS2000 / 3-degree Gauss-Kruger CM 111E)
METRIC_CRS: Final[str] = CITY.metric_crs or "EPSG:4546"
#: the demo's local time zone
TIMEZONE: Final[str] = CITY.timezone
