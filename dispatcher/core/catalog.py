"""The catalogue (事项目录): the items an applicant can ask for, each with its service guide.

An item carries what the seeds' service guides (办事指南) spell out: who may apply, the
materials, the steps, the time limit in working days, fees, and the level that can finish it
(the village desk, the township service centre, or the county).  Its class (1 or 2) decides
the points an agent earns (:mod:`dispatcher.core.points`); its materials are what the agent checks
on acceptance (:mod:`dispatcher.core.workflow`).

Items are never deleted, only ``retired``: old orders keep pointing at their code.  The file
``dispatcher/core/data/catalog.json`` (``{"items": [...]}``) is a demo catalogue drawn from the
seeds; operators replace it with their county's list.  Everything here is pure apart from
:func:`load_catalog`, which reads that file.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dispatcher.exceptions import CatalogError

DEFAULT_PATH = Path(__file__).parent / "data" / "catalog.json"

CODE_RE = re.compile(r"^[A-Z]{2,4}-[0-9]{3,4}$")  # 'HJ-001': category letters, a number
NAME_MAX = 100
CATEGORY_MAX = 50
ELIGIBLE_MAX = 500  # who may apply (服务对象)
MATERIALS_MAX = 30
MATERIAL_MAX = 100
STEPS_MAX = 30
STEP_MAX = 200
FEE_MAX = 200
TIME_LIMIT_MAX = 365  # working days; 0 means done on the spot (即办件)
ITEMS_MAX = 2000


class Level(enum.StrEnum):
    """The lowest level of government that can finish an item (村 → 乡镇 → 县)."""

    VILLAGE = "village"
    TOWNSHIP = "township"
    COUNTY = "county"

    @property
    def label(self) -> str:
        return {"village": "村级可办", "township": "乡镇办理", "county": "县级办理"}[self.value]


@dataclass(frozen=True, slots=True)
class Item:
    """One catalogue item (事项) and its service guide.  Build with :func:`parse_item`."""

    code: str
    name: str
    category: str
    item_class: int
    eligible: str
    materials: tuple[str, ...]
    steps: tuple[str, ...]
    time_limit_days: int
    fee: str
    level: Level
    retired: bool = False

    def to_wire(self) -> dict[str, Any]:
        """The item as a JSON/MessagePack map; :func:`parse_item` reads it back."""
        return {
            "code": self.code,
            "name": self.name,
            "category": self.category,
            "item_class": self.item_class,
            "eligible": self.eligible,
            "materials": list(self.materials),
            "steps": list(self.steps),
            "time_limit_days": self.time_limit_days,
            "fee": self.fee,
            "level": self.level.value,
            "retired": self.retired,
        }


_FIELDS = frozenset(Item.__dataclass_fields__)


def parse_item(data: Mapping[str, Any]) -> Item:
    """Check one item map (as in the file or an admin request) and build the :class:`Item`.

    Texts are trimmed.  Raises :class:`CatalogError` naming the first field at fault.
    """
    if not isinstance(data, Mapping):
        raise CatalogError("item", "must be an object")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise CatalogError(unknown[0], "unknown field")
    code = _text(data, "code", 16)
    if not CODE_RE.match(code):
        raise CatalogError("code", "must look like 'HJ-001' (2-4 capitals, '-', 3-4 digits)")
    level = data.get("level")
    if level not in {lv.value for lv in Level}:
        raise CatalogError("level", "must be 'village', 'township' or 'county'")
    retired = data.get("retired", False)
    if not isinstance(retired, bool):
        raise CatalogError("retired", "must be true or false")
    return Item(
        code=code,
        name=_text(data, "name", NAME_MAX),
        category=_text(data, "category", CATEGORY_MAX),
        item_class=_int(data, "item_class", 1, 2),  # 一类 (simpler) or 二类 (harder)
        eligible=_text(data, "eligible", ELIGIBLE_MAX),
        materials=_texts(data, "materials", MATERIALS_MAX, MATERIAL_MAX, min_items=0),
        steps=_texts(data, "steps", STEPS_MAX, STEP_MAX, min_items=1),
        time_limit_days=_int(data, "time_limit_days", 0, TIME_LIMIT_MAX),
        fee=_text(data, "fee", FEE_MAX),
        level=Level(level),
        retired=retired,
    )


def load_catalog(path: str | Path | None = None) -> dict[str, Item]:
    """Read a catalogue file (default: the demo one shipped with the package), code → item.

    The order of the file is kept.  Raises :class:`CatalogError` when the content is
    malformed (a duplicate code included) and ``OSError`` when the file cannot be read.
    """
    text = Path(path or DEFAULT_PATH).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CatalogError("$", f"not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise CatalogError("$", "must be an object with 'items'")
    unknown = sorted(set(data) - {"note", "items"})
    if unknown:
        raise CatalogError(unknown[0], "unknown field")
    raw = data.get("items")
    if not isinstance(raw, list) or not 1 <= len(raw) <= ITEMS_MAX:
        raise CatalogError("items", f"must be a list of 1 to {ITEMS_MAX} items")
    catalog: dict[str, Item] = {}
    for i, entry in enumerate(raw):
        try:
            item = parse_item(entry)
        except CatalogError as e:
            raise CatalogError(f"items[{i}].{e.field}", e.message) from None
        if item.code in catalog:
            raise CatalogError(f"items[{i}].code", f"duplicate code {item.code}")
        catalog[item.code] = item
    return catalog


def _text(data: Mapping[str, Any], name: str, max_len: int) -> str:
    value = data.get(name)
    if value is None:
        raise CatalogError(name, "is required")
    return _clean(value, name, max_len)


def _clean(value: Any, field: str, max_len: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CatalogError(field, "must be a non-empty string")
    if len(value.strip()) > max_len:
        raise CatalogError(field, f"is longer than {max_len} characters")
    return value.strip()


def _texts(
    data: Mapping[str, Any], name: str, max_items: int, max_len: int, *, min_items: int
) -> tuple[str, ...]:
    value = data.get(name)
    if not isinstance(value, list) or not min_items <= len(value) <= max_items:
        raise CatalogError(name, f"must be a list of {min_items} to {max_items} texts")
    out = tuple(_clean(v, f"{name}[{i}]", max_len) for i, v in enumerate(value))
    if len(set(out)) != len(out):
        raise CatalogError(name, "lists the same text twice")
    return out


def _int(data: Mapping[str, Any], name: str, lo: int, hi: int) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise CatalogError(name, f"must be a whole number from {lo} to {hi}")
    return value
