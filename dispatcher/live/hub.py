"""Fan-out: the connections of this process, and the pub/sub listener that feeds them.

Every change of an order is published once on the Redis channel ``bb:events`` (by whichever
process made it) and every server process routes it to its own connections here.  Process
memory alone never carries an offer: a process hears its own changes back from Redis too.

Each connection has an :class:`Outbox`.  Routing only appends to outboxes (synchronous, no
awaits), and each frame is encoded once per encoding, not once per connection; the
connection's writer task drains its outbox onto the socket.  A connection whose outbox
overflows (a client that stopped reading) is closed so that it cannot hold memory; it
reconnects and gets every open order again.

Besides offers and withdrawals, agents get ``update`` frames for the orders they hold (or held
until the change) and ``held`` frames with how many they hold against ``BANGBAN_MAX_HELD``; the
hub remembers those counts to flag offers ``at_limit`` per agent (one more encoding per
event, not per connection).  Trackers get ``status`` frames with the trail entry.

When the pub/sub connection is lost, events published meanwhile are gone for this process, so
after re-subscribing the hub asks :attr:`Hub.resync` to resend every connection its snapshot
(duplicates are allowed by the protocol; gaps are not).  A subscription can also go deaf
without any error (a silent network fault, a proxy in between): every process publishes a
heartbeat on the channel every second (:meth:`Hub.beat_loop`), and a listener that hears
nothing for 3 s while its own heartbeats are published resubscribes the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from dispatcher.board.events import read_event
from dispatcher.board.scripts import AUTH_CHANNEL, EVENTS_CHANNEL
from dispatcher.flows.claim_cache import ClaimedOrders
from dispatcher.live import wire
from dispatcher.live.fairplay import FairPlayLog
from dispatcher.live.outbox import Outbox, Payload
from dispatcher.metrics import Metrics

log = logging.getLogger("bangban.hub")

BEAT_S = 1.0
"""Every process publishes a heartbeat on the channel this often."""
DEAF_AFTER_S = 3.0
"""A listener that hears nothing (not even heartbeats) for this long while this process's
heartbeats are published resubscribes."""


@dataclass(eq=False, slots=True)
class AgentLink:
    """One connected agent app."""

    agent_id: int
    grids: frozenset[str]
    outbox: Outbox
    offered: dict[int, int] | None = None
    """Order id → when its offer was first handed to this connection (server ms), for fair
    play (:mod:`dispatcher.live.fairplay`); None until the first offer."""
    token_id: int | None = None


@dataclass(eq=False, slots=True)
class TrackerLink:
    """One applicant watching one order."""

    order_id: int
    outbox: Outbox
    token_id: int | None = None


@dataclass
class Hub:
    """The connections of this process and the listener that feeds them."""

    redis: aioredis.Redis
    channel: str = EVENTS_CHANNEL
    auth_channel: str = AUTH_CHANNEL
    """Revocations (:meth:`revoked`), namespaced like ``channel``."""
    resync: Callable[[], Awaitable[None]] | None = None
    agents: set[AgentLink] = field(default_factory=set)
    by_grid: dict[str, set[AgentLink]] = field(default_factory=dict)
    by_agent: dict[int, set[AgentLink]] = field(default_factory=dict)
    trackers: dict[int, set[TrackerLink]] = field(default_factory=dict)
    max_held: int = 5
    held: dict[int, int] = field(default_factory=dict)
    """Agent id → orders it holds, as last announced (for ``at_limit`` on offers)."""
    claimed: ClaimedOrders = field(default_factory=ClaimedOrders)
    """Orders heard closed, for the claim flow (:mod:`dispatcher.flows.claim_cache`)."""
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    reconnects: int = 0
    metrics: Metrics | None = None
    fairplay: FairPlayLog = field(default_factory=FairPlayLog)
    """Offer deliveries and claim timings for fair play, until written to Postgres."""
    clock: Callable[[], int] = field(default=lambda: time.time_ns() // 1_000_000)
    """The server's clock (epoch ms); the app sets its own (tests inject one)."""

    on_revoked: Callable[[int | None, int | None], object] | None = None
    """Called with (token id, agent id) for every revocation heard (None, None: revocations
    may have been missed); the app points it at the auth cache."""

    # --- revocations ---------------------------------------------------------------------

    CLOSE_REVOKED = 4401

    def revoked(self, token_id: int | None, agent_id: int | None) -> int:
        """A token was revoked or an agent deactivated (on any process): forget its cached
        principal and close its connections here with 4401.  Returns how many were closed."""
        if self.on_revoked is not None:
            self.on_revoked(token_id, agent_id)
        closed = 0
        links: list[AgentLink | TrackerLink] = []
        if agent_id is not None:
            links += self.by_agent.get(agent_id, ())
        if token_id is not None:
            links += [link for link in self.agents if link.token_id == token_id]
            for trackers in self.trackers.values():
                links += [t for t in trackers if t.token_id == token_id]
        for link in links:
            reason = "agent deactivated" if agent_id is not None else "token revoked"
            link.outbox.kick(self.CLOSE_REVOKED, reason)
            closed += 1
        return closed

    beat: Callable[[bytes], Awaitable[int]] | None = None
    """Publishes a heartbeat on the channel (the board's client): see :meth:`beat_loop`."""
    beat_sent: float = 0.0
    """When (monotonic) this process last published a heartbeat successfully."""
    deaf: int = 0
    """Times the listener heard nothing while heartbeats were published, and resubscribed."""

    # --- registry ------------------------------------------------------------------------

    def add_agent(self, link: AgentLink) -> None:
        self.agents.add(link)
        self.by_agent.setdefault(link.agent_id, set()).add(link)
        for grid in link.grids:
            self.by_grid.setdefault(grid, set()).add(link)

    def remove_agent(self, link: AgentLink) -> None:
        self.agents.discard(link)
        same = self.by_agent.get(link.agent_id)
        if same is not None:
            same.discard(link)
            if not same:
                del self.by_agent[link.agent_id]
        for grid in link.grids:
            members = self.by_grid.get(grid)
            if members is not None:
                members.discard(link)
                if not members:
                    del self.by_grid[grid]

    def add_tracker(self, link: TrackerLink) -> None:
        self.trackers.setdefault(link.order_id, set()).add(link)

    def remove_tracker(self, link: TrackerLink) -> None:
        members = self.trackers.get(link.order_id)
        if members is not None:
            members.discard(link)
            if not members:
                del self.trackers[link.order_id]

    # --- routing -------------------------------------------------------------------------

    def at_limit(self, agent_id: int) -> bool:
        return self.held.get(agent_id, 0) >= self.max_held

    def set_held(self, agent_id: int, count: int) -> int:
        """Record how many orders an agent holds; tell its connections.  Returns frames."""
        self.held[agent_id] = count
        links = self.by_agent.get(agent_id, ())
        if links:
            frame = Payload.of(wire.Held(count, self.max_held))
            for link in links:
                link.outbox.push(frame)
        return len(links)

    def deliver(self, event: dict[str, Any]) -> int:
        """Route one change event to local connections; returns how many frames were queued.

        An open order is offered to its audience (its grid, or everyone once widened) except
        the agents who released it, flagged ``at_limit`` for agents holding all they may; a
        closed one is withdrawn from that audience except its winner; agents named in
        ``notify`` get an ``update``; its trackers get the status with the step (``event``).
        """
        sent = 0
        for agent_id, count in event.get("held") or ():
            sent += self.set_held(agent_id, count)
        order = event.get("order")
        if order is None:  # only held counts (the reconciler's repairs)
            return sent
        self.claimed.learn(order["id"], order["status"], order["version"])
        audience: Iterable[AgentLink]
        if order["scope"] == "all":
            audience = self.agents
        else:
            reach = order.get("offered_grids") or (order["grid"],)
            if len(reach) == 1:
                audience = self.by_grid.get(reach[0], ())
            else:  # an agent of two of these grids hears once
                audience = set().union(*(self.by_grid.get(g, ()) for g in reach))
        if order["status"] in ("offered", "widened"):
            offer = Payload.of(wire.Offer(order))
            greyed: Payload | None = None
            excluded = set(event.get("excluded") or ())
            fairplay, now, oid, grid = self.fairplay, self.clock(), order["id"], order["grid"]
            for link in audience:
                if link.agent_id in excluded:
                    continue
                fairplay.offered(link, oid, grid, now)
                if self.at_limit(link.agent_id):
                    greyed = greyed or Payload.of(wire.Offer(order, at_limit=True))
                    link.outbox.push(greyed)
                else:
                    link.outbox.push(offer)
                sent += 1
        elif event.get("reason"):
            gone = Payload.of(wire.Withdrawn(order["id"], event["reason"]))
            winner = order.get("claimed_by")
            for link in audience:
                if link.agent_id != winner:
                    link.outbox.push(gone)
                    sent += 1
        notify = event.get("notify")
        if notify:
            update = Payload.of(wire.Update(order, event.get("event")))
            for agent_id in notify:
                for link in self.by_agent.get(agent_id, ()):
                    link.outbox.push(update)
                    sent += 1
        watchers = self.trackers.get(order["id"])
        if watchers:
            status = Payload.of(wire.StatusChange(order, event.get("event")))
            for tracker in watchers:
                tracker.outbox.push(status)
                sent += 1
        if self.metrics is not None:
            if order["status"] in ("offered", "widened"):
                self.metrics.offers.inc(sent)
            else:
                self.metrics.withdrawals.inc(sent)
            if "at" in event:
                self.metrics.fanout_seconds.observe(
                    max(0, time.time_ns() // 1_000_000 - event["at"]) / 1000
                )
        return sent

    # --- listener ------------------------------------------------------------------------

    async def beat_loop(self) -> None:
        """Publish a heartbeat on the channel every :data:`BEAT_S`, forever."""
        payload: bytes = msgpack.packb({"beat": 1})
        while True:
            if self.beat is not None:
                try:
                    await self.beat(payload)
                    self.beat_sent = time.monotonic()
                except Exception as exc:  # Redis down: the listener finds out by itself
                    log.debug("heartbeat not published error=%r", exc)
            await asyncio.sleep(BEAT_S)

    async def run(self) -> None:
        """Listen forever; re-subscribe after a lost connection, then ask for a resync."""
        backoff = 0.1
        first = True
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel, self.auth_channel)
                self.ready.set()
                if not first:
                    self.revoked(None, None)  # revocations may have been missed meanwhile
                    self.reconnects += 1
                    if self.metrics is not None:
                        self.metrics.pubsub_reconnects.inc()
                    log.warning("pubsub resubscribed reconnects=%d", self.reconnects)
                    if self.resync is not None:
                        await self.resync()
                first = False
                backoff = 0.1
                heard = time.monotonic()
                while True:
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg is not None and msg.get("type") == "message":
                        heard = time.monotonic()
                        try:
                            event = read_event(msg["data"])
                            channel = msg.get("channel")
                            if channel in (self.auth_channel, self.auth_channel.encode()):
                                self.revoked(event.get("token_id"), event.get("agent_id"))
                            elif "beat" not in event:
                                self.deliver(event)
                        except Exception:  # a bad event must not stop fan-out for the rest
                            log.exception("event dropped: undecodable or unroutable")
                    if self.beat_sent - heard > DEAF_AFTER_S:
                        # Our heartbeats reach Redis but not us: the subscription went deaf
                        # without an error (a silent network fault, a proxy, a server that
                        # dropped it).  Resubscribe, and resend every connection its snapshot.
                        self.deaf += 1
                        log.warning(
                            "pubsub deaf: nothing heard for %.1f s while publishing; resubscribing",
                            time.monotonic() - heard,
                        )
                        break
            except (RedisError, OSError) as exc:
                self.ready.clear()
                first = False
                log.warning("pubsub lost error=%r retry_in=%.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 0.5)  # back within a second of Redis
            finally:
                try:
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                except (RedisError, OSError):
                    pass
