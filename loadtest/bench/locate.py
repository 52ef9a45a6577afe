"""Geo benchmark: import time, coordinate and address lookups per second.

    python -m loadtest.bench.locate [--lookups 200000] [--out loadtest/results/geo.json]

Loads the demo county (geo/data), then times single-threaded lookups one call at a time, as the
server makes them. Targets: import < 5 s, ≥ 50,000 coordinate and ≥ 20,000 address lookups/s.
Prints a table and writes the same figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import shapely

from geo import GridSet, load_demo_county
from geo.demo import demo_county_text
from geo.hanzi import stem
from geo.loader import load_feature_collection

TARGETS = {"import_s": 5.0, "coordinates_per_s": 50_000.0, "addresses_per_s": 20_000.0}
# simplified → traditional for the characters of the demo names that have a traditional form
TRADITIONAL = str.maketrans(
    "东龙凤门桥头湾岭坞坝阳长双华兴马黄叶陈杨刘张罗乡镇县",
    "東龍鳳門橋頭灣嶺塢壩陽長雙華興馬黃葉陳楊劉張羅鄉鎮縣",
)


def time_import(repeats: int) -> dict[str, float]:
    text = demo_county_text()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        load_feature_collection(text)
        runs.append(time.perf_counter() - start)
    return {"import_s": statistics.median(runs), "import_max_s": max(runs)}


def inside_points(grids: GridSet, count: int, rng: random.Random) -> list[tuple[float, float]]:
    (county,) = grids.at_level("county")
    shape = county.geometry
    assert shape is not None
    shapely.prepare(shape)
    west, south, east, north = shape.bounds
    points: list[tuple[float, float]] = []
    while len(points) < count:
        lon, lat = rng.uniform(west, east), rng.uniform(south, north)
        if shapely.contains_xy(shape, lon, lat):
            points.append((lat, lon))
    return points


def box_points(grids: GridSet, count: int, rng: random.Random) -> list[tuple[float, float]]:
    """Uniform over the county's bounding box grown by 2 km: some outside, some snapped."""
    (county,) = grids.at_level("county")
    assert county.geometry is not None
    west, south, east, north = county.geometry.bounds
    pad = 0.02
    return [
        (rng.uniform(south - pad, north + pad), rng.uniform(west - pad, east + pad))
        for _ in range(count)
    ]


def addresses(grids: GridSet, count: int, rng: random.Random) -> list[str]:
    """Address texts of the forms applicants type, including misses and traditional script."""
    (county,) = grids.at_level("county")
    villages = grids.at_level("village")
    forms: list[Callable[[str, str], str]] = [
        lambda town, village: f"{county.name}{town}{village}{rng.randint(1, 12)}组",
        lambda town, village: f"{town}{village}",
        lambda town, village: f"浙江省丽水市{county.name}{town}{village}{rng.randint(1, 99)}号",
        lambda town, village: village,
        lambda town, village: stem(village) or village,
        lambda town, village: f"{town}{village}".translate(TRADITIONAL),
        lambda town, village: town,
        lambda town, village: f"{county.name}人民路{rng.randint(1, 300)}号",
    ]
    texts = []
    for _ in range(count):
        village = rng.choice(villages)
        assert village.parent is not None
        texts.append(rng.choice(forms)(grids[village.parent].name, village.name))
    return texts


def rate(calls: Sequence[Any], run: Callable[[Any], object]) -> float:
    start = time.perf_counter()
    for call in calls:
        run(call)
    return len(calls) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="geo lookup benchmark")
    parser.add_argument("--lookups", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("loadtest/results/geo.json"))
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    figures: dict[str, Any] = time_import(repeats=5)
    grids = load_demo_county()
    inside = inside_points(grids, args.lookups, rng)
    mixed = box_points(grids, args.lookups, rng)
    texts = addresses(grids, args.lookups, rng)

    figures["coordinates_per_s"] = rate(inside, lambda p: grids.locate(p[0], p[1]))
    figures["coordinates_mixed_per_s"] = rate(mixed, lambda p: grids.locate(p[0], p[1]))
    figures["addresses_per_s"] = rate(texts, grids.match_address)
    methods = Counter(
        route.method if route else "none" for route in map(lambda p: grids.locate(*p), mixed)
    )
    statuses = Counter(grids.match_address(t).status for t in texts)
    figures["mixed_methods"] = dict(methods.most_common())
    figures["address_statuses"] = dict(statuses.most_common())
    figures["grids"] = {"total": len(grids), "routing": len(grids.leaves)}
    figures["lookups"] = args.lookups
    figures["machine"] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "shapely": shapely.__version__,
        "geos": ".".join(map(str, shapely.geos_version)),
    }

    print(f"{'figure':<28}{'measured':>14}{'target':>12}  ok")
    for key, target in TARGETS.items():
        value = figures[key]
        ok = value < target if key == "import_s" else value >= target
        shown = f"{value:.3f}" if key == "import_s" else f"{value:,.0f}"
        print(f"{key:<28}{shown:>14}{target:>12,.0f}  {'yes' if ok else 'NO'}")
    print(f"{'coordinates_mixed_per_s':<28}{figures['coordinates_mixed_per_s']:>14,.0f}")
    print(f"mixed points: {figures['mixed_methods']}")
    print(f"addresses:    {figures['address_statuses']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return figures


if __name__ == "__main__":
    main()
