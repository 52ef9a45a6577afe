"""What fair play needs from the live connections, kept in process memory on the hot path.

When the hub hands an offer frame to an agent's connection it notes the time there, once per
order (:meth:`FairPlayLog.offered`, a plain ``dict[int, int]`` per connection: dicts of ints
are not tracked by the garbage collector) and counts the delivery per (agent, grid).  When a
claim arrives, :meth:`FairPlayLog.delivered_at` says when that connection (or, for a claim
over HTTP, the agent's earliest connection in this process) got the offer, and the claim's
timing is appended to a list.  Nothing here awaits or does I/O: a background task
(:mod:`dispatcher.flows.fairplay`) takes the lot every second and writes it to Postgres.

What is lost: the figures of the last second if the process dies, and deliveries of an offer
to connections of another process are known only there (each process writes its own).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dispatcher.core.fairplay import ClaimRow

if TYPE_CHECKING:
    from dispatcher.live.hub import AgentLink

PER_LINK_MAX = 256
"""Offers remembered per connection; the oldest is forgotten past this."""
HORIZON_MS = 3_600_000
"""Offers older than this are forgotten when a new one comes (a claim an hour after the offer
tells nothing about scripts).  Withdrawn offers are kept until then: the agent who lost the
race claims after the withdrawal, and its reaction time is as telling as the winner's."""
PENDING_MAX = 200_000
"""Claims kept while Postgres cannot take them; the oldest are dropped past this."""


@dataclass(slots=True)
class FairPlayLog:
    offers: dict[tuple[int, str], int] = field(default_factory=dict)
    claims: list[ClaimRow] = field(default_factory=list)
    dropped: int = 0

    def offered(self, link: AgentLink, order_id: int, grid: str, now: int) -> None:
        """The offer of ``order_id`` was handed to ``link``: note when, the first time."""
        seen = link.offered
        if seen is None:
            seen = link.offered = {}
        elif order_id in seen:
            return  # a repeat (widened, resynced): the reaction counts from the first
        while seen and (len(seen) >= PER_LINK_MAX or seen[next(iter(seen))] < now - HORIZON_MS):
            del seen[next(iter(seen))]  # insertion order is delivery order: oldest first
        seen[order_id] = now
        key = (link.agent_id, grid)
        self.offers[key] = self.offers.get(key, 0) + 1

    @staticmethod
    def delivered_at(links: Iterable[AgentLink], order_id: int) -> int | None:
        """The earliest delivery of ``order_id`` to any of ``links``, or None."""
        found: int | None = None
        for link in links:
            t = None if link.offered is None else link.offered.get(order_id)
            if t is not None and (found is None or t < found):
                found = t
        return found

    def claimed(self, row: ClaimRow) -> None:
        self.claims.append(row)
        if len(self.claims) > PENDING_MAX:
            del self.claims[0]
            self.dropped += 1

    def take(self) -> tuple[dict[tuple[int, str], int], list[ClaimRow]]:
        """Everything noted since the last take, now removed."""
        offers, claims = self.offers, self.claims
        self.offers, self.claims = {}, []
        return offers, claims

    def put_back(self, offers: dict[tuple[int, str], int], claims: list[ClaimRow]) -> None:
        """Return what could not be written (it is written with the next take)."""
        for key, n in offers.items():
            self.offers[key] = self.offers.get(key, 0) + n
        self.claims[:0] = claims
        excess = len(self.claims) - PENDING_MAX
        if excess > 0:
            del self.claims[:excess]
            self.dropped += excess
