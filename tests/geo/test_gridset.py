"""GridSet: the tree, neighbours, round trip, updates."""

from __future__ import annotations

import json

import pytest
from shapely.geometry import box

from geo import Grid, GridImportError, GridSet, Route, load_feature_collection
from geo.sample import (
    CHENGBEI,
    COUNTY,
    DADONGBA,
    DADONGBA_VILLAGE,
    HENGKENG_DADONGBA,
    HENGKENG_XINXING,
    SHICANG,
    XINXING,
    XINXING_VILLAGE,
    XIPING,
    sample_feature_collection,
    sample_grids,
)


@pytest.fixture(scope="module")
def grids() -> GridSet:
    return load_feature_collection(sample_feature_collection())


def test_lookup_by_code(grids: GridSet) -> None:
    assert grids[SHICANG].name == "石仓村"
    assert grids.get("nope") is None
    assert SHICANG in grids and "nope" not in grids
    with pytest.raises(KeyError):
        grids["nope"]


def test_iteration_keeps_the_given_order(grids: GridSet) -> None:
    assert [g.code for g in grids] == [g.code for g in sample_grids()]
    assert len(grids) == 13


def test_levels_and_routing_grids(grids: GridSet) -> None:
    assert grids.levels == ("county", "township", "village")
    assert len(grids.leaves) == 9
    assert {g.level for g in grids.leaves} == {"village"}
    assert [g.code for g in grids.at_level("township")] == [DADONGBA, XINXING, XIPING]


def test_children_descendants_ancestors(grids: GridSet) -> None:
    assert [g.code for g in grids.children(DADONGBA)] == [
        HENGKENG_DADONGBA,
        DADONGBA_VILLAGE,
        SHICANG,
    ]
    below = [g.code for g in grids.descendants(COUNTY)]
    assert len(below) == 12
    assert below.index(DADONGBA) < below.index(SHICANG)  # parents before children
    assert [g.code for g in grids.ancestors(SHICANG)] == [DADONGBA, COUNTY]
    assert grids.ancestors(COUNTY) == ()
    assert grids.descendants(SHICANG) == ()


def test_neighbours_share_a_border_not_a_corner(grids: GridSet) -> None:
    assert grids.neighbours(HENGKENG_DADONGBA) == {DADONGBA_VILLAGE, HENGKENG_XINXING}
    assert grids.neighbours(XINXING_VILLAGE) == {
        HENGKENG_XINXING,
        "331124102203000",
        DADONGBA_VILLAGE,
        "331124001002000",
    }
    assert grids.neighbours(DADONGBA) == {XINXING}
    assert grids.neighbours(COUNTY) == frozenset()


def test_neighbours_are_symmetric(grids: GridSet) -> None:
    for grid in grids:
        for other in grids.neighbours(grid.code):
            assert grid.code in grids.neighbours(other)
            assert grids[other].level == grid.level


def test_nearly_touching_borders_still_count_as_neighbours() -> None:
    gap = 0.000004  # about 0.4 m, as when two surveys disagree
    grids = GridSet.from_grids(
        [
            Grid("1", "甲村", "village", None, box(119.0, 28.0, 119.1, 28.1)),
            Grid("2", "乙村", "village", None, box(119.1 + gap, 28.0, 119.2, 28.1)),
            Grid("3", "丙村", "village", None, box(119.3, 28.0, 119.4, 28.1)),
        ]
    )
    assert grids.neighbours("1") == {"2"}
    assert grids.neighbours("3") == frozenset()


def test_round_trip_through_geojson(grids: GridSet) -> None:
    text = json.dumps(grids.to_feature_collection(), ensure_ascii=False)
    again = load_feature_collection(text)
    assert [g.code for g in again] == [g.code for g in grids]
    for before, after in zip(grids, again, strict=True):
        assert (before.name, before.level, before.parent, before.aliases) == (
            after.name,
            after.level,
            after.parent,
            after.aliases,
        )
        assert before.geometry is not None and after.geometry is not None
        assert before.geometry.equals(after.geometry)


def test_route_grid(grids: GridSet) -> None:
    assert grids.route_grid(SHICANG) == Route("grid", SHICANG, "given")
    assert grids.route_grid("nope") is None


def test_updated_replaces_and_adds(grids: GridSet) -> None:
    renamed = Grid(CHENGBEI, "城北村", "village", XIPING, grids[CHENGBEI].geometry)
    changed = grids.updated([renamed])
    assert changed[CHENGBEI].name == "城北村"
    assert changed.match_address("城北村").grid == CHENGBEI
    assert grids[CHENGBEI].name == "城北社区"  # the original is untouched
    extra = Grid("331124001003001", "东方一网格", "grid", "331124001003000",
                 box(119.4, 28.2, 119.5, 28.3))  # fmt: skip
    deeper = grids.updated([extra])
    route = deeper.locate(28.25, 119.45)
    assert route is not None and route.grid == "331124001003001"
    assert "331124001003000" not in {g.code for g in deeper.leaves}


def test_updated_rejects_an_invalid_result(grids: GridSet) -> None:
    overlapping = Grid("331124001004000", "新社区", "village", XIPING,
                       box(119.45, 28.05, 119.5, 28.15))  # fmt: skip
    with pytest.raises(GridImportError) as caught:
        grids.updated([overlapping])
    assert {p.problem for p in caught.value.problems} == {"overlap"}


def test_grids_without_geometry_match_by_name_only() -> None:
    grids = GridSet.from_grids([Grid("1", "甲乡", "township"), Grid("2", "乙村", "village", "1")])
    assert grids.match_address("甲乡乙村").grid == "2"
    assert grids.locate(28.0, 119.0) is None
