"""Postgres for reading orders in bulk: operators' and agents' lists, what is due, the trail.

Mixed into :class:`~dispatcher.store.store.Store` (uses ``self.pool``); the writes of an
order are in :mod:`dispatcher.store.orders`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg

from dispatcher.core.lifecycle import label
from dispatcher.core.orders import HELD_STATUSES, Order
from dispatcher.store.pg import ORDER_COLS, dt, ms, order_from_row, translated

_HELD = sorted(s.value for s in HELD_STATUSES)


class OrderLists:
    """Lists of orders and their trail.  Mixed into Store."""

    pool: asyncpg.Pool

    async def due_deadlines(self, now: int, limit: int = 500) -> list[int]:
        """Orders whose clock action is due: open past ``escalate_at``, replied past
        ``close_at``.  The backstop for the Redis schedule."""
        with translated():
            rows = await self.pool.fetch(
                "(SELECT id FROM orders WHERE status IN ('offered', 'widened')"
                "  AND escalate_at <= $1 ORDER BY escalate_at LIMIT $2)"
                " UNION (SELECT id FROM orders WHERE status = 'replied' AND close_at <= $1"
                "  ORDER BY close_at LIMIT $2)",
                dt(now),
                limit,
            )
        return sorted(r["id"] for r in rows)

    async def list_orders(
        self,
        *,
        status: str | None = None,
        overdue_at: int | None = None,
        agent_id: int | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[Order]:
        """Orders for operators, by id: of ``status``, overdue at ``overdue_at`` (accepted past
        ``due_at`` or awaiting materials past ``supply_by``), held by ``agent_id``."""
        where = ["id > $1"]
        args: list[Any] = [after_id]
        if status is not None:
            args.append(status)
            where.append(f"status = ${len(args)}")
        if overdue_at is not None:
            args.append(dt(overdue_at))
            n = len(args)
            where.append(
                f"((status = 'accepted' AND due_at < ${n})"
                f" OR (status = 'awaiting_materials' AND supply_by < ${n}))"
            )
        if agent_id is not None:
            args.append(agent_id)
            where.append(f"claimed_by = ${len(args)}")
        args.append(limit)
        with translated():
            rows = await self.pool.fetch(
                f"SELECT {ORDER_COLS} FROM orders WHERE {' AND '.join(where)}"
                f" ORDER BY id LIMIT ${len(args)}",
                *args,
            )
        return [order_from_row(r) for r in rows]

    async def held_orders(self, agent_id: int | None = None) -> dict[int, list[int]]:
        """Agent id → the orders it holds (claimed, accepted, awaiting materials)."""
        with translated():
            rows = await self.pool.fetch(
                "SELECT claimed_by, array_agg(id ORDER BY id) AS ids FROM orders"
                " WHERE status = ANY ($1::text[]) AND ($2::bigint IS NULL OR claimed_by = $2)"
                " GROUP BY claimed_by",
                _HELD,
                agent_id,
            )
        return {r["claimed_by"]: list(r["ids"]) for r in rows}

    async def last_event(self, order_id: int) -> dict[str, Any] | None:
        """The newest trail entry of an order, as the tracking socket shows it."""
        with translated():
            row = await self.pool.fetchrow(
                "SELECT at, kind, details FROM order_events WHERE order_id = $1"
                " ORDER BY id DESC LIMIT 1",
                order_id,
            )
        if row is None:
            return None
        kind = row["kind"]
        details = json.loads(row["details"])
        return {"kind": kind, "label": label(kind), "at": ms(row["at"]), "details": details}

    # --- orders ----------------------------------------------------------------------------

    async def due_orders(self, now: int, limit: int = 500) -> list[int]:
        """Orders whose next widening step is due but not taken."""
        with translated():
            rows = await self.pool.fetch(
                "SELECT id FROM orders WHERE status = 'offered' AND next_step_at <= $1"
                " ORDER BY next_step_at LIMIT $2",
                dt(now),
                limit,
            )
        return [r["id"] for r in rows]

    async def open_orders_for(
        self, grids: Sequence[str], agent_id: int | None = None
    ) -> list[Order]:
        """Every order open to agent ``agent_id`` of ``grids``: those reaching its grids, and
        all widened, but none it released."""
        with translated():
            rows = await self.pool.fetch(
                f"SELECT {ORDER_COLS} FROM orders"
                " WHERE ((status = 'offered' AND reach_grids && $1::text[])"
                " OR status = 'widened') AND NOT (coalesce($2::bigint, 0) = ANY (excluded))"
                " ORDER BY id",
                list(grids),
                agent_id,
            )
        return [order_from_row(r) for r in rows]

    async def order_events(self, order_id: int) -> list[dict[str, Any]]:
        """The trail of an order, oldest first, each entry with its applicant's ``label``."""
        with translated():
            rows = await self.pool.fetch(
                "SELECT id, at, kind, actor, details FROM order_events WHERE order_id = $1"
                " ORDER BY id",
                order_id,
            )
        return [
            {
                "id": r["id"],
                "at": ms(r["at"]),
                "kind": r["kind"],
                "label": label(r["kind"]),
                "actor": r["actor"],
                "details": json.loads(r["details"]),
            }
            for r in rows
        ]
