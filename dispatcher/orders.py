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
import itertools
from collections.abc import Callable, Collection
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


class Reach(enum.StrEnum):
    """How far an open order is offered: the steps of the widening ladder, narrow to wide."""

    GRID = "grid"  # the order's own grid
    NEIGHBOURS = "neighbours"  # its grid and the grids sharing a border with it
    PARENT = "parent"  # every grid under the same parent (e.g. the whole township)
    ALL = "all"  # every grid


_REACH_ORDER = (Reach.GRID, Reach.NEIGHBOURS, Reach.PARENT, Reach.ALL)


@dataclass(frozen=True, slots=True)
class Step:
    """One rung of the widening ladder: offer to ``reach`` from ``after`` seconds on."""

    reach: Reach
    after: float


Schedule = tuple[Step, ...]


def default_schedule(widen_after: float) -> Schedule:
    """The seed's rule: own grid at once, all grids after ``widen_after`` seconds."""
    return (Step(Reach.GRID, 0.0), Step(Reach.ALL, widen_after))


def parse_schedule(text: str) -> Schedule:
    """Parse ``grid@0,neighbours@300,all@600``.  Raises ValueError saying what is wrong.

    The ladder starts with ``grid@0``, each step reaches further than the one before at a
    later time, and it ends with ``all`` (so every order is eventually open to everyone).
    """
    steps: list[Step] = []
    for part in text.replace(" ", "").split(","):
        reach, sep, after = part.partition("@")
        if not sep or reach not in Reach.__members__.values():
            raise ValueError(
                f"step {part!r} is not REACH@SECONDS (reach: grid, neighbours, parent or all)"
            )
        try:
            seconds = float(after)
        except ValueError:
            raise ValueError(f"step {part!r}: {after!r} is not a number of seconds") from None
        steps.append(Step(Reach(reach), seconds))
    if steps[0] != Step(Reach.GRID, 0.0):
        raise ValueError("the schedule must start with grid@0")
    for prev, step in itertools.pairwise(steps):
        if _REACH_ORDER.index(step.reach) <= _REACH_ORDER.index(prev.reach):
            raise ValueError(f"{step.reach}@ must reach further than {prev.reach}@")
        if step.after <= prev.after:
            raise ValueError(f"{step.reach}@{step.after:g} must come after {prev.after:g} s")
    if steps[-1].reach is not Reach.ALL or len(steps) < 2:
        raise ValueError("the schedule must end with all@SECONDS")
    return tuple(steps)


def format_schedule(schedule: Schedule) -> str:
    return ",".join(f"{s.reach.value}@{s.after:g}" for s in schedule)


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
    step: int = 0
    """Index of the current rung of ``schedule``."""
    reach_grids: tuple[str, ...] = ()
    """The grids the order is offered to while its scope is ``grid`` (its own, at first)."""
    next_step_at: int | None = None
    """When the order moves to the next rung (None once it reaches all grids)."""
    schedule: Schedule = ()
    """The widening ladder fixed when the order was filed."""

    def __post_init__(self) -> None:
        if not self.reach_grids:  # an order always reaches at least its own grid
            object.__setattr__(self, "reach_grids", (self.grid,))

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def reach(self) -> Reach:
        return self.schedule[self.step].reach if self.schedule else Reach(self.scope.value)

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
            # Additions to v1 (clients ignore fields they do not know):
            "reach": self.reach.value,
            "offered_grids": list(self.reach_grids) if self.scope is Scope.GRID else None,
            "next_step_at": self.next_step_at,
        }


def widen_deadline(created_at: int, widen_after_s: float) -> int:
    """When an order filed at ``created_at`` widens to all grids (epoch ms)."""
    return created_at + round(widen_after_s * 1000)


def new_order(
    *,
    order_id: int,
    grid: str,
    item: str | None,
    text: str | None,
    item_class: int | None,
    created_at: int,
    schedule: Schedule,
) -> Order:
    """A freshly filed order: offered to its own grid, on the first rung of ``schedule``."""
    return Order(
        id=order_id,
        status=Status.OFFERED,
        grid=grid,
        item=item,
        text=text,
        item_class=item_class,
        created_at=created_at,
        widen_at=widen_deadline(created_at, schedule[-1].after),
        scope=Scope.GRID,
        reach_grids=(grid,),
        next_step_at=widen_deadline(created_at, schedule[1].after),
        schedule=schedule,
    )


def is_offered_to(order: Order, agent_grids: Collection[str]) -> bool:
    """Is ``order`` open to an agent of ``agent_grids`` right now?

    Open orders are offered to their own grid; once widened, to every grid.
    """
    if not order.is_open:
        return False
    if order.scope is Scope.ALL:
        return True
    return any(g in agent_grids for g in (order.reach_grids or (order.grid,)))


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


def advanced(
    order: Order, now: int, audience: Callable[[Reach, str], Collection[str]]
) -> Order | None:
    """``order`` on the next rung of its ladder, or ``None`` when it must not move (yet or ever).

    Only an open order still short of all grids moves, and never before its next step's time:
    a sweeper that runs early, late or twice gets ``None`` the second time.  ``audience(reach,
    grid)`` names the grids a reach covers for the order's grid (neighbours, siblings).
    """
    if order.status is not Status.OFFERED or order.next_step_at is None:
        return None
    if now < order.next_step_at or order.step + 1 >= len(order.schedule):
        return None
    step = order.step + 1
    rung = order.schedule[step]
    following = step + 1 < len(order.schedule)
    next_at = (
        widen_deadline(order.created_at, order.schedule[step + 1].after) if following else None
    )
    if rung.reach is Reach.ALL:
        return replace(
            order,
            status=Status.WIDENED,
            scope=Scope.ALL,
            step=step,
            next_step_at=None,
            version=order.version + 1,
        )
    grids = (order.grid, *sorted(set(audience(rung.reach, order.grid)) - {order.grid}))
    return replace(
        order, step=step, reach_grids=grids, next_step_at=next_at, version=order.version + 1
    )


def widened(order: Order, now: int) -> Order | None:
    """``order`` moved up its ladder with no known neighbours (own grid only below `all`)."""
    return advanced(order, now, lambda reach, grid: (grid,))


def withdrawn_reason(order: Order) -> str | None:
    """Why agents must stop showing ``order`` (PROTOCOL.md ``withdrawn.reason``), or None."""
    if order.status is Status.CLAIMED:
        return "claimed"
    if order.status is Status.CANCELLED:
        return "cancelled"
    return None
