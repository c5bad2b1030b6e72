"""Attribution of points to the units of every level of a boundary version.

An :class:`Attributor` wraps a :class:`~geogrid.core.locator.GridLocator` over a version's grids
and the grid → community → street → district chain, so a million incidents are attributed
in memory in a fraction of a second. Attributors are cached per version id (versions are
immutable once stored).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import Engine

from geogrid.core.hierarchy import ATTRIBUTION_COLUMNS

__all__ = ["Attributor", "attributor_for_version", "ATTRIBUTION_COLUMNS"]


@dataclass
class Attributor:
    """Point → unit codes at every level, for one boundary version (WGS84 input)."""

    version_id: int | None
    grids: gpd.GeoDataFrame
    chain: pd.DataFrame  # indexed like grids: community_code, street_code, district_code

    def __post_init__(self) -> None:
        from geogrid.core.locator import GridLocator

        self.locator = GridLocator(self.grids)
        self._codes = np.array(
            [
                self.grids["code"].to_numpy(dtype=object),
                self.chain["community_code"].to_numpy(dtype=object),
                self.chain["street_code"].to_numpy(dtype=object),
                self.chain["district_code"].to_numpy(dtype=object),
            ],
            dtype=object,
        )

    @classmethod
    def from_layers(
        cls, layers: dict[str, gpd.GeoDataFrame], version_id: int | None = None
    ) -> Attributor:
        grids = layers["grid"].reset_index(drop=True)
        parent = {}
        for lv in ("community", "street"):
            if lv in layers:
                parent.update(dict(zip(layers[lv]["code"], layers[lv]["parent_code"], strict=True)))
        community = grids["parent_code"].astype(object)
        street = community.map(parent)
        district = street.map(parent)
        chain = pd.DataFrame(
            {"community_code": community, "street_code": street, "district_code": district}
        )
        return cls(version_id, grids, chain)

    def positions(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Positions into ``grids`` (-1 outside every grid)."""
        return self.locator.locate(np.asarray(lon, float), np.asarray(lat, float))

    def attribute(self, lon: np.ndarray, lat: np.ndarray) -> pd.DataFrame:
        """Codes at every level for WGS84 points (None where outside every grid)."""
        pos = self.positions(lon, lat)
        out = {}
        inside = pos >= 0
        for i, col in enumerate(ATTRIBUTION_COLUMNS):
            vals = np.full(len(pos), None, dtype=object)
            vals[inside] = self._codes[i][pos[inside]]
            out[col] = vals
        return pd.DataFrame(out)


_cache: dict[tuple[str, int], Attributor] = {}
_lock = threading.Lock()


def attributor_for_version(engine: Engine, version: int | None = None) -> Attributor:
    """The (cached) attributor of a stored version (default: the published one)."""
    from geogrid.store.units import load_units, resolve_version

    with engine.connect() as conn:
        vid = resolve_version(conn, version)
    key = (str(engine.url), vid)
    with _lock:
        if key in _cache:
            return _cache[key]
    layers = {lv: load_units(engine, lv, version=vid) for lv in ("street", "community", "grid")}
    att = Attributor.from_layers(layers, vid)
    with _lock:
        _cache[key] = att
    return att
