"""The demo county (geo/data): it loads, tiles, routes, and is regenerated identically."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import shapely

from geo import GridSet, load_demo_agents, load_demo_county
from geo.demo import demo_agents_text, demo_county_text
from geo.gen_demo_county import generate, write
from geo.projection import area_m2


@pytest.fixture(scope="module")
def county() -> GridSet:
    return load_demo_county()


def test_shape_of_the_tree(county: GridSet) -> None:
    counts = Counter(g.level for g in county)
    assert counts == {"county": 1, "township": 19, "village": 400}
    assert county.levels == ("county", "township", "village")
    assert len(county.leaves) == 400
    suffixes = Counter(
        g.name[-2:] if g.name.endswith("街道") else g.name[-1] for g in county.at_level("township")
    )
    assert set(suffixes) == {"街道", "镇", "乡"}
    assert all(len(g.code) == 15 and g.code.isdigit() for g in county)


def test_villages_tile_the_county(county: GridSet) -> None:
    (top,) = county.at_level("county")
    assert top.geometry is not None
    villages = [g.geometry for g in county.at_level("village")]
    assert sum(area_m2(v) for v in villages) == pytest.approx(area_m2(top.geometry), rel=1e-5)
    union = shapely.union_all(villages)
    assert area_m2(shapely.symmetric_difference(union, top.geometry)) < 1.0


@pytest.mark.parametrize("level", ["township", "village"])
def test_no_overlaps_within_a_level(county: GridSet, level: str) -> None:
    geoms = np.array([g.geometry for g in county if g.level == level], dtype=object)
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = left < right
    shared = shapely.area(shapely.intersection(geoms[left[keep]], geoms[right[keep]]))
    assert float(shared.max()) < 1e-12


def test_villages_lie_in_their_township(county: GridSet) -> None:
    for village in county.at_level("village"):
        assert village.parent is not None
        parent = county[village.parent]
        assert parent.level == "township"
        assert parent.geometry is not None and village.geometry is not None
        assert area_m2(shapely.difference(village.geometry, parent.geometry)) < 1.0


def test_every_village_routes_to_itself(county: GridSet) -> None:
    for village in county.at_level("village"):
        assert village.geometry is not None
        point = village.geometry.representative_point()
        route = county.locate(point.y, point.x)
        assert route is not None and route.grid == village.code


def test_every_village_has_neighbours(county: GridSet) -> None:
    for village in county.at_level("village"):
        assert 1 <= len(county.neighbours(village.code)) <= 12


def test_every_village_matches_by_its_full_address(county: GridSet) -> None:
    (top,) = county.at_level("county")
    for village in county.at_level("village"):
        assert village.parent is not None
        text = f"{top.name}{county[village.parent].name}{village.name}5组"
        assert county.match_address(text).grid == village.code, text


def test_some_village_names_recur_across_townships(county: GridSet) -> None:
    names = Counter(g.name for g in county.at_level("village"))
    repeated = [name for name, n in names.items() if n > 1]
    assert repeated
    assert county.match_address(repeated[0]).status == "ambiguous"


def test_agents_cover_every_village(county: GridSet) -> None:
    agents = load_demo_agents(county)
    per_village = Counter(code for agent in agents for code in agent.grids)
    assert set(per_village) == {g.code for g in county.at_level("village")}
    assert min(per_village.values()) >= 2
    assert all(agent.phone.startswith("1380000") for agent in agents)
    assert len({agent.phone for agent in agents}) == len(agents)


def test_generator_is_deterministic(tmp_path: Path) -> None:
    first = write(tmp_path / "a")
    second = write(tmp_path / "b")
    for one, two in zip(first, second, strict=True):
        assert one.read_bytes() == two.read_bytes()


def test_shipped_files_match_the_generator() -> None:
    """geo/data is what `python -m geo.gen_demo_county` writes (up to float noise)."""
    collection, agents = generate()
    assert agents == demo_agents_text()
    shipped = json.loads(demo_county_text())["features"]
    assert [f["properties"] for f in shipped] == [f["properties"] for f in collection["features"]]
    for ours, theirs in zip(collection["features"], shipped, strict=True):
        a = shapely.from_geojson(json.dumps(ours["geometry"]))
        b = shapely.from_geojson(json.dumps(theirs["geometry"]))
        assert shapely.hausdorff_distance(a, b) < 1e-5


def test_shipped_files_are_small() -> None:
    assert len(demo_county_text().encode()) < 3_000_000
    assert len(demo_agents_text().encode()) < 200_000
