"""The store's queries for the Open311 facade: service requests by id, item, state and date."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from dispatcher.core.orders import Order
from dispatcher.store.pg import ORDER_COLS, dt, ms, order_from_row, translated


@dataclass(frozen=True, slots=True)
class Listed:
    """An order with what a public read needs from its trail."""

    order: Order
    last_kind: str
    last_at: int
    desk: str | None
    """The level named by the newest ``progress`` event that moved it to a desk, if any."""


_SELECT = f"""
    SELECT {", ".join("o." + c.strip() for c in ORDER_COLS.split(","))},
           last.kind AS last_kind, last.at AS last_at, desk.desk AS desk
    FROM orders o
    CROSS JOIN LATERAL (
        SELECT kind, at FROM order_events WHERE order_id = o.id ORDER BY id DESC LIMIT 1
    ) last
    LEFT JOIN LATERAL (
        SELECT details->>'desk' AS desk FROM order_events
        WHERE order_id = o.id AND kind = 'progress' AND details ? 'desk'
        ORDER BY id DESC LIMIT 1
    ) desk ON true
"""


class Open311Store:
    pool: asyncpg.Pool

    async def service_requests(
        self,
        *,
        ids: Sequence[int] | None = None,
        items: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 1000,
    ) -> list[Listed]:
        """Orders matching every filter given (None: no filter), newest first."""
        with translated():
            rows = await self.pool.fetch(
                _SELECT
                + """
                WHERE ($1::bigint[] IS NULL OR o.id = ANY ($1))
                  AND ($2::text[] IS NULL OR o.item = ANY ($2))
                  AND ($3::text[] IS NULL OR o.status = ANY ($3))
                  AND ($4::timestamptz IS NULL OR o.created_at >= $4)
                  AND ($5::timestamptz IS NULL OR o.created_at <= $5)
                ORDER BY o.id DESC LIMIT $6
                """,
                None if ids is None else list(ids),
                None if items is None else list(items),
                None if statuses is None else list(statuses),
                None if start_ms is None else dt(start_ms),
                None if end_ms is None else dt(end_ms),
                limit,
            )
        out = []
        for r in rows:
            at = ms(r["last_at"])
            assert at is not None
            out.append(Listed(order_from_row(r), r["last_kind"], at, r["desk"]))
        return out
