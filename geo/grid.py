"""The grid model: one administrative area or service grid (网格) and its place in the tree.

Levels, coarse to fine: ``county`` (县) → ``township`` (乡镇/街道) → ``village`` (村/社区) →
``grid`` (网格). ``community`` is accepted as a synonym of ``village`` on input and is stored as
``village``: a 社区 sits at the same rung of the tree as a 村.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from shapely.geometry import MultiPolygon, Polygon

Level: TypeAlias = Literal["county", "township", "village", "grid"]
Geometry: TypeAlias = Polygon | MultiPolygon

LEVELS: Final[tuple[Level, ...]] = ("county", "township", "village", "grid")
LEVEL_SYNONYMS: Final[dict[str, Level]] = {
    "county": "county",
    "township": "township",
    "village": "village",
    "community": "village",
    "grid": "grid",
}


def parse_level(value: str) -> Level | None:
    """Return the canonical level for ``value`` (case-insensitive), or None if unknown."""
    return LEVEL_SYNONYMS.get(value.strip().lower())


def level_rank(level: Level) -> int:
    """0 for county up to 3 for grid: a child's rank is always greater than its parent's."""
    return LEVELS.index(level)


@dataclass(frozen=True, slots=True)
class Grid:
    """One area of the tree.

    ``code`` is unique within a :class:`~geo.gridset.GridSet`; the demo data uses the 15-digit
    administrative style (county 6 + township 3 + village 3 + grid 3). ``geometry`` is in WGS84
    longitude/latitude; it may be None for a grid known by name only (it then takes part in
    address matching but never in coordinate routing or the spatial checks).
    """

    code: str
    name: str
    level: Level
    parent: str | None = None
    geometry: Geometry | None = None
    aliases: tuple[str, ...] = ()

    @property
    def rank(self) -> int:
        return level_rank(self.level)

    @property
    def names(self) -> tuple[str, ...]:
        """The name followed by the aliases."""
        return (self.name, *self.aliases)
