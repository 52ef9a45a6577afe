"""Grids from H3 cells, for pilots that have no polygons yet.

The ``h3`` package is optional (``pip install h3``, version 4). Codes are ``"h3:"`` followed
by the cell index in hex, so they never collide with administrative codes.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Final

from shapely.geometry import Polygon

from .errors import H3UnavailableError
from .grid import Grid

PREFIX: Final = "h3:"


def _h3() -> ModuleType:
    try:
        module = importlib.import_module("h3")
    except ImportError as exc:
        raise H3UnavailableError("H3 grids need the optional package: pip install 'h3>=4'") from exc
    if not hasattr(module, "latlng_to_cell"):
        raise H3UnavailableError("H3 grids need h3 version 4 or later: pip install 'h3>=4'")
    return module


def h3_grid_for(lat: float, lon: float, resolution: int) -> str:
    """The grid code of the H3 cell holding (lat, lon) at ``resolution`` (0-15).

    Raises H3UnavailableError without the ``h3`` package, ValueError for a bad resolution or
    coordinates out of range.
    """
    if not 0 <= resolution <= 15:
        raise ValueError(f"H3 resolution must be 0..15, got {resolution}")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError(f"not a WGS84 latitude/longitude: {lat!r}, {lon!r}")
    cell = str(_h3().latlng_to_cell(lat, lon, resolution))
    return PREFIX + cell


def h3_grid(code: str, name: str | None = None, parent: str | None = None) -> Grid:
    """A ``grid``-level Grid whose geometry is the hexagon of the H3 code ``code``.

    Raises ValueError when ``code`` is not an ``h3:`` code of a valid cell.
    """
    h3 = _h3()
    cell = code.removeprefix(PREFIX)
    if not code.startswith(PREFIX) or not h3.is_valid_cell(cell):
        raise ValueError(f"not an H3 grid code: {code!r}")
    boundary = [(float(lng), float(lat)) for lat, lng in h3.cell_to_boundary(cell)]
    return Grid(code, name or code, "grid", parent, Polygon(boundary))
