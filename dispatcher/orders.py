"""The rules of an order: a pure core.

Everything here is plain synchronous code.  It takes ``now`` (integer milliseconds since the
epoch) as an argument and returns decisions; it imports no asyncio, Redis, asyncpg or
Starlette.  The I/O shell (:mod:`dispatcher.filing`, :mod:`dispatcher.claims`,
:mod:`dispatcher.widening`) asks these functions what to do and then makes it so, atomically,
in Redis (which arbitrates) and Postgres (which remembers).

The claim decision exists twice: here, as the readable rule, and in the Lua script
``CLAIM`` of :mod:`dispatcher.redis_scripts`, as the atomic one.  ``tests/test_redis_scripts.py``
runs both over the same table of cases so they cannot drift apart.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any


class Status(enum.StrEnum):
    OFFERED = "offered"  # open, offered to its grid
    WIDENED = "widened"  # open, offered to all grids
    CLAIMED = "claimed"
    CANCELLED = "cancelled"


OPEN_STATUSES = frozenset({Status.OFFERED, Status.WIDENED})


class Scope(enum.StrEnum):
    GRID = "grid"
    ALL = "all"


class ClaimOutcome(enum.StrEnum):
    """What a claim attempt means for the claimant.  A lost claim is a value, not an error."""

    WON = "won"
    TAKEN = "taken"  # another agent has it (or is being recorded as having it)
    NOT_OFFERED = "not_offered"  # the order exists but is not open to this agent
    UNKNOWN_ORDER = "unknown_order"
    LIMIT_REACHED = "limit_reached"
    UNAVAILABLE = "unavailable"  # Redis or Postgres could not decide; nothing recorded


@dataclass(frozen=True, slots=True)
class Order:
    """A work order (代办工单) as the core sees it.  Times are epoch milliseconds."""

    id: int
    status: Status
    grid: str
    item: str | None
    text: str | None
    item_class: int | None
    created_at: int
    widen_at: int
    scope: Scope
    claimed_by: int | None = None
    claimed_at: int | None = None
    version: int = 1

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def to_wire(self) -> dict[str, Any]:
        """The order map of PROTOCOL.md (field names and types are the contract)."""
        return {
            "id": self.id,
            "status": self.status.value,
            "grid": self.grid,
            "item": self.item,
            "text": self.text,
            "item_class": self.item_class,
            "created_at": self.created_at,
            "widen_at": self.widen_at,
            "scope": self.scope.value,
            "claimed_by": self.claimed_by,
            "claimed_at": self.claimed_at,
            "version": self.version,
        }


def widen_deadline(created_at: int, widen_after_s: float) -> int:
    """When an order filed at ``created_at`` widens to all grids (epoch ms)."""
    return created_at + round(widen_after_s * 1000)


def is_offered_to(order: Order, agent_grids: Collection[str]) -> bool:
    """Is ``order`` open to an agent of ``agent_grids`` right now?

    Open orders are offered to their own grid; once widened, to every grid.
    """
    if not order.is_open:
        return False
    return order.scope is Scope.ALL or order.grid in agent_grids


def decide_claim(order: Order | None, agent_id: int, agent_grids: Collection[str]) -> ClaimOutcome:
    """The outcome of ``agent_id`` claiming ``order`` (``None``: no such order).

    A repeat by the agent who already holds the order is ``WON`` again, so a client that lost
    its answer can simply ask again.
    """
    if order is None:
        return ClaimOutcome.UNKNOWN_ORDER
    if order.status is Status.CLAIMED:
        return ClaimOutcome.WON if order.claimed_by == agent_id else ClaimOutcome.TAKEN
    if not is_offered_to(order, agent_grids):
        return ClaimOutcome.NOT_OFFERED
    return ClaimOutcome.WON


def claimed(order: Order, agent_id: int, now: int) -> Order:
    """``order`` after ``agent_id`` won it at ``now``.  Caller checked :func:`decide_claim`."""
    if not order.is_open:
        raise ValueError(f"order {order.id} is {order.status}, not open")
    return replace(
        order,
        status=Status.CLAIMED,
        claimed_by=agent_id,
        claimed_at=now,
        version=order.version + 1,
    )


def widened(order: Order, now: int) -> Order | None:
    """``order`` widened to all grids, or ``None`` when it must not widen (yet or ever).

    Only an order still offered to its own grid widens, and never before its deadline: a
    sweeper that runs early, late or twice gets ``None`` the second time.
    """
    if order.status is not Status.OFFERED or now < order.widen_at:
        return None
    return replace(order, status=Status.WIDENED, scope=Scope.ALL, version=order.version + 1)


def withdrawn_reason(order: Order) -> str | None:
    """Why agents must stop showing ``order`` (PROTOCOL.md ``withdrawn.reason``), or None."""
    if order.status is Status.CLAIMED:
        return "claimed"
    if order.status is Status.CANCELLED:
        return "cancelled"
    return None
