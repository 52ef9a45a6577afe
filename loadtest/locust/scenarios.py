"""The load-test scenarios, as plain data: who sits in which grid, where orders go, how agents act.

Pure code (no locust, no I/O besides reading the demo county shipped in ``geo/data``), so the
locustfile, the wrapper (:mod:`loadtest.locust.run`) and the tests share one definition.

- ``contention``: every agent in one grid; every agent grabs every order at once.  Measures the
  claim path under the worst race: one winner, everyone else ``taken``.
- ``county``: agents take the demo county's roster in order, so N agents staff the first
  villages with their real teams (two to five agents each; 934 agents staff all 400 villages).
  Orders go to the staffed villages, weighted by each village's roster size (a population
  proxy).  Agents grab some offers after a think time, so some orders wait for the widening
  deadline and are then raced by every connected agent of the county.
- ``reconnect-storm``: agents in grids of ten; in waves, a share of all agents lose their
  connection at the same instant and reconnect within a second, while orders keep flowing.
  Claims cut off by a drop are repeated with the same ``request_id`` after reconnecting.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections import Counter
from dataclasses import dataclass
from functools import cache
from typing import Literal

Layout = Literal["one-grid", "county", "blocks"]

BLOCK_SIZE = 10
"""Agents per grid in the ``blocks`` layout."""


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How an agent user acts.  Times in milliseconds; ``wave_interval_s`` 0 means no waves."""

    grab_probability: float
    think_ms: tuple[int, int]
    wave_interval_s: float = 0.0
    wave_fraction: float = 0.0
    reconnect_ms: tuple[int, int] = (0, 1000)

    def __post_init__(self) -> None:
        if not 0 <= self.grab_probability <= 1:
            raise ValueError("grab probability must be between 0 and 1")
        if not 0 <= self.think_ms[0] <= self.think_ms[1]:
            raise ValueError("think time must be MIN-MAX milliseconds with 0 <= MIN <= MAX")
        if not 0 <= self.reconnect_ms[0] <= self.reconnect_ms[1]:
            raise ValueError("reconnect delay must be MIN-MAX milliseconds with 0 <= MIN <= MAX")
        if self.wave_interval_s < 0 or not 0 <= self.wave_fraction <= 1:
            raise ValueError("waves need an interval >= 0 s and a fraction between 0 and 1")

    def think_s(self, rng: random.Random) -> float:
        return rng.uniform(*self.think_ms) / 1000

    def reconnect_s(self, rng: random.Random) -> float:
        return rng.uniform(*self.reconnect_ms) / 1000


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    summary: str
    layout: Layout
    behaviour: Behaviour
    order_rate: float
    """Orders filed per second, over all intake users."""
    widen_after: float
    """``BANGBAN_WIDEN_AFTER`` for a server that :mod:`loadtest.locust.run` starts itself."""


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "contention",
            "every agent in one grid; all race every order",
            "one-grid",
            Behaviour(grab_probability=1.0, think_ms=(0, 0)),
            order_rate=2.0,
            widen_after=600.0,
        ),
        Scenario(
            "county",
            "agents over the demo county's villages; orders weighted by agents per village",
            "county",
            Behaviour(grab_probability=0.6, think_ms=(300, 3000)),
            order_rate=10.0,
            widen_after=8.0,
        ),
        Scenario(
            "reconnect-storm",
            "grids of ten agents; waves of agents drop and reconnect while orders flow",
            "blocks",
            Behaviour(
                grab_probability=0.3,
                think_ms=(100, 1000),
                wave_interval_s=5.0,
                wave_fraction=0.5,
                reconnect_ms=(0, 1000),
            ),
            order_rate=10.0,
            widen_after=600.0,
        ),
    )
}


def parse_range(text: str) -> tuple[int, int]:
    """``"200-1500"`` -> (200, 1500); ``"500"`` -> (500, 500).  Raises ValueError."""
    lo, sep, hi = text.partition("-")
    a = int(lo)
    b = int(hi) if sep else a
    if not 0 <= a <= b:
        raise ValueError(f"{text!r} is not MIN-MAX with 0 <= MIN <= MAX")
    return a, b


@dataclass(frozen=True, slots=True)
class GridSpec:
    code: str
    name: str
    level: str


@cache
def _county() -> tuple[dict[str, GridSpec], tuple[str, ...], dict[str, int]]:
    """Village grids by code, the demo roster's grid per agent (file order), agents per village."""
    import geo

    county = geo.load_demo_county()
    villages = {g.code: GridSpec(g.code, g.name, g.level) for g in county.leaves}
    per_agent = tuple(r.grids[0] for r in geo.load_demo_agents(county))
    return villages, per_agent, dict(Counter(per_agent))


@dataclass(frozen=True, slots=True)
class Plan:
    """The grids to create, the grid of every agent, and where orders go.

    ``agents`` is the number of agents the run expects; :meth:`agent_grid` also answers for
    agents beyond it (a web-UI run may add users), in the same layout, possibly in a grid not
    in ``grids`` (create it before the agent).
    """

    scenario: Scenario
    agents: int
    prefix: str
    grids: tuple[GridSpec, ...]
    order_grids: tuple[str, ...]
    order_weights: tuple[float, ...]

    def agent_grid(self, index: int) -> GridSpec:
        layout = self.scenario.layout
        if layout == "one-grid":
            return self.grids[0]
        if layout == "blocks":
            return self.grids[index % len(self.grids)]
        villages, per_agent, _ = _county()
        village = villages[per_agent[index % len(per_agent)]]
        return GridSpec(self.prefix + village.code, village.name, village.level)

    def order_grid(self, rng: random.Random) -> str:
        """A grid to file an order into, drawn by the plan's weights."""
        cumulative = _cumulative(self.order_weights)
        at = rng.random() * cumulative[-1]
        return self.order_grids[min(bisect.bisect_right(cumulative, at), len(cumulative) - 1)]


@cache
def _cumulative(weights: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(itertools.accumulate(weights))


def plan(scenario: Scenario, agents: int, prefix: str = "") -> Plan:
    """Lay out ``agents`` agents for ``scenario``.  Grid codes are ``prefix`` + code, so runs
    against one server with different prefixes do not see each other's orders (until an
    order widens: a widened order is offered to every grid)."""
    agents = max(agents, 1)
    if scenario.layout == "one-grid":
        grids: tuple[GridSpec, ...] = (GridSpec(prefix + "contention", "抢单竞争网格", "grid"),)
        return Plan(scenario, agents, prefix, grids, (grids[0].code,), (1.0,))
    if scenario.layout == "blocks":
        count = -(-agents // BLOCK_SIZE)
        grids = tuple(
            GridSpec(f"{prefix}storm-{i:03d}", f"重连网格{i:03d}", "grid") for i in range(count)
        )
        codes = tuple(g.code for g in grids)
        return Plan(scenario, agents, prefix, grids, codes, tuple(1.0 for _ in codes))
    villages, per_agent, population = _county()
    staffed = list(dict.fromkeys(per_agent[i % len(per_agent)] for i in range(agents)))
    return Plan(
        scenario,
        agents,
        prefix,
        tuple(GridSpec(prefix + c, villages[c].name, villages[c].level) for c in staffed),
        tuple(prefix + c for c in staffed),
        tuple(float(population[c]) for c in staffed),
    )


def drops_in_wave(wave: int, agent_index: int, fraction: float) -> bool:
    """Whether agent ``agent_index`` drops its connection in wave ``wave`` (deterministic, so a
    rerun drops the same agents; about ``fraction`` of all agents drop in each wave)."""
    return random.Random(wave * 1_000_003 + agent_index).random() < fraction
