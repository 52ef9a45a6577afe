"""Announces that failed, repaired within a second from Postgres, not a reconciler pass later.

Every change is committed to Postgres first, then announced (synced into Redis and published).
When the announce fails (Redis down, a connection lost), Redis stays behind: an order filed
but not offered, a widening committed while Redis keeps the order grid-only (agents of other
grids then got a false ``not_offered``), a claim won whose withdrawal nobody heard.  The
reconciler would repair it at its next pass (``BANGBAN_RECONCILE_INTERVAL``); this loop repairs
it as soon as Redis answers again.

The record is durable: the order's row in Postgres, whose version is then ahead of Redis's.
What this process keeps is only which orders to look at (:class:`Repairs`); if it dies first,
the reconciler's next pass finds the same orders by their versions.  Each repair reads the
order as Postgres has it *now* and announces it only if Redis is behind (SYNC never goes
backwards, and a second publish is a duplicate, which the protocol allows).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from dispatcher.core.orders import withdrawn_reason
from dispatcher.exceptions import RedisUnavailableError, StoreUnavailableError

if TYPE_CHECKING:
    from dispatcher.context import Context

log = logging.getLogger("bangban.repairs")

FIRST_RETRY_S = 0.05
MAX_RETRY_S = 0.25
"""Retry delays while Redis (or Postgres) is still down: repaired within this of recovery."""


class Repairs:
    """The orders whose announce failed in this process, waiting to be announced again."""

    __slots__ = ("due", "pending")

    def __init__(self) -> None:
        self.pending: set[int] = set()
        self.due = asyncio.Event()

    def note(self, order_id: int) -> None:
        self.pending.add(order_id)
        self.due.set()


async def repair(ctx: Context, order_ids: list[int]) -> int:
    """Announce each of ``order_ids`` whose Redis version is behind Postgres's.  Returns how
    many were announced.  Raises Redis/Store unavailable errors (nothing lost: retry)."""
    orders = await ctx.store.orders_by_id(sorted(order_ids))
    have = await ctx.board.versions([o.id for o in orders])
    done = 0
    for order, (version, _held) in zip(orders, have, strict=True):
        if version is not None and version >= order.version:
            continue  # announced meanwhile (a retry, another process, the reconciler)
        if version is None and not order.is_open:
            continue  # closed and expired from Redis: claims fall back to Postgres
        await ctx.board.announce(order, reason=withdrawn_reason(order))
        done += 1
        log.info("announce repaired order_id=%s version=%s", order.id, order.version)
    return done


async def run(ctx: Context) -> None:
    """Repair what :attr:`Context.repairs` names, forever, retrying until Redis answers."""
    repairs = ctx.repairs
    delay = FIRST_RETRY_S
    while True:
        await repairs.due.wait()
        repairs.due.clear()
        batch = sorted(repairs.pending)
        if not batch:
            continue
        try:
            await repair(ctx, batch)
        except (RedisUnavailableError, StoreUnavailableError) as exc:
            log.debug("announce repair waits error=%s", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_S)
            repairs.due.set()
            continue
        except Exception:
            log.exception("announce repair crashed; the reconciler will repair")
            repairs.pending.difference_update(batch)
            continue
        delay = FIRST_RETRY_S
        repairs.pending.difference_update(batch)
