"""Checks across features: codes, the parent tree, containment and overlaps.

Problem codes raised here: ``duplicate_code``, ``unknown_parent``, ``parent_level`` (a parent
not strictly coarser than its child), ``outside_parent`` (a child reaching out of its parent by
more than the tolerance) and ``overlap`` (two grids of one level sharing more than the
tolerance of area). Real boundaries drawn by different hands disagree by a few metres, so both
spatial checks allow ``max(tolerance_m2, tolerance_ratio × the smaller area)``.
Every feature at fault is named: both copies of a duplicate code, both grids of an overlap.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Final

import numpy as np
import shapely

from .errors import ImportProblem
from .grid import Grid
from .projection import area_m2

DEFAULT_TOLERANCE_M2: Final = 100.0
DEFAULT_TOLERANCE_RATIO: Final = 0.005


def check_grids(
    grids: Sequence[tuple[int, Grid]],
    *,
    tolerance_m2: float = DEFAULT_TOLERANCE_M2,
    tolerance_ratio: float = DEFAULT_TOLERANCE_RATIO,
    rejected: Collection[str] = (),
) -> list[ImportProblem]:
    """Every cross-feature problem of ``grids`` (each paired with its feature index).

    ``rejected`` holds the codes of features that failed on their own: a child of one of them
    is not reported again as having an unknown parent.
    """
    problems: list[ImportProblem] = []
    uses: dict[str, list[int]] = {}
    for index, grid in grids:
        uses.setdefault(grid.code, []).append(index)
    unique: list[tuple[int, Grid]] = []
    for index, grid in grids:
        indexes = uses[grid.code]
        if len(indexes) > 1:
            others = ", ".join(str(i) for i in indexes if i != index)
            message = f"code {grid.code} is also used by feature {others}"
            problems.append(ImportProblem(index, grid.code, "duplicate_code", message))
        if indexes[0] == index:
            unique.append((index, grid))
    by_code = {grid.code: grid for _, grid in unique}
    problems += _parent_problems(unique, by_code, tolerance_m2, tolerance_ratio, rejected)
    problems += _overlap_problems(unique, tolerance_m2, tolerance_ratio)
    problems.sort(key=lambda p: (-1 if p.index is None else p.index, p.problem))
    return problems


def _parent_problems(
    grids: Sequence[tuple[int, Grid]],
    by_code: dict[str, Grid],
    tolerance_m2: float,
    tolerance_ratio: float,
    rejected: Collection[str],
) -> list[ImportProblem]:
    problems: list[ImportProblem] = []
    contained: list[tuple[int, Grid, Grid]] = []
    for index, grid in grids:
        if grid.parent is None or grid.parent in rejected:
            continue
        parent = by_code.get(grid.parent)
        if parent is None:
            message = f"parent {grid.parent} is not in the collection"
            problems.append(ImportProblem(index, grid.code, "unknown_parent", message))
        elif parent.rank >= grid.rank:
            message = f"parent {parent.code} is a {parent.level}, not coarser than {grid.level}"
            problems.append(ImportProblem(index, grid.code, "parent_level", message))
        elif grid.geometry is not None and parent.geometry is not None:
            contained.append((index, grid, parent))
    if not contained:
        return problems
    children = np.array([c.geometry for _, c, _ in contained], dtype=object)
    parents = np.array([p.geometry for _, _, p in contained], dtype=object)
    outside = shapely.difference(children, parents)
    for (index, grid, parent), rest in zip(contained, outside, strict=True):
        area = area_m2(rest)
        allowed = max(tolerance_m2, tolerance_ratio * area_m2(grid.geometry))
        if area > allowed:
            message = f"{area:.0f} m² lies outside parent {parent.code} (allowed {allowed:.0f})"
            problems.append(ImportProblem(index, grid.code, "outside_parent", message))
    return problems


def _overlap_problems(
    grids: Sequence[tuple[int, Grid]], tolerance_m2: float, tolerance_ratio: float
) -> list[ImportProblem]:
    problems: list[ImportProblem] = []
    levels = {grid.level for _, grid in grids}
    for level in sorted(levels):
        members = [(i, g) for i, g in grids if g.level == level and g.geometry is not None]
        if len(members) < 2:
            continue
        geoms = np.array([g.geometry for _, g in members], dtype=object)
        tree = shapely.STRtree(geoms)
        left, right = tree.query(geoms, predicate="intersects")
        keep = left < right
        left, right = left[keep], right[keep]
        # Neighbours touch along their border; only interiors that meet can overlap.
        inner = shapely.relate_pattern(geoms[left], geoms[right], "T********")
        left, right = left[inner], right[inner]
        shared = shapely.intersection(geoms[left], geoms[right])
        for a, b, common in zip(left.tolist(), right.tolist(), shared, strict=True):
            (index_a, grid_a), (index_b, grid_b) = members[a], members[b]
            area = area_m2(common)
            smaller = min(area_m2(grid_a.geometry), area_m2(grid_b.geometry))
            allowed = max(tolerance_m2, tolerance_ratio * smaller)
            if area > allowed:
                for index, grid, other, other_index in (
                    (index_a, grid_a, grid_b, index_b),
                    (index_b, grid_b, grid_a, index_a),
                ):
                    message = (
                        f"overlaps {level} {other.code} (feature {other_index}) by {area:.0f} m²"
                        f" (allowed {allowed:.0f})"
                    )
                    problems.append(ImportProblem(index, grid.code, "overlap", message))
    return problems
