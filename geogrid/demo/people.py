"""Synthetic grid workers (网格员) and unit administrators for the demo.

One worker per grid; about 3% of workers serve two adjacent grids of the same community
(as in the report: "10 grids covered by 9 grid teams"). Each community, street and
district gets one administrator account. Names are drawn from common surnames in Guangxi
(黄, 陈, 李, 梁, 覃, 韦 …) and common given-name characters. Deterministic for a seed.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

from geogrid.errors import InvalidInput

__all__ = ["build_workers", "random_names", "random_name_strings"]

# surname, relative frequency (Guangxi-flavoured)
_SURNAMES = (
    ("黄", 9.0), ("陈", 8.0), ("李", 7.5), ("梁", 6.0), ("刘", 4.5), ("林", 4.0), ("覃", 3.5),
    ("韦", 3.5), ("莫", 3.0), ("张", 3.0), ("王", 3.0), ("杨", 2.5), ("钟", 2.0), ("罗", 2.0),
    ("吴", 2.0), ("蒙", 1.5), ("庞", 1.5), ("冯", 1.5), ("何", 1.5), ("邓", 1.5), ("周", 1.2),
    ("谢", 1.2), ("苏", 1.2), ("曾", 1.2), ("龙", 1.0), ("丘", 1.0), ("廖", 1.0), ("朱", 1.0),
    ("赖", 0.8), ("宁", 0.8), ("潘", 0.8), ("甘", 0.8), ("麦", 0.8), ("欧", 0.6), ("卢", 0.6),
    ("宾", 0.5), ("颜", 0.5), ("蔡", 0.5), ("彭", 0.5), ("温", 0.5), ("叶", 0.5), ("徐", 0.5),
)  # fmt: skip
_GIVEN = tuple(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰志红建文海燕春梅林晓东小云宇"
    "凤金荣辉鹏婷雪琳晨立新国庆家豪俊斌思佳欣怡子涵浩然雨嘉欢永健彬"
)
_ROLES = {"community": "community_admin", "street": "street_admin", "district": "district_admin"}


def random_names(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` Chinese personal names (surname + 1 or 2 given characters), vectorised."""
    return np.asarray(random_name_strings(n, rng).to_pylist(), dtype=object)


def random_name_strings(n: int, rng: np.random.Generator) -> pa.Array:
    """:func:`random_names` (the same names for the same generator state) as an Arrow
    ``large_string`` array, laid out from the characters' UTF-8 bytes with NumPy (every
    surname and given-name character is 3 bytes in UTF-8): no Python string per name."""
    sur, freq = zip(*_SURNAMES, strict=True)
    p = np.asarray(freq) / np.sum(freq)
    si = rng.choice(len(sur), n, p=p)
    g1 = rng.integers(0, len(_GIVEN), n)
    g2 = rng.integers(0, len(_GIVEN), n)
    two = rng.random(n) < 0.7
    sur_b = np.frombuffer("".join(sur).encode(), dtype=np.uint8).reshape(-1, 3)
    giv_b = np.frombuffer("".join(_GIVEN).encode(), dtype=np.uint8).reshape(-1, 3)
    chars = np.concatenate([sur_b[si], giv_b[g1], giv_b[g2]], axis=1)  # (n, 9) bytes
    nbytes = np.where(two, 9, 6)
    keep = np.arange(9)[None, :] < nbytes[:, None]
    offsets = np.concatenate([[0], np.cumsum(nbytes)]).astype(np.int64)
    return pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars[keep]))
    )


def build_workers(
    grids: gpd.GeoDataFrame,
    *,
    seed: int = 2016,
    shared_share: float = 0.03,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Grid workers and unit administrators for a grid layer.

    Parameters
    ----------
    grids : GeoDataFrame
        The grid units (``code``, ``parent_code``, ``geometry`` in EPSG:4326), e.g.
        ``build_hierarchy()["grid"]``. Codes are hierarchical (15 digits).
    seed : int
        Random seed (same grids and seed → same output).
    shared_share : float
        Proportion of workers who serve two adjacent grids of the same community.

    Returns
    -------
    workers : pandas.DataFrame
        ``worker_id`` (``"W"`` + the code of the worker's first grid), ``name``,
        ``role`` (``"worker"``), ``grid_codes`` (list of 1 or 2 grid codes). Every grid
        appears in exactly one worker's list.
    staff : pandas.DataFrame
        ``account_id`` (``"A"`` + unit code), ``name``, ``role``
        (``community_admin|street_admin|district_admin``), ``level``, ``unit_code``:
        one administrator per community, street and district (codes from the grid codes).
    """
    if not 0 <= shared_share < 0.5:
        raise InvalidInput("shared_share", shared_share, "a proportion in [0, 0.5)")
    if "code" not in grids or "geometry" not in grids:
        raise InvalidInput("grids", list(grids.columns), "a grid frame with code and geometry")
    rng = np.random.default_rng([seed, 7])
    g = grids.sort_values("code").reset_index(drop=True)
    codes = g["code"].astype(str).to_numpy(dtype=object)
    community = np.array([c[:12] for c in codes], dtype=object)
    n = len(g)

    # adjacent grid pairs inside the same community (shared edge, not just a corner)
    geoms = np.asarray(g.geometry.values, dtype=object)
    i, j = shapely.STRtree(geoms).query(geoms, predicate="touches")
    keep = (i < j) & (community[i] == community[j])
    i, j = i[keep], j[keep]
    if len(i):
        shared = shapely.length(shapely.intersection(geoms[i], geoms[j]))
        edge = shared > 1e-5  # degrees, ≈1 m
        i, j = i[edge], j[edge]
    n_pairs = min(round(shared_share * n / (1 + shared_share)), len(i))
    partner = np.full(n, -1)
    if n_pairs:
        order = rng.permutation(len(i))
        used = np.zeros(n, dtype=bool)
        picked = 0
        for k in order:  # greedy matching over a few thousand candidate pairs
            a, b = i[k], j[k]
            if used[a] or used[b]:
                continue
            used[a] = used[b] = True
            partner[a] = b
            partner[b] = a
            picked += 1
            if picked == n_pairs:
                break
    lead = (partner < 0) | (np.arange(n) < partner)  # the first grid of a pair leads
    idx = np.flatnonzero(lead)
    grid_lists = [[codes[k]] if partner[k] < 0 else [codes[k], codes[partner[k]]] for k in idx]
    workers = pd.DataFrame(
        {
            "worker_id": ["W" + codes[k] for k in idx],
            "name": random_names(len(idx), rng),
            "role": "worker",
            "grid_codes": grid_lists,
        }
    )

    units = []
    for level, width in (("district", 6), ("street", 9), ("community", 12)):
        for code in sorted({c[:width] for c in codes}):
            units.append((level, code))
    staff = pd.DataFrame(units, columns=["level", "unit_code"])
    staff.insert(0, "account_id", "A" + staff["unit_code"])
    staff.insert(1, "name", random_names(len(staff), rng))
    staff.insert(2, "role", staff["level"].map(_ROLES))
    return workers, staff
