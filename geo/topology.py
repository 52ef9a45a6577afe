"""Which grids of one level share a border.

Computed once when a :class:`~geo.gridset.GridSet` is built, in meters on a plane around the
set's centre. Two grids are neighbours when more than ``min_shared_m`` of one's border runs
within ``gap_m`` of the other: grids that meet at a single corner are not neighbours, and
borders drawn a little apart by different hands still count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import shapely

from .grid import Grid
from .projection import to_local_meters

DEFAULT_GAP_M: Final = 1.0
DEFAULT_MIN_SHARED_M: Final = 10.0


def neighbours_of(
    grids: Sequence[Grid],
    *,
    gap_m: float = DEFAULT_GAP_M,
    min_shared_m: float = DEFAULT_MIN_SHARED_M,
) -> dict[str, frozenset[str]]:
    """Map every code of ``grids`` to the codes of its same-level neighbours."""
    result: dict[str, set[str]] = {g.code: set() for g in grids}
    shaped = [g for g in grids if g.geometry is not None]
    if len(shaped) < 2:
        return {code: frozenset(found) for code, found in result.items()}
    west, south, east, north = shapely.total_bounds([g.geometry for g in shaped]).tolist()
    lat0, lon0 = (south + north) / 2, (west + east) / 2
    for level in {g.level for g in shaped}:
        members = [g for g in shaped if g.level == level]
        if len(members) < 2:
            continue
        local = np.array(
            [to_local_meters(g.geometry, lat0, lon0) for g in members if g.geometry is not None],
            dtype=object,
        )
        tree = shapely.STRtree(local)
        left, right = tree.query(local, predicate="dwithin", distance=gap_m)
        keep = left < right
        left, right = left[keep], right[keep]
        near = shapely.buffer(local[left], gap_m)
        shared = shapely.length(shapely.intersection(shapely.boundary(local[right]), near))
        for a, b, length in zip(left.tolist(), right.tolist(), shared.tolist(), strict=True):
            if length > min_shared_m:
                result[members[a].code].add(members[b].code)
                result[members[b].code].add(members[a].code)
    return {code: frozenset(found) for code, found in result.items()}
