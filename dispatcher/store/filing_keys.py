"""Idempotent filing and the truth after an ambiguous write (issue 11).

``filing_keys`` (migration 0008) records, in the same statement as the order, the key each
filing carried (the client's ``Idempotency-Key`` or one the server made up), so that a retried
filing finds the first order, and a server that lost the answer of its own insert can find out
whether it was recorded.  :meth:`settle_backend` makes sure a write whose answer was lost has
finished (committed or rolled back) before anyone reads what happened.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg

from dispatcher.core.orders import Order
from dispatcher.exceptions import StoreUnavailableError
from dispatcher.store.pg import ORDER_COLS, order_from_row, translated

SETTLE_POLLS = 50
"""How many times (20 ms apart) :meth:`FilingKeyStore.settle_backend` waits for a backend
it signalled to end."""


@dataclass(frozen=True, slots=True)
class FilingKey:
    """The key a filing carries: scoped to its filer, with the request's fingerprint."""

    filer: str
    key: str
    fingerprint: str


class FilingKeyStore:
    """Mixed into Store; uses ``self.pool``."""

    pool: asyncpg.Pool

    async def filed_with_key(self, filer: str, key: str) -> tuple[Order, str] | None:
        """The order filed by ``filer`` with ``key`` and that filing's fingerprint, or None."""
        with translated():
            row = await self.pool.fetchrow(
                f"""
                SELECT k.fingerprint, {", ".join("o." + c.strip() for c in ORDER_COLS.split(","))}
                FROM filing_keys k JOIN orders o ON o.id = k.order_id
                WHERE k.filer = $1 AND k.key = $2
                """,
                filer,
                key,
            )
        if row is None:
            return None
        return order_from_row(row), row["fingerprint"]

    async def add_tracking_token(self, order_id: int, digest: bytes) -> None:
        """Another tracking token for an order (a replayed filing's answer carries a new one:
        only digests are stored, so the first cannot be shown again)."""
        with translated():
            await self.pool.execute(
                "INSERT INTO tokens (digest, kind, order_id) VALUES ($1, 'tracking', $2)",
                digest,
                order_id,
            )

    async def settle_backend(self, backend: int) -> None:
        """Make sure Postgres backend ``backend`` (which ran a write whose answer was lost)
        has ended: terminate it if it still runs, and wait until it is gone.  Afterwards its
        write is either committed or rolled back for good, and reading tells which.

        Raises StoreUnavailableError when Postgres cannot be reached (or the backend will not
        end): try again later.
        """
        with translated():
            async with self.pool.acquire(timeout=2) as conn:
                for _ in range(SETTLE_POLLS):
                    alive = await conn.fetchval(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1",
                        backend,
                        timeout=2,
                    )
                    if alive is None:
                        return
                    await asyncio.sleep(0.02)
        raise StoreUnavailableError(f"postgres: backend {backend} did not end")
