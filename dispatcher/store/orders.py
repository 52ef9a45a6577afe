"""Postgres for orders: filing, claims, widening, workflow decisions, deadlines and the trail.

Mixed into :class:`dispatcher.store.store.Store`.  A decision of :mod:`dispatcher.core.workflow` is
stored by :meth:`OrderStore.record`: one statement that updates the order only where its
version is still the one decided on *and* appends the event, so of two people acting on the
same version of an order exactly one is recorded, with its trail entry, and the other learns
it lost (None) and decides again on what is there now.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import asyncpg

from dispatcher.core import sms
from dispatcher.core.orders import Order, Scope, Status, format_schedule
from dispatcher.store.filing_keys import FilingKey
from dispatcher.store.pg import ORDER_COLS, dt, order_from_row, translated, write_row


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


class OrderStore:
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
                ), s AS (
                    -- Work for the texter, recorded with the change (dispatcher.core.sms).
                    INSERT INTO sms_triggers (order_id, kind, step, offered_at, grids, details, at)
                    SELECT id, ${len(names) + 7}::text, step, offered_at, reach_grids, $6::jsonb, $3
                    FROM u WHERE ${len(names) + 7}::text IS NOT NULL
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
                sms.trigger_for(kind),
            )
        return None if row is None else order_from_row(row)

    async def insert_order(
        self,
        order: Order,
        *,
        applicant: dict[str, str],
        tracking_digest: bytes,
        actor: str,
        routing: dict[str, Any] | None = None,
        short_code: str | None = None,
        key: FilingKey | None = None,
        open_cap: int = 0,
    ) -> tuple[Order, bool]:
        """Record a new order (``order.id`` is ignored: Postgres assigns it), its tracking
        token, its `filed` event, its texter's trigger and its filing ``key``, in one
        statement.

        ``open_cap`` (``BANGBAN_GRID_OPEN_CAP``, 0: none): when the grid already has that many
        open orders, the order is recorded due to escalate at once (``escalate_at`` =
        ``created_at``) with ``"capped": open_cap`` in its routing, for the caller to hand to
        the operators.  Counted in the same statement: no round trip of its own.  Returns the
        order and whether it was capped.

        Raises StoreConflictError: constraint ``orders_short_code_live`` when ``short_code``
        is live on another order (draw another), ``filing_keys_pkey`` when the key was used
        already; StoreAmbiguousError when the answer was lost (find out by the key)."""
        row = await write_row(
            self.pool,
            """
            WITH c AS (
                SELECT $23::int > 0 AND (
                    SELECT count(*) FROM (
                        SELECT 1 FROM orders WHERE grid = $1
                        AND status IN ('offered', 'widened') LIMIT $23
                    ) open
                ) >= $23 AS capped
            ), o AS (
                INSERT INTO orders (status, grid, item, text, item_class, applicant_name,
                                    applicant_phone, created_at, widen_at, scope, routing,
                                    schedule, step, reach_grids, next_step_at, offered_at,
                                    escalate_at, item_name, required, time_limit_days,
                                    short_code)
                SELECT 'offered', $1::text, $2::text, $3::text, $4::smallint, $5::text,
                       $6::text, $7::timestamptz, $8::timestamptz, 'grid',
                       CASE WHEN c.capped
                            THEN coalesce($11::jsonb, '{}') || jsonb_build_object('capped', $23)
                            ELSE $11::jsonb END,
                       $12::text, 0, $13::text[], $14::timestamptz, $7::timestamptz,
                       CASE WHEN c.capped THEN $7::timestamptz ELSE $15::timestamptz END,
                       $16::text, $17::text[], $18::smallint, $22::text
                FROM c
                RETURNING *
            ), t AS (
                INSERT INTO tokens (digest, kind, order_id) SELECT $9, 'tracking', id FROM o
            ), e AS (
                INSERT INTO order_events (order_id, at, kind, actor, details)
                SELECT id, $7, 'filed', $10, jsonb_build_object('routing', routing)
                FROM o
            ), s AS (
                INSERT INTO sms_triggers (order_id, kind, step, offered_at, grids, at)
                SELECT id, 'offer', 0, offered_at, reach_grids, $7 FROM o
            ), k AS (
                INSERT INTO filing_keys (filer, key, fingerprint, order_id)
                SELECT $19, $20, $21, id FROM o WHERE $20::text IS NOT NULL
            )
            SELECT id, (SELECT capped FROM c) AS capped FROM o
            """,
            order.grid,
            order.item,
            order.text,
            order.item_class,
            applicant.get("name"),
            applicant.get("phone"),
            dt(order.created_at),
            dt(order.widen_at),
            tracking_digest,
            actor,
            None if routing is None else json.dumps(routing, ensure_ascii=False),
            format_schedule(order.schedule),
            list(order.reach_grids),
            None if order.next_step_at is None else dt(order.next_step_at),
            None if order.escalate_at is None else dt(order.escalate_at),
            order.item_name,
            list(order.required),
            order.time_limit_days,
            None if key is None else key.filer,
            None if key is None else key.key,
            None if key is None else key.fingerprint,
            short_code,
            open_cap,
        )
        assert row is not None
        # Everything else is what was written: the order as recorded is the draft with its id
        # (not read back: decoding 28 columns cost more than the statement's own parameters).
        capped = bool(row["capped"])
        recorded = replace(
            order,
            id=row["id"],
            status=Status.OFFERED,
            scope=Scope.GRID,
            step=0,
            offered_at=order.created_at,
            escalate_at=order.created_at if capped else order.escalate_at,
            # (the columns the statement leaves to their defaults)
            claimed_by=None,
            claimed_at=None,
            version=1,
            excluded=frozenset(),
            missing=(),
            supply_by=None,
            accepted_at=None,
            due_at=None,
            replied_at=None,
            close_at=None,
            rating=None,
        )
        return recorded, capped

    async def order_routing(self, order_id: int) -> dict[str, Any] | None:
        with translated():
            raw = await self.pool.fetchval("SELECT routing FROM orders WHERE id = $1", order_id)
        return None if raw is None else dict(json.loads(raw))

    async def get_order(self, order_id: int) -> Order | None:
        with translated():
            row = await self.pool.fetchrow(
                f"SELECT {ORDER_COLS} FROM orders WHERE id = $1", order_id
            )
        return None if row is None else order_from_row(row)

    async def get_applicant(self, order_id: int) -> dict[str, str | None]:
        with translated():
            row = await self.pool.fetchrow(
                "SELECT applicant_name, applicant_phone FROM orders WHERE id = $1", order_id
            )
        if row is None:
            return {}
        return {"name": row["applicant_name"], "phone": row["applicant_phone"]}

    async def claim_order(self, order_id: int, agent_id: int, now: int) -> Order | None:
        """Record ``agent_id`` as the one winner, if the order is still open to it; else None.

        The update is conditional on the order being open (and the agent not one who released
        it), so Postgres can never record a second winner, whatever Redis said.
        """
        row = await write_row(
            self.pool,
            f"""
            WITH c AS (
                UPDATE orders SET status = 'claimed', claimed_by = $2, claimed_at = $3,
                                  version = version + 1, updated_at = now()
                WHERE id = $1 AND status IN ('offered', 'widened')
                      AND NOT ($2 = ANY (excluded))
                RETURNING *
            ), e AS (
                INSERT INTO order_events (order_id, at, kind, actor)
                SELECT id, $3, 'claimed', 'agent:' || $2::text FROM c
            )
            SELECT {ORDER_COLS} FROM c
            """,
            order_id,
            agent_id,
            dt(now),
        )
        return None if row is None else order_from_row(row)

    async def advance_order(self, current: Order, nxt: Order, now: int) -> Order | None:
        """Move ``current`` to the rung ``nxt`` (computed by the core) if nobody did yet.

        The update is conditional on the order still being offered on ``current``'s rung, so
        of several processes sweeping the same order exactly one moves it; the others get
        None.  The `widened` event is appended in the same statement.
        """
        rung = nxt.schedule[nxt.step]
        late = now - (current.next_step_at or now)
        with translated():
            row = await self.pool.fetchrow(
                f"""
                WITH w AS (
                    UPDATE orders SET status = $3, scope = $4, step = $5, reach_grids = $6,
                                      next_step_at = $7, version = version + 1,
                                      updated_at = now()
                    WHERE id = $1 AND status = 'offered' AND step = $2 AND offered_at = $12
                    RETURNING *
                ), e AS (
                    INSERT INTO order_events (order_id, at, kind, actor, details)
                    SELECT id, $8, 'widened', 'system',
                           jsonb_build_object('step', $5::int, 'reach', $9::text,
                                              'late_ms', $10::bigint, 'grids', $6::text[],
                                              'offered_at', $11::bigint)
                    FROM w
                ), s AS (
                    INSERT INTO sms_triggers (order_id, kind, step, offered_at, grids,
                                              prev_grids, at)
                    SELECT id, 'offer', step, offered_at,
                           CASE WHEN scope = 'all' THEN NULL ELSE reach_grids END, $13, $8
                    FROM w
                )
                SELECT {ORDER_COLS} FROM w
                """,
                current.id,
                current.step,
                nxt.status.value,
                nxt.scope.value,
                nxt.step,
                list(nxt.reach_grids),
                None if nxt.next_step_at is None else dt(nxt.next_step_at),
                dt(now),
                rung.reach.value,
                late,
                current.ladder_base,
                dt(current.ladder_base),
                list(current.reach_grids),
            )
        return None if row is None else order_from_row(row)
