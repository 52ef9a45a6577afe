"""Bringing Redis up to Postgres: from a watermark, in pages.

Every change is committed to Postgres first, then *announced* (synced into Redis and
published).  An announce can fail (Redis down, the process dying in between), and Redis can
lose data.  The reconciler repairs both; :func:`reconcile` runs it under a lock, one process
at a time, then does the rest of a pass (due widenings, the clock's backstop, held counts),
which reads Postgres's own bounded work lists as before.  :func:`run` is the loop every process
runs, every ``reconcile_interval``.

- A **full pass** (a process's first, and the first after Redis lost data) re-reads every open
  order, every order changed in the last ``RECENT_MS``, and every order written since the
  watermark if there is one.
- A **periodic pass** reads only the orders written since the watermark, and one page of open
  orders (the audit, below).

Each scan reads pages of at most ``CHUNK`` rows by keyset, so no statement holds a large result
and a page costs the same however deep the scan.  A page holds only each order's stamp (id,
version, open or not, writer), which the reconciler compares with Redis: an open order Redis
lacks, or any order Redis has at an older version, is read whole and announced again; a stale
hold on an order read is dropped.

**Why a transaction id, not ``updated_at``.**  ``updated_at = now()`` is when the writing
transaction *began*, and it becomes visible when it commits, which can be any time later: a
statement waiting on a row lock, a slow commit, a transaction held open by hand.  A pass can see
a row stamped 12:00:05, and a row stamped 12:00:03 commit after it.  A timestamp watermark needs
an overlap longer than any transaction can last, and nothing bounds that: ``command_timeout``
is the client's, and a client cut off from the server cannot cancel a statement that then
commits anyway.  Instead a trigger stamps each row with ``changed_xid``, the id of the
transaction writing it, and a pass begins by reading the *horizon* (:meth:`ChangeStore.horizon`):
every transaction below it has finished, and every later write gets an id at or above it.  A
pass reads the orders written in [previous horizon, this horizon); the next starts at this
horizon.  The overlap is exactly as long as the oldest transaction running when the pass began,
whatever the clocks say.  The upper bound keeps a pass finite under load: what is written
during it is the next pass's.  The price: a transaction left open after writing (idle in
transaction, a forgotten prepared transaction) holds the horizon back, and each pass re-reads,
page by page, all that was written since it began (``bangban_reconcile_rows_total`` rises).
Read-only transactions (a ``pg_dump``) do not hold it back.

**The watermark lives in Redis** (``bb:reconcile-mark``, ``<epoch>:<horizon>:<audit>``), shared
by every process, next to the data it vouches for, so it is lost with them: FLUSHALL or a restart
without persistence leaves no watermark, and the next pass is full.  A full pass without one
first writes a new epoch with no horizon, so a loss during the pass leaves none behind either
(a pass that finds an epoch with no horizon is full too, and keeps that epoch).
Every pass stores its horizon by compare-and-set on the value it read (``SWAP``): if Redis lost
data or another pass moved the watermark meanwhile, nothing is stored.  A snapshot restored (RDB,
AOF, a promoted replica) brings back the watermark of that moment with the data of that moment.
So after a pass that started from a watermark stores horizon H, every order is in Redis at its
Postgres version, or closed and expired from Redis, or written by a transaction at or above H:
later writes only add ids at or above H, and the sync script never moves Redis backwards.  (A
full pass without a watermark vouches for the open orders and the last ``RECENT_MS``, as the
reconciler always did: a closed order changed before then whose announce failed, in a Redis
that lost the watermark but not that order's key, stays as it is.)

**The audit.**  A loss can spare the watermark: one key deleted by hand or evicted (a
``maxmemory`` allkeys policy), or one node of a cluster losing data while the watermark's node
keeps it.  Each periodic pass re-reads one page of open orders, going on where the last stopped,
so every open order is looked at within (open orders / ``CHUNK``) passes.  The audit also drops
stale holds on open orders that do not change.

**Log levels.**  Repairing an order written since the watermark is the benign race (the pass
read Postgres between a commit and its announce) or a failed announce (its writer logged a
warning): ``reconciled`` is logged at INFO.  An order written before the watermark that Redis
lacks or has at an older version means Redis lost it (``unexplained``); that, and any repair by
a pass that found no watermark, is logged at WARNING.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from dispatcher.board import scripts as rs
from dispatcher.context import Context
from dispatcher.core.orders import withdrawn_reason
from dispatcher.exceptions import RedisUnavailableError, StoreUnavailableError
from dispatcher.flows import deadlines, widening
from dispatcher.store.changes import Page, Stamp

log = logging.getLogger("bangban.reconciler")

CHUNK = 1000
"""Rows per page read from Postgres."""

RECENT_MS = 15 * 60 * 1000
"""How far back a full pass looks at closed orders (longer than any outage it repairs)."""

Fetch = Callable[[tuple[Any, int] | None], Awaitable[Page]]


@dataclass(frozen=True)
class Mark:
    """The watermark as stored in Redis."""

    epoch: str
    """Changes when a pass finds no watermark: a pass that read another epoch stores nothing."""
    horizon: int | None
    """Orders written by transactions below it are in Redis; None: a full pass is under way."""
    audit: int
    """The last open order id the audit looked at (0: start again)."""

    def encode(self) -> str:
        return f"{self.epoch}:{'' if self.horizon is None else self.horizon}:{self.audit}"

    @classmethod
    def decode(cls, raw: str | None) -> Mark | None:
        """The mark, or None when there is none (or it is unreadable)."""
        if raw is None:
            return None
        try:
            epoch, horizon, audit = raw.split(":")
            return cls(epoch, int(horizon) if horizon else None, int(audit))
        except ValueError:
            return None


@dataclass
class Reconciled:
    """What one pass read and repaired."""

    full: bool = False
    """Every open and recent order was re-read."""
    lost: bool = False
    """Redis had no watermark: it lost its data (or is new)."""
    rows: int = 0
    """Order rows read from Postgres (stamps; the audit's not counted)."""
    audited: int = 0
    """Open orders read by the audit."""
    restored: int = 0
    """Open orders Redis lacked, announced again."""
    behind: int = 0
    """Orders Redis had at an older version, announced again."""
    unexplained: int = 0
    """Of those, the ones written before the watermark (or all, without one): Redis lost them."""
    widened: int = 0
    clock: int = 0
    held: int = 0
    """Agents whose held counts were repaired."""
    saved: bool = False
    """The watermark moved to this pass's horizon."""

    @property
    def repaired(self) -> int:
        return self.restored + self.behind + self.widened + self.clock + self.held

    @property
    def alarming(self) -> bool:
        """Redis really lost something (log at WARNING)."""
        return self.unexplained > 0 or (self.lost and self.repaired > 0)


async def _repair(ctx: Context, page: Page, known: int | None, result: Reconciled) -> None:
    """Bring Redis up to ``page``.  ``known``: the watermark (None: none)."""
    if not page.stamps:
        return
    have = await ctx.board.versions([s.id for s in page.stamps])
    now = ctx.clock()
    stale: dict[int, tuple[Stamp, int | None]] = {}
    for stamp, (version, held) in zip(page.stamps, have, strict=True):
        if version is None and not stamp.open:
            continue  # closed and expired from Redis: claims fall back to Postgres
        if version is None or version < stamp.version:
            stale[stamp.id] = (stamp, version)
        elif held:
            await ctx.board.release_hold(stamp.id, None, now, only_stale=True)
    if not stale:
        return
    # The orders as they are now: if one moved on since its stamp was read, its newer
    # version is as right to announce (Redis never goes backwards).
    for order in await ctx.store.orders_by_id(sorted(stale)):
        stamp, version = stale[order.id]
        await ctx.board.announce(order, reason=withdrawn_reason(order))
        if version is None:
            result.restored += 1
        else:
            result.behind += 1
        if known is None or stamp.xid < known:
            result.unexplained += 1


async def _scan(ctx: Context, fetch: Fetch, known: int | None, result: Reconciled) -> None:
    after: tuple[Any, int] | None = None
    while True:
        page = await fetch(after)
        result.rows += len(page.stamps)
        await _repair(ctx, page, known, result)
        if page.after is None:
            return
        after = page.after


async def sync_orders(ctx: Context, *, chunk: int = CHUNK) -> Reconciled:
    """Make the orders in Redis agree with Postgres, and move the watermark.

    The caller must hold the reconcile lock (another pass at the same time repairs nothing
    wrongly, but reads twice).  Raises ``RedisUnavailableError`` or ``StoreUnavailableError``;
    the watermark then stays where it was, and the next pass reads from there.
    """
    raw = await ctx.board.reconcile_mark()
    mark = Mark.decode(raw)
    horizon = await ctx.store.horizon()
    if mark is not None and mark.horizon is not None and mark.horizon > horizon:
        mark = None  # ids of another Postgres (restored from a dump, another database)
    lost = mark is None or mark.horizon is None
    result = Reconciled(full=lost or ctx.full_reconcile_due, lost=lost)
    read: str | None = raw
    if mark is None:
        mark = Mark(secrets.token_hex(4), None, 0)
        read = mark.encode() if await ctx.board.swap_reconcile_mark(raw, mark.encode()) else None
    # A full pass under way (or dead) keeps its epoch: passes that read the same one race to
    # store the first horizon.  A new epoch each time would let every pass longer than the
    # lock void the one before it, and none would ever store one.
    known = mark.horizon
    store = ctx.store
    if result.full:
        await _scan(ctx, lambda after: store.open_page(after, chunk), known, result)
        since = ctx.clock() - RECENT_MS
        await _scan(ctx, lambda after: store.recent_page(since, after, chunk), known, result)
    if known is not None:
        start = known
        await _scan(ctx, lambda a: store.changed_page(start, horizon, a, chunk), known, result)
    audit = 0
    if not result.full:
        page = await store.open_page((0, mark.audit), chunk)
        result.audited = len(page.stamps)
        await _repair(ctx, page, known, result)
        audit = 0 if page.after is None else page.after[1]
    if read is not None:
        new = Mark(mark.epoch, horizon, audit).encode()
        result.saved = await ctx.board.swap_reconcile_mark(read, new)
    if result.full:
        ctx.full_reconcile_due = False
    return result


def report(ctx: Context, result: Reconciled) -> None:
    """Count the rows the pass read; log it if it repaired anything (at the level the
    module's docstring gives)."""
    ctx.metrics.reconcile_rows.labels("full" if result.full else "periodic").inc(
        result.rows + result.audited
    )
    if not result.repaired:
        return
    log.log(
        logging.WARNING if result.alarming else logging.INFO,
        "reconciled repaired=%d unexplained=%d full=%d lost=%d restored=%d behind=%d"
        " widened=%d clock=%d held=%d rows=%d audited=%d",
        result.repaired,
        result.unexplained,
        result.full,
        result.lost,
        result.restored,
        result.behind,
        result.widened,
        result.clock,
        result.held,
        result.rows,
        result.audited,
    )


async def reconcile(ctx: Context, *, chunk: int = CHUNK) -> Reconciled | None:
    """Make Redis agree with Postgres, unless another process is at it (then None).

    Returns what the pass read and repaired.  The orders are brought up from the watermark
    (:func:`sync_orders`, pages of ``chunk`` rows); due widenings, the clock's
    backstop and the agents' held counts come from Postgres's own work lists.
    """
    token = secrets.token_hex(8)
    lock_ms = max(1000, int(ctx.settings.reconcile_interval * 1000))
    if not await ctx.board.try_lock(rs.RECONCILE_LOCK, token, lock_ms):
        return None  # another process is on it
    now = ctx.clock()
    result = await sync_orders(ctx, chunk=chunk)
    due = await ctx.store.due_orders(now)
    if due:
        result.widened = await widening.widen(ctx, due)
    result.clock = await deadlines.backstop(ctx)
    read_at = ctx.clock()
    holdings = await ctx.store.held_orders()
    counts = await ctx.board.reconcile_held(holdings, read_at, ctx.clock())
    if counts:
        await ctx.board.publish_held(counts)
    result.held = len(counts)
    report(ctx, result)
    return result


async def run(ctx: Context) -> None:
    """Reconcile every ``reconcile_interval`` forever.  Errors are logged and the loop goes on."""
    while True:
        await asyncio.sleep(ctx.settings.reconcile_interval)
        try:
            await ctx.reload_grids()  # an import through another process, or the CLI
            await reconcile(ctx)
        except (RedisUnavailableError, StoreUnavailableError) as exc:
            log.warning("reconcile failed error=%s", exc)
        except Exception:
            log.exception("reconcile crashed; continuing")
