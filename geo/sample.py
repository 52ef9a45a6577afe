"""A tiny hand-drawn county for tests and examples: 3 townships of 3 villages each.

Everything is an axis-aligned box, so borders and corners sit at round coordinates::

    lat 28.3 ┌────────────┬────────────┬────────────┐
             │ 石仓村      │ 龙门村      │ 东方社区    │
    lat 28.2 ├────────────┼────────────┼────────────┤
             │ 大东坝村    │ 新兴村      │ 南门社区    │
    lat 28.1 ├────────────┼────────────┼────────────┤
             │ 横坑村      │ 横坑村      │ 城北社区    │
    lat 28.0 └────────────┴────────────┴────────────┘
          lon 119.0     119.2        119.4        119.6
               大东坝镇      新兴镇       西屏街道         (all in 松阳县)

Two villages are both called 横坑村 (one per township); 大东坝村 shares its stem with its
township; 东方社区 has the alias 东方村; the county has the alias 松阳.
"""

from __future__ import annotations

from typing import Any, Final

from shapely.geometry import box

from .geojson import feature_collection
from .grid import Grid

COUNTY: Final = "331124000000000"
DADONGBA: Final = "331124101000000"
XINXING: Final = "331124102000000"
XIPING: Final = "331124001000000"
HENGKENG_DADONGBA: Final = "331124101201000"
DADONGBA_VILLAGE: Final = "331124101202000"
SHICANG: Final = "331124101203000"
HENGKENG_XINXING: Final = "331124102201000"
XINXING_VILLAGE: Final = "331124102202000"
LONGMEN: Final = "331124102203000"
CHENGBEI: Final = "331124001001000"
NANMEN: Final = "331124001002000"
DONGFANG: Final = "331124001003000"

_Villages = tuple[tuple[str, str], ...]
_TOWNSHIPS: Final[tuple[tuple[str, str, float, _Villages], ...]] = (
    (
        DADONGBA,
        "大东坝镇",
        119.0,
        ((HENGKENG_DADONGBA, "横坑村"), (DADONGBA_VILLAGE, "大东坝村"), (SHICANG, "石仓村")),
    ),
    (
        XINXING,
        "新兴镇",
        119.2,
        ((HENGKENG_XINXING, "横坑村"), (XINXING_VILLAGE, "新兴村"), (LONGMEN, "龙门村")),
    ),
    (
        XIPING,
        "西屏街道",
        119.4,
        ((CHENGBEI, "城北社区"), (NANMEN, "南门社区"), (DONGFANG, "东方社区")),
    ),
)


def sample_grids() -> list[Grid]:
    """The sample county, county first, then each township followed by its villages."""
    grids = [Grid(COUNTY, "松阳县", "county", None, box(119.0, 28.0, 119.6, 28.3), ("松阳",))]
    for code, name, west, villages in _TOWNSHIPS:
        grids.append(Grid(code, name, "township", COUNTY, box(west, 28.0, west + 0.2, 28.3)))
        for row, (village_code, village_name) in enumerate(villages):
            south = 28.0 + 0.1 * row
            geometry = box(west, south, west + 0.2, south + 0.1)
            aliases = ("东方村",) if village_code == DONGFANG else ()
            grids.append(Grid(village_code, village_name, "village", code, geometry, aliases))
    return grids


def sample_feature_collection() -> dict[str, Any]:
    """The sample county as a GeoJSON FeatureCollection."""
    return feature_collection(sample_grids())
