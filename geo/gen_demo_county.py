"""Generate the demo county: ``python -m geo.gen_demo_county [--seed N] [--out-dir DIR]``.

Writes ``demo_county.geojson`` and ``demo_agents.csv`` (default: ``geo/data``). The output
depends only on the seed: villages are Voronoi cells of seeded points (relaxed three times so they
are of similar size) clipped to a seeded county outline around lon 119.5, lat 28.5; townships
are unions of their villages, so the tree nests and each level tiles the county exactly.
Coordinates are rounded to 6 decimals (about 0.1 m) before any union, so shared borders stay
shared.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path
from typing import Any, Final

import numpy as np
import shapely
from shapely.geometry import MultiPoint, Polygon

from .geojson import geometry_to_geojson
from .grid import Geometry
from .repair import polygonal_part
from .roster import AgentRow, format_agents_csv

SEED: Final = 20240528
CENTRE: Final = (119.5, 28.5)
RADIUS_DEG: Final = 0.22
VILLAGES: Final = 400
COUNTY_CODE: Final = "331199"
COUNTY_NAME: Final = "青山县"
# (suffix, count): 街道 are the two towns at the county seat, the rest rural.
TOWNSHIP_KINDS: Final = (("街道", 2), ("镇", 12), ("乡", 5))

FIRST: Final = "大小上下东西南北前后新古石竹枫桃梅白青黄龙凤金银马双三五高长清安太永福"
SECOND: Final = "溪源坑坞岭口山塘田桥坪垟湾岙洋庄头坂埠峰川港畈坦垄岗墩坝湖"
SURNAMES: Final = "王李张刘陈杨黄赵吴周徐孙朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾叶潘蒋蔡余"
GIVEN: Final = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰建国志红海林春燕文辉"


def county_outline(rng: random.Random) -> Polygon:
    """A star-shaped, gently irregular outline, about 48 km across."""
    phase = [rng.uniform(0, 2 * math.pi) for _ in range(3)]
    stretch = 1 / math.cos(math.radians(CENTRE[1]))
    points = []
    for step in range(64):
        angle = 2 * math.pi * step / 64
        wobble = 0.10 * math.sin(3 * angle + phase[0]) + 0.05 * math.sin(5 * angle + phase[1])
        radius = RADIUS_DEG * (1 + wobble + 0.02 * math.sin(11 * angle + phase[2]))
        x = CENTRE[0] + radius * stretch * math.cos(angle)
        points.append((round(x, 6), round(CENTRE[1] + radius * math.sin(angle), 6)))
    return Polygon(points)


def village_cells(outline: Polygon, rng: random.Random) -> list[Polygon]:
    """Voronoi cells of seeded points inside ``outline``, clipped to it and rounded."""
    west, south, east, north = outline.bounds
    seeds: list[tuple[float, float]] = []
    while len(seeds) < VILLAGES:
        x, y = rng.uniform(west, east), rng.uniform(south, north)
        if outline.contains(shapely.Point(x, y)):
            seeds.append((x, y))
    for _ in range(3):  # Lloyd relaxation: move each seed to the centre of its cell.
        cells = _clipped_voronoi(seeds, outline)
        seeds = [(c.centroid.x, c.centroid.y) for c in cells]
    return [_rounded(c) for c in _clipped_voronoi(seeds, outline)]


def _clipped_voronoi(seeds: list[tuple[float, float]], outline: Polygon) -> list[Polygon]:
    # ordered=True keeps cell i the cell of seed i (needs GEOS 3.12).
    diagram = shapely.voronoi_polygons(
        MultiPoint(seeds), extend_to=outline.envelope.buffer(0.1), ordered=True
    )
    cells = shapely.intersection(shapely.get_parts(diagram), outline)
    return [_largest(cell) for cell in cells]


def _largest(geometry: shapely.Geometry) -> Polygon:
    parts = [p for p in shapely.get_parts(geometry) if isinstance(p, Polygon)]
    return max(parts, key=lambda p: p.area)


def _rounded(geometry: Geometry) -> Geometry:
    rounded = shapely.transform(geometry, lambda c: np.round(c, 6))
    valid = polygonal_part(shapely.make_valid(rounded))
    assert valid is not None
    return valid


def townships_of(cells: list[Polygon], rng: random.Random) -> list[list[int]]:
    """Group cell indices into townships: k-means on cell centres, seeded from random cells."""
    count = sum(n for _, n in TOWNSHIP_KINDS)
    centres = np.array([(c.centroid.x, c.centroid.y) for c in cells])
    means = centres[rng.sample(range(len(cells)), count)]
    for _ in range(20):
        distances = ((centres[:, None, :] - means[None, :, :]) ** 2).sum(axis=2)
        nearest = distances.argmin(axis=1)
        means = np.array([centres[nearest == k].mean(axis=0) for k in range(count)])
    groups = [sorted(np.flatnonzero(nearest == k).tolist()) for k in range(count)]
    # The two closest to the county seat become 街道; the rest go north to south.
    seat = np.array(CENTRE)
    order = sorted(range(count), key=lambda k: float(((means[k] - seat) ** 2).sum()))
    head, tail = order[:2], sorted(order[2:], key=lambda k: -float(means[k][1]))
    return [groups[k] for k in head + tail]


class Namer:
    """Two- and three-character place names from syllable lists, without repeats."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def fresh(self) -> str:
        while True:
            stem = self._rng.choice(FIRST) + self._rng.choice(SECOND)
            if self._rng.random() < 0.15:
                stem = self._rng.choice(FIRST) + stem
            if stem not in self._used:
                self._used.add(stem)
                return stem


