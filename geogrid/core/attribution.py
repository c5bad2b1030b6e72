"""Attribution of points to the units of every level of a boundary version.

An :class:`Attributor` wraps a :class:`~geogrid.core.locator.GridLocator` over a version's
grids and the grid → community → street → district chain, so a million incidents are
attributed in memory in a fraction of a second. It is pure: it is built from the
version's layers (GeoDataFrames, EPSG:4326); reading them from the database and caching
attributors per version is :mod:`geogrid.services.attribution`'s work.

>>> import geopandas as gpd
>>> from shapely.geometry import box
>>> layers = {
...     "grid": gpd.GeoDataFrame(
...         {"code": ["g1"], "parent_code": ["c1"]}, geometry=[box(0, 0, 1, 1)], crs=4326
...     ),
...     "community": gpd.GeoDataFrame(
...         {"code": ["c1"], "parent_code": ["s1"]}, geometry=[box(0, 0, 1, 1)], crs=4326
...     ),
...     "street": gpd.GeoDataFrame(
...         {"code": ["s1"], "parent_code": ["d1"]}, geometry=[box(0, 0, 1, 1)], crs=4326
...     ),
... }
>>> codes = Attributor.from_layers(layers).attribute([0.5, 5.0], [0.5, 5.0])
>>> codes.iloc[0].tolist(), bool(codes.iloc[1].isna().all())
(['g1', 'c1', 's1', 'd1'], True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd

from geogrid.core.hierarchy import ATTRIBUTION_COLUMNS
from geogrid.core.locator import GridLocator

__all__ = ["ATTRIBUTION_COLUMNS", "ATTRIBUTION_LEVELS", "Attributor"]

#: the layers an attributor is built from (the grids and the levels of their parents)
ATTRIBUTION_LEVELS = ("street", "community", "grid")


@dataclass
class Attributor:
    """Point → unit codes at every level, for one boundary version (WGS84 input).

    Parameters
    ----------
    version_id : int or None
        The boundary version the grids belong to (for the record).
    grids : GeoDataFrame
        The version's grids (EPSG:4326) with ``code`` and ``parent_code``.
    chain : DataFrame
        Aligned with ``grids``: ``community_code``, ``street_code``, ``district_code``.

    Attributes
    ----------
    locator : GridLocator
        The point-in-grid index over ``grids``.
    """

    version_id: int | None
    grids: gpd.GeoDataFrame
    chain: pd.DataFrame
    locator: GridLocator = field(init=False, repr=False)
    _codes: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
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
        cls, layers: Mapping[str, gpd.GeoDataFrame], version_id: int | None = None
    ) -> Attributor:
        """An attributor from a version's layers: ``grid`` (required), ``community`` and
        ``street`` (for the chain up to the district; a missing layer leaves its codes
        None)."""
        grids = layers["grid"].reset_index(drop=True)
        parent: dict[str, str] = {}
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

    def positions(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> np.ndarray:
        """Positions into ``grids`` of WGS84 points (degrees); -1 outside every grid."""
        return self.locator.locate(np.asarray(lon, float), np.asarray(lat, float))

    def attribute(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> pd.DataFrame:
        """Codes at every level (:data:`ATTRIBUTION_COLUMNS`) for WGS84 points (degrees);
        None where a point is outside every grid."""
        pos = self.positions(lon, lat)
        out = {}
        inside = pos >= 0
        for i, col in enumerate(ATTRIBUTION_COLUMNS):
            vals = np.full(len(pos), None, dtype=object)
            vals[inside] = self._codes[i][pos[inside]]
            out[col] = vals
        return pd.DataFrame(out)
