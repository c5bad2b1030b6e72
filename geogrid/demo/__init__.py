"""Deterministic synthetic Yulin demo: boundaries, buildings, workers, incidents.

Pure functions returning (Geo)DataFrames; nothing here touches a database
(:mod:`geogrid.services.demo` stores them).

* :func:`build_hierarchy` / :func:`build_buildings` / :func:`build_demo` — the four-level
  unit hierarchy generated inside the 7 real Yulin county polygons, and its buildings.
* :func:`build_workers` — one grid worker per grid (a few serve two) and unit admins.
* :func:`build_incidents` — a year of incidents; :func:`plant_hotspots` its hot spots.
"""

from geogrid.demo.boundaries import DemoCity, build_buildings, build_demo, build_hierarchy
from geogrid.demo.incidents import build_incidents, plant_hotspots
from geogrid.demo.people import build_workers

__all__ = [
    "DemoCity",
    "build_buildings",
    "build_demo",
    "build_hierarchy",
    "build_incidents",
    "build_workers",
    "plant_hotspots",
]
