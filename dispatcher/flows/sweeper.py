"""The sweeper: every process, every ``sweep_interval`` (at most 1 s), takes what is due.

It sweeps the Redis schedule (``bb:due``) of widening (:mod:`dispatcher.flows.widening`) and of
the workflow's clock (:mod:`dispatcher.flows.deadlines`: escalating, closing), one read for
both.  Deadlines are data
(Postgres rows and Redis sorted sets), not timers, so a deadline that passed while every process
was stopped is taken at the next start, and however many processes sweep, the conditional
update in Postgres lets exactly one take it.
"""

from __future__ import annotations

import asyncio
import logging

from dispatcher.board import scripts as rs
from dispatcher.context import Context
from dispatcher.exceptions import RedisUnavailableError, StoreUnavailableError
from dispatcher.flows import deadlines, widening

log = logging.getLogger("bangban.sweeper")


async def sweep(ctx: Context) -> int:
    """One sweep of what the Redis schedule says is due.  Returns how many widening steps and
    clock actions this process took."""
    due = await ctx.board.due(ctx.clock())
    return await widening.widen(ctx, due[rs.WIDEN]) + await deadlines.handle(ctx, due[rs.CLOCK])


async def run(ctx: Context) -> None:
    """Sweep forever.  Errors are logged and the loop goes on."""
    while True:
        try:
            await sweep(ctx)
        except (RedisUnavailableError, StoreUnavailableError) as exc:
            log.warning("sweep failed error=%s", exc)
        except Exception:
            log.exception("sweep crashed; continuing")
        await asyncio.sleep(ctx.settings.sweep_interval)
