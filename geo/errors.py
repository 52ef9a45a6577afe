"""Exceptions of the geo package.

::

    GeoError
    ├── GridImportError      a grid file or a set of grids failed validation; carries .problems
    ├── RosterError          an agents CSV failed validation; carries .problems (line numbers)
    └── H3UnavailableError   the optional ``h3`` package is not installed

Lookups that find nothing (a point outside every grid, an address naming no known place) are
values (None, ``AddressMatch(status="none")``), not exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class GeoError(Exception):
    """Root of the geo exceptions."""


@dataclass(frozen=True, slots=True)
class ImportProblem:
    """One fault found while importing grids.

    ``index`` is the position of the feature in the FeatureCollection (None for a fault of the
    whole document, such as a projected ``crs``); ``code`` the feature's code when it has one.
    ``problem`` is a stable machine-readable code (see ``geo.geojson`` and ``geo.checks`` for
    the list), ``message`` a sentence for people. ``repaired`` is a GeoJSON geometry the
    operator may use instead, when one could be derived (self-intersections, swapped axes).
    """

    index: int | None
    code: str | None
    problem: str
    message: str
    repaired: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "code": self.code,
            "problem": self.problem,
            "message": self.message,
            "repaired": self.repaired,
        }


class GridImportError(GeoError):
    """The grids were rejected as a whole; ``problems`` names every feature at fault.

    Imports are all-or-nothing: nothing of a rejected file should be stored. The caller should
    show ``problems`` to the operator (``[p.to_dict() for p in err.problems]`` is JSON-ready).
    """

    def __init__(self, problems: list[ImportProblem]) -> None:
        self.problems = problems
        head = "; ".join(_describe(p) for p in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        super().__init__(f"{len(problems)} problem(s) in grids: {head}{more}")


def _describe(problem: ImportProblem) -> str:
    where = "collection" if problem.index is None else f"feature {problem.index}"
    code = f" [{problem.code}]" if problem.code else ""
    return f"{where}{code}: {problem.problem}"


@dataclass(frozen=True, slots=True)
class RosterProblem:
    """One fault in an agents CSV: ``line`` is 1-based and counts the header."""

    line: int
    message: str


class RosterError(GeoError):
    """The agents CSV was rejected as a whole; ``problems`` names every line at fault."""

    def __init__(self, problems: list[RosterProblem]) -> None:
        self.problems = problems
        head = "; ".join(f"line {p.line}: {p.message}" for p in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        super().__init__(f"{len(problems)} problem(s) in agents CSV: {head}{more}")


class H3UnavailableError(GeoError):
    """Raised by the H3 helpers when the optional ``h3`` package cannot be imported."""
