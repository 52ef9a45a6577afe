"""Oversight figures (督查): per grid, township and county, and the agents to list.

Pure: the shell reads one :class:`OrderFacts` per order filed in the period, and the agents'
last activity; the figures are plain arithmetic here.

- ``filed``: orders filed in the period (cancelled ones included).
- ``claimed_in_time``: share of them first claimed within the grid's own window (the seed's
  10 minutes, ``BANGBAN_WIDEN_AFTER``) after filing.
- ``widened`` / ``escalated``: share that widened beyond their grid / escalated to operators.
- ``median_claim_ms``: median time from filing to the first claim, of those claimed.
- ``on_time``: of the orders replied with a due date, the share replied by it.
- ``satisfaction`` (实际参评满意率): of the rated orders, the share rated 非常满意 or 满意.
- ``participation``: of the closed orders, the share the applicant rated.

Shares are decimal fractions (``"0.75"``) rounded to four places, None where nothing is counted.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from dispatcher.core.points import Rating

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class OrderFacts:
    order_id: int
    grid: str
    status: str
    created_at: int
    first_claim_at: int | None
    widened: bool
    escalated: bool
    due_at: int | None
    replied_at: int | None
    rating: Rating | None


def share(part: int, whole: int) -> Decimal | None:
    if whole == 0:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"))


def figures(orders: Sequence[OrderFacts], window_ms: int) -> dict[str, Any]:
    """The figures of one group of orders (see the module docstring)."""
    claim_ms = sorted(
        o.first_claim_at - o.created_at for o in orders if o.first_claim_at is not None
    )
    in_time = sum(1 for ms in claim_ms if ms <= window_ms)
    with_due = on_time = 0
    for o in orders:
        if o.due_at is not None and o.replied_at is not None:
            with_due += 1
            on_time += o.replied_at <= o.due_at
    closed = [o for o in orders if o.status == "closed"]
    rated = [o for o in closed if o.rating is not None]
    satisfied = sum(1 for o in rated if o.rating is not None and o.rating.is_satisfied)
    return {
        "filed": len(orders),
        "claimed": len(claim_ms),
        "claimed_in_time": share(in_time, len(orders)),
        "widened": share(sum(o.widened for o in orders), len(orders)),
        "escalated": share(sum(o.escalated for o in orders), len(orders)),
        "median_claim_ms": None if not claim_ms else round(statistics.median(claim_ms)),
        "on_time": share(on_time, with_due),
        "closed": len(closed),
        "rated": len(rated),
        "satisfaction": share(satisfied, len(rated)),
        "participation": share(len(rated), len(closed)),
    }


def grouped(
    orders: Iterable[OrderFacts], group_of: Mapping[str, str], window_ms: int
) -> dict[str, dict[str, Any]]:
    """Figures per group, ``group_of`` mapping a grid code to its group (township, county);
    grids without one fall in ``''``."""
    groups: dict[str, list[OrderFacts]] = {}
    for o in orders:
        groups.setdefault(group_of.get(o.grid, ""), []).append(o)
    return {k: figures(v, window_ms) for k, v in sorted(groups.items())}


def ancestor(code: str, level: str, grids: Mapping[str, tuple[str, str | None]]) -> str:
    """The code of ``code``'s ancestor (or itself) at ``level``, from ``grids`` (code →
    (level, parent)); ``''`` when there is none.  Stops on a cycle."""
    seen: set[str] = set()
    current: str | None = code
    while current is not None and current not in seen:
        seen.add(current)
        found = grids.get(current)
        if found is None:
            return ""
        if found[0] == level:
            return current
        current = found[1]
    return ""


@dataclass(frozen=True, slots=True)
class Activity:
    agent_id: int
    name: str
    grids: tuple[str, ...]
    last_active_at: int | None  # the agent's latest act in any order's trail


def inactive(agents: Iterable[Activity], now: int, days: int) -> list[dict[str, Any]]:
    """Agents with nothing handled in ``days`` days before ``now`` (never: first), longest
    idle first: the seed's list for dismissal."""
    cutoff = now - days * DAY_MS
    idle = [a for a in agents if a.last_active_at is None or a.last_active_at < cutoff]
    idle.sort(key=lambda a: (a.last_active_at is not None, a.last_active_at or 0, a.agent_id))
    return [
        {
            "agent_id": a.agent_id,
            "name": a.name,
            "grids": list(a.grids),
            "last_active_at": a.last_active_at,
            "idle_days": None if a.last_active_at is None else (now - a.last_active_at) // DAY_MS,
        }
        for a in idle
    ]


def ranking(per_agent: Mapping[int, tuple[int, Decimal]], limit: int) -> list[tuple[int, int]]:
    """Agent ids ranked by orders closed, then points, then id; with their 1-based rank
    (ties share a rank).  ``per_agent``: id → (orders, points)."""
    ordered = sorted(per_agent.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))[:limit]
    out: list[tuple[int, int]] = []
    previous: tuple[int, Decimal] | None = None
    rank = 0
    for i, (agent_id, key) in enumerate(ordered, start=1):
        if key != previous:
            rank, previous = i, key
        out.append((agent_id, rank))
    return out
