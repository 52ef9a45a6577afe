"""The board: the server's view of Redis, where claims are arbitrated and changes fanned out.

:class:`Board` runs the scripts of :mod:`dispatcher.board.scripts` and translates Redis
failures into :class:`~dispatcher.exceptions.RedisUnavailableError`.  It holds no state of
its own besides the connection pool.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgpack
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from dispatcher.board import held_scripts as hs
from dispatcher.board import scripts as rs
from dispatcher.board.connect import Client, cluster_client, is_cluster
from dispatcher.board.held import HeldOrders
from dispatcher.core.orders import Order, Status
from dispatcher.core.workflow import NEVER, next_deadline, state_of
from dispatcher.exceptions import RedisUnavailableError


def change_event(
    order: Order,
    *,
    reason: str | None = None,
    event: Mapping[str, Any] | None = None,
    notify: Iterable[int] = (),
    held: Mapping[int, int] | None = None,
) -> bytes:
    """The pub/sub payload announcing ``order``'s new state to every server process.

    ``reason``: why agents shown the order must drop it (``withdrawn``); ``event``: the trail
    entry of the change, for the applicant's ``status`` frame; ``notify``: agents to send the
    order to as an ``update`` (its agent, before and after); ``held``: agent id → how many
    orders it holds now; ``excluded``: agents an open order is not offered to.
    """
    at = time.time_ns() // 1_000_000
    payload = {
        "order": order.to_wire(at),
        "reason": reason,
        "at": at,
        "event": None if event is None else dict(event),
        "excluded": sorted(order.excluded),
        "notify": sorted(set(notify)),
        "held": [[agent, count] for agent, count in (held or {}).items()],
    }
    packed: bytes = msgpack.packb(payload)
    return packed


def healing_options() -> dict[str, Any]:
    """Connection options that make a pool heal after Redis restarts or drops connections.

    A pooled connection opened before a restart fails its next command (the socket is dead):
    that command is retried on a new connection, with a short backoff, up to 3 times.  Only
    connection errors (refused, reset, closed, ``LOADING``) are retried, not timeouts: a
    timeout on a blackholed network would only be repeated.  Every command we send is safe to
    repeat: the scripts are idempotent for a repeat of the same call (SYNC never goes
    backwards, CLAIM and RESERVE recognise their own request, SET_HELD and RELEASE_HOLD set
    what they set), schedules and sets are idempotent, a lock or a compare-and-set repeated
    only finds itself done and gives up, and a repeated PUBLISH is a duplicate frame, which
    the protocol allows.  A connection idle for more than ``HEALTH_CHECK_S`` is pinged (and
    re-opened) before use.  A script Redis forgot (a restart, SCRIPT FLUSH) is loaded again
    by redis-py: on NOSCRIPT for a single call, and before every pipeline that runs one.
    """
    return {
        "retry": Retry(ExponentialBackoff(cap=RETRY_CAP_S, base=RETRY_BASE_S), RETRIES),
        "retry_on_error": [RedisConnectionError],
        "health_check_interval": HEALTH_CHECK_S,
    }


RETRIES = 3
RETRY_BASE_S = 0.02
RETRY_CAP_S = 0.25
HEALTH_CHECK_S = 2


class Board(HeldOrders):
    """Redis operations for orders.  Every method may raise ``RedisUnavailableError``."""

    def __init__(
        self, client: Client, *, hold_ms: int, closed_ttl_ms: int, namespace: str = ""
    ) -> None:
        self.redis: Any = client  # aioredis.Redis or RedisCluster (same commands)
        self.cluster = isinstance(client, RedisCluster)
        """On a cluster, scripts never run inside a pipeline (redis-py loads them on NOSCRIPT
        only when called on their own), and pipelines span slots."""
        self.keys = rs.Keys(namespace)
        self.hold_ms = hold_ms
        self.closed_ttl_ms = closed_ttl_ms
        self._claim = client.register_script(rs.CLAIM)
        self._claim_many = client.register_script(rs.CLAIM_MANY)
        self._sync = client.register_script(rs.SYNC)
        self._release = client.register_script(rs.RELEASE_HOLD)
        self._probe = client.register_script(rs.PROBE)
        self._reserve = client.register_script(hs.RESERVE)
        self._set_held = client.register_script(hs.SET_HELD)
        self._reconcile_held = client.register_script(hs.RECONCILE_HELD)
        self._swap = client.register_script(rs.SWAP)
        self._rate = client.register_script(rs.RATE)

    @classmethod
    def from_url(cls, url: str, *, hold_ms: int, closed_ttl_ms: int, namespace: str = "") -> Board:
        # A blocking pool: under a burst (1,000 agents claiming one order) callers wait for a
        # free connection instead of failing with "Too many connections", which turned most
        # losers' `taken` into `unavailable`.  64 connections keep Redis busy; more only adds
        # context switches on a small machine.
        if is_cluster(url):
            cluster = cluster_client(
                url,
                max_connections=64,
                socket_timeout=5,
                socket_connect_timeout=5,
                **healing_options(),
            )
            return cls(cluster, hold_ms=hold_ms, closed_ttl_ms=closed_ttl_ms, namespace=namespace)
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=64,
            timeout=5,
            socket_timeout=5,
            socket_connect_timeout=5,
            **healing_options(),
        )
        client = aioredis.Redis.from_pool(pool)  # the client owns (and closes) the pool

        return cls(client, hold_ms=hold_ms, closed_ttl_ms=closed_ttl_ms, namespace=namespace)

    async def close(self) -> None:
        await self.redis.aclose()

    async def probe(self) -> None:
        """Raise ``RedisUnavailableError`` unless Redis answers and runs our scripts."""
        try:
            if await self._probe() != b"ok":
                raise RedisUnavailableError("redis probe script returned an unexpected value")
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc

    async def claim(
        self,
        order_id: int,
        agent_id: int,
        answer_field: str,
        grids: Sequence[str],
        now: int,
        *,
        at_limit: bool = False,
    ) -> str:
        """Run CLAIM: ``'hold'``, ``'busy'``, ``'limit_reached'`` or a final answer."""
        flag = "1" if at_limit else "0"
        try:
            out = await self._claim(
                keys=[self.keys.order(order_id), self.keys.answers(order_id)],
                args=[agent_id, answer_field, now, self.hold_ms, self.closed_ttl_ms, flag, *grids],
            )
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        result: bytes = out[0]
        return result.decode()

    async def claim_many(
        self,
        order_id: int,
        claims: Sequence[tuple[int, str, Sequence[str]]],
        now: int,
        *,
        lead: bool = False,
        at_limit: bool = False,
    ) -> list[str]:
        """Run CLAIM_MANY for (agent id, answer field, grids) claims on one order, in order:
        for each, a final answer, ``'busy'``, or ``''`` (undecided: only CLAIM may decide it).
        With ``lead`` the first claim is decided as CLAIM decides it (its agent reserved a
        place, or is ``at_limit``): ``'hold'`` and ``'limit_reached'`` are its answers too."""
        first = ("L" if at_limit else "1") if lead else ""
        args: list[Any] = [now, self.hold_ms, self.closed_ttl_ms, first]
        for agent_id, answer_field, grids in claims:
            args += [agent_id, answer_field, len(grids), *grids]
        try:
            out = await self._claim_many(
                keys=[self.keys.order(order_id), self.keys.answers(order_id)], args=args
            )
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        return [answer.decode() for answer in out]

    def _sync_args(self, order: Order, answer_field: str, answer: str) -> list[Any]:
        return [
            order.version,
            order.status.value,
            "," + ",".join(order.reach_grids) + ",",
            order.scope.value,
            "" if order.claimed_by is None else order.claimed_by,
            self.closed_ttl_ms,
            answer_field,
            answer,
            "," + ",".join(str(a) for a in sorted(order.excluded)) + "," if order.excluded else "",
        ]

    async def sync(self, order: Order, *, answer_field: str = "", answer: str = "") -> bool:
        """Copy ``order`` (as Postgres has it) into Redis; optionally remember a claim answer.

        Returns False when Redis already had that version or a newer one.
        """
        try:
            written = await self._sync(
                keys=[self.keys.order(order.id), self.keys.answers(order.id)],
                args=self._sync_args(order, answer_field, answer),
            )
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        return bool(written)

    async def announce(
        self,
        order: Order,
        *,
        reason: str | None = None,
        answer_field: str = "",
        answer: str = "",
        event: Mapping[str, Any] | None = None,
        notify: Iterable[int] = (),
        held: Mapping[int, int] | None = None,
    ) -> None:
        """Sync ``order`` into Redis, keep the schedules right, and publish the change (see
        :func:`change_event` for the rest of the arguments).

        One round trip (a pipeline; the schedules are global keys, so not in the script); on
        a cluster three: the script, the schedules (a pipeline across slots), the publish.
        """
        deadline = next_deadline(state_of(order))
        key = self.keys.order(order.id)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                sync = self._sync(
                    keys=[key, self.keys.answers(order.id)],
                    args=self._sync_args(order, answer_field, answer),
                    client=None if self.cluster else pipe,
                )
                await sync
                if order.status is Status.OFFERED and order.next_step_at is not None:
                    pipe.zadd(self.keys.of(rs.WIDEN_DUE), {str(order.id): order.next_step_at})
                else:
                    pipe.zrem(self.keys.of(rs.WIDEN_DUE), str(order.id))
                if deadline is not None and deadline[1] < NEVER:
                    pipe.zadd(self.keys.of(rs.CLOCK_DUE), {str(order.id): deadline[1]})
                else:
                    pipe.zrem(self.keys.of(rs.CLOCK_DUE), str(order.id))
                payload = change_event(order, reason=reason, event=event, notify=notify, held=held)
                if not self.cluster:
                    pipe.publish(self.keys.of(rs.EVENTS_CHANNEL), payload)
                await pipe.execute()
            if self.cluster:  # (a pipeline of a cluster runs commands of keys only)
                await self.redis.publish(self.keys.of(rs.EVENTS_CHANNEL), payload)
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc

    async def config(self) -> dict[str, str] | None:
        """``CONFIG GET`` of what the start-up checks read; None when CONFIG is refused."""
        out: dict[str, str] = {}
        try:
            for name in ("appendonly", "save", "maxmemory-policy"):
                got: dict[Any, Any] = await self.redis.config_get(name)
                for key, value in got.items():
                    k = key.decode() if isinstance(key, bytes) else str(key)
                    out[k] = value.decode() if isinstance(value, bytes) else str(value)
        except ResponseError:
            return None
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        return out

    async def publish_beat(self, payload: bytes) -> int:
        """Publish a pub/sub heartbeat on this deployment's channel; returns how many
        subscribers got it."""
        try:
            return int(await self.redis.publish(self.keys.events, payload))
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc

    async def publish_held(self, counts: Mapping[int, int]) -> None:
        """Tell every process's agents how many orders they hold (after a repair)."""
        payload = {"held": [[agent, count] for agent, count in counts.items()]}
        try:
            await self.redis.publish(self.keys.of(rs.EVENTS_CHANNEL), msgpack.packb(payload))
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc

    async def release_hold(
        self, order_id: int, agent_id: int | None, now: int, *, only_stale: bool = False
    ) -> bool:
        """Drop a hold: the agent's own (after Postgres failed), or any stale one."""
        try:
            removed = await self._release(
                keys=[self.keys.order(order_id)],
                args=["" if agent_id is None else agent_id, now, self.hold_ms if only_stale else 0],
            )
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        return bool(removed)

    async def due(self, now: int, limit: int = 500, *, schedule: str = rs.WIDEN_DUE) -> list[int]:
        """Ids of orders whose deadline has passed, per a Redis schedule (widening, or
        :data:`~dispatcher.board.scripts.CLOCK_DUE`)."""
        try:
            ids: list[bytes] = await self.redis.zrangebyscore(
                self.keys.of(schedule), "-inf", now, start=0, num=limit
            )
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        return [int(i) for i in ids]  # members are order ids written by announce()

    async def reschedule(self, order_id: int, at: int, *, schedule: str = rs.WIDEN_DUE) -> None:
        """Put an order back on a sweepers' list at ``at`` (ms)."""
        try:
            await self.redis.zadd(self.keys.of(schedule), {str(order_id): at})
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc

    async def unschedule(self, order_ids: Iterable[int], *, schedule: str = rs.WIDEN_DUE) -> None:
        ids = [str(i) for i in order_ids]
        if not ids:
            return
        try:
            await self.redis.zrem(self.keys.of(schedule), *ids)
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc

    async def publish_revocation(
        self, *, token_id: int | None = None, agent_id: int | None = None
    ) -> None:
        """Tell every process that a token was revoked or an agent deactivated."""
        event = {"token_id": token_id, "agent_id": agent_id}
        try:
            await self.redis.publish(self.keys.auth, msgpack.packb(event))
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc

    async def rate(self, name: str, limit: int, window_ms: int) -> int:
        """Count one event against ``name``'s limit in this window, across every process: 0
        when allowed, else the ms until it may try again."""
        try:
            left = await self._rate(keys=[self.keys.rate(name)], args=[window_ms, limit])
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        return int(left)

    async def versions(self, order_ids: Sequence[int]) -> list[tuple[int | None, bool]]:
        """For each order: (version Redis has or None, whether a hold is set)."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for oid in order_ids:
                    pipe.hmget(self.keys.order(oid), "version", "holder")
                rows = await pipe.execute()
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        return [(None if v is None else int(v), bool(h)) for v, h in rows]

    async def try_lock(self, name: str, token: str, ttl_ms: int) -> bool:
        try:
            return bool(await self.redis.set(self.keys.of(name), token, nx=True, px=ttl_ms))
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc

    # --- the reconciler's watermark (added for dispatcher/flows/reconciler.py) --------------------

    async def reconcile_mark(self) -> str | None:
        """The reconciler's watermark as stored, or None when Redis has none."""
        try:
            raw: bytes | None = await self.redis.get(self.keys.of(rs.RECONCILE_MARK))
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        return None if raw is None else raw.decode()

    async def swap_reconcile_mark(self, read: str | None, new: str) -> bool:
        """Store ``new`` as the watermark if Redis still holds ``read`` (None: none at all).
        Returns False, writing nothing, when it holds something else now."""
        try:
            swapped = await self._swap(
                keys=[self.keys.of(rs.RECONCILE_MARK)], args=[read or "", new]
            )

        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        return bool(swapped)
