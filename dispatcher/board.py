"""The board: the server's view of Redis, where claims are arbitrated and changes fanned out.

:class:`Board` runs the scripts of :mod:`dispatcher.redis_scripts` and translates Redis
failures into :class:`~dispatcher.exceptions.RedisUnavailableError`.  It holds no state of
its own besides the connection pool.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import msgpack
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from dispatcher import redis_scripts as rs
from dispatcher.exceptions import RedisUnavailableError
from dispatcher.orders import Order, Status


def change_event(order: Order, *, reason: str | None = None) -> bytes:
    """The pub/sub payload announcing ``order``'s new state to every server process."""
    event = {"order": order.to_wire(), "reason": reason, "at": time.time_ns() // 1_000_000}
    packed: bytes = msgpack.packb(event)
    return packed


class Board:
    """Redis operations for orders.  Every method may raise ``RedisUnavailableError``."""

    def __init__(self, client: aioredis.Redis, *, hold_ms: int, closed_ttl_ms: int) -> None:
        self.redis = client
        self.hold_ms = hold_ms
        self.closed_ttl_ms = closed_ttl_ms
        self._claim = client.register_script(rs.CLAIM)
        self._sync = client.register_script(rs.SYNC)
        self._release = client.register_script(rs.RELEASE_HOLD)
        self._probe = client.register_script(rs.PROBE)

    @classmethod
    def from_url(cls, url: str, *, hold_ms: int, closed_ttl_ms: int) -> Board:
        # A blocking pool: under a burst (1,000 agents claiming one order) callers wait for a
        # free connection instead of failing with "Too many connections", which turned most
        # losers' `taken` into `unavailable`.  64 connections keep Redis busy; more only adds
        # context switches on a small machine.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=64,
            timeout=5,
            socket_timeout=5,
            socket_connect_timeout=5,
            health_check_interval=10,
        )
        client = aioredis.Redis(connection_pool=pool)
        return cls(client, hold_ms=hold_ms, closed_ttl_ms=closed_ttl_ms)


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
        self, order_id: int, agent_id: int, answer_field: str, grids: Sequence[str], now: int
    ) -> str:
        """Run CLAIM: ``'hold'``, ``'busy'`` or a final answer (see the script)."""
        try:
            out = await self._claim(
                keys=[rs.order_key(order_id), rs.answers_key(order_id)],
                args=[agent_id, answer_field, now, self.hold_ms, self.closed_ttl_ms, *grids],
            )
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        result: bytes = out[0]
        return result.decode()

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
        ]

    async def sync(self, order: Order, *, answer_field: str = "", answer: str = "") -> bool:
        """Copy ``order`` (as Postgres has it) into Redis; optionally remember a claim answer.

        Returns False when Redis already had that version or a newer one.
        """
        try:
            written = await self._sync(
                keys=[rs.order_key(order.id), rs.answers_key(order.id)],
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
    ) -> None:
        """Sync ``order`` into Redis, keep the widening schedule right, and publish the change.

        One round trip (a pipeline; the schedule is a global key, so it is not in the script).
        """
        key = rs.order_key(order.id)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                await self._sync(
                    keys=[key, rs.answers_key(order.id)],
                    args=self._sync_args(order, answer_field, answer),
                    client=pipe,
                )
                if order.status is Status.OFFERED and order.next_step_at is not None:
                    pipe.zadd(rs.WIDEN_DUE, {str(order.id): order.next_step_at})
                else:
                    pipe.zrem(rs.WIDEN_DUE, str(order.id))
                pipe.publish(rs.EVENTS_CHANNEL, change_event(order, reason=reason))
                await pipe.execute()
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc

    async def release_hold(
        self, order_id: int, agent_id: int | None, now: int, *, only_stale: bool = False
    ) -> bool:
        """Drop a hold: the agent's own (after Postgres failed), or any stale one."""
        try:
            removed = await self._release(
                keys=[rs.order_key(order_id)],
                args=["" if agent_id is None else agent_id, now, self.hold_ms if only_stale else 0],
            )
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        return bool(removed)

    async def due(self, now: int, limit: int = 500) -> list[int]:
        """Ids of orders whose widening deadline has passed, per the Redis schedule."""
        try:
            ids: list[bytes] = await self.redis.zrangebyscore(  # type: ignore[assignment]
                rs.WIDEN_DUE, "-inf", now, start=0, num=limit
            )
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        return [int(i) for i in ids]  # members are order ids written by announce()

    async def reschedule(self, order_id: int, at: int) -> None:
        """Put an order back on the sweepers' list at ``at`` (ms)."""
        try:
            await self.redis.zadd(rs.WIDEN_DUE, {str(order_id): at})
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc

    async def unschedule(self, order_ids: Iterable[int]) -> None:
        ids = [str(i) for i in order_ids]
        if not ids:
            return
        try:
            await self.redis.zrem(rs.WIDEN_DUE, *ids)
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc

    async def versions(self, order_ids: Sequence[int]) -> list[tuple[int | None, bool]]:
        """For each order: (version Redis has or None, whether a hold is set)."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for oid in order_ids:
                    pipe.hmget(rs.order_key(oid), "version", "holder")
                rows = await pipe.execute()
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        return [(None if v is None else int(v), bool(h)) for v, h in rows]

    async def try_lock(self, name: str, token: str, ttl_ms: int) -> bool:
        try:
            return bool(await self.redis.set(name, token, nx=True, px=ttl_ms))
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
