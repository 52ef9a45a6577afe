"""Loading grid files: GeoJSON in, a validated GridSet out, or every problem at once."""

from __future__ import annotations

from pathlib import Path

from .checks import DEFAULT_TOLERANCE_M2, DEFAULT_TOLERANCE_RATIO, check_grids
from .errors import GridImportError, ImportProblem
from .geojson import read_features
from .gridset import GridSet


def load_feature_collection(
    obj: object,
    *,
    tolerance_m2: float = DEFAULT_TOLERANCE_M2,
    tolerance_ratio: float = DEFAULT_TOLERANCE_RATIO,
) -> GridSet:
    """Validate a GeoJSON FeatureCollection (a mapping, or JSON text or bytes) as a GridSet.

    All or nothing: raises GridImportError whose ``problems`` name every feature at fault and
    why (see ``geo.geojson`` and ``geo.checks`` for the problem codes). The spatial checks
    between features run only on the features that parsed, so fixing the reported faults can
    reveal more on the next try. Tolerances: see ``geo.checks``.
    """
    grids, problems = read_features(obj)
    if not any(p.index is None for p in problems):
        rejected = {p.code for p in problems if p.code is not None}
        problems += check_grids(
            grids,
            tolerance_m2=tolerance_m2,
            tolerance_ratio=tolerance_ratio,
            rejected=rejected,
        )
    if problems:
        raise GridImportError(sorted(problems, key=_order))
    return GridSet(grid for _, grid in grids)


def load_grid_file(
    path: str | Path,
    *,
    tolerance_m2: float = DEFAULT_TOLERANCE_M2,
    tolerance_ratio: float = DEFAULT_TOLERANCE_RATIO,
) -> GridSet:
    """:func:`load_feature_collection` on a file; OSError if it cannot be read."""
    return load_feature_collection(
        Path(path).read_bytes(), tolerance_m2=tolerance_m2, tolerance_ratio=tolerance_ratio
    )


def _order(problem: ImportProblem) -> tuple[int, str]:
    return (-1 if problem.index is None else problem.index, problem.problem)
