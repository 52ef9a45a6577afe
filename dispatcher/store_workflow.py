"""Postgres for the workflow after the grab: decisions, clock deadlines, operators' lists.

Mixed into :class:`dispatcher.store.Store`.  A decision of :mod:`dispatcher.workflow` is
stored by :meth:`WorkflowStore.record`: one statement that updates the order only where its
version is still the one decided on *and* appends the event, so of two people acting on the
same version of an order exactly one is recorded, with its trail entry, and the other learns
it lost (None) and decides again on what is there now.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import asyncpg

from dispatcher.lifecycle import label
from dispatcher.orders import HELD_STATUSES, Order
from dispatcher.pg import ORDER_COLS, agent_from_row, dt, ms, order_from_row, translated
from dispatcher.roster import Agent


def _time(v: Any) -> Any:
    return None if v is None else dt(v)


def _value(v: Any) -> Any:
    return None if v is None else v.value


_COLUMNS: Mapping[str, Callable[[Any], Any]] = {
    "status": _value,
    "scope": _value,
    "rating": _value,
    "widen_at": _time,
    "escalate_at": _time,
    "offered_at": _time,
    "next_step_at": _time,
    "claimed_at": _time,
    "supply_by": _time,
    "accepted_at": _time,
    "due_at": _time,
    "replied_at": _time,
    "close_at": _time,
    "excluded": sorted,
    "required": list,
    "missing": list,
    "reach_grids": list,
    "claimed_by": lambda v: v,
    "time_limit_days": lambda v: v,
    "step": lambda v: v,
    "version": lambda v: v,
    "item": lambda v: v,
    "item_name": lambda v: v,
    "item_class": lambda v: v,
}
"""The order fields a decision may change, and how each is written."""

_HELD = sorted(s.value for s in HELD_STATUSES)


class WorkflowStore:
    """Decisions and deadlines.  Mixed into Store; uses ``self.pool``."""

    pool: asyncpg.Pool

    async def record(
        self,
        order: Order,
        changes: Mapping[str, Any],
        *,
        kind: str,
        at: int,
        actor: str,
        details: Mapping[str, Any],
    ) -> Order | None:
        """Apply ``changes`` (``version`` included) to ``order`` and append its event, if the
        stored order is still at ``order.version``.  Returns the new order, or None when
        somebody changed it first (nothing recorded)."""
        unknown = set(changes) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"not an order column: {sorted(unknown)}")
        names = sorted(changes)
        sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=7))
        with translated():
            row = await self.pool.fetchrow(
                f"""
                WITH u AS (
                    UPDATE orders SET {sets}, updated_at = now()
                    WHERE id = $1 AND version = $2
                    RETURNING *
                ), e AS (
                    INSERT INTO order_events (order_id, at, kind, actor, details)
                    SELECT id, $3, $4, $5, $6::jsonb FROM u
                )
                SELECT {ORDER_COLS} FROM u
                """,
                order.id,
                order.version,
                dt(at),
                kind,
                actor,
                json.dumps(dict(details), ensure_ascii=False),
                *(_COLUMNS[name](changes[name]) for name in names),
            )
        return None if row is None else order_from_row(row)

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

    async def get_agent(self, agent_id: int) -> Agent | None:
        with translated():
            row = await self.pool.fetchrow(
                "SELECT id, name, phone, grids, active FROM agents WHERE id = $1", agent_id
            )
        return None if row is None else agent_from_row(row)

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
