"""Grids (网格) for routing orders: import, validation, point and address lookup.

Pure synchronous code: nothing here does I/O except reading the files it is asked to read.

>>> from geo import load_demo_county
>>> grids = load_demo_county()
>>> route = grids.locate(28.5, 119.5)            # Route(input="location", method="contains", ...)
>>> match = grids.match_address("青山县城东街道")  # AddressMatch(status="ambiguous", area=...)
"""

from __future__ import annotations

from .checks import DEFAULT_TOLERANCE_M2, DEFAULT_TOLERANCE_RATIO
from .demo import load_demo_agents, load_demo_county
from .errors import (
    GeoError,
    GridImportError,
    H3UnavailableError,
    ImportProblem,
    RosterError,
    RosterProblem,
)
from .geojson import feature_collection, grid_from_feature, grid_to_feature
from .grid import LEVELS, Geometry, Grid, Level, parse_level
from .gridset import GridSet
from .h3cells import h3_grid, h3_grid_for
from .loader import load_feature_collection, load_grid_file
from .roster import AgentRow, format_agents_csv, parse_agents_csv
from .route import AddressMatch, Candidate, InputKind, MatchStatus, Method, Route

__all__ = [
    "DEFAULT_TOLERANCE_M2",
    "DEFAULT_TOLERANCE_RATIO",
    "LEVELS",
    "AddressMatch",
    "AgentRow",
    "Candidate",
    "GeoError",
    "Geometry",
    "Grid",
    "GridImportError",
    "GridSet",
    "H3UnavailableError",
    "ImportProblem",
    "InputKind",
    "Level",
    "MatchStatus",
    "Method",
    "RosterError",
    "RosterProblem",
    "Route",
    "feature_collection",
    "format_agents_csv",
    "grid_from_feature",
    "grid_to_feature",
    "h3_grid",
    "h3_grid_for",
    "load_demo_agents",
    "load_demo_county",
    "load_feature_collection",
    "load_grid_file",
    "parse_agents_csv",
    "parse_level",
]
