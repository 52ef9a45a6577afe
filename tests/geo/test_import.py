"""GeoJSON import: every fault is reported with its problem code and the feature at fault."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import shapely
from shapely.geometry import shape

from geo import GridImportError, ImportProblem, grid_from_feature, load_feature_collection
from geo.sample import sample_feature_collection

Coords = list[list[float]]


def square(west: float, south: float, size: float = 0.1) -> Coords:
    east, north = west + size, south + size
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]


def feature(
    code: str | None = "1",
    name: str | None = "横坑村",
    level: str | None = "village",
    parent: str | None = None,
    rings: list[Coords] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    props: dict[str, Any] = {"code": code, "name": name, "level": level, **extra}
    if parent is not None:
        props["parent"] = parent
    geometry = {"type": "Polygon", "coordinates": rings or [square(119.0, 28.0)]}
    return {"type": "Feature", "properties": props, "geometry": geometry}


def collection(*features: dict[str, Any], **members: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features), **members}


def problems_of(obj: object) -> list[ImportProblem]:
    with pytest.raises(GridImportError) as caught:
        load_feature_collection(obj)
    return caught.value.problems


def only_problem(obj: object) -> ImportProblem:
    problems = problems_of(obj)
    assert len(problems) == 1, problems
    return problems[0]


def test_valid_collection_loads() -> None:
    grids = load_feature_collection(sample_feature_collection())
    assert len(grids) == 13


def test_json_text_and_bytes_load() -> None:
    text = json.dumps(sample_feature_collection(), ensure_ascii=False)
    assert len(load_feature_collection(text)) == 13
    assert len(load_feature_collection(text.encode())) == 13


def test_not_json() -> None:
    problem = only_problem("{not json")
    assert (problem.index, problem.problem) == (None, "not_geojson")


def test_not_an_object() -> None:
    assert only_problem([1, 2]).problem == "not_geojson"


def test_not_a_feature_collection() -> None:
    assert only_problem(feature()).problem == "not_feature_collection"


def test_empty_collection() -> None:
    assert only_problem(collection()).problem == "empty_collection"


def test_crs_member_naming_a_projected_crs() -> None:
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}
    problem = only_problem(collection(feature(), crs=crs))
    assert (problem.index, problem.problem) == (None, "projected_crs")


def test_crs_member_naming_wgs84_or_cgcs2000_is_accepted() -> None:
    for name in ("urn:ogc:def:crs:OGC:1.3:CRS84", "EPSG:4326", "EPSG:4490"):
        crs = {"type": "name", "properties": {"name": name}}
        assert len(load_feature_collection(collection(feature(), crs=crs))) == 1


def test_projected_coordinates() -> None:
    ring = [[13_247_000.0, 3_312_000.0], [13_248_000.0, 3_312_000.0], [13_248_000.0, 3_313_000.0],
            [13_247_000.0, 3_312_000.0]]  # fmt: skip
    problem = only_problem(collection(feature("A"), feature("B", rings=[ring])))
    assert (problem.index, problem.code, problem.problem) == (1, "B", "projected_crs")


def test_missing_code() -> None:
    problem = only_problem(collection(feature(code=None)))
    assert (problem.index, problem.code, problem.problem) == (0, None, "missing_code")


def test_missing_name() -> None:
    problem = only_problem(collection(feature(name="  ")))
    assert (problem.index, problem.code, problem.problem) == (0, "1", "missing_name")


def test_missing_level() -> None:
    assert only_problem(collection(feature(level=None))).problem == "missing_level"


def test_unknown_level() -> None:
    assert only_problem(collection(feature(level="province"))).problem == "bad_level"


def test_community_is_a_village() -> None:
    grids = load_feature_collection(collection(feature(level="community")))
    assert grids["1"].level == "village"


def test_numeric_code_is_read_as_text() -> None:
    grids = load_feature_collection(collection(feature(code=331124101201000)))  # type: ignore[arg-type]
    assert "331124101201000" in grids


def test_bad_aliases() -> None:
    assert only_problem(collection(feature(aliases="横坑"))).problem == "bad_aliases"


def test_swapped_coordinates_in_china() -> None:
    """Written lat, lon: the first axis looks like a Chinese latitude, the second a longitude."""
    swapped = [[y, x] for x, y in square(119.0, 28.0)]
    problem = only_problem(collection(feature("A", rings=[square(119.2, 28.0)]),
                                      feature("B", rings=[swapped])))  # fmt: skip
    assert (problem.index, problem.code, problem.problem) == (1, "B", "swapped_coordinates")
    assert problem.repaired is not None
    assert shape(problem.repaired).equals(
        shape({"type": "Polygon", "coordinates": [square(119.0, 28.0)]})
    )


def test_swapped_coordinates_out_of_latitude_range() -> None:
    swapped = [[y, x] for x, y in square(100.0, 10.0)]  # lat 10 outside the China heuristic
    assert only_problem(collection(feature(rings=[swapped]))).problem == "swapped_coordinates"


def test_coordinates_out_of_range() -> None:
    assert only_problem(collection(feature(rings=[square(200.0, 100.0)]))).problem == "out_of_range"


def test_unclosed_ring() -> None:
    ring = square(119.0, 28.0)[:-1]
    problem = only_problem(collection(feature("A", rings=[ring])))
    assert (problem.index, problem.code, problem.problem) == (0, "A", "unclosed_ring")
    assert problem.repaired is not None and shape(problem.repaired).is_valid


def test_too_few_positions() -> None:
    ring = [[119.0, 28.0], [119.1, 28.0], [119.0, 28.0]]
    assert only_problem(collection(feature(rings=[ring]))).problem == "too_few_positions"


def test_self_intersecting_ring_offers_a_repair() -> None:
    bowtie = [[119.0, 28.0], [119.1, 28.1], [119.1, 28.0], [119.0, 28.1], [119.0, 28.0]]
    problem = only_problem(collection(feature("A", rings=[square(119.2, 28.0)]),
                                      feature("B", rings=[bowtie])))  # fmt: skip
    assert (problem.index, problem.code, problem.problem) == (1, "B", "self_intersection")
    assert problem.repaired is not None
    repaired = shape(problem.repaired)
    assert repaired.is_valid and repaired.geom_type == "MultiPolygon"
    assert repaired.area == pytest.approx(0.005)


def test_hole_outside_its_shell_is_invalid() -> None:
    rings = [square(119.0, 28.0), square(119.5, 28.5)]
    assert only_problem(collection(feature(rings=rings))).problem == "invalid_geometry"


def test_geometry_of_the_wrong_type() -> None:
    point = feature()
    point["geometry"] = {"type": "Point", "coordinates": [119.0, 28.0]}
    assert only_problem(collection(point)).problem == "bad_geometry_type"


def test_missing_geometry() -> None:
    empty = feature()
    empty["geometry"] = None
    assert only_problem(collection(empty)).problem == "missing_geometry"


def test_malformed_positions() -> None:
    ring: Any = [["a", "b"], [119.1, 28.0], [119.1, 28.1], ["a", "b"]]
    assert only_problem(collection(feature(rings=ring))).problem == "bad_coordinates"


def test_duplicate_codes_name_every_copy() -> None:
    problems = problems_of(collection(feature("A"), feature("A", rings=[square(119.2, 28.0)])))
    assert [(p.index, p.code, p.problem) for p in problems] == [
        (0, "A", "duplicate_code"),
        (1, "A", "duplicate_code"),
    ]


def test_unknown_parent() -> None:
    problem = only_problem(collection(feature("A", parent="ZZZ")))
    assert (problem.index, problem.code, problem.problem) == (0, "A", "unknown_parent")


def test_parent_must_be_coarser() -> None:
    problem = only_problem(collection(feature("T", level="township", parent="V"), feature("V")))
    assert (problem.code, problem.problem) == ("T", "parent_level")


def test_child_outside_its_parent() -> None:
    township = feature("T", "大东坝镇", "township", rings=[square(119.0, 28.0, 0.2)])
    inside = feature("V1", parent="T", rings=[square(119.0, 28.0)])
    straddling = feature("V2", parent="T", rings=[square(119.15, 28.0)])
    problem = only_problem(collection(township, inside, straddling))
    assert (problem.index, problem.code, problem.problem) == (2, "V2", "outside_parent")


def test_child_slightly_outside_its_parent_is_tolerated() -> None:
    township = feature("T", "大东坝镇", "township", rings=[square(119.0, 28.0, 0.2)])
    overhang = feature("V", parent="T", rings=[square(119.0000001, 28.0)])
    assert len(load_feature_collection(collection(township, overhang))) == 2


def test_overlapping_grids_of_one_level_name_both() -> None:
    problems = problems_of(collection(feature("A"), feature("B", rings=[square(119.05, 28.05)])))
    assert [(p.index, p.code, p.problem) for p in problems] == [
        (0, "A", "overlap"),
        (1, "B", "overlap"),
    ]
    assert "B" in problems[0].message and "A" in problems[1].message


def test_overlap_within_tolerance_and_touching_are_fine() -> None:
    sliver = feature("B", rings=[square(119.0999999, 28.0)])
    touching = feature("C", rings=[square(119.0, 28.1)])
    assert len(load_feature_collection(collection(feature("A"), sliver, touching))) == 3


def test_grids_of_different_levels_may_overlap() -> None:
    township = feature("T", "大东坝镇", "township", rings=[square(119.0, 28.0)])
    assert len(load_feature_collection(collection(township, feature("V", parent="T")))) == 2


def test_every_fault_is_reported_at_once() -> None:
    doc = sample_feature_collection()
    doc["features"][1]["properties"]["name"] = ""
    doc["features"][5]["geometry"]["coordinates"][0].pop()
    doc["features"][7]["properties"]["parent"] = "999"
    doc["features"].append(copy.deepcopy(doc["features"][3]))
    problems = problems_of(doc)
    found = {(p.index, p.problem) for p in problems}
    assert found == {
        (1, "missing_name"),
        (5, "unclosed_ring"),
        (7, "unknown_parent"),
        (3, "duplicate_code"),
        (13, "duplicate_code"),
    }


def test_report_is_json_ready() -> None:
    bowtie = [[119.0, 28.0], [119.1, 28.1], [119.1, 28.0], [119.0, 28.1], [119.0, 28.0]]
    with pytest.raises(GridImportError) as caught:
        load_feature_collection(collection(feature(rings=[bowtie]), feature(code=None)))
    report = json.loads(json.dumps([p.to_dict() for p in caught.value.problems]))
    assert [p["problem"] for p in report] == ["self_intersection", "missing_code"]
    assert shapely.from_geojson(json.dumps(report[0]["repaired"])).is_valid
    assert "feature 0" in str(caught.value)


def test_single_feature_for_an_update() -> None:
    grids = load_feature_collection(sample_feature_collection())
    extra = feature("331124001004000", "新社区", "community", "331124001000000",
                    [square(119.45, 28.05, 0.01)])  # fmt: skip
    with pytest.raises(GridImportError) as caught:
        grids.updated([grid_from_feature(extra)])
    assert {(p.code, p.problem) for p in caught.value.problems} == {
        ("331124001004000", "overlap"),
        ("331124001001000", "overlap"),
    }
    with pytest.raises(GridImportError) as caught:
        grid_from_feature(feature(name=None))
    assert [(p.index, p.problem) for p in caught.value.problems] == [(0, "missing_name")]
