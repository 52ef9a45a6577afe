"""Follow-up calls (回访): which closed orders of a month are called back, and what a call means.

The sample is drawn from the month's closed orders (those the ledger counts in that month) by
:func:`select`: ``share`` of them, rounded up, and at least one order of every agent who
closed any.  It is reproducible: the same orders, share and seed give the same sample, so a
sample is stored with its seed and anyone can redraw it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from dispatcher.core.points import Rating

SHARE_MIN = Decimal("0.001")
SHARE_MAX = Decimal("1")
COMMENT_MAX = 500


@dataclass(frozen=True, slots=True)
class Candidate:
    order_id: int
    agent_id: int


def sample_size(orders: int, agents: int, share: Decimal) -> int:
    """``share`` of ``orders`` rounded up, at least one per agent, at most all of them."""
    if orders == 0:
        return 0
    wanted = math.ceil(Decimal(orders) * share)
    return min(orders, max(wanted, agents))


def select(candidates: Iterable[Candidate], share: Decimal, seed: int) -> list[int]:
    """The sampled order ids, ascending.

    One order is first drawn for each agent (agents in id order), then the rest of the sample
    from the orders left (in id order).  Raises ``ValueError`` for a share outside (0, 1]."""
    if not SHARE_MIN <= share <= SHARE_MAX:
        raise ValueError(f"share must be between {SHARE_MIN} and {SHARE_MAX}")
    pool = sorted(set(candidates), key=lambda c: c.order_id)
    by_agent: dict[int, list[int]] = {}
    for c in pool:
        by_agent.setdefault(c.agent_id, []).append(c.order_id)
    rng = random.Random(seed)
    chosen = {rng.choice(by_agent[agent]) for agent in sorted(by_agent)}
    size = sample_size(len(pool), len(by_agent), share)
    rest = [c.order_id for c in pool if c.order_id not in chosen]
    chosen.update(rng.sample(rest, size - len(chosen)))
    return sorted(chosen)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a follow-up call found.  ``satisfied`` is None when the applicant was not reached
    (or would not say)."""

    reached: bool
    satisfied: bool | None
    comment: str | None = None


def contradicts(rating: Rating | None, outcome: Outcome) -> bool:
    """Does the call contradict the rating?  A satisfied rating (非常满意/满意) with a call that
    found the applicant unsatisfied, or 不满意 with a call that found them satisfied.  An
    unrated order, 一般, or a call that reached nobody contradicts nothing."""
    if not outcome.reached or outcome.satisfied is None or rating is None:
        return False
    if rating.is_satisfied:
        return not outcome.satisfied
    if rating is Rating.UNSATISFIED:
        return outcome.satisfied
    return False
