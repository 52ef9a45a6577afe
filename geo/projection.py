"""Meters from longitude/latitude, by a local equirectangular projection.

Grids are at most a county across (tens of kilometers), so projecting around a nearby origin
(x = R·Δλ·cos φ₀, y = R·Δφ) is accurate to well under a metre per kilometre there, and far
cheaper than a full geodesic. Nothing here is meant for distances of hundreds of kilometers.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import shapely
from numpy.typing import NDArray

from .grid import Geometry

EARTH_RADIUS_M: Final = 6_371_008.8
METERS_PER_DEGREE: Final = EARTH_RADIUS_M * math.pi / 180.0


def degrees_for_meters(meters: float, lat: float) -> tuple[float, float]:
    """The (Δlon, Δlat) in degrees that span at least ``meters`` at latitude ``lat``."""
    dlat = meters / METERS_PER_DEGREE
    cos_lat = max(math.cos(math.radians(lat)), 1e-6)
    return dlat / cos_lat, dlat


def to_local_meters(geometry: Geometry, lat0: float, lon0: float) -> shapely.Geometry:
    """``geometry`` in meters on a plane tangent at (lat0, lon0), which maps to (0, 0)."""
    kx = METERS_PER_DEGREE * math.cos(math.radians(lat0))
    ky = METERS_PER_DEGREE

    def project(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.empty_like(coords)
        out[:, 0] = (coords[:, 0] - lon0) * kx
        out[:, 1] = (coords[:, 1] - lat0) * ky
        return out

    projected: shapely.Geometry = shapely.transform(geometry, project)
    return projected


def distance_meters(lat: float, lon: float, geometry: Geometry) -> float:
    """Shortest distance in meters from the point to ``geometry`` (0 when inside it)."""
    local = to_local_meters(geometry, lat, lon)
    return float(shapely.distance(local, shapely.Point(0.0, 0.0)))


def area_m2(geometry: shapely.Geometry) -> float:
    """Area in square meters, projected around the geometry's own centre."""
    if geometry.is_empty:
        return 0.0
    centre = geometry.centroid
    scale = METERS_PER_DEGREE**2 * math.cos(math.radians(float(centre.y)))
    return float(geometry.area) * scale
