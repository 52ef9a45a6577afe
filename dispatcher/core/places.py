"""Place-name completion over the grid tree: what the intake page suggests while one types.

A :class:`PlaceIndex` is built once per generation of grids and answers
:meth:`PlaceIndex.complete` with the places whose name, alias or full address contains what
was typed (after :func:`geo.hanzi.normalize`, so 雙田 finds 双田 and blanks do not matter).
Each place carries its ``address``: the names from the county down to it, as one text that
``POST /v1/orders`` routes back to exactly that place.  Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from geo import GridSet
from geo.hanzi import normalize

MAX_QUERY_CHARS = 50
MAX_LIMIT = 20
MAX_CODES = 50


@dataclass(frozen=True, slots=True)
class Place:
    code: str
    name: str
    level: str
    path: tuple[str, ...]
    """The names from the top of the tree down to this place, this place's last."""

    @property
    def address(self) -> str:
        return "".join(self.path)

    def to_wire(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "level": self.level,
            "path": list(self.path),
            "address": self.address,
        }


@dataclass(frozen=True, slots=True)
class _Entry:
    place: Place
    rank: int
    names: tuple[str, ...]  # normalized name first, then the aliases
    address: str  # normalized


class PlaceIndex:
    """Completion over one :class:`~geo.GridSet`.  Build once; queries do not change it."""

    def __init__(self, grids: GridSet) -> None:
        entries = []
        for grid in grids:
            up = [g.name for g in reversed(grids.ancestors(grid.code))]
            place = Place(grid.code, grid.name, grid.level, (*up, grid.name))
            names = tuple(n for n in (normalize(x) for x in grid.names) if n)
            entries.append(_Entry(place, grid.rank, names, normalize(place.address)))
        self._entries = tuple(entries)
        self._by_code = {e.place.code: e.place for e in entries}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, code: str) -> Place | None:
        """The place of one grid code, or None."""
        return self._by_code.get(code)

    def complete(self, query: str, limit: int = 8) -> list[Place]:
        """Up to ``limit`` places for ``query``, best first: the name begins with it, then the
        name contains it, then an alias does, then the full address does; coarser levels and
        shorter names first within each, then by code.  Nothing for a blank query."""
        q = normalize(query)
        if not q:
            return []
        scored: list[tuple[int, int, int, str, Place]] = []
        for e in self._entries:
            name = e.names[0] if e.names else ""
            if name.startswith(q):
                tier = 0
            elif q in name:
                tier = 1
            elif any(q in alias for alias in e.names[1:]):
                tier = 2
            elif q in e.address:
                tier = 3
            else:
                continue
            scored.append((tier, e.rank, len(name), e.place.code, e.place))
        scored.sort(key=lambda s: s[:4])
        return [s[4] for s in scored[:limit]]
