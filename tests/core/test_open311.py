"""The Open311 mapping: states, times, services, attributes and desks, as plain functions."""

from __future__ import annotations

import pytest

from dispatcher.core import open311 as o311
from dispatcher.core.catalog import Item, Level
from dispatcher.core.orders import Status

ITEM = Item(
    code="HJ-001",
    name="户口迁移（迁入）",
    category="户籍",
    item_class=1,
    eligible="本地居民",
    materials=("身份证", "户口簿", "准迁证"),
    steps=("提交",),
    time_limit_days=10,
    fee="免费",
    level=Level.TOWNSHIP,
)


def test_open_and_closed_cover_every_state_once() -> None:
    opened, closed = set(o311.statuses_for("open")), set(o311.statuses_for("closed"))
    assert opened | closed == set(Status) and not opened & closed
    assert {o311.status_of(s) for s in closed} == {"closed"}
    assert o311.status_of(Status.ESCALATED) == "open"
    assert o311.status_of(Status.REPLIED) == "closed"
    with pytest.raises(ValueError):
        o311.statuses_for("pending")


def test_times_are_w3c_with_a_zone() -> None:
    assert o311.iso(0) == "1970-01-01T00:00:00Z"
    assert o311.iso(None) is None
    assert o311.parse_w3("2026-12-01T08:00:00+08:00") == o311.parse_w3("2026-12-01T00:00:00Z")
    with pytest.raises(ValueError):
        o311.parse_w3("2026-12-01T00:00:00")  # no zone
    with pytest.raises(ValueError):
        o311.parse_w3("yesterday")


def test_a_service_and_its_definition() -> None:
    service = o311.service(ITEM)
    assert (service["service_code"], service["group"], service["metadata"]) == (
        "HJ-001",
        "户籍",
        True,
    )
    assert "10 个工作日" in service["description"] and "一类事项" in service["keywords"]
    attrs = o311.definition(ITEM)["attributes"]
    assert [(a["code"], a["description"], a["order"]) for a in attrs] == [
        ("M1", "身份证", 1),
        ("M2", "户口簿", 2),
        ("M3", "准迁证", 3),
    ]


def test_attributes_become_a_line_for_the_agent() -> None:
    assert o311.materials_line(ITEM, {}) is None
    line = o311.materials_line(ITEM, {"M1": "yes", "M3": "no", "M2": "yes"})
    assert line == "【申请人自述材料】已备：身份证、户口簿；缺：准迁证"
    with pytest.raises(o311.BadAttributeError, match="M4"):
        o311.materials_line(ITEM, {"M4": "yes"})
    with pytest.raises(o311.BadAttributeError, match="yes, no"):
        o311.materials_line(ITEM, {"M1": "maybe"})


def test_the_desk_is_named_after_the_area_at_its_level() -> None:
    places = [("village", "凌江村"), ("township", "太平圩乡"), ("county", "蓝山县")]
    assert o311.agency(Level.TOWNSHIP, places) == "太平圩乡便民服务中心"
    assert o311.agency(Level.COUNTY, places) == "蓝山县政务服务中心"
    assert o311.agency(Level.VILLAGE, places) == "凌江村便民服务站"
    assert o311.agency(Level.COUNTY, []) == "县级办理（政务服务中心）"
