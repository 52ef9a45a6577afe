"""The demo county shipped in ``geo/data`` (made by ``python -m geo.gen_demo_county``).

A fictional county, 青山县, with 19 townships and about 400 villages, and a roster of two or
three agents per village: enough to run the server, the clients and the load tests without a
real county's data.
"""

from __future__ import annotations

from importlib import resources
from typing import Final

from .gridset import GridSet
from .loader import load_feature_collection
from .roster import AgentRow, parse_agents_csv

COUNTY_FILE: Final = "demo_county.geojson"
AGENTS_FILE: Final = "demo_agents.csv"


def demo_county_text() -> str:
    """The demo county as GeoJSON text."""
    return resources.files("geo").joinpath("data", COUNTY_FILE).read_text(encoding="utf-8")


def demo_agents_text() -> str:
    """The demo roster as CSV text."""
    return resources.files("geo").joinpath("data", AGENTS_FILE).read_text(encoding="utf-8")


def load_demo_county() -> GridSet:
    """The demo county as a validated GridSet (builds a new one on every call)."""
    return load_feature_collection(demo_county_text())


def load_demo_agents(grids: GridSet | None = None) -> list[AgentRow]:
    """The demo roster; its grid codes are checked against ``grids`` when given."""
    return parse_agents_csv(demo_agents_text(), grids)
