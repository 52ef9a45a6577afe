"""Address text → grid, by the names and aliases of the grid tree.

Every name and alias is indexed twice after :func:`~geo.hanzi.normalize`: as written
(松阳县, 大东坝镇, 横坑村) and without its suffix when two or more characters remain (松阳,
大东坝, 横坑). A lookup reads every substring of the text up to the longest indexed name
(about a hundred dict probes for a typical address), so it costs microseconds and needs no
automaton.

The recognised names are then read down the tree, county → township → village → grid: a name
at one level only counts when it lies under a name matched above it (a village only under its
matched township, when a township was matched). The most specific level left with exactly one
grid wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from .grid import LEVELS, Grid
from .hanzi import normalize, stem
from .route import AddressMatch, Candidate, Route

# (code, level rank, written in full rather than as a bare stem)
_Entry = tuple[str, int, bool]
# (start, end, code, level rank, written in full)
_Hit = tuple[int, int, str, int, bool]

NO_MATCH: Final = AddressMatch("none")


class AddressIndex:
    """Name lookups over a fixed set of grids; build once, then query (pure Python, no state)."""

    def __init__(
        self,
        grids: Sequence[Grid],
        ancestors: Mapping[str, tuple[str, ...]],
        leaves_under: Mapping[str, tuple[str, ...]],
    ) -> None:
        """``ancestors`` maps each code to its ancestors' codes; ``leaves_under`` maps each code
        to the routing grids (grids without children) at or below it, sorted by code."""
        variants: dict[str, list[_Entry]] = {}
        for grid in grids:
            for name in grid.names:
                full = normalize(name)
                if full:
                    _add(variants, full, (grid.code, grid.rank, True))
                short = stem(full)
                if short:
                    _add(variants, short, (grid.code, grid.rank, False))
        self._variants: dict[str, tuple[_Entry, ...]] = {
            key: tuple(dict.fromkeys(entries)) for key, entries in variants.items()
        }
        self._lengths = tuple(sorted({len(key) for key in self._variants}))
        self._lineage = {code: frozenset((code, *up)) for code, up in ancestors.items()}
        self._leaves_under = dict(leaves_under)
        self._candidates = {g.code: Candidate(g.code, g.name, g.level) for g in grids}

    def match(self, text: str) -> AddressMatch:
        """Resolve ``text``; see :class:`~geo.route.AddressMatch` for the three outcomes."""
        normalized = normalize(text)
        hits = _prune(self._scan(normalized))
        if not hits:
            return NO_MATCH
        frontier: set[str] | None = None
        area: str | None = None
        for rank in range(len(LEVELS)):
            codes = {hit[2] for hit in hits if hit[3] == rank}
            if frontier is not None:
                codes = {c for c in codes if not frontier.isdisjoint(self._lineage[c])}
            if codes:
                frontier = codes
                if len(codes) == 1:
                    area = next(iter(codes))
        assert frontier is not None  # hits is not empty, so some level had codes
        chain = set().union(*(self._lineage[c] for c in frontier))
        matched = tuple(dict.fromkeys(normalized[h[0] : h[1]] for h in hits if h[2] in chain))
        if len(frontier) == 1:
            (code,) = frontier
            leaves = self._leaves_under[code]
            if len(leaves) == 1:
                detail = "matched " + "+".join(matched)
                route = Route("address", leaves[0], "name-match", 0.0, detail)
                return AddressMatch("grid", route, (), self._candidates[code], matched)
            candidates = tuple(self._candidates[c] for c in leaves)
            return AddressMatch("ambiguous", None, candidates, self._candidates[code], matched)
        candidates = tuple(self._candidates[c] for c in sorted(frontier))
        outer = self._candidates[area] if area is not None else None
        return AddressMatch("ambiguous", None, candidates, outer, matched)

    def _scan(self, text: str) -> list[_Hit]:
        hits: list[_Hit] = []
        get = self._variants.get
        lengths = self._lengths
        size = len(text)
        for start in range(size):
            for length in lengths:
                end = start + length
                if end > size:
                    break
                entries = get(text[start:end])
                if entries:
                    hits.extend((start, end, code, rank, full) for code, rank, full in entries)
        return hits


def _add(variants: dict[str, list[_Entry]], key: str, entry: _Entry) -> None:
    variants.setdefault(key, []).append(entry)


def _prune(hits: list[_Hit]) -> list[_Hit]:
    """Keep one reading of each piece of text.

    A name inside a longer recognised name is not a name of its own (东坝 inside 大东坝镇).
    Where one span reads several ways, a name written in full beats a bare stem, and then the
    coarsest level wins: a bare 大东坝 means the township rather than a village named after it.
    """
    if len(hits) < 2:
        return hits
    spans = {(h[0], h[1]) for h in hits}
    inner = {
        (s, e)
        for s, e in spans
        if any(s2 <= s and e <= e2 and (s2, e2) != (s, e) for s2, e2 in spans)
    }
    best: dict[tuple[int, int], tuple[bool, int]] = {}
    for start, end, _, rank, full in hits:
        key = (start, end)
        if key in inner:
            continue
        score = (not full, rank)
        if key not in best or score < best[key]:
            best[key] = score
    return [h for h in hits if best.get((h[0], h[1])) == (not h[4], h[3])]
