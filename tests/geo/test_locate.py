"""Point → grid: inside, on borders, in holes, multipolygons, snapping."""

from __future__ import annotations

import pytest
from shapely.geometry import MultiPolygon, Polygon, box

from geo import Grid, GridSet, Route, load_feature_collection
from geo.sample import (
    DADONGBA_VILLAGE,
    HENGKENG_DADONGBA,
    HENGKENG_XINXING,
    SHICANG,
    sample_feature_collection,
    sample_grids,
)


@pytest.fixture(scope="module")
def grids() -> GridSet:
    return load_feature_collection(sample_feature_collection())


def test_point_inside_a_village(grids: GridSet) -> None:
    assert grids.locate(28.05, 119.1) == Route("location", HENGKENG_DADONGBA, "contains")


def test_routes_to_the_finest_level(grids: GridSet) -> None:
    route = grids.locate(28.25, 119.15)
    assert route is not None and route.grid == SHICANG


def test_point_on_a_shared_border_goes_to_the_lowest_code(grids: GridSet) -> None:
    route = grids.locate(28.1, 119.1)
    assert route is not None
    assert route.method == "border"
    assert route.grid == HENGKENG_DADONGBA
    assert DADONGBA_VILLAGE in route.detail


def test_point_on_a_four_way_corner_goes_to_the_lowest_code(grids: GridSet) -> None:
    route = grids.locate(28.1, 119.2)
    assert route is not None and route.method == "border"
    assert route.grid == HENGKENG_DADONGBA
    assert HENGKENG_XINXING in route.detail


def test_border_choice_does_not_depend_on_load_order(grids: GridSet) -> None:
    reversed_set = GridSet.from_grids(list(reversed(sample_grids())))
    for lat, lon in [(28.1, 119.1), (28.1, 119.2), (28.2, 119.4), (28.0, 119.3)]:
        assert reversed_set.locate(lat, lon) == grids.locate(lat, lon)


def test_point_on_the_outer_edge_is_a_border_hit(grids: GridSet) -> None:
    route = grids.locate(28.0, 119.1)
    assert route is not None and route.method == "border" and route.grid == HENGKENG_DADONGBA


def test_point_just_outside_snaps_to_the_nearest_grid(grids: GridSet) -> None:
    route = grids.locate(27.997, 119.1)  # 0.003° of latitude south: about 334 m
    assert route is not None
    assert route.method == "snapped"
    assert route.grid == HENGKENG_DADONGBA
    assert route.distance_m == pytest.approx(333.6, abs=1.0)


def test_snap_distance_shrinks_longitude_by_latitude(grids: GridSet) -> None:
    """0.003° of longitude at lat 28.05 is 294 m, not 334 m."""
    route = grids.locate(28.05, 118.997, snap_meters=300)
    assert route is not None and route.method == "snapped"
    assert route.distance_m == pytest.approx(294.4, abs=1.0)
    assert grids.locate(28.05, 118.997, snap_meters=250) is None


def test_point_far_outside_is_none(grids: GridSet) -> None:
    assert grids.locate(27.99, 119.1) is None  # about 1.1 km south
    assert grids.locate(27.99, 119.1, snap_meters=0) is None
    route = grids.locate(27.99, 119.1, snap_meters=2000)
    assert route is not None and route.grid == HENGKENG_DADONGBA


def test_snap_picks_the_nearer_of_two_grids(grids: GridSet) -> None:
    """South of the corner where the two 横坑村 meet, each side snaps to its own."""
    west = grids.locate(27.998, 119.199)
    east = grids.locate(27.998, 119.201)
    assert west is not None and west.grid == HENGKENG_DADONGBA
    assert east is not None and east.grid == HENGKENG_XINXING


def test_bad_coordinates_raise(grids: GridSet) -> None:
    for lat, lon in [(91.0, 119.0), (28.0, 181.0), (float("nan"), 119.0)]:
        with pytest.raises(ValueError):
            grids.locate(lat, lon)


def _ring_with_hole() -> tuple[Polygon, Polygon]:
    outer = box(119.0, 28.0, 119.1, 28.1)
    hole = box(119.04, 28.04, 119.06, 28.06)
    return Polygon(outer.exterior.coords, [hole.exterior.coords]), hole


def test_enclave_in_a_hole_gets_its_own_points() -> None:
    ring, hole = _ring_with_hole()
    grids = GridSet.from_grids(
        [
            Grid("1", "外村", "village", None, ring),
            Grid("2", "内村", "village", None, hole),
        ]
    )
    assert grids.locate(28.05, 119.05) == Route("location", "2", "contains")
    assert grids.locate(28.02, 119.02) == Route("location", "1", "contains")
    assert grids.neighbours("1") == {"2"}


def test_point_in_an_empty_hole_is_outside() -> None:
    ring, _ = _ring_with_hole()
    grids = GridSet.from_grids([Grid("1", "湖边村", "village", None, ring)])
    assert grids.locate(28.05, 119.05) is None  # 0.01° from the shore: over 1 km
    route = grids.locate(28.05, 119.05, snap_meters=1500)
    assert route is not None and route.method == "snapped" and route.grid == "1"
    assert route.distance_m == pytest.approx(981.3, abs=1.0)  # east/west shore, not north/south


def test_multipolygon_grid_owns_both_parts() -> None:
    islands = MultiPolygon([box(119.0, 28.0, 119.01, 28.01), box(119.05, 28.0, 119.06, 28.01)])
    grids = GridSet.from_grids(
        [
            Grid("10", "两岛乡", "township", None, box(119.0, 28.0, 119.06, 28.01)),
            Grid("11", "岛村", "village", "10", islands),
            Grid("12", "中村", "village", "10", box(119.01, 28.0, 119.05, 28.01)),
        ]
    )
    assert grids.locate(28.005, 119.005) == Route("location", "11", "contains")
    assert grids.locate(28.005, 119.055) == Route("location", "11", "contains")
    assert grids.locate(28.005, 119.03) == Route("location", "12", "contains")
    assert grids.neighbours("11") == {"12"}


def test_route_serialises() -> None:
    route = Route("location", "1", "snapped", 12.345, "x")
    assert route.to_dict() == {
        "input": "location",
        "grid": "1",
        "method": "snapped",
        "distance_m": 12.3,
        "detail": "x",
    }
