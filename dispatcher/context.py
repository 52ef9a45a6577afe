"""What every flow needs: settings, the store, the board, the hub, auth and the clock.

Built by the app's lifespan and passed to the flows; there are no module globals.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dispatcher.auth import Authenticator
from dispatcher.board import Board
from dispatcher.hub import Hub
from dispatcher.settings import Settings
from dispatcher.store import Store

Clock = Callable[[], int]
"""Returns now as integer milliseconds since the epoch."""


def wall_clock() -> int:
    return time.time_ns() // 1_000_000


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

    async def grid_exists(self, code: str) -> bool:
        if code in self.grids:
            return True
        self.grids = await self.store.grid_codes()
        return code in self.grids