def generate(seed: int = SEED) -> tuple[dict[str, Any], str]:
    """The demo FeatureCollection and roster CSV for ``seed``."""
    rng = random.Random(seed)
    outline = county_outline(rng)
    cells = village_cells(outline, rng)
    groups = townships_of(cells, rng)
    namer = Namer(rng)
    county_code = COUNTY_CODE + "000000000"
    features: list[dict[str, Any]] = []
    villages: list[tuple[str, str]] = []
    kinds = [suffix for suffix, n in TOWNSHIP_KINDS for _ in range(n)]
    serials = {"街道": 1, "镇": 101, "乡": 201}
    township_features: list[dict[str, Any]] = []
    shared_stems: set[str] = set()  # a few village names recur across townships, as in life
    for group, suffix in zip(groups, kinds, strict=True):
        township_code = f"{COUNTY_CODE}{serials[suffix]:03d}000000"
        serials[suffix] += 1
        stem = "城" + "东西"[len(township_features)] if suffix == "街道" else namer.fresh()
        aliases = [stem + "乡"] if suffix == "镇" and rng.random() < 0.25 else []
        union = _rounded(shapely.union_all([cells[i] for i in group]))
        township_features.append(
            _feature(township_code, stem + suffix, "township", county_code, union, aliases)
        )
        local: set[str] = set()
        for number, index in enumerate(group):
            community = suffix == "街道" and number < len(group) // 2
            village_suffix = "社区" if community else "村"
            code = township_code[:9] + f"{(1 if community else 200) + number:03d}000"
            reusable = sorted(shared_stems - local)
            if reusable and rng.random() < 0.03:
                name_stem = rng.choice(reusable)
            else:
                name_stem = namer.fresh()
                if len(shared_stems) < 5 and rng.random() < 0.1:
                    shared_stems.add(name_stem)
            local.add(name_stem)
            village_aliases = [namer.fresh() + "村"] if rng.random() < 0.04 else []
            name = name_stem + village_suffix
            features.append(
                _feature(code, name, "village", township_code, cells[index], village_aliases)
            )
            villages.append((code, name))
    county = _rounded(shapely.union_all(cells))
    head = _feature(county_code, COUNTY_NAME, "county", None, county, ["清源县"])  # old name
    collection = {"type": "FeatureCollection", "features": [head, *township_features, *features]}
    return collection, format_agents_csv(_agents(villages, rng))


def _feature(
    code: str, name: str, level: str, parent: str | None, geometry: Geometry, aliases: list[str]
) -> dict[str, Any]:
    props: dict[str, Any] = {"code": code, "name": name, "level": level}
    if parent is not None:
        props["parent"] = parent
    if aliases:
        props["aliases"] = aliases
    return {"type": "Feature", "properties": props, "geometry": geometry_to_geojson(geometry)}


def _agents(villages: list[tuple[str, str]], rng: random.Random) -> list[AgentRow]:
    phones = rng.sample(range(10000), 3 * len(villages))
    rows: list[AgentRow] = []
    for position, (code, _) in enumerate(villages):
        for _ in range(rng.choice((2, 2, 3))):
            name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))
            grids = [code]
            if rng.random() < 0.05 and position + 1 < len(villages):
                grids.append(villages[position + 1][0])  # also covers the next village
            rows.append(AgentRow(0, name, f"1380000{phones[len(rows)]:04d}", tuple(grids)))
    return rows


def write(out_dir: Path, seed: int = SEED) -> tuple[Path, Path]:
    """Write both demo files into ``out_dir``; returns their paths."""
    collection, agents = generate(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    county_path, agents_path = out_dir / "demo_county.geojson", out_dir / "demo_agents.csv"
    lines = [
        json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in collection["features"]
    ]
    county_path.write_text(
        '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n",
        encoding="utf-8",
    )
    agents_path.write_text(agents, encoding="utf-8")
    return county_path, agents_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "data")
    args = parser.parse_args(argv)
    for path in write(args.out_dir, args.seed):
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
