"""Routing decisions: which grid an order goes to, and how that was decided.

The server stores a :class:`Route` on every order (``Route.to_dict()`` is JSON-ready), so an
operator can later see why an order went where it went.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from .grid import Level

InputKind: TypeAlias = Literal["grid", "location", "address"]
# given: the applicant named the grid code; contains: the point is inside exactly one grid;
# border: the point lies on a shared border and went to the lowest code among those covering
# it; snapped: the point is outside every grid but within the snap distance of the nearest;
# name-match: the address text named the grid.
Method: TypeAlias = Literal["given", "contains", "border", "snapped", "name-match"]
MatchStatus: TypeAlias = Literal["grid", "ambiguous", "none"]


@dataclass(frozen=True, slots=True)
class Route:
    """The grid an order is routed to. ``distance_m`` is 0 unless ``method == "snapped"``."""

    input: InputKind
    grid: str
    method: Method
    distance_m: float = 0.0
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "grid": self.grid,
            "method": self.method,
            "distance_m": round(self.distance_m, 1),
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Candidate:
    """A grid offered to a person to choose from, or the area an address narrowed down to."""

    code: str
    name: str
    level: Level


@dataclass(frozen=True, slots=True)
class AddressMatch:
    """What an address text resolved to.

    - ``status == "grid"``: ``route`` names one routing grid (a grid with no children).
    - ``status == "ambiguous"``: the text fits several grids; ``candidates`` lists them for the
      applicant or operator to choose from. When the text named an area unambiguously but no
      grid inside it (just "大东坝镇"), ``area`` is that area and ``candidates`` its grids.
    - ``status == "none"``: no known name in the text.

    ``matched`` holds the pieces of the (normalized) text that were recognised, in text order.
    """

    status: MatchStatus
    route: Route | None = None
    candidates: tuple[Candidate, ...] = ()
    area: Candidate | None = None
    matched: tuple[str, ...] = ()

    @property
    def grid(self) -> str | None:
        """The routing grid code when ``status == "grid"``, else None."""
        return self.route.grid if self.route is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "route": self.route.to_dict() if self.route is not None else None,
            "candidates": [
                {"code": c.code, "name": c.name, "level": c.level} for c in self.candidates
            ],
            "area": (
                {"code": self.area.code, "name": self.area.name, "level": self.area.level}
                if self.area is not None
                else None
            ),
            "matched": list(self.matched),
        }
