"""The board's part for the reconciler's watermark (:mod:`dispatcher.flows.reconciler`): how
far it has read Postgres's changes, kept in Redis so that every process shares it."""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisError

from dispatcher.board import scripts as rs
from dispatcher.exceptions import RedisUnavailableError


class Watermark:
    """Mixed into :class:`~dispatcher.board.board.Board`."""

    redis: Any
    keys: rs.Keys
    _swap: Any

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
