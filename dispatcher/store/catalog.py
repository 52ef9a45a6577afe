"""Postgres for the catalogue (事项目录): seeding, reading, and operators' edits.

Mixed into :class:`dispatcher.store.store.Store`.  The file is seeded on start with ``ON CONFLICT DO
NOTHING``, so an item an operator edited or retired keeps its edits across restarts, and
several processes starting at once seed it once.  Items are retired, never deleted: orders
keep pointing at their code.
"""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from dispatcher.core.catalog import Item, Level
from dispatcher.store.pg import translated

_COLS = (
    "code, name, category, item_class, eligible, materials, steps, time_limit_days, fee, level,"
    " retired_at IS NOT NULL AS retired"
)


def _item(row: asyncpg.Record) -> Item:
    return Item(
        code=row["code"],
        name=row["name"],
        category=row["category"],
        item_class=row["item_class"],
        eligible=row["eligible"],
        materials=tuple(row["materials"]),
        steps=tuple(row["steps"]),
        time_limit_days=row["time_limit_days"],
        fee=row["fee"],
        level=Level(row["level"]),
        retired=row["retired"],
    )


def _args(item: Item) -> tuple[object, ...]:
    return (
        item.code,
        item.name,
        item.category,
        item.item_class,
        item.eligible,
        list(item.materials),
        list(item.steps),
        item.time_limit_days,
        item.fee,
        item.level.value,
        item.retired,
    )


_INSERT = (
    "INSERT INTO catalog_items (code, name, category, item_class, eligible, materials, steps,"
    " time_limit_days, fee, level, retired_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CASE WHEN $11 THEN now() END)"
)


class CatalogStore:
    """Catalogue items.  Mixed into Store; uses ``self.pool``."""

    pool: asyncpg.Pool

    async def seed_catalog(self, items: Iterable[Item]) -> int:
        """Insert the items not present yet; returns how many were inserted."""
        with translated():
            async with self.pool.acquire() as conn, conn.transaction():
                before = await conn.fetchval("SELECT count(*) FROM catalog_items")
                await conn.executemany(
                    _INSERT + " ON CONFLICT (code) DO NOTHING", [_args(i) for i in items]
                )
                after = await conn.fetchval("SELECT count(*) FROM catalog_items")
        return int(after - before)

    async def list_items(self, *, include_retired: bool = False) -> list[Item]:
        with translated():
            rows = await self.pool.fetch(
                f"SELECT {_COLS} FROM catalog_items WHERE $1 OR retired_at IS NULL ORDER BY code",
                include_retired,
            )
        return [_item(r) for r in rows]

    async def get_item(self, code: str) -> Item | None:
        """The item with ``code``, live or retired, or None."""
        with translated():
            row = await self.pool.fetchrow(
                f"SELECT {_COLS} FROM catalog_items WHERE code = $1", code
            )
        return None if row is None else _item(row)

    async def create_item(self, item: Item) -> Item | None:
        """Insert a new item; None when the code exists already."""
        with translated():
            row = await self.pool.fetchrow(
                _INSERT + f" ON CONFLICT (code) DO NOTHING RETURNING {_COLS}", *_args(item)
            )
        return None if row is None else _item(row)

    async def update_item(self, item: Item) -> Item | None:
        """Replace the item of ``item.code`` (retiring or reviving it as ``item.retired``
        says); None when there is none.  Orders filed before keep what they copied."""
        with translated():
            row = await self.pool.fetchrow(
                "UPDATE catalog_items SET name = $2, category = $3, item_class = $4,"
                " eligible = $5, materials = $6, steps = $7, time_limit_days = $8, fee = $9,"
                " level = $10, retired_at = CASE WHEN $11 THEN coalesce(retired_at, now()) END,"
                f" updated_at = now() WHERE code = $1 RETURNING {_COLS}",
                *_args(item),
            )
        return None if row is None else _item(row)
