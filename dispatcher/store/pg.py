"""asyncpg helpers shared by the store's modules: error translation and time conversion."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg

from dispatcher.core.orders import Order, Scope, Status, default_schedule, parse_schedule
from dispatcher.core.points import Rating
from dispatcher.core.roster import Agent
from dispatcher.exceptions import (
    StoreAmbiguousError,
    StoreConflictError,
    StoreError,
    StoreUnavailableError,
)

ACQUIRE_TIMEOUT_S = 5.0
"""How long a write waits for a pooled connection before it is ``unavailable``."""

ORDER_COLS = (
    "id, status, grid, item, text, item_class, created_at, widen_at, scope, claimed_by,"
    " claimed_at, version, step, reach_grids, next_step_at, schedule, offered_at, escalate_at,"
    " excluded, item_name, required, time_limit_days, missing, supply_by, accepted_at, due_at,"
    " replied_at, close_at, rating"
)
"""The columns :func:`order_from_row` reads."""


_UNAVAILABLE_CLASSES = ("08", "53", "57")  # connection, resources, operator intervention/timeout


@contextlib.contextmanager
def translated() -> Iterator[None]:
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


async def write_row(pool: asyncpg.Pool, query: str, *args: Any) -> asyncpg.Record | None:
    """``fetchrow`` of one writing statement that tells *nothing was sent* from *sent, and
    then the connection was lost or timed out*.

    Raises StoreUnavailableError when the statement never reached Postgres (no connection) or
    Postgres refused it (it answered with an error: in autocommit nothing was recorded), and
    :class:`~dispatcher.exceptions.StoreAmbiguousError` when it was sent and no answer came:
    the connection is then closed (never reused: its backend may still be running the
    statement) and the error names that backend.
    """
    with translated():
        # asyncio.timeout rather than acquire(timeout=): on Python 3.11 asyncpg bounds the
        # wait with wait_for, a task per call, on the path of every filing and every claim.
        async with asyncio.timeout(ACQUIRE_TIMEOUT_S):
            conn = await pool.acquire()
    try:
        backend = conn.get_server_pid()
        try:
            with translated():
                return await conn.fetchrow(query, *args)
        except StoreUnavailableError as exc:
            cause = exc.__cause__
            if isinstance(cause, asyncpg.PostgresError) and not isinstance(
                cause, asyncpg.InterfaceError
            ):
                state = getattr(cause, "sqlstate", "") or ""
                if not state.startswith("08"):
                    raise  # Postgres answered: the statement failed, nothing recorded
            with contextlib.suppress(asyncpg.InterfaceError):  # (lost: closed already)
                conn.terminate()
            raise StoreAmbiguousError(str(exc), backend) from exc
    finally:
        await pool.release(conn)


def ms(dt: datetime | None) -> int | None:
    return None if dt is None else round(dt.timestamp() * 1000)


def dt(ms_: int) -> datetime:
    return datetime.fromtimestamp(ms_ / 1000, tz=UTC)


def agent_from_row(row: asyncpg.Record) -> Agent:
    return Agent(
        id=row["id"],
        name=row["name"],
        phone=row["phone"],
        grids=tuple(row["grids"]),
        active=row["active"],
    )


def order_from_row(row: asyncpg.Record) -> Order:
    created_at = ms(row["created_at"]) or 0
    widen_at = ms(row["widen_at"]) or 0
    offered_at = ms(row["offered_at"])
    schedule = (
        parse_schedule(row["schedule"])
        if row["schedule"]
        else default_schedule((widen_at - (offered_at or created_at)) / 1000)
    )
    return Order(
        id=row["id"],
        status=Status(row["status"]),
        grid=row["grid"],
        item=row["item"],
        text=row["text"],
        item_class=row["item_class"],
        created_at=created_at,
        widen_at=widen_at,
        scope=Scope(row["scope"]),
        claimed_by=row["claimed_by"],
        claimed_at=ms(row["claimed_at"]),
        version=row["version"],
        step=row["step"],
        reach_grids=tuple(row["reach_grids"] or (row["grid"],)),
        next_step_at=ms(row["next_step_at"]),
        schedule=schedule,
        offered_at=offered_at,
        escalate_at=ms(row["escalate_at"]),
        excluded=frozenset(row["excluded"]),
        item_name=row["item_name"],
        required=tuple(row["required"]),
        time_limit_days=row["time_limit_days"],
        missing=tuple(row["missing"]),
        supply_by=ms(row["supply_by"]),
        accepted_at=ms(row["accepted_at"]),
        due_at=ms(row["due_at"]),
        replied_at=ms(row["replied_at"]),
        close_at=ms(row["close_at"]),
        rating=None if row["rating"] is None else Rating(row["rating"]),
    )
