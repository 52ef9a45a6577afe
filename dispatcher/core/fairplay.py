"""Fair play in the grab: reaction times, the flags that point at auto-grab scripts (抢单外挂),
and the share of wins against the share of offers.

All times are the server's, in epoch ms: an offer's ``delivered_at`` is when the server handed
the offer frame to that agent's connection, a claim's ``received_at`` is when the server read
the claim frame.  The client's clock is never used.

Two flags per agent (:func:`profile`):

- ``too_fast``: claims faster than a human can read an offer and tap (``fast_ms``, e.g. 300).
- ``machine_regular``: over at least ``regular_min`` claims, reaction times whose coefficient
  of variation (standard deviation / mean) is below ``regular_cv``: people are irregular,
  a script that sleeps a fixed delay is not.

The optional rule :func:`ignored` drops claims faster than a minimum reaction time.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

BUCKETS_MS: tuple[int, ...] = (100, 200, 300, 500, 1000, 2000, 5000, 10000, 30000, 60000)
"""Upper bounds of the reaction-time histogram (the last bucket is everything slower)."""


@dataclass(frozen=True, slots=True)
class ClaimRow:
    """One claim as the server timed it: offer handed to the connection -> claim read."""

    agent_id: int
    order_id: int
    delivered_at: int | None
    received_at: int
    outcome: str
    ignored: bool


@dataclass(frozen=True, slots=True)
class ClaimTiming:
    """One claim as fair play sees it.  ``delivered_at`` is None when this process had not
    delivered the offer to that connection (claimed from a stale list, or from another
    process's connection): such claims count, but have no reaction time."""

    agent_id: int
    order_id: int
    grid: str
    delivered_at: int | None
    received_at: int
    outcome: str
    ignored: bool = False

    @property
    def reaction_ms(self) -> int | None:
        if self.delivered_at is None:
            return None
        return max(0, self.received_at - self.delivered_at)


def ignored(reaction_ms: int | None, min_reaction_ms: int) -> bool:
    """The optional rule: a claim with a known reaction time under ``min_reaction_ms`` is
    ignored (``0``: the rule is off)."""
    return min_reaction_ms > 0 and reaction_ms is not None and reaction_ms < min_reaction_ms


@dataclass(frozen=True, slots=True)
class Thresholds:
    fast_ms: int = 300
    regular_cv: float = 0.1
    regular_min: int = 10


def histogram(reactions: Iterable[int]) -> list[int]:
    """Counts per bucket of :data:`BUCKETS_MS`, plus one for slower."""
    counts = [0] * (len(BUCKETS_MS) + 1)
    for r in reactions:
        i = next((i for i, hi in enumerate(BUCKETS_MS) if r < hi), len(BUCKETS_MS))
        counts[i] += 1
    return counts


def _quantile(sorted_values: Sequence[int], q: float) -> int:
    """Nearest-rank quantile of an ascending, non-empty sequence."""
    rank = max(1, math.ceil(round(q * len(sorted_values), 9)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(slots=True)
class Profile:
    agent_id: int
    offers: int = 0
    claims: int = 0
    wins: int = 0
    ignored: int = 0
    timed: list[int] = field(default_factory=list)
    fast: int = 0
    cv: float | None = None
    flags: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        timed = sorted(self.timed)
        stats: dict[str, Any] = {"count": len(timed)}
        if timed:
            stats |= {
                "min_ms": timed[0],
                "p50_ms": _quantile(timed, 0.5),
                "p90_ms": _quantile(timed, 0.9),
                "max_ms": timed[-1],
                "mean_ms": round(statistics.fmean(timed)),
                "cv": None if self.cv is None else round(self.cv, 3),
                "histogram": {
                    "bounds_ms": list(BUCKETS_MS),
                    "counts": histogram(timed),
                },
            }
        return {
            "agent_id": self.agent_id,
            "offers": self.offers,
            "claims": self.claims,
            "wins": self.wins,
            "ignored": self.ignored,
            "fast_claims": self.fast,
            # Claims with no known delivery to the agent in that process: over HTTP from a
            # process without the agent's connection, or for an offer never delivered (a
            # script guessing order ids claims blind).
            "untimed_claims": self.claims - len(self.timed),
            "reaction": stats,
            "flags": list(self.flags),
        }


def coefficient_of_variation(values: Sequence[int]) -> float | None:
    """Population standard deviation over mean; None for fewer than two values or mean 0."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    if mean <= 0:
        return 0.0
    return statistics.pstdev(values) / mean


def profile(
    agent_id: int, offers: int, claims: Iterable[ClaimTiming], thresholds: Thresholds
) -> Profile:
    """One agent's figures and flags over ``claims`` (its own)."""
    p = Profile(agent_id, offers=offers)
    for c in claims:
        p.claims += 1
        p.wins += c.outcome == "won"
        p.ignored += c.ignored
        r = c.reaction_ms
        if r is not None:
            p.timed.append(r)
            p.fast += r < thresholds.fast_ms
    p.cv = coefficient_of_variation(p.timed)
    if p.fast:
        p.flags.append("too_fast")
    if len(p.timed) >= thresholds.regular_min and p.cv is not None and p.cv < thresholds.regular_cv:
        p.flags.append("machine_regular")
    return p


def profiles(
    offers: Mapping[int, int], claims: Iterable[ClaimTiming], thresholds: Thresholds
) -> list[Profile]:
    """Per agent (by id) who had an offer or made a claim."""
    by_agent: dict[int, list[ClaimTiming]] = {}
    for c in claims:
        by_agent.setdefault(c.agent_id, []).append(c)
    ids = sorted(set(offers) | set(by_agent))
    return [profile(a, offers.get(a, 0), by_agent.get(a, ()), thresholds) for a in ids]


@dataclass(frozen=True, slots=True)
class Share:
    agent_id: int
    offers: int
    wins: int
    offer_share: Decimal
    win_share: Decimal

    @property
    def ratio(self) -> Decimal | None:
        """Win share over offer share: 1 is fair; far above 1 wins more than it is shown."""
        if self.offer_share == 0:
            return None
        return (self.win_share / self.offer_share).quantize(Decimal("0.01"))


def _share(part: int, whole: int) -> Decimal:
    if whole == 0:
        return Decimal(0)
    return (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"))


def fairness(offers: Mapping[int, int], wins: Mapping[int, int]) -> list[Share]:
    """Shares of one grid's offers and wins per agent (by agent id)."""
    total_offers = sum(offers.values())
    total_wins = sum(wins.values())
    ids = sorted(set(offers) | set(wins))
    return [
        Share(
            a,
            offers.get(a, 0),
            wins.get(a, 0),
            _share(offers.get(a, 0), total_offers),
            _share(wins.get(a, 0), total_wins),
        )
        for a in ids
    ]
