"""What every flow needs: settings, the store, the board, the hub, auth, the clock, the grids.

Built by the app's lifespan and passed to the flows; there are no module globals.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from dispatcher.auth import Authenticator
from dispatcher.board.board import Board
from dispatcher.board.presence import Presence
from dispatcher.core.lifecycle import Policy
from dispatcher.core.limits import Shares, Windows
from dispatcher.core.orders import ClaimOutcome, Reach
from dispatcher.core.workdays import load_calendar
from dispatcher.flows.repairs import Repairs
from dispatcher.live.hub import Hub
from dispatcher.metrics import Metrics
from dispatcher.settings import Settings
from dispatcher.store.store import Store
from geo import GridSet

log = logging.getLogger("bangban.context")

Clock = Callable[[], int]
"""Returns now as integer milliseconds since the epoch."""


def wall_clock() -> int:
    return time.time_ns() // 1_000_000


def make_policy(settings: Settings) -> Policy:
    """The workflow's clocks and calendar from the settings.  Reads the calendar file:
    raises ``CalendarError`` (malformed) or ``OSError`` (unreadable)."""
    return Policy(
        calendar=load_calendar(settings.calendar_path),
        widen_after_ms=round(settings.schedule[-1].after * 1000),
        escalate_after_ms=round(settings.escalate_after * 1000),
        close_after_ms=round(settings.close_after * 1000),
    )


@dataclass
class Context:
    settings: Settings
    store: Store
    board: Board
    hub: Hub
    auth: Authenticator
    clock: Clock = wall_clock
    grids: set[str] = field(default_factory=set)
    """Known grid codes (refreshed from Postgres on a miss)."""
    geo: GridSet = field(default_factory=lambda: GridSet(()))
    """The current generation of grids with boundaries and names, for routing."""
    generation: int = -1
    metrics: Metrics = field(default_factory=Metrics)
    policy: Policy = field(default_factory=lambda: Policy(load_calendar()))
    """The workflow's clocks and calendar (:func:`make_policy`)."""
    presence: Presence | None = None
    """Who is connected to any process (:mod:`dispatcher.flows.presence`); set by the app."""
    repairs: Repairs = field(default_factory=Repairs)
    """Orders whose announce failed, for :mod:`dispatcher.flows.repairs`."""
    draining: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the process drains (:mod:`dispatcher.live.drain`): no new connections, claims
    in flight finish, sockets close with 1012."""
    offering: set[asyncio.Task[None]] = field(default_factory=set)
    """Filed orders being offered after their 201 (:mod:`dispatcher.flows.filing`)."""
    on_drain: set[Callable[[], None]] = field(default_factory=set)
    """Called once each when the process drains: what every open websocket then does (a
    callback each, not a task each waiting on ``draining``: a task per idle connection is
    about 1 KiB)."""
    settling: dict[str, asyncio.Task[ClaimOutcome]] = field(default_factory=dict)
    """Claims answered ``pending`` (by answer field), finding out what Postgres recorded
    (:mod:`dispatcher.flows.claims`)."""
    full_reconcile_due: bool = True
    """This process has not yet finished a full reconcile (:mod:`dispatcher.flows.reconciler`):
    its first pass re-reads every open order, whatever the watermark says."""
    limits: dict[str, Windows] = field(default_factory=dict)
    """This process's abuse limits by name (:mod:`dispatcher.core.limits`), made on first use."""
    shares: Shares = field(default_factory=Shares)
    """This process's shares of the limits counted in Redis for every process (filings)."""

    async def grid_exists(self, code: str) -> bool:
        if code in self.grids:
            return True
        self.grids = await self.store.grid_codes()
        return code in self.grids

    async def reload_grids(self, *, force: bool = False) -> bool:
        """Load the current generation of grids if it changed.  Returns True when it did."""
        generation = await self.store.grid_generation()
        if generation == self.generation and not force:
            return False
        self.geo = await self.store.grid_set()
        self.grids = await self.store.grid_codes()
        self.generation = generation
        log.info("grids loaded generation=%d grids=%d", generation, len(self.geo))
        return True

    def audience(self, reach: Reach, grid: str) -> Collection[str]:
        """The grids ``reach`` covers for an order of ``grid`` (below all grids)."""
        if reach is Reach.NEIGHBOURS:
            return self.geo.neighbours(grid) if grid in self.geo else ()
        if reach is Reach.PARENT:
            found = self.geo.get(grid)
            if found is None or found.parent is None:
                return ()
            return [
                g.code for g in self.geo.descendants(found.parent) if not self.geo.children(g.code)
            ]
        return ()
