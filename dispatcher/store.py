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
import contextlib
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from dispatcher import schema
from dispatcher.exceptions import StoreError, StoreUnavailableError
from dispatcher.orders import Order, Scope, Status
from dispatcher.roster import Agent, Grid, Principal, TokenKind


class StoreConflictError(StoreError):
    """An integrity constraint refused the change (SQLSTATE class 23)."""

    def __init__(self, message: str, constraint: str | None) -> None:
        super().__init__(message)
        self.constraint = constraint


class UnknownGridError(StoreError):
    """A grid code given for an agent or an order does not exist."""

    def __init__(self, codes: Sequence[str]) -> None:
        super().__init__(f"unknown grid(s): {', '.join(codes)}")
        self.codes = list(codes)


_UNAVAILABLE_CLASSES = ("08", "53", "57")  # connection, resources, operator intervention/timeout


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except asyncpg.PostgresError as exc:
        state = getattr(exc, "sqlstate", "") or ""
        if state[:2] in _UNAVAILABLE_CLASSES:
            raise StoreUnavailableError(f"postgres: {exc}") from exc
        if state.startswith("23"):
            raise StoreConflictError(str(exc), getattr(exc, "constraint_name", None)) from exc
        raise StoreError(f"postgres: {exc}") from exc
    except (OSError, TimeoutError, asyncpg.InterfaceError) as exc:
        raise StoreUnavailableError(f"postgres: {exc!r}") from exc


def ms(dt: datetime | None) -> int | None:
    return None if dt is None else round(dt.timestamp() * 1000)


def dt(ms_: int) -> datetime:
    return datetime.fromtimestamp(ms_ / 1000, tz=UTC)


_ORDER_COLS = (
    "id, status, grid, item, text, item_class, created_at, widen_at, scope, claimed_by,"
    " claimed_at, version"
)


def _order(row: asyncpg.Record) -> Order:
    return Order(
        id=row["id"],
        status=Status(row["status"]),
        grid=row["grid"],
        item=row["item"],
        text=row["text"],
        item_class=row["item_class"],
        created_at=ms(row["created_at"]) or 0,
        widen_at=ms(row["widen_at"]) or 0,
        scope=Scope(row["scope"]),
        claimed_by=row["claimed_by"],
        claimed_at=ms(row["claimed_at"]),
        version=row["version"],
    )


def _agent(row: asyncpg.Record) -> Agent:
    return Agent(
        id=row["id"],
        name=row["name"],
        phone=row["phone"],
        grids=tuple(row["grids"]),
        active=row["active"],
    )


