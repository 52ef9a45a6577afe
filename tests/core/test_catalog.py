"""The catalogue: the shipped demo items, and each validation error of an item or a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dispatcher.core.catalog import MATERIALS_MAX, NAME_MAX, Item, Level, load_catalog, parse_item
from dispatcher.exceptions import CatalogError, ConfigError

GOOD: dict[str, Any] = {
    "code": "HJ-001",
    "name": "户口迁移（迁入）",
    "category": "户籍管理",
    "item_class": 2,
    "eligible": "需将户口迁入本地的居民",
    "materials": ["居民身份证", "居民户口簿"],
    "steps": ["代办员核对材料", "送乡镇派出所办理"],
    "time_limit_days": 10,
    "fee": "不收费",
    "level": "township",
}


def item(**changes: Any) -> dict[str, Any]:
    return {**GOOD, **changes}


def test_shipped_catalogue_has_the_seed_items() -> None:
    catalog = load_catalog()
    assert len(catalog) >= 20
    names = "".join(i.name for i in catalog.values())
    for wanted in (
        "户口迁移",
        "大病救助",
        "农村危房改造",
        "独生子女",
        "低保",
        "养老保险",
        "医疗保险",
    ):
        assert wanted in names
    assert "残疾人证" in names
    assert {i.item_class for i in catalog.values()} == {1, 2}
    assert set(Level) == {i.level for i in catalog.values()}
    assert any(i.retired for i in catalog.values())
    assert all(code == i.code for code, i in catalog.items())


def test_items_round_trip_through_the_wire() -> None:
    for one in load_catalog().values():
        assert parse_item(one.to_wire()) == one


def test_a_good_item_is_parsed_and_trimmed() -> None:
    parsed = parse_item(item(name="  户口迁移（迁入） ", retired=False))
    assert parsed == Item(
        code="HJ-001",
        name="户口迁移（迁入）",
        category="户籍管理",
        item_class=2,
        eligible="需将户口迁入本地的居民",
        materials=("居民身份证", "居民户口簿"),
        steps=("代办员核对材料", "送乡镇派出所办理"),
        time_limit_days=10,
        fee="不收费",
        level=Level.TOWNSHIP,
    )
    assert parsed.level.label == "乡镇办理"


def test_limits_are_inclusive() -> None:
    many = [f"材料{i}" for i in range(MATERIALS_MAX)]
    ok = parse_item(item(name="名" * NAME_MAX, materials=many, time_limit_days=0))
    assert len(ok.name) == NAME_MAX and len(ok.materials) == MATERIALS_MAX


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"code": None}, "code"),
        ({"code": "hj-1"}, "code"),
        ({"code": 1}, "code"),
        ({"name": ""}, "name"),
        ({"name": "名" * (NAME_MAX + 1)}, "name"),
        ({"category": 3}, "category"),
        ({"item_class": 3}, "item_class"),
        ({"item_class": True}, "item_class"),
        ({"item_class": "1"}, "item_class"),
        ({"eligible": None}, "eligible"),
        ({"materials": "居民身份证"}, "materials"),
        ({"materials": [f"材料{i}" for i in range(MATERIALS_MAX + 1)]}, "materials"),
        ({"materials": ["居民身份证", "料" * 101]}, "materials[1]"),
        ({"materials": ["居民身份证", " "]}, "materials[1]"),
        ({"materials": ["居民身份证", "居民身份证"]}, "materials"),
        ({"steps": []}, "steps"),
        ({"time_limit_days": -1}, "time_limit_days"),
        ({"time_limit_days": 366}, "time_limit_days"),
        ({"time_limit_days": 2.5}, "time_limit_days"),
        ({"fee": None}, "fee"),
        ({"level": "province"}, "level"),
        ({"retired": "yes"}, "retired"),
        ({"price": 10}, "price"),
    ],
)
def test_each_bad_field_is_named(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(CatalogError) as caught:
        parse_item({k: v for k, v in item(**changes).items() if v is not None})
    assert caught.value.field == field
    assert isinstance(caught.value, ConfigError) and field in str(caught.value)


def test_an_item_must_be_an_object() -> None:
    with pytest.raises(CatalogError):
        parse_item(["HJ-001"])  # type: ignore[arg-type]


def write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ([GOOD], "$"),
        ({"items": []}, "items"),
        ({"items": [GOOD], "version": 2}, "version"),
        ({"items": [GOOD, item(name="")]}, "items[1].name"),
        ({"items": [GOOD, item(name="户口迁出")]}, "items[1].code"),
    ],
)
def test_bad_files_name_the_item_and_field(tmp_path: Path, doc: Any, field: str) -> None:
    with pytest.raises(CatalogError) as caught:
        load_catalog(write(tmp_path, doc))
    assert caught.value.field == field


def test_a_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text("items: []", encoding="utf-8")
    with pytest.raises(CatalogError, match="not valid JSON"):
        load_catalog(path)


def test_a_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        load_catalog(tmp_path / "nowhere.json")


def test_operators_load_their_own_file_in_its_order(tmp_path: Path) -> None:
    second = item(code="MZ-001", name="最低生活保障申请", level="county")
    catalog = load_catalog(write(tmp_path, {"note": "本县目录", "items": [second, GOOD]}))
    assert list(catalog) == ["MZ-001", "HJ-001"]
