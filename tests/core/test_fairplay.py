"""Fair play: reaction-time flags, the minimum-reaction rule, shares of wins and offers;
and the follow-up sample and what a call contradicts (pure)."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from dispatcher.core import fairplay as F
from dispatcher.core import followup
from dispatcher.core.followup import Candidate, Outcome
from dispatcher.core.points import Rating

T = F.Thresholds(fast_ms=300, regular_cv=0.1, regular_min=10)


def timings(agent: int, reactions: list[int], won_every: int = 3) -> list[F.ClaimTiming]:
    return [
        F.ClaimTiming(agent, i, "g1", 1_000_000 + i * 60_000, 1_000_000 + i * 60_000 + r,
                      "won" if i % won_every == 0 else "taken")
        for i, r in enumerate(reactions)
    ]  # fmt: skip


def test_a_scripted_claimer_is_flagged_fast_and_regular() -> None:
    bot = F.profile(7, 20, timings(7, [120 + (i % 3) for i in range(20)]), T)
    assert bot.flags == ["too_fast", "machine_regular"]
    assert bot.fast == 20 and bot.claims == 20 and bot.wins == 7
    summary = bot.summary()
    reaction = summary["reaction"]
    assert isinstance(reaction, dict)
    assert reaction["min_ms"] == 120 and reaction["max_ms"] == 122


def test_a_human_paced_claimer_is_not_flagged() -> None:
    rng = random.Random(5)
    human = F.profile(8, 20, timings(8, [rng.randint(900, 6000) for _ in range(20)]), T)
    assert human.flags == [] and human.fast == 0
    assert human.cv is not None and human.cv > 0.1


def test_regular_but_slow_is_flagged_only_as_regular() -> None:
    p = F.profile(9, 12, timings(9, [1500] * 12), T)
    assert p.flags == ["machine_regular"]


def test_regularity_needs_enough_claims() -> None:
    p = F.profile(9, 5, timings(9, [1500] * 9), T)
    assert p.flags == []


def test_claims_without_a_delivery_count_but_have_no_reaction() -> None:
    c = F.ClaimTiming(1, 1, "g1", None, 5_000, "taken")
    p = F.profile(1, 0, [c], T)
    assert c.reaction_ms is None and p.claims == 1 and p.timed == [] and p.flags == []
    assert p.summary()["untimed_claims"] == 1


def test_the_minimum_reaction_rule() -> None:
    assert F.ignored(150, 300) and not F.ignored(300, 300) and not F.ignored(150, 0)
    assert not F.ignored(None, 300)


def test_histogram_buckets_and_quantiles() -> None:
    assert F.histogram([50, 100, 250, 70000]) == [1, 1, 1] + [0] * 7 + [1]
    p = F.profile(1, 10, timings(1, list(range(100, 1100, 100))), T)
    reaction = p.summary()["reaction"]
    assert isinstance(reaction, dict)
    assert (reaction["p50_ms"], reaction["p90_ms"]) == (500, 900)


def test_fairness_shares_in_a_grid() -> None:
    shares = F.fairness({1: 10, 2: 10, 3: 20}, {1: 8, 2: 1, 3: 1})
    by = {s.agent_id: s for s in shares}
    assert by[1].offer_share == Decimal("0.25") and by[1].win_share == Decimal("0.8")
    assert by[1].ratio == Decimal("3.2") and by[3].ratio == Decimal("0.2")
    assert F.fairness({1: 0}, {})[0].ratio is None


def _pool() -> list[Candidate]:
    # 40 orders: agent 1 closed 30, agents 2..11 one each.
    return [Candidate(i, 1) for i in range(1, 31)] + [Candidate(30 + a, a) for a in range(2, 12)]


def test_the_sample_is_reproducible_from_its_seed() -> None:
    a = followup.select(_pool(), Decimal("0.1"), seed=1234)
    assert a == followup.select(list(reversed(_pool())), Decimal("0.1"), seed=1234)
    assert a != followup.select(_pool(), Decimal("0.1"), seed=4321)


def test_the_sample_covers_every_agent_even_past_the_share() -> None:
    chosen = followup.select(_pool(), Decimal("0.1"), seed=99)
    agents = {c.agent_id for c in _pool() if c.order_id in chosen}
    assert agents == set(range(1, 12))
    assert len(chosen) == 11  # 10% of 40 is 4, but 11 agents closed orders


def test_the_sample_takes_the_share_rounded_up() -> None:
    pool = [Candidate(i, 1 + i % 2) for i in range(1, 101)]
    assert len(followup.select(pool, Decimal("0.1"), seed=1)) == 10
    assert len(followup.select(pool, Decimal("0.051"), seed=1)) == 6
    assert len(followup.select(pool, Decimal("1"), seed=1)) == 100
    assert followup.select([], Decimal("0.1"), seed=1) == []


@pytest.mark.parametrize("share", [Decimal(0), Decimal("1.01"), Decimal(-1)])
def test_a_share_out_of_range_is_refused(share: Decimal) -> None:
    with pytest.raises(ValueError):
        followup.select(_pool(), share, seed=1)


@pytest.mark.parametrize(
    ("rating", "outcome", "flag"),
    [
        (Rating.SATISFIED, Outcome(True, False), True),
        (Rating.VERY_SATISFIED, Outcome(True, False), True),
        (Rating.SATISFIED, Outcome(True, True), False),
        (Rating.UNSATISFIED, Outcome(True, True), True),
        (Rating.UNSATISFIED, Outcome(True, False), False),
        (Rating.FAIR, Outcome(True, False), False),
        (None, Outcome(True, False), False),
        (Rating.SATISFIED, Outcome(False, None), False),
        (Rating.SATISFIED, Outcome(True, None), False),
    ],
)
def test_a_call_contradicts_the_rating(rating: Rating | None, outcome: Outcome, flag: bool) -> None:
    assert followup.contradicts(rating, outcome) is flag
