"""Geometry repairs offered to the operator alongside an import problem."""

from __future__ import annotations

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Polygon

from .grid import Geometry


def polygonal_part(geometry: shapely.Geometry) -> Geometry | None:
    """The polygons of ``geometry`` (e.g. the output of ``make_valid``) as one geometry.

    ``make_valid`` may return a GeometryCollection holding the polygons plus stray lines or
    points where a ring folded back on itself; only the polygons are area and kept here.
    Returns None when nothing with area remains.
    """
    polygons: list[Polygon] = []
    for part in shapely.get_parts(geometry):
        if isinstance(part, Polygon) and not part.is_empty:
            polygons.append(part)
        elif isinstance(part, MultiPolygon | shapely.GeometryCollection):
            sub = polygonal_part(part)
            if sub is not None:
                polygons.extend(shapely.get_parts(sub))
    if not polygons:
        return None
    if len(polygons) == 1:
        return polygons[0]
    return MultiPolygon(polygons)


def swap_axes(geometry: Geometry) -> Geometry:
    """``geometry`` with x and y exchanged (lat, lon written as lon, lat, or back)."""

    def swap(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        return coords[:, ::-1].copy()

    swapped: Geometry = shapely.transform(geometry, swap)
    return swapped
