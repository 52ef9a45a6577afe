"""Address text → grid over the sample county (see geo/sample.py for the map)."""

from __future__ import annotations

import json

import pytest

from geo import AddressMatch, GridSet, load_feature_collection
from geo.hanzi import normalize, simplify, stem
from geo.sample import (
    CHENGBEI,
    COUNTY,
    DADONGBA,
    DADONGBA_VILLAGE,
    DONGFANG,
    HENGKENG_DADONGBA,
    HENGKENG_XINXING,
    LONGMEN,
    SHICANG,
    XINXING,
    sample_feature_collection,
)


@pytest.fixture(scope="module")
def grids() -> GridSet:
    return load_feature_collection(sample_feature_collection())


def test_full_address_resolves_down_the_tree(grids: GridSet) -> None:
    match = grids.match_address("松阳县大东坝镇横坑村3组")
    assert match.status == "grid"
    assert match.grid == HENGKENG_DADONGBA
    assert match.route is not None
    assert match.route.input == "address"
    assert match.route.method == "name-match"
    assert match.matched == ("松阳县", "大东坝镇", "横坑村")


def test_township_picks_between_villages_of_the_same_name(grids: GridSet) -> None:
    assert grids.match_address("新兴镇横坑村").grid == HENGKENG_XINXING
    assert grids.match_address("大东坝镇横坑村").grid == HENGKENG_DADONGBA


def test_village_name_shared_by_two_townships_is_ambiguous(grids: GridSet) -> None:
    match = grids.match_address("横坑村")
    assert match.status == "ambiguous"
    assert match.route is None
    assert [c.code for c in match.candidates] == [HENGKENG_DADONGBA, HENGKENG_XINXING]
    assert {c.name for c in match.candidates} == {"横坑村"}


def test_unique_village_alone_is_enough(grids: GridSet) -> None:
    assert grids.match_address("石仓村").grid == SHICANG


def test_name_without_suffix_matches(grids: GridSet) -> None:
    """ "石仓" finds 石仓村; "龙门" finds 龙门村."""
    assert grids.match_address("石仓").grid == SHICANG
    assert grids.match_address("去龙门办事").grid == LONGMEN


def test_township_only_gives_its_villages_as_candidates(grids: GridSet) -> None:
    match = grids.match_address("大东坝镇")
    assert match.status == "ambiguous"
    assert match.area is not None and match.area.code == DADONGBA
    assert [c.code for c in match.candidates] == [
        "331124101201000",
        "331124101202000",
        "331124101203000",
    ]


def test_bare_stem_shared_by_township_and_village_means_the_township(grids: GridSet) -> None:
    """ "大东坝" is the stem of both 大东坝镇 and 大东坝村: the coarser place wins."""
    match = grids.match_address("大东坝")
    assert match.status == "ambiguous"
    assert match.area is not None and match.area.code == DADONGBA


def test_full_village_name_beats_the_township_stem_inside_it(grids: GridSet) -> None:
    assert grids.match_address("大东坝村").grid == DADONGBA_VILLAGE
    assert grids.match_address("大东坝镇大东坝村").grid == DADONGBA_VILLAGE


def test_village_of_another_township_does_not_count(grids: GridSet) -> None:
    """石仓村 lies in 大东坝镇, so "新兴镇石仓村" only names 新兴镇."""
    match = grids.match_address("新兴镇石仓村")
    assert match.status == "ambiguous"
    assert match.area is not None and match.area.code == XINXING
    assert SHICANG not in {c.code for c in match.candidates}
    assert match.matched == ("新兴镇",)


def test_county_only_lists_every_routing_grid(grids: GridSet) -> None:
    match = grids.match_address("松阳")
    assert match.status == "ambiguous"
    assert match.area is not None and match.area.code == COUNTY
    assert len(match.candidates) == 9


def test_traditional_characters_match_simplified_names(grids: GridSet) -> None:
    assert grids.match_address("龍門村").grid == LONGMEN
    assert grids.match_address("松陽縣大東壩鎮橫坑村").grid == HENGKENG_DADONGBA


def test_alias_matches(grids: GridSet) -> None:
    assert grids.match_address("西屏街道东方村12号").grid == DONGFANG


def test_community_suffix_and_spacing(grids: GridSet) -> None:
    assert grids.match_address(" 西屏街道 城北社区 ").grid == CHENGBEI
    assert grids.match_address("城北").grid == CHENGBEI


def test_unknown_text_is_none(grids: GridSet) -> None:
    for text in ("火星路1号", "", "   ", "村"):
        assert grids.match_address(text) == AddressMatch("none")


def test_match_serialises_to_json(grids: GridSet) -> None:
    for text in ("松阳县大东坝镇横坑村", "横坑村", "火星"):
        json.dumps(grids.match_address(text).to_dict(), ensure_ascii=False)


def test_normalize_and_stem() -> None:
    assert normalize("松陽縣 大東壩鎮，橫坑村（３組）") == "松阳县大东坝镇横坑村3组"
    assert simplify("松陽縣 大東") == "松阳县 大东"
    assert stem("横坑村") == "横坑"
    assert stem("城东街道") == "城东"
    assert stem("东方社区") == "东方"
    assert stem("东村") is None  # one character alone would match too much
    assert stem("横坑") is None
