"""The board's part for the orders each agent holds (``BANGBAN_MAX_HELD``): the agent's own
key ``bb:<ns>:{a:<id>}:held``, another cluster slot than the orders' (see
:mod:`dispatcher.board.held_scripts`: RESERVE, SET_HELD, RECONCILE_HELD)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from redis.exceptions import RedisError

from dispatcher.board import scripts as rs
from dispatcher.board.connect import evalsha, run_pipeline
from dispatcher.exceptions import RedisUnavailableError


class HeldOrders:
    """Mixed into :class:`~dispatcher.board.board.Board`."""

    redis: Any
    keys: rs.Keys
    cluster: bool
    hold_ms: int
    _reserve: Any
    _set_held: Any
    _reconcile_held: Any

    async def reserve(self, agent_id: int, order_id: int, now: int, limit: int) -> str:
        """Run RESERVE: ``'ok'`` (then call :meth:`set_held` either way), ``'already'``,
        ``'full'``."""
        try:
            out: bytes = await self._reserve(
                keys=[self.keys.held(agent_id)], args=[order_id, now, limit, self.hold_ms]
            )
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        return out.decode()

    async def set_held(
        self,
        agent_id: int,
        order_id: int,
        since: int | None,
        *,
        now: int,
        only_pending: bool = False,
    ) -> int:
        """Mark ``order_id`` held by the agent since ``since`` (ms), or unmark it at ``now``
        (``since`` None; with ``only_pending``, only a reservation).  Returns how many orders
        the agent holds."""
        value = "" if since is None else f"h:{since}"
        try:
            if self.cluster:  # the script alone (it is loaded again on NOSCRIPT), then the set
                count = await self._set_held(
                    keys=[self.keys.held(agent_id)],
                    args=[order_id, value, "1" if only_pending else "0", now],
                )
                if since is not None:
                    await self.redis.sadd(self.keys.of(rs.HOLDERS), str(agent_id))
                return int(count)
            args = [order_id, value, "1" if only_pending else "0", now]

            def fill(pipe: Any) -> None:
                evalsha(pipe, self._set_held, [self.keys.held(agent_id)], args)
                if since is not None:
                    pipe.sadd(self.keys.of(rs.HOLDERS), str(agent_id))

            count, *_ = await run_pipeline(self.redis, fill, (self._set_held,))
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        return int(count)

    async def held_count(self, agent_id: int) -> int:
        """How many orders the agent holds, per Redis."""
        try:
            values: list[bytes] = await self.redis.hvals(self.keys.held(agent_id))
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        return sum(v.startswith(b"h") for v in values)

    async def reconcile_held(
        self, held: Mapping[int, Sequence[int]], read_at: int, now: int
    ) -> dict[int, int]:
        """Make every agent's held hash agree with ``held`` (agent → orders, read from
        Postgres at ``read_at``), for those agents and every agent Redis lists as a holder.
        Returns agent → held count, for the agents whose hash changed."""
        try:
            members: set[bytes] = await self.redis.smembers(self.keys.of(rs.HOLDERS))
            agents = sorted(set(held) | {int(m) for m in members})
            if not agents:
                return {}
            if self.cluster:
                results = [
                    await self._reconcile_held(
                        keys=[self.keys.held(agent)],
                        args=[read_at, now, self.hold_ms, *held.get(agent, ())],
                    )
                    for agent in agents
                ]
            else:

                def fill(pipe: Any) -> None:
                    for agent in agents:
                        keys = [self.keys.held(agent)]
                        args = [read_at, now, self.hold_ms, *held.get(agent, ())]
                        evalsha(pipe, self._reconcile_held, keys, args)

                results = await run_pipeline(self.redis, fill, (self._reconcile_held,))
            idle = [str(a) for a, (_, _, left) in zip(agents, results, strict=True) if not left]
            if idle:
                await self.redis.srem(self.keys.of(rs.HOLDERS), *idle)
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        return {a: int(n) for a, (changed, n, _) in zip(agents, results, strict=True) if changed}
