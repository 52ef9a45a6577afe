"""The in-process record of offer deliveries and claims (dispatcher/live/fairplay.py)."""

from __future__ import annotations

import gc

from dispatcher.core.fairplay import ClaimRow
from dispatcher.live.fairplay import HORIZON_MS, PENDING_MAX, PER_LINK_MAX, FairPlayLog
from dispatcher.live.hub import AgentLink
from dispatcher.live.outbox import Outbox


def link(agent_id: int) -> AgentLink:
    return AgentLink(agent_id, frozenset({"g1"}), Outbox("json", 10))


def test_the_first_delivery_counts_and_repeats_do_not() -> None:
    log, a = FairPlayLog(), link(1)
    log.offered(a, 10, "g1", 1_000)
    log.offered(a, 10, "g1", 5_000)  # widened: the same offer again
    assert FairPlayLog.delivered_at([a], 10) == 1_000
    assert log.offers == {(1, "g1"): 1}
    assert FairPlayLog.delivered_at([a], 11) is None


def test_an_http_claim_counts_from_the_earliest_connection() -> None:
    log, a, b = FairPlayLog(), link(1), link(1)
    log.offered(b, 10, "g1", 2_000)
    log.offered(a, 10, "g1", 3_000)
    assert FairPlayLog.delivered_at([a, b], 10) == 2_000
    assert log.offers == {(1, "g1"): 2}


def test_a_connection_forgets_old_offers_and_holds_few() -> None:
    log, a = FairPlayLog(), link(1)
    log.offered(a, 1, "g1", 0)
    log.offered(a, 2, "g1", HORIZON_MS + 1)
    assert a.offered is not None and list(a.offered) == [2]
    for i in range(3, 3 + 2 * PER_LINK_MAX):
        log.offered(a, i, "g1", HORIZON_MS + i)
    assert len(a.offered) == PER_LINK_MAX
    assert not gc.is_tracked(a.offered)  # ints only: the collector skips it


def test_take_and_put_back() -> None:
    log, a = FairPlayLog(), link(1)
    log.offered(a, 1, "g1", 0)
    log.claimed(ClaimRow(1, 1, 0, 150, "won", False))
    offers, claims = log.take()
    assert (offers, len(claims), log.offers, log.claims) == ({(1, "g1"): 1}, 1, {}, [])
    log.offered(a, 2, "g1", 10)
    log.put_back(offers, claims)
    assert log.offers == {(1, "g1"): 2} and log.claims == claims


def test_pending_claims_are_bounded() -> None:
    log = FairPlayLog()
    for i in range(PENDING_MAX + 5):
        log.claimed(ClaimRow(1, i, None, i, "taken", False))
    assert len(log.claims) == PENDING_MAX and log.dropped == 5
    assert log.claims[0].order_id == 5
