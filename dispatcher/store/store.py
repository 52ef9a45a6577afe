"""Postgres behind one small store.

:class:`Store` owns the asyncpg pool and is made of one part per kind of data: orders and
their trail (:mod:`.orders`), the roster of grids, agents and tokens (:mod:`.roster`), the
catalogue (:mod:`.catalog`) and the reconciler's change pages (:mod:`.changes`).  It takes and
returns domain objects and translates asyncpg errors by SQLSTATE class into the server's own
(:mod:`.pg`, :mod:`dispatcher.exceptions`): connection trouble, shutdowns and timeouts become
:class:`StoreUnavailableError` (retry later, nothing was recorded); integrity violations become
:class:`StoreConflictError`.  Raw driver exceptions never leave the store.

Every state change of an order is one SQL statement that updates the row conditionally *and*
appends its trail event, so a change and its event are recorded together or not at all.
"""

from __future__ import annotations

import asyncio

import asyncpg

from dispatcher.exceptions import StoreUnavailableError
from dispatcher.store import migrate
from dispatcher.store.catalog import CatalogStore
from dispatcher.store.changes import ChangeStore
from dispatcher.store.filing_keys import FilingKeyStore
from dispatcher.store.open311 import Open311Store
from dispatcher.store.order_lists import OrderLists
from dispatcher.store.orders import OrderStore
from dispatcher.store.outbox import OutboxStore
from dispatcher.store.oversight import OversightStore
from dispatcher.store.pg import (
    translated,
)
from dispatcher.store.points import PointsStore
from dispatcher.store.roster import RosterStore


async def _no_reset(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    return None


class Store(
    OrderStore,
    OrderLists,
    RosterStore,
    CatalogStore,
    ChangeStore,
    PointsStore,
    OversightStore,
    OutboxStore,
    FilingKeyStore,
    Open311Store,
):
    """The Postgres store.  Open with :meth:`connect`; close with :meth:`close`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, dsn: str, *, max_size: int = 10, attempts: int = 20) -> Store:
        """Open the pool, retrying while the server starts.  Raises StoreUnavailableError."""
        last: Exception | None = None
        for _ in range(attempts):
            try:
                pool = await asyncpg.create_pool(
                    dsn,
                    min_size=2,
                    max_size=max_size,
                    command_timeout=5,
                    max_inactive_connection_lifetime=60,
                    # We keep no session state (no LISTEN, SET or prepared cursors across
                    # acquisitions), so skip asyncpg's reset query on every release: about a
                    # fifth of Postgres's CPU per order in the throughput benchmark.
                    reset=_no_reset,
                )

            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                last = exc
                await asyncio.sleep(0.25)
                continue
            return cls(pool)
        raise StoreUnavailableError(f"postgres: cannot connect: {last!r}")

    async def close(self) -> None:
        await self.pool.close()

    async def migrate(self) -> list[str]:
        with translated():
            async with self.pool.acquire(timeout=10) as conn:
                return await migrate.apply(conn)

    async def ping(self) -> None:
        with translated():
            await self.pool.fetchval("SELECT 1", timeout=2)
