"""Postgres behind one small store.

:class:`Store` owns the asyncpg pool, takes and returns domain objects, and translates asyncpg
errors by SQLSTATE class into the server's own (see :mod:`dispatcher.exceptions`): connection
trouble, shutdowns and timeouts become :class:`StoreUnavailableError` (retry later, nothing was
recorded); integrity violations become :class:`StoreConflictError`.  Raw driver exceptions
never leave this module.

Every state change of an order is one SQL statement that updates the row conditionally *and*
appends its trail event, so a change and its event are recorded together or not at all.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import asyncpg

from dispatcher import schema
from dispatcher.exceptions import StoreUnavailableError
from dispatcher.lifecycle import label
from dispatcher.orders import Order, format_schedule
from dispatcher.pg import (
    ORDER_COLS,
    UnknownGridError,
    agent_from_row,
    dt,
    ms,
    order_from_row,
    translated,
)
from dispatcher.roster import Agent, Grid, Principal, TokenKind
from dispatcher.store_catalog import CatalogStore
from dispatcher.store_changes import ChangeStore
from dispatcher.store_grids import GridStore
from dispatcher.store_workflow import WorkflowStore


async def _no_reset(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    return None


class Store(GridStore, CatalogStore, WorkflowStore, ChangeStore):
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
                return await schema.apply(conn)

    async def ping(self) -> None:
        with translated():
            await self.pool.fetchval("SELECT 1", timeout=2)

    # --- grids and agents ----------------------------------------------------------------

    async def list_grids(self) -> list[Grid]:
        with translated():
            rows = await self.pool.fetch(
                "SELECT code, name, level, parent FROM grids WHERE retired_at IS NULL ORDER BY code"
            )
        return [Grid(r["code"], r["name"], r["level"], r["parent"]) for r in rows]

    async def grid_codes(self) -> set[str]:
        with translated():
            rows = await self.pool.fetch("SELECT code FROM grids WHERE retired_at IS NULL")
        return {r["code"] for r in rows}

    async def create_agent(
        self, name: str, phone: str, grids: Sequence[str], token_digest: bytes
    ) -> Agent:
        """Create an agent and its token together.  Raises UnknownGridError, StoreConflictError."""
        with translated():
            async with self.pool.acquire() as conn, conn.transaction():
                known = {
                    r["code"]
                    for r in await conn.fetch(
                        "SELECT code FROM grids WHERE code = ANY($1::text[])", list(grids)
                    )
                }
                missing = [g for g in grids if g not in known]
                if missing:
                    raise UnknownGridError(missing)
                row = await conn.fetchrow(
                    "INSERT INTO agents (name, phone, grids) VALUES ($1, $2, $3)"
                    " RETURNING id, name, phone, grids, active",
                    name,
                    phone,
                    list(grids),
                )
                assert row is not None
                await conn.execute(
                    "INSERT INTO tokens (digest, kind, name, agent_id)"
                    " VALUES ($1, 'agent', $2, $3)",
                    token_digest,
                    name,
                    row["id"],
                )
        return agent_from_row(row)

    async def list_agents(self) -> list[Agent]:
        with translated():
            rows = await self.pool.fetch(
                "SELECT id, name, phone, grids, active FROM agents ORDER BY id"
            )
        return [agent_from_row(r) for r in rows]

    # --- tokens ----------------------------------------------------------------------------

    async def add_token(self, digest: bytes, kind: TokenKind, name: str) -> None:
        """Store a token digest (admin or intake).  Adding the same digest again is a no-op."""
        with translated():
            await self.pool.execute(
                "INSERT INTO tokens (digest, kind, name) VALUES ($1, $2, $3)"
                " ON CONFLICT (digest) DO NOTHING",
                digest,
                kind.value,
                name,
            )

    async def has_token_of_kind(self, kind: TokenKind) -> bool:
        with translated():
            return bool(
                await self.pool.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM tokens WHERE kind = $1 AND revoked_at IS NULL)",
                    kind.value,
                )
            )

    async def list_tokens(self) -> list[dict[str, Any]]:
        """Token metadata (never the tokens themselves) for operators."""
        with translated():
            rows = await self.pool.fetch(
                "SELECT kind, name, agent_id, created_at, revoked_at FROM tokens"
                " WHERE kind IN ('admin', 'intake') ORDER BY created_at"
            )
        return [
            {
                "kind": r["kind"],
                "name": r["name"],
                "created_at": ms(r["created_at"]),
                "revoked_at": ms(r["revoked_at"]),
            }
            for r in rows
        ]

    async def principal(self, digest: bytes) -> Principal | None:
        """Who holds the token with this digest, or None (unknown, revoked, inactive agent)."""
        with translated():
            row = await self.pool.fetchrow(
                "SELECT t.kind, t.name, t.order_id, a.id, a.name AS agent_name, a.phone,"
                " a.grids, a.active FROM tokens t LEFT JOIN agents a ON a.id = t.agent_id"
                " WHERE t.digest = $1 AND t.revoked_at IS NULL",
                digest,
            )
        if row is None:
            return None
        agent = None
        if row["id"] is not None:
            if not row["active"]:
                return None
            agent = Agent(row["id"], row["agent_name"], row["phone"], tuple(row["grids"]))
        return Principal(TokenKind(row["kind"]), row["name"], agent, row["order_id"])

    # --- orders ----------------------------------------------------------------------------

    async def insert_order(
        self,
        order: Order,
        *,
        applicant: dict[str, str],
        tracking_digest: bytes,
        actor: str,
        routing: dict[str, Any] | None = None,
    ) -> Order:
        """Record a new order (``order.id`` is ignored: Postgres assigns it), its tracking
        token and its `filed` event, in one statement."""
        with translated():
            row = await self.pool.fetchrow(
                f"""
                WITH o AS (
                    INSERT INTO orders (status, grid, item, text, item_class, applicant_name,
                                        applicant_phone, created_at, widen_at, scope, routing,
                                        schedule, step, reach_grids, next_step_at, offered_at,
                                        escalate_at, item_name, required, time_limit_days)
                    VALUES ('offered', $1, $2, $3, $4, $5, $6, $7, $8, 'grid', $11::jsonb,
                            $12, 0, $13, $14, $7, $15, $16, $17, $18)
                    RETURNING *
                ), t AS (
                    INSERT INTO tokens (digest, kind, order_id) SELECT $9, 'tracking', id FROM o
                ), e AS (
                    INSERT INTO order_events (order_id, at, kind, actor, details)
                    SELECT id, $7, 'filed', $10, jsonb_build_object('routing', $11::jsonb)
                    FROM o
                )
                SELECT {ORDER_COLS} FROM o
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
            )
        assert row is not None
        return order_from_row(row)

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
        with translated():
            row = await self.pool.fetchrow(
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
            )
        return None if row is None else order_from_row(row)

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
