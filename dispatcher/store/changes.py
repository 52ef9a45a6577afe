"""Postgres for the reconciler: orders' stamps in pages, and the horizon of finished transactions.

Mixed into :class:`dispatcher.store.store.Store`.  Every order row carries ``changed_xid``, the
transaction that last wrote it (set by a trigger, migration 0004);
:mod:`dispatcher.flows.reconciler`
explains why a transaction id and not a timestamp.  A scan reads *stamps* (id, version, whether
open, ``changed_xid``), a few bytes a row, and the reconciler fetches whole orders only for the
few Redis is behind on.  Each page is read by keyset (the key of its last row is where the next
begins), so a page costs the same however deep the scan, and no statement holds more than
``limit`` rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import asyncpg

from dispatcher.core.orders import Order
from dispatcher.store.pg import ORDER_COLS, dt, order_from_row, translated

_OPEN = "status IN ('offered', 'widened')"
_STAMP = f"id, version, {_OPEN} AS open, changed_xid"


class Stamp(NamedTuple):
    """What the reconciler compares with Redis."""

    id: int
    version: int
    open: bool
    xid: int
    """The transaction that wrote this version."""


class Page(NamedTuple):
    """Up to ``limit`` stamps of a scan."""

    stamps: list[Stamp]
    after: tuple[Any, int] | None
    """Where the next page starts (pass it back as ``after``); None: this was the last."""


def _page(rows: list[asyncpg.Record], limit: int, key: str) -> Page:
    after = (rows[-1][key], rows[-1]["id"]) if len(rows) == limit else None
    stamps = [Stamp(r["id"], r["version"], r["open"], int(r["changed_xid"])) for r in rows]
    return Page(stamps, after)


class ChangeStore:
    """Pages of stamps for the reconciler.  Mixed into Store; uses ``self.pool``."""

    pool: asyncpg.Pool

    async def horizon(self) -> int:
        """The oldest transaction id still running (or the next to be assigned, if none is).

        Every transaction below it has committed or aborted: a row written by one of them is
        visible to any statement from now on, and any later write gets an id at or above it.
        """
        with translated():
            xmin = await self.pool.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())")
        return int(xmin)

    async def changed_page(
        self, since_xid: int, before_xid: int, after: tuple[Any, int] | None, limit: int
    ) -> Page:
        """Orders last written by a transaction in [``since_xid``, ``before_xid``)."""
        start = (since_xid, 0) if after is None else after
        with translated():
            rows = await self.pool.fetch(
                f"SELECT {_STAMP} FROM orders"
                " WHERE (changed_xid, id) > ($1, $2) AND changed_xid < $3"
                " ORDER BY changed_xid, id LIMIT $4",
                start[0],
                start[1],
                before_xid,
                limit,
            )
        return _page(rows, limit, "changed_xid")

    async def open_page(self, after: tuple[Any, int] | None, limit: int) -> Page:
        """Open orders (offered, widened) by id."""
        after_id = 0 if after is None else after[1]
        with translated():
            rows = await self.pool.fetch(
                f"SELECT {_STAMP} FROM orders WHERE {_OPEN} AND id > $1 ORDER BY id LIMIT $2",
                after_id,
                limit,
            )
        return _page(rows, limit, "id")

    async def recent_page(self, since: int, after: tuple[Any, int] | None, limit: int) -> Page:
        """Orders changed (``updated_at``, Postgres's clock) at or after ``since`` (ms)."""
        start = (dt(since), 0) if after is None else after
        with translated():
            rows = await self.pool.fetch(
                f"SELECT {_STAMP}, updated_at FROM orders"
                " WHERE (updated_at, id) > ($1, $2) ORDER BY updated_at, id LIMIT $3",
                start[0],
                start[1],
                limit,
            )
        return _page(rows, limit, "updated_at")

    async def orders_by_id(self, ids: Sequence[int]) -> list[Order]:
        """The orders with these ids, as they are now (any missing are left out)."""
        with translated():
            rows = await self.pool.fetch(
                f"SELECT {ORDER_COLS} FROM orders WHERE id = ANY($1::bigint[])", list(ids)
            )
        return [order_from_row(r) for r in rows]
