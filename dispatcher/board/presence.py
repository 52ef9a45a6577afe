"""Presence: which agents are connected right now, to any server process.

Each process writes the set of agents connected to it under its own key with a short TTL
(:data:`~dispatcher.board.scripts.presence_key`) and registers itself in
:data:`~dispatcher.board.scripts.PRESENCE_PROCS`, scored by when that set expires.  It
rewrites both whenever its set changes and at least every third of the TTL
(:mod:`dispatcher.flows.presence`).  A process that dies stops refreshing: its set expires and
its score falls behind the clock, so its agents count as offline after at most the TTL.

Readers take the union of the sets of processes whose score is still ahead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from dispatcher.board import scripts as rs
from dispatcher.exceptions import RedisUnavailableError


class Presence:
    """Presence in Redis.  Every method may raise ``RedisUnavailableError``."""

    def __init__(self, client: aioredis.Redis, process: str, keys: rs.Keys | None = None) -> None:
        self.redis = client
        self.process = process
        self.keys = keys or rs.Keys()
        self._procs = self.keys.of(rs.PRESENCE_PROCS)

    async def publish(self, agents: Iterable[int], now: int, ttl_ms: int) -> None:
        """Replace this process's set with ``agents``, valid until ``now + ttl_ms``."""
        key = self.keys.presence(self.process)
        members = sorted(set(agents))
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                if members:
                    pipe.sadd(key, *members)
                    pipe.pexpire(key, ttl_ms)
                pipe.zadd(self._procs, {self.process: now + ttl_ms})
                pipe.zremrangebyscore(self._procs, "-inf", now)
                await pipe.execute()
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc

    async def withdraw(self) -> None:
        """This process stops (cleanly): its agents are offline at once."""
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(self.keys.presence(self.process))
                pipe.zrem(self._procs, self.process)
                await pipe.execute()
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc

    async def connected(self, agents: Sequence[int], now: int) -> set[int]:
        """Which of ``agents`` are connected to a live process (one round trip per call plus
        one for the process list, whatever the number of agents connected)."""
        if not agents:
            return set()
        try:
            procs = await self._live(now)
            if not procs:
                return set()
            async with self.redis.pipeline(transaction=False) as pipe:
                for p in procs:
                    pipe.smismember(self.keys.presence(p), list(agents))
                answers = await pipe.execute()
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        return {a for flags in answers for a, flag in zip(agents, flags, strict=True) if flag}

    async def _live(self, now: int) -> list[str]:
        found = await self.redis.zrangebyscore(self._procs, now, "+inf")
        return [p.decode() if isinstance(p, bytes) else str(p) for p in found]

    async def online(self, now: int) -> dict[int, list[str]]:
        """Agent id → the live processes it is connected to."""
        try:
            procs = await self._live(now)
            if not procs:
                return {}
            async with self.redis.pipeline(transaction=False) as pipe:
                for p in procs:
                    pipe.smembers(self.keys.presence(p))
                sets = await pipe.execute()
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        out: dict[int, list[str]] = {}
        for p, members in zip(procs, sets, strict=True):
            for m in members:
                out.setdefault(int(m), []).append(p)
        return out
