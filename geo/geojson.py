"""GeoJSON in and out: one feature at a time, checked on its own.

:func:`read_features` turns a FeatureCollection (WGS84 longitude/latitude, RFC 7946) into
:class:`~geo.grid.Grid` objects and :class:`~geo.errors.ImportProblem` records. The checks that
need several features at once (duplicate codes, parents, overlaps) live in ``geo.checks``.

Problem codes raised here:

``not_geojson``, ``not_feature_collection``, ``empty_collection``, ``projected_crs`` (a ``crs``
member naming anything but WGS84/CRS84, or coordinates far outside degrees), ``not_feature``,
``missing_code``, ``missing_name``, ``missing_level``, ``bad_level``, ``bad_parent``,
``bad_aliases``, ``missing_geometry``, ``bad_geometry_type``, ``bad_coordinates``,
``swapped_coordinates``, ``out_of_range``, ``unclosed_ring``, ``too_few_positions``,
``self_intersection``, ``invalid_geometry``, ``empty_geometry``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any, Final

import shapely
from shapely.geometry import MultiPolygon, Polygon

from .errors import GridImportError, ImportProblem
from .grid import Geometry, Grid, parse_level
from .repair import polygonal_part, swap_axes

Position = tuple[float, float]
Ring = list[Position]

# CGCS2000 (EPSG:4490), the Chinese national datum, differs from WGS84 by centimetres: accepted.
WGS84_CRS_MARKERS: Final = (
    "crs84",
    "epsg:4326",
    "epsg::4326",
    "wgs84",
    "wgs 84",
    "epsg:4490",
    "epsg::4490",
    "cgcs2000",
)
# China spans about lat 18..54 and lon 73..135 on the mainland; a whole feature whose first
# axis fits the latitudes and second the longitudes was almost surely written lat, lon.
CHINA_LAT: Final = (18.0, 54.0)
CHINA_LON: Final = (73.0, 135.0)
# Projected metres or feet are in the thousands to millions; degrees never pass 360.
PROJECTED_THRESHOLD: Final = 360.0


class _Fault(Exception):
    """Internal: one feature's fault, turned into an ImportProblem by the caller."""

    def __init__(self, problem: str, message: str, repaired: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message
        self.repaired = repaired


def read_features(obj: object) -> tuple[list[tuple[int, Grid]], list[ImportProblem]]:
    """Parse a FeatureCollection given as a mapping, JSON text or JSON bytes.

    Returns the features that parsed, each with its index in the collection, and the problems
    of those that did not. The caller must treat any problem as fatal for the whole import.
    """
    if isinstance(obj, str | bytes | bytearray):
        try:
            obj = json.loads(obj)
        except (ValueError, UnicodeDecodeError) as exc:
            return [], [ImportProblem(None, None, "not_geojson", f"not JSON: {exc}")]
    if not isinstance(obj, Mapping):
        kind = type(obj).__name__
        return [], [ImportProblem(None, None, "not_geojson", f"expected a JSON object, got {kind}")]
    if obj.get("type") != "FeatureCollection" or not isinstance(obj.get("features"), list):
        message = f"expected a FeatureCollection with a features list, got type={obj.get('type')!r}"
        return [], [ImportProblem(None, None, "not_feature_collection", message)]
    problems: list[ImportProblem] = []
    crs_fault = _crs_fault(obj.get("crs"))
    if crs_fault:
        problems.append(ImportProblem(None, None, "projected_crs", crs_fault))
    features: list[Any] = obj["features"]
    if not features:
        problems.append(ImportProblem(None, None, "empty_collection", "the collection is empty"))
    grids: list[tuple[int, Grid]] = []
    for index, feature in enumerate(features):
        code = _peek_code(feature)
        try:
            grids.append((index, _read_feature(feature)))
        except _Fault as fault:
            problems.append(
                ImportProblem(index, code, fault.problem, fault.message, fault.repaired)
            )
    return grids, problems


def grid_from_feature(feature: object) -> Grid:
    """Parse one GeoJSON Feature (a mapping) into a Grid, checked on its own.

    For adding or replacing one grid (``GridSet.updated``, which then runs the checks against
    the other grids). Raises GridImportError with the one problem found, at index 0.
    """
    try:
        return _read_feature(feature)
    except _Fault as fault:
        problem = ImportProblem(
            0, _peek_code(feature), fault.problem, fault.message, fault.repaired
        )
        raise GridImportError([problem]) from None


def _read_feature(feature: object) -> Grid:
    """Parse one Feature into a Grid; raises ``_Fault`` on the first fault."""
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        raise _Fault("not_feature", "not a GeoJSON Feature object")
    crs_fault = _crs_fault(feature.get("crs"))
    if crs_fault:
        raise _Fault("projected_crs", crs_fault)
    props = feature.get("properties")
    props = props if isinstance(props, Mapping) else {}
    code = _text(props.get("code"))
    if code is None:
        raise _Fault("missing_code", "property 'code' is missing or empty")
    name = _text(props.get("name"))
    if name is None:
        raise _Fault("missing_name", "property 'name' is missing or empty")
    raw_level = props.get("level")
    if not isinstance(raw_level, str) or not raw_level.strip():
        raise _Fault("missing_level", "property 'level' is missing or empty")
    level = parse_level(raw_level)
    if level is None:
        message = f"level {raw_level!r} is not county, township, village/community or grid"
        raise _Fault("bad_level", message)
    parent = props.get("parent")
    if parent is not None:
        parent = _text(parent)
        if parent is None:
            raise _Fault("bad_parent", "property 'parent' must be a non-empty code or absent")
    aliases = props.get("aliases", [])
    if aliases is None:
        aliases = []
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
        raise _Fault("bad_aliases", "property 'aliases' must be a list of non-empty strings")
    geometry = _read_geometry(feature.get("geometry"))
    return Grid(code, name, level, parent, geometry, tuple(a.strip() for a in aliases))


def _read_geometry(geometry: object) -> Geometry:
    """Check and build a Polygon or MultiPolygon from a GeoJSON geometry object."""
    if not isinstance(geometry, Mapping):
        raise _Fault("missing_geometry", "the feature has no geometry")
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    if kind == "Polygon":
        polygons = [_rings(coords)]
    elif kind == "MultiPolygon":
        if not isinstance(coords, list) or not coords:
            raise _Fault("bad_coordinates", "MultiPolygon coordinates must be a non-empty list")
        polygons = [_rings(part) for part in coords]
    else:
        raise _Fault("bad_geometry_type", f"geometry type {kind!r} is not Polygon/MultiPolygon")
    _check_ranges(polygons)
    shape = _build(polygons, kind == "MultiPolygon")
    _check_closed(polygons, shape)
    _check_valid(shape)
    return shape


def _rings(coords: object) -> list[Ring]:
    if not isinstance(coords, list) or not coords:
        raise _Fault("bad_coordinates", "a polygon must be a non-empty list of rings")
    return [_ring(ring) for ring in coords]


def _ring(coords: object) -> Ring:
    if not isinstance(coords, list):
        raise _Fault("bad_coordinates", "a ring must be a list of positions")
    ring: Ring = []
    for position in coords:
        if (
            not isinstance(position, list | tuple)
            or len(position) < 2
            or not all(_is_number(v) for v in position[:2])
        ):
            raise _Fault("bad_coordinates", f"position {position!r} is not [lon, lat]")
        ring.append((float(position[0]), float(position[1])))
    return ring


def _check_ranges(polygons: list[list[Ring]]) -> None:
    xs = [x for rings in polygons for ring in rings for x, _ in ring]
    ys = [y for rings in polygons for ring in rings for _, y in ring]
    if not xs:
        raise _Fault("bad_coordinates", "the geometry has no positions")
    biggest = max(max(map(abs, xs)), max(map(abs, ys)))
    sample = f"({xs[0]}, {ys[0]})"
    if biggest > PROJECTED_THRESHOLD:
        message = f"coordinates such as {sample} are not degrees: a projected CRS? use WGS84"
        raise _Fault("projected_crs", message)
    in_range = all(abs(x) <= 180 for x in xs) and all(abs(y) <= 90 for y in ys)
    swapped_fits = all(abs(x) <= 90 for x in xs) and all(abs(y) <= 180 for y in ys)
    looks_chinese_latlon = all(CHINA_LAT[0] <= x <= CHINA_LAT[1] for x in xs) and all(
        CHINA_LON[0] <= y <= CHINA_LON[1] for y in ys
    )
    if (not in_range and swapped_fits) or (in_range and looks_chinese_latlon):
        repaired = _swapped_geojson(polygons)
        message = f"coordinates such as {sample} look like lat, lon; GeoJSON wants lon, lat"
        raise _Fault("swapped_coordinates", message, repaired)
    if not in_range:
        raise _Fault("out_of_range", f"coordinates such as {sample} are outside lon/lat range")


def _build(polygons: list[list[Ring]], multi: bool) -> Geometry:
    parts: list[Polygon] = []
    for rings in polygons:
        for ring in rings:
            distinct = len(set(ring))
            if distinct < 3:
                message = f"a ring has {distinct} distinct positions; a polygon needs 3 or more"
                raise _Fault("too_few_positions", message)
        parts.append(Polygon(rings[0], rings[1:]))
    return MultiPolygon(parts) if multi else parts[0]


def _check_closed(polygons: list[list[Ring]], shape: Geometry) -> None:
    for rings in polygons:
        for ring in rings:
            if ring[0] != ring[-1]:
                message = f"a ring starts at {ring[0]} but ends at {ring[-1]}; it must close"
                raise _Fault("unclosed_ring", message, _repaired_geojson(shape))


def _check_valid(shape: Geometry) -> None:
    if not shape.is_valid:
        reason = str(shapely.is_valid_reason(shape))
        repaired = _repaired_geojson(shape)
        if "Self-intersection" in reason:
            raise _Fault("self_intersection", f"a ring crosses itself: {reason}", repaired)
        raise _Fault("invalid_geometry", f"invalid geometry: {reason}", repaired)
    if shape.is_empty or shape.area == 0:
        raise _Fault("empty_geometry", "the geometry has no area")


def _repaired_geojson(shape: Geometry) -> dict[str, Any] | None:
    repaired = polygonal_part(shapely.make_valid(shape))
    return geometry_to_geojson(repaired) if repaired is not None else None


def _swapped_geojson(polygons: list[list[Ring]]) -> dict[str, Any] | None:
    try:
        shape = _build(polygons, len(polygons) > 1)
    except _Fault:
        return None
    return geometry_to_geojson(swap_axes(shape))


def _crs_fault(crs: object) -> str | None:
    if crs is None:
        return None
    name = ""
    if isinstance(crs, Mapping):
        props = crs.get("properties")
        if isinstance(props, Mapping):
            name = str(props.get("name", ""))
    if any(marker in name.lower() for marker in WGS84_CRS_MARKERS):
        return None
    return f"crs {name or crs!r} is not WGS84 longitude/latitude (CRS84)"


def _peek_code(feature: object) -> str | None:
    if isinstance(feature, Mapping):
        props = feature.get("properties")
        if isinstance(props, Mapping):
            return _text(props.get("code"))
    return None


def _text(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def geometry_to_geojson(geometry: shapely.Geometry) -> dict[str, Any]:
    """A GeoJSON geometry object (plain dicts and lists) for a shapely geometry."""
    result: dict[str, Any] = json.loads(shapely.to_geojson(geometry))
    return result


def grid_to_feature(grid: Grid) -> dict[str, Any]:
    """The GeoJSON Feature that :func:`grid_from_feature` turns back into ``grid``."""
    props: dict[str, Any] = {"code": grid.code, "name": grid.name, "level": grid.level}
    if grid.parent is not None:
        props["parent"] = grid.parent
    if grid.aliases:
        props["aliases"] = list(grid.aliases)
    geometry = geometry_to_geojson(grid.geometry) if grid.geometry is not None else None
    return {"type": "Feature", "properties": props, "geometry": geometry}


def feature_collection(grids: Iterable[Grid]) -> dict[str, Any]:
    """A FeatureCollection of ``grids`` in the given order."""
    return {"type": "FeatureCollection", "features": [grid_to_feature(g) for g in grids]}
