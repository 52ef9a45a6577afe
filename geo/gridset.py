"""An immutable, validated set of grids with everything routing needs precomputed."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from .addresses import AddressIndex
from .checks import DEFAULT_TOLERANCE_M2, DEFAULT_TOLERANCE_RATIO, check_grids
from .errors import GridImportError
from .geojson import feature_collection
from .grid import LEVELS, Grid, Level
from .locator import PointLocator
from .route import AddressMatch, Route
from .topology import neighbours_of


class GridSet:
    """The grid tree of one programme, indexed for routing.

    Build it with :func:`geo.load_feature_collection` (from GeoJSON) or :meth:`from_grids`
    (from Grid objects); both validate. The constructor itself trusts its input. Once built a
    GridSet never changes: to change grids, build a new one (:meth:`updated`) and swap the
    reference. Meant for one thread (the event loop): see ``geo.locator`` on threads.

    Orders are routed to the *routing grids*: the grids without children. When every branch of
    the tree reaches the same depth these are exactly the finest level present.
    """

    def __init__(self, grids: Iterable[Grid]) -> None:
        self._grids = tuple(grids)
        self._by_code = {g.code: g for g in self._grids}
        children: dict[str, list[str]] = {g.code: [] for g in self._grids}
        for grid in self._grids:
            if grid.parent is not None and grid.parent in children:
                children[grid.parent].append(grid.code)
        self._children = {code: tuple(sorted(kids)) for code, kids in children.items()}
        self._ancestors = {g.code: self._walk_up(g) for g in self._grids}
        self._leaves = tuple(g for g in self._grids if not self._children[g.code])
        leaf_codes = {g.code for g in self._leaves}
        leaves_under: dict[str, tuple[str, ...]] = {}
        for grid in self._grids:
            below = [grid.code, *(d.code for d in self.descendants(grid.code))]
            leaves_under[grid.code] = tuple(sorted(c for c in below if c in leaf_codes))
        self._locator = PointLocator(self._leaves)
        self._addresses = AddressIndex(self._grids, self._ancestors, leaves_under)
        self._neighbours = neighbours_of(self._grids)

    @classmethod
    def from_grids(
        cls,
        grids: Iterable[Grid],
        *,
        tolerance_m2: float = DEFAULT_TOLERANCE_M2,
        tolerance_ratio: float = DEFAULT_TOLERANCE_RATIO,
    ) -> GridSet:
        """Validate ``grids`` as a whole and build the set.

        Raises GridImportError naming every grid at fault (``index`` is the position in
        ``grids``): duplicate codes, unknown or not coarser parents, children outside their
        parent, overlaps within a level.
        """
        listed = list(grids)
        problems = check_grids(
            list(enumerate(listed)), tolerance_m2=tolerance_m2, tolerance_ratio=tolerance_ratio
        )
        if problems:
            raise GridImportError(problems)
        return cls(listed)

    def updated(self, grids: Iterable[Grid]) -> GridSet:
        """A new set with ``grids`` added, or replacing the grids of the same code.

        Raises GridImportError if the result is not a valid set.
        """
        changes = {g.code: g for g in grids}
        merged = [changes.pop(g.code, g) for g in self._grids]
        return GridSet.from_grids([*merged, *changes.values()])

    def _walk_up(self, grid: Grid) -> tuple[str, ...]:
        chain: list[str] = []
        parent = grid.parent
        while parent is not None and parent in self._by_code and parent not in chain:
            chain.append(parent)
            parent = self._by_code[parent].parent
        return tuple(chain)

    # Lookup and the tree

    def __len__(self) -> int:
        return len(self._grids)

    def __iter__(self) -> Iterator[Grid]:
        """The grids in the order they were given."""
        return iter(self._grids)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __getitem__(self, code: str) -> Grid:
        """The grid of ``code``; raises KeyError if there is none."""
        return self._by_code[code]

    def get(self, code: str) -> Grid | None:
        return self._by_code.get(code)

    @property
    def levels(self) -> tuple[Level, ...]:
        """The levels present, coarse to fine."""
        present = {g.level for g in self._grids}
        return tuple(level for level in LEVELS if level in present)

    @property
    def leaves(self) -> tuple[Grid, ...]:
        """The routing grids: those without children, in the order given."""
        return self._leaves

    def at_level(self, level: Level) -> tuple[Grid, ...]:
        return tuple(g for g in self._grids if g.level == level)

    def children(self, code: str) -> tuple[Grid, ...]:
        """The direct children of ``code``, by code; raises KeyError for an unknown code."""
        return tuple(self._by_code[c] for c in self._children[code])

    def descendants(self, code: str) -> tuple[Grid, ...]:
        """Every grid below ``code``, parents before children; KeyError for an unknown code."""
        found: list[Grid] = []
        pending = deque(self._children[code])
        while pending:
            grid = self._by_code[pending.popleft()]
            found.append(grid)
            pending.extend(self._children[grid.code])
        return tuple(found)

    def ancestors(self, code: str) -> tuple[Grid, ...]:
        """The grids above ``code``, nearest first; KeyError for an unknown code."""
        return tuple(self._by_code[c] for c in self._ancestors[code])

    def neighbours(self, code: str) -> frozenset[str]:
        """Codes of the grids of the same level sharing a border with ``code``."""
        return self._neighbours[code]

    # Routing

    def locate(self, lat: float, lon: float, snap_meters: float = 500.0) -> Route | None:
        """Route a WGS84 point to a routing grid; None when no grid is within ``snap_meters``.

        Raises ValueError for coordinates out of range. See :mod:`geo.locator`.
        """
        return self._locator.locate(lat, lon, snap_meters)

    def match_address(self, text: str) -> AddressMatch:
        """Resolve Chinese address text by grid names; see :class:`geo.route.AddressMatch`."""
        return self._addresses.match(text)

    def route_grid(self, code: str) -> Route | None:
        """The route for an order that names its grid; None if ``code`` is unknown.

        A code above the routing grids is returned as given: the caller decides whether an
        area (a whole township, say) is an acceptable target.
        """
        if code not in self._by_code:
            return None
        return Route("grid", code, "given")

    def to_feature_collection(self) -> dict[str, Any]:
        """The set as a GeoJSON FeatureCollection that loads back into an equal set."""
        return feature_collection(self._grids)
