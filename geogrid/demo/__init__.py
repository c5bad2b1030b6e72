"""Deterministic synthetic Yulin demo: boundaries, buildings, workers, incidents.

Pure functions returning (Geo)DataFrames; nothing here touches a database.
"""

from geogrid.demo.boundaries import DemoCity, build_buildings, build_demo, build_hierarchy

__all__ = ["DemoCity", "build_buildings", "build_demo", "build_hierarchy"]
