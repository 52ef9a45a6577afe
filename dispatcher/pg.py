"""asyncpg helpers shared by the store's modules: error translation and time conversion."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import asyncpg

from dispatcher.exceptions import StoreError, StoreUnavailableError
from dispatcher.roster import Agent


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
