"""The board: the server's view of Redis, where claims are arbitrated and changes fanned out.

:class:`Board` runs the scripts of :mod:`dispatcher.board.scripts` and translates Redis
failures into :class:`~dispatcher.exceptions.RedisUnavailableError`.  It holds no state of
its own besides the connection pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgpack
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError, ResponseError

from dispatcher.board import held_scripts as hs
from dispatcher.board import scripts as rs
from dispatcher.board import sync_scripts as ss
from dispatcher.board.connect import (
    Client,
    bounded_writes,
    cluster_client,
    healing_options,
    is_cluster,
    run_pipeline,
    run_script,
)
from dispatcher.board.events import change_event
from dispatcher.board.held import HeldOrders
from dispatcher.board.watermark import Watermark
from dispatcher.core.orders import Order, Status
from dispatcher.core.workflow import NEVER, next_deadline, state_of
from dispatcher.exceptions import RedisUnavailableError


class Board(HeldOrders, Watermark):
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
        self._sync = client.register_script(ss.SYNC)
        self._announce = client.register_script(ss.ANNOUNCE)
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
        pool.connection_class = bounded_writes(pool.connection_class)
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
        out = await self._run_claim(order_id, agent_id, answer_field, grids, now, at_limit)
        return out[0]

    async def claim_reserving(
        self,
        order_id: int,
        agent_id: int,
        answer_field: str,
        grids: Sequence[str],
        now: int,
        limit: int,
    ) -> tuple[str, str]:
        """CLAIM with the agent's place reserved in the same script (a single server only:
        the agent's key and the order's are one script's).  Returns (CLAIM's outcome, the
        place: ``'ok'`` reserved, then call :meth:`set_held` either way; ``'already'``; ``''``
        nothing reserved)."""
        out = await self._run_claim(order_id, agent_id, answer_field, grids, now, limit)
        return out[0], out[1] if len(out) > 1 else ""

    async def _run_claim(
        self,
        order_id: int,
        agent_id: int,
        answer_field: str,
        grids: Sequence[str],
        now: int,
        limit: bool | int,
    ) -> list[str]:
        """CLAIM with ``limit`` as its flag: at the limit or not (a bool: RESERVE ran), or
        the limit to reserve against in the agent's held hash (an int)."""
        keys = [self.keys.order(order_id)]
        if isinstance(limit, bool):
            flag = "1" if limit else "0"
        else:
            flag = f"R{limit}"
            keys.append(self.keys.held(agent_id))
        args: list[Any] = [agent_id, answer_field, now, self.hold_ms, flag]
        args += grids
        try:
            out = await run_script(self.redis, self._claim, keys, args)
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        return [part.decode() for part in out]

    async def claim_many(
        self,
        order_id: int,
        claims: Sequence[tuple[int, str, Sequence[str]]],
        now: int,
        *,
        lead: bool = False,
        at_limit: bool = False,
        reserve: int | None = None,
    ) -> list[str]:
        """Run CLAIM_MANY for (agent id, answer field, grids) claims on one order, in order:
        for each, a final answer, ``'busy'``, or ``''`` (undecided: only CLAIM may decide it).
        With ``lead`` the first claim is decided as CLAIM decides it (its agent reserved a
        place, or is ``at_limit``): ``'hold'`` and ``'limit_reached'`` are its answers too.
        With ``reserve`` (the limit; a single server only) the first claim's place is
        reserved in the script, as :meth:`claim_reserving` does, and one more item follows
        the answers: the place (``'ok'``, ``'already'`` or ``''``)."""
        first = ("L" if at_limit else "1") if lead else ""
        keys = [self.keys.order(order_id)]
        if lead and reserve is not None:
            first = f"R{reserve}"
            keys.append(self.keys.held(claims[0][0]))
        args: list[Any] = [now, self.hold_ms, first]
        for agent_id, answer_field, grids in claims:
            args += [agent_id, answer_field, len(grids), *grids]
        try:
            out = await run_script(self.redis, self._claim_many, keys, args)
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
                keys=[self.keys.order(order.id)],
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
        holder: tuple[int, int] | None = None,
        if_newer: bool = False,
    ) -> int | None:
        """Sync ``order`` into Redis, keep the schedules right, and publish the change (see
        :func:`change_event` for the rest of the arguments).

        ``holder``: (agent id, since ms) when the agent just won the order: its place becomes
        a holding (SET_HELD) and the event carries its new held count, which is returned.
        ``if_newer``: publish only if Redis did not have this version yet (a filing's offer,
        announced after the 201: a claim may have synced the order from Postgres first, and
        announced its win).

        One script on a single server (ANNOUNCE: SYNC, the schedules, and the publish or
        SET_HELD's); on a cluster three or four round trips: SYNC, SET_HELD, the schedules (a
        pipeline across slots), the publish.
        """
        deadline = next_deadline(state_of(order))
        keys = [self.keys.order(order.id)]
        sync_args = self._sync_args(order, answer_field, answer)
        widen_at = order.next_step_at if order.status is Status.OFFERED else None
        clock_at = deadline[1] if deadline is not None and deadline[1] < NEVER else None
        channel = self.keys.of(rs.EVENTS_CHANNEL)
        try:
            if not self.cluster:
                payload = change_event(order, reason=reason, event=event, notify=notify, held=held)
                agent, since = holder if holder is not None else ("", "")
                keys.append(self.keys.of(rs.DUE))
                if holder is not None:
                    keys += [self.keys.held(holder[0]), self.keys.of(rs.HOLDERS)]
                at = ["" if t is None else t for t in (widen_at, clock_at)]
                newer = "1" if if_newer else ""
                args = [*sync_args, channel, payload, newer, order.id, *at, agent, since]
                held_now = await run_script(self.redis, self._announce, keys, args)
                return None if holder is None else int(held_now)
            written = bool(await self._sync(keys=keys, args=sync_args))
            count: int | None = None
            if holder is not None:
                count = await self.set_held(holder[0], order.id, holder[1], now=holder[1])
                held = {**(held or {}), holder[0]: count}
            payload = change_event(order, reason=reason, event=event, notify=notify, held=held)

            def fill(pipe: Any) -> None:  # (a pipeline of a cluster runs commands of keys only)
                due = {
                    rs.due_member(k, order.id): t
                    for k, t in ((rs.WIDEN, widen_at), (rs.CLOCK, clock_at))
                }
                if add := {member: t for member, t in due.items() if t is not None}:
                    pipe.zadd(self.keys.of(rs.DUE), add)
                if drop := [member for member, t in due.items() if t is None]:
                    pipe.zrem(self.keys.of(rs.DUE), *drop)

            await run_pipeline(self.redis, fill, ())
            if written or not if_newer:
                await self.redis.publish(channel, payload)
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        return count

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

    async def due(self, now: int, limit: int = 500) -> dict[str, list[int]]:
        """The orders whose deadlines have passed (the ``limit`` earliest), by kind
        (:data:`~dispatcher.board.scripts.WIDEN`, :data:`~dispatcher.board.scripts.CLOCK`)."""
        try:
            members: list[bytes] = await self.redis.zrangebyscore(
                self.keys.of(rs.DUE), "-inf", now, start=0, num=limit
            )
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        out: dict[str, list[int]] = {rs.WIDEN: [], rs.CLOCK: []}
        for member in members:  # written by announce() and reschedule()
            kind, order_id = rs.due_entry(member.decode())
            out.setdefault(kind, []).append(order_id)
        return out

    async def reschedule(self, order_id: int, at: int, *, kind: str = rs.WIDEN) -> None:
        """Put an order's deadline of ``kind`` back on the sweepers' list at ``at`` (ms)."""
        try:
            await self.redis.zadd(self.keys.of(rs.DUE), {rs.due_member(kind, order_id): at})
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc

    async def unschedule(self, order_ids: Iterable[int], *, kind: str = rs.WIDEN) -> None:
        members = [rs.due_member(kind, i) for i in order_ids]
        if not members:
            return
        try:
            await self.redis.zrem(self.keys.of(rs.DUE), *members)
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

    async def rate(self, name: str, limit: int, window_ms: int, want: int = 1) -> tuple[int, int]:
        """Take a share of up to ``want`` events of ``name``'s limit in this window, across
        every process (RATE): (granted, ms left in the window).  Granted 0: refused, try again
        after the ms left; else the events this process may count itself until then (the ms
        left is 0 for a share of one, used at once)."""
        try:
            granted, left = await run_script(
                self.redis, self._rate, [self.keys.rate(name)], [window_ms, limit, want]
            )
        except RedisError as exc:
            raise RedisUnavailableError(f"redis: {exc}") from exc
        return int(granted), int(left)

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