class Store:
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
        with _translated():
            async with self.pool.acquire(timeout=10) as conn:
                return await schema.apply(conn)

    async def ping(self) -> None:
        with _translated():
            await self.pool.fetchval("SELECT 1", timeout=2)

    # --- grids and agents ----------------------------------------------------------------

    async def upsert_grid(self, grid: Grid) -> tuple[Grid, bool]:
        """Create or update a grid by code; returns (grid, created)."""
        with _translated():
            row = await self.pool.fetchrow(
                "INSERT INTO grids (code, name, level, parent) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,"
                " level = EXCLUDED.level, parent = EXCLUDED.parent, updated_at = now()"
                " RETURNING code, name, level, parent, (xmax = 0) AS created",
                grid.code,
                grid.name,
                grid.level,
                grid.parent,
            )
        assert row is not None
        return Grid(row["code"], row["name"], row["level"], row["parent"]), row["created"]

    async def list_grids(self) -> list[Grid]:
        with _translated():
            rows = await self.pool.fetch(
                "SELECT code, name, level, parent FROM grids ORDER BY code"
            )
        return [Grid(r["code"], r["name"], r["level"], r["parent"]) for r in rows]

    async def grid_codes(self) -> set[str]:
        with _translated():
            rows = await self.pool.fetch("SELECT code FROM grids")
        return {r["code"] for r in rows}

    async def create_agent(
        self, name: str, phone: str, grids: Sequence[str], token_digest: bytes
    ) -> Agent:
        """Create an agent and its token together.  Raises UnknownGridError, StoreConflictError."""
        with _translated():
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
        return _agent(row)

    async def list_agents(self) -> list[Agent]:
        with _translated():
            rows = await self.pool.fetch(
                "SELECT id, name, phone, grids, active FROM agents ORDER BY id"
            )
        return [_agent(r) for r in rows]

    # --- tokens ----------------------------------------------------------------------------

    async def add_token(self, digest: bytes, kind: TokenKind, name: str) -> None:
        """Store a token digest (admin or intake).  Adding the same digest again is a no-op."""
        with _translated():
            await self.pool.execute(
                "INSERT INTO tokens (digest, kind, name) VALUES ($1, $2, $3)"
                " ON CONFLICT (digest) DO NOTHING",
                digest,
                kind.value,
                name,
            )

    async def has_token_of_kind(self, kind: TokenKind) -> bool:
        with _translated():
            return bool(
                await self.pool.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM tokens WHERE kind = $1 AND revoked_at IS NULL)",
                    kind.value,
                )
            )

    async def list_tokens(self) -> list[dict[str, Any]]:
        """Token metadata (never the tokens themselves) for operators."""
        with _translated():
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
        with _translated():
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
        *,
        grid: str,
        item: str | None,
        text: str | None,
        item_class: int | None,
        applicant: dict[str, str],
        created_at: int,
        widen_at: int,
        tracking_digest: bytes,
        actor: str,
    ) -> Order:
        """Record a new order, its tracking token and its `filed` event in one statement."""
        with _translated():
            row = await self.pool.fetchrow(
                f"""
                WITH o AS (
                    INSERT INTO orders (status, grid, item, text, item_class, applicant_name,
                                        applicant_phone, created_at, widen_at, scope)
                    VALUES ('offered', $1, $2, $3, $4, $5, $6, $7, $8, 'grid')
                    RETURNING *
                ), t AS (
                    INSERT INTO tokens (digest, kind, order_id) SELECT $9, 'tracking', id FROM o
                ), e AS (
                    INSERT INTO order_events (order_id, at, kind, actor)
                    SELECT id, $7, 'filed', $10 FROM o
                )
                SELECT {_ORDER_COLS} FROM o
                """,
                grid,
                item,
                text,
                item_class,
                applicant.get("name"),
                applicant.get("phone"),
                dt(created_at),
                dt(widen_at),
                tracking_digest,
                actor,
            )
        assert row is not None
        return _order(row)

    async def get_order(self, order_id: int) -> Order | None:
        with _translated():
            row = await self.pool.fetchrow(
                f"SELECT {_ORDER_COLS} FROM orders WHERE id = $1", order_id
            )
        return None if row is None else _order(row)

    async def get_applicant(self, order_id: int) -> dict[str, str | None]:
        with _translated():
            row = await self.pool.fetchrow(
                "SELECT applicant_name, applicant_phone FROM orders WHERE id = $1", order_id
            )
        if row is None:
            return {}
        return {"name": row["applicant_name"], "phone": row["applicant_phone"]}

    async def claim_order(self, order_id: int, agent_id: int, now: int) -> Order | None:
        """Record ``agent_id`` as the one winner, if the order is still open; else None.

        The update is conditional on the order being open, so Postgres can never record a
        second winner, whatever Redis said.
        """
        with _translated():
            row = await self.pool.fetchrow(
                f"""
                WITH c AS (
                    UPDATE orders SET status = 'claimed', claimed_by = $2, claimed_at = $3,
                                      version = version + 1, updated_at = now()
                    WHERE id = $1 AND status IN ('offered', 'widened')
                    RETURNING *
                ), e AS (
                    INSERT INTO order_events (order_id, at, kind, actor)
                    SELECT id, $3, 'claimed', 'agent:' || $2::text FROM c
                )
                SELECT {_ORDER_COLS} FROM c
                """,
                order_id,
                agent_id,
                dt(now),
            )
        return None if row is None else _order(row)

    async def widen_order(self, order_id: int, now: int) -> tuple[Order | None, Order | None]:
        """Widen the order if it is still offered to its grid and due.

        Returns (widened order, None) when this call widened it, or (None, current order) when
        it did not (already widened, claimed, not yet due), or (None, None) for no such order.
        Concurrent callers serialise on the row lock: exactly one of them widens.
        """
        with _translated():
            rows = await self.pool.fetch(
                f"""
                WITH w AS (
                    UPDATE orders SET status = 'widened', scope = 'all',
                                      version = version + 1, updated_at = now()
                    WHERE id = $1 AND status = 'offered' AND widen_at <= $2
                    RETURNING *
                ), e AS (
                    INSERT INTO order_events (order_id, at, kind, actor, details)
                    SELECT id, $2, 'widened', 'system',
                           jsonb_build_object('late_ms',
                               round(extract(epoch FROM ($2 - widen_at)) * 1000))
                    FROM w
                )
                SELECT {_ORDER_COLS}, true AS done FROM w
                UNION ALL
                SELECT {_ORDER_COLS}, false AS done FROM orders
                WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM w)
                """,
                order_id,
                dt(now),
            )
        if not rows:
            return None, None
        row = rows[0]
        return (_order(row), None) if row["done"] else (None, _order(row))

    async def due_orders(self, now: int, limit: int = 500) -> list[int]:
        """Orders past their widening deadline but still offered only to their grid."""
        with _translated():
            rows = await self.pool.fetch(
                "SELECT id FROM orders WHERE status = 'offered' AND widen_at <= $1"
                " ORDER BY widen_at LIMIT $2",
                dt(now),
                limit,
            )
        return [r["id"] for r in rows]

    async def open_orders_for(self, grids: Sequence[str]) -> list[Order]:
        """Every order open to an agent of ``grids``: its grids' own, and all widened ones."""
        with _translated():
            rows = await self.pool.fetch(
                f"SELECT {_ORDER_COLS} FROM orders"
                " WHERE (status = 'offered' AND grid = ANY($1::text[])) OR status = 'widened'"
                " ORDER BY id",
                list(grids),
            )
        return [_order(r) for r in rows]

    async def changed_since(self, since: int) -> list[Order]:
        """Every open order, and every order changed at or after ``since`` (ms)."""
        with _translated():
            rows = await self.pool.fetch(
                f"SELECT {_ORDER_COLS} FROM orders"
                " WHERE status IN ('offered', 'widened') OR updated_at >= $1 ORDER BY id",
                dt(since),
            )
        return [_order(r) for r in rows]

    async def order_events(self, order_id: int) -> list[dict[str, Any]]:
        with _translated():
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
                "actor": r["actor"],
                "details": json.loads(r["details"]),
            }
            for r in rows
        ]
