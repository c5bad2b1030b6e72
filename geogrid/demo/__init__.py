"""Deterministic synthetic Yulin demo: boundaries, buildings, workers, incidents.

Pure functions returning (Geo)DataFrames; nothing here touches a database
(:mod:`geogrid.services.demo` stores them).

* :data:`CITY` / :data:`CITY_FILE` — the demo's city (``geogrid/demo/yulin.toml``: name,
  time zone, metric CRS, map view, source line).
* :func:`build_hierarchy` / :func:`build_buildings` / :func:`build_demo` — the four-level
  unit hierarchy generated inside the 7 real Yulin county polygons, and its buildings.
* :func:`build_workers` — one grid worker per grid (a few serve two) and unit admins.
* :func:`build_incidents` — a year of incidents; :func:`plant_hotspots` its hot spots.
"""

from geogrid.demo.boundaries import DemoCity, build_buildings, build_demo, build_hierarchy
from geogrid.demo.city import CITY, CITY_FILE
from geogrid.demo.incidents import build_incidents, plant_hotspots
from geogrid.demo.people import build_workers

__all__ = [
    "CITY",
    "CITY_FILE",
    "DemoCity",
    "build_buildings",
    "build_demo",
    "build_hierarchy",
    "build_incidents",
    "build_workers",
    "plant_hotspots",
]
