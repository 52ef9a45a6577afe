"""Postgres for points and pay: the ledger's inputs, adjustments, late classes, approvals.

Mixed into :class:`dispatcher.store.store.Store` (uses ``self.pool``).  Refusals are values: a
method answers None or False where the thing is missing or exists already, and never lets an
asyncpg error out (:func:`dispatcher.store.pg.translated`).  Every change that concerns an order
appends its trail event in the same statement.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import asyncpg

from dispatcher.core.ledger import Adjustment, Approval, OrderRecord
from dispatcher.core.points import Rating
from dispatcher.store.pg import dt, ms, translated

_CLOSES = "('rated', 'closed_unrated')"


def _rating(raw: str | None) -> Rating | None:
    return None if raw is None else Rating(raw)


def _adjustment(r: asyncpg.Record) -> Adjustment:
    return Adjustment(
        r["id"],
        r["agent_id"],
        r["month"],
        Decimal(r["points"]),
        r["reason"],
        r["by_whom"],
        ms(r["at"]) or 0,
    )


class PointsStore:
    """Points, pay and oversight.  Mixed into Store."""

    pool: asyncpg.Pool

    # --- the ledger ------------------------------------------------------------------------

    async def ledger_orders(self, start: int, end: int) -> list[OrderRecord]:
        """Orders that closed in ``[start, end)`` or were given their class then."""
        with translated():
            rows = await self.pool.fetch(
                f"""
                SELECT o.id, o.claimed_by, o.status, c.at AS closed_at, o.rating, o.item,
                       coalesce(o.item_name, o.text) AS item_name, o.grid,
                       coalesce(o.item_class, pc.item_class) AS item_class,
                       CASE WHEN o.item_class IS NULL THEN pc.at END AS classified_at
                FROM order_events c
                JOIN orders o ON o.id = c.order_id
                LEFT JOIN points_classes pc ON pc.order_id = o.id
                WHERE c.kind IN {_CLOSES}
                  AND ((c.at >= $1 AND c.at < $2) OR (pc.at >= $1 AND pc.at < $2))
                ORDER BY o.id
                """,
                dt(start),
                dt(end),
            )
        return [
            OrderRecord(
                r["id"],
                r["claimed_by"],
                r["status"],
                ms(r["closed_at"]),
                r["item_class"],
                _rating(r["rating"]),
                r["item"],
                r["item_name"],
                r["grid"],
                ms(r["classified_at"]),
            )
            for r in rows
        ]

    async def adjustments(self, months: Sequence[str], start: int, end: int) -> list[Adjustment]:
        """Adjustments for one of ``months`` or recorded in ``[start, end)``."""
        with translated():
            rows = await self.pool.fetch(
                "SELECT id, agent_id, month, points, reason, by_whom, at FROM points_adjustments"
                " WHERE month = ANY ($1::text[]) OR (at >= $2 AND at < $3) ORDER BY id",
                list(months),
                dt(start),
                dt(end),
            )
        return [_adjustment(r) for r in rows]

    async def add_adjustment(
        self, agent_id: int, month: str, points: Decimal, reason: str, by: str, at: int
    ) -> Adjustment | None:
        """Record an adjustment; None when the agent does not exist."""
        with translated():
            row = await self.pool.fetchrow(
                "INSERT INTO points_adjustments (agent_id, month, points, reason, by_whom, at)"
                " SELECT id, $2, $3, $4, $5, $6 FROM agents WHERE id = $1"
                " RETURNING id, agent_id, month, points, reason, by_whom, at",
                agent_id,
                month,
                points,
                reason,
                by,
                dt(at),
            )
        return None if row is None else _adjustment(row)

    async def classify_for_points(
        self, order_id: int, item_class: int, reason: str, by: str, at: int
    ) -> str:
        """Give a closed order without a class its class, with a trail event.  Returns
        ``ok``, ``unknown_order``, ``not_closed`` or ``has_class``."""
        with translated():
            async with self.pool.acquire() as conn, conn.transaction():
                order = await conn.fetchrow(
                    "SELECT status, item_class, EXISTS (SELECT 1 FROM points_classes"
                    " WHERE order_id = $1) AS given FROM orders WHERE id = $1 FOR UPDATE",
                    order_id,
                )
                if order is None:
                    return "unknown_order"
                if order["status"] != "closed":
                    return "not_closed"
                if order["item_class"] is not None or order["given"]:
                    return "has_class"
                await conn.execute(
                    "INSERT INTO points_classes (order_id, item_class, reason, by_whom, at)"
                    " VALUES ($1, $2, $3, $4, $5)",
                    order_id,
                    item_class,
                    reason,
                    by,
                    dt(at),
                )
                await conn.execute(
                    "INSERT INTO order_events (order_id, at, kind, actor, details)"
                    " VALUES ($1, $2, 'points_classified', $3, $4::jsonb)",
                    order_id,
                    dt(at),
                    by,
                    json.dumps({"item_class": item_class, "reason": reason}, ensure_ascii=False),
                )
        return "ok"

    async def approvals(self) -> list[Approval]:
        with translated():
            rows = await self.pool.fetch(
                "SELECT quarter, approved_at, by_whom FROM payout_approvals ORDER BY quarter"
            )
        return [Approval(r["quarter"], ms(r["approved_at"]) or 0, r["by_whom"]) for r in rows]

    async def approval_snapshot(self, quarter: str) -> dict[str, Any] | None:
        with translated():
            raw = await self.pool.fetchval(
                "SELECT snapshot FROM payout_approvals WHERE quarter = $1", quarter
            )
        return None if raw is None else dict(json.loads(raw))

    async def approve(self, quarter: str, at: int, by: str, snapshot: Mapping[str, Any]) -> bool:
        """Freeze ``quarter`` with its payout; False when it was approved already."""
        with translated():
            done = await self.pool.fetchval(
                "INSERT INTO payout_approvals (quarter, approved_at, by_whom, snapshot)"
                " VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT (quarter) DO NOTHING"
                " RETURNING quarter",
                quarter,
                dt(at),
                by,
                json.dumps(dict(snapshot), ensure_ascii=False),
            )
        return done is not None

    async def grid_tree(self) -> dict[str, tuple[str, str | None, str]]:
        """Every grid (retired ones too: old orders keep them): code → (level, parent, name)."""
        with translated():
            rows = await self.pool.fetch("SELECT code, level, parent, name FROM grids")
        return {r["code"]: (r["level"], r["parent"], r["name"]) for r in rows}
