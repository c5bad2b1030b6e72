"""The published units' bounding boxes in memory, to find which unit extents a batch of
map changes touches (issue 10).

A new incident changes the metrics of the units containing it, so the map service drops
the unit tiles over those units' extents. It asked PostGIS for the extents at every batch
of changes (``geogrid.store.changes.unit_extents_many``: ~15 ms of database time a batch,
every process, a few times a second under a stream of reports — a database CPU-millisecond
per report at 2 workers). The boxes of a published version change only when a plan is
published; here they are held once (an STRtree per level: Shapely's, not a hand-made
index) and matched in microseconds.

The answer is the one of ``unit_extents_many``: per level, for each changed box, the
union of the boxes of the level's units meeting it (boxes, not shapes: a few more tiles
may be dropped, never fewer), the distinct extents, none for a box no unit meets. Unit
boxes are padded by :data:`PAD_DEG` (PostGIS's index boxes are float4, a hair larger
than the double ones read here).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import shapely

__all__ = ["PAD_DEG", "UnitBoxes"]

#: degrees each unit's box is grown by (≈ 0.1 m: more than float4 rounding near 110°E)
PAD_DEG = 1e-6

BBox = tuple[float, float, float, float]


class UnitBoxes:
    """The boxes of the units of each level (WGS84 degrees), indexed.

    Parameters
    ----------
    rows : iterable of (level, west, south, east, north)
        One per unit.
    """

    def __init__(self, rows: Iterable[tuple[str, float, float, float, float]]) -> None:
        by_level: dict[str, list[tuple[float, float, float, float]]] = {}
        for level, w, s, e, n in rows:
            by_level.setdefault(str(level), []).append((float(w), float(s), float(e), float(n)))
        self._boxes: dict[str, np.ndarray] = {}
        self._trees: dict[str, shapely.STRtree] = {}
        for level, boxes in by_level.items():
            arr = np.asarray(boxes, dtype=float).reshape(-1, 4)
            self._boxes[level] = arr
            self._trees[level] = shapely.STRtree(
                shapely.box(
                    arr[:, 0] - PAD_DEG,
                    arr[:, 1] - PAD_DEG,
                    arr[:, 2] + PAD_DEG,
                    arr[:, 3] + PAD_DEG,
                )
            )

    def __len__(self) -> int:
        return sum(len(b) for b in self._boxes.values())

    def extents(self, levels: Sequence[str], bboxes: Sequence[BBox]) -> dict[str, list[BBox]]:
        """Per level of ``levels``, the distinct extents of the units meeting each of
        ``bboxes`` (west, south, east, north): for each bbox, the union of the boxes of the
        level's units that meet it (none when no unit does)."""
        out: dict[str, list[BBox]] = {lv: [] for lv in levels}
        if not bboxes:
            return out
        arr = np.asarray(bboxes, dtype=float).reshape(-1, 4)
        queries = shapely.box(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])
        for lv in levels:
            tree = self._trees.get(lv)
            if tree is None:
                continue
            pairs = tree.query(queries)  # (query index, unit index) whose boxes meet
            if pairs.shape[1] == 0:
                continue
            found = self._boxes[lv][pairs[1]]
            order = np.argsort(pairs[0], kind="stable")
            q, found = pairs[0][order], found[order]
            starts = np.flatnonzero(np.r_[True, q[1:] != q[:-1]])
            west = np.minimum.reduceat(found[:, 0], starts)
            south = np.minimum.reduceat(found[:, 1], starts)
            east = np.maximum.reduceat(found[:, 2], starts)
            north = np.maximum.reduceat(found[:, 3], starts)
            seen = dict.fromkeys(
                zip(west.tolist(), south.tolist(), east.tolist(), north.tolist(), strict=True)
            )
            out[lv] = list(seen)
        return out
