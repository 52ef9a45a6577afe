"""Point → grid, by point-in-polygon over the routing grids (grids without children).

The routing grids tile their area, so a point is inside at most one of them. A point on a
border is covered by several; it goes to the lowest code among them, so the same point always
lands in the same grid whatever the order the grids were loaded in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import shapely

from .grid import Grid
from .projection import degrees_for_meters, distance_meters
from .route import Route


class PointLocator:
    """An STRtree over prepared grid polygons; build once, then query.

    GEOS builds parts of a prepared polygon lazily on first use, so share one locator between
    threads only behind a lock; one event loop thread needs none.
    """

    def __init__(self, grids: Sequence[Grid]) -> None:
        """``grids`` are the routing grids; those without geometry are left out."""
        members = sorted((g for g in grids if g.geometry is not None), key=lambda g: g.code)
        # Index order is code order, so the smallest index in a result is the lowest code.
        self._codes = [g.code for g in members]
        self._geoms = np.array([g.geometry for g in members], dtype=object)
        shapely.prepare(self._geoms)
        self._tree = shapely.STRtree(self._geoms)

    def __len__(self) -> int:
        return len(self._codes)

    def locate(self, lat: float, lon: float, snap_meters: float = 500.0) -> Route | None:
        """The grid at (lat, lon), or the nearest within ``snap_meters``, or None.

        Raises ValueError for a latitude or longitude that is not a finite number in range.
        """
        if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90):
            raise ValueError(f"not a WGS84 latitude/longitude: {lat!r}, {lon!r}")
        if not -180 <= lon <= 180:
            raise ValueError(f"not a WGS84 latitude/longitude: {lat!r}, {lon!r}")
        # The tree narrows to the few grids whose box holds the point; the exact tests then run
        # on the prepared polygons, which stay fast on real boundaries of thousands of points.
        boxed = self._tree.query(shapely.Point(lon, lat))
        if len(boxed):
            candidates = self._geoms[boxed]
            inside = boxed[shapely.contains_xy(candidates, lon, lat)]
            if len(inside):
                return Route("location", self._codes[int(inside.min())], "contains")
            touching = boxed[shapely.intersects_xy(candidates, lon, lat)]
            if len(touching):
                codes = sorted(self._codes[int(i)] for i in touching)
                detail = "on the border of " + ", ".join(codes)
                return Route("location", codes[0], "border", 0.0, detail)
        if snap_meters > 0:
            return self._snap(lat, lon, snap_meters)
        return None

    def _snap(self, lat: float, lon: float, snap_meters: float) -> Route | None:
        dlon, dlat = degrees_for_meters(snap_meters, lat)
        window = shapely.box(lon - dlon, lat - dlat, lon + dlon, lat + dlat)
        best: tuple[float, str] | None = None
        for index in self._tree.query(window).tolist():
            distance = distance_meters(lat, lon, self._geoms[index])
            candidate = (distance, self._codes[index])
            if distance <= snap_meters and (best is None or candidate < best):
                best = candidate
        if best is None:
            return None
        distance, code = best
        detail = f"{distance:.0f} m outside, snapped to the nearest grid"
        return Route("location", code, "snapped", distance, detail)
