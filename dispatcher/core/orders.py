"""The rules of an order: a pure core.

Everything here is plain synchronous code.  It takes ``now`` (integer milliseconds since the
epoch) as an argument and returns decisions; it imports no asyncio, Redis, asyncpg or
Starlette.  The I/O shell (:mod:`dispatcher.flows.filing`, :mod:`dispatcher.flows.claims`,
:mod:`dispatcher.flows.widening`) asks these functions what to do and then makes it so, atomically,
in Redis (which arbitrates) and Postgres (which remembers).

The widening ladder's vocabulary is in :mod:`dispatcher.core.ladder` (re-exported here).  The
claim decision exists twice: here, as the readable rule, and in the Lua script
``CLAIM`` of :mod:`dispatcher.board.scripts`, as the atomic one.  ``tests/board/test_scripts.py``
runs both over the same table of cases so they cannot drift apart.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from typing import Any, Protocol

# The ladder's names are re-exported: callers know them as part of the order's rules.
from dispatcher.core.ladder import (
    Reach,
    Schedule,
    Step,
    default_schedule,
    format_schedule,
    parse_schedule,
    widen_deadline,
)
from dispatcher.core.points import Rating

__all__ = [
    "HELD_STATUSES",
    "OPEN_STATUSES",
    "ClaimOutcome",
    "Order",
    "Reach",
    "Schedule",
    "Scope",
    "Status",
    "Step",
    "advanced",
    "claimed",
    "decide_claim",
    "default_schedule",
    "format_schedule",
    "is_offered_to",
    "is_overdue",
    "new_order",
    "parse_schedule",
    "reoffered",
    "widen_deadline",
    "widened",
    "withdrawn_reason",
]


class Status(enum.StrEnum):
    """Every state of an order; :mod:`dispatcher.core.workflow` says which action leads where."""

    OFFERED = "offered"  # open, offered to its grid
    WIDENED = "widened"  # open, offered to all grids
    CLAIMED = "claimed"  # grabbed, not yet accepted
    ACCEPTED = "accepted"  # 受理: being handled, due at ``due_at``
    AWAITING_MATERIALS = "awaiting_materials"  # 补办件: waiting for materials until ``supply_by``
    REPLIED = "replied"  # result sent, waiting for a rating until ``close_at``
    CLOSED = "closed"  # rated (``rating``) or closed unrated
    CANCELLED = "cancelled"
    ESCALATED = "escalated"  # nobody claimed it in time: an operator assigns it


OPEN_STATUSES = frozenset({Status.OFFERED, Status.WIDENED})
HELD_STATUSES = frozenset({Status.CLAIMED, Status.ACCEPTED, Status.AWAITING_MATERIALS})
"""An agent *holds* an order in these states; ``BANGBAN_MAX_HELD`` caps how many at once."""


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
    PENDING = "pending"  # recorded or not, the server cannot tell yet: the answer follows


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
    offered_at: int | None = None
    """Where the ladder's times count from: filing, or the last release (None: ``created_at``)."""
    escalate_at: int | None = None
    """When an order still open escalates to the operators (None: never)."""
    excluded: frozenset[int] = frozenset()
    """Agents who released the order: it is not offered to them again."""
    item_name: str | None = None
    required: tuple[str, ...] = ()
    """The catalogue item's materials, copied at filing or classification."""
    time_limit_days: int | None = None
    """The item's time limit in working days (None: free text, no due date)."""
    missing: tuple[str, ...] = ()
    supply_by: int | None = None
    accepted_at: int | None = None
    due_at: int | None = None
    replied_at: int | None = None
    close_at: int | None = None
    rating: Rating | None = None

    def __post_init__(self) -> None:
        if not self.reach_grids:  # an order always reaches at least its own grid
            object.__setattr__(self, "reach_grids", (self.grid,))

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_held(self) -> bool:
        return self.status in HELD_STATUSES

    @property
    def ladder_base(self) -> int:
        return self.created_at if self.offered_at is None else self.offered_at

    @property
    def reach(self) -> Reach:
        return self.schedule[self.step].reach if self.schedule else Reach(self.scope.value)

    def to_wire(self, now: int | None = None) -> dict[str, Any]:
        """The order map of PROTOCOL.md (field names and types are the contract).

        With ``now``, the map also says whether the order is ``overdue`` at that moment.
        """
        wire = {
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
            # After the grab:
            "escalate_at": self.escalate_at,
            "item_name": self.item_name,
            "materials": list(self.required),
            "time_limit_days": self.time_limit_days,
            "missing": list(self.missing),
            "supply_by": self.supply_by,
            "accepted_at": self.accepted_at,
            "due_at": self.due_at,
            "replied_at": self.replied_at,
            "close_at": self.close_at,
            "rating": None if self.rating is None else self.rating.value,
            "rating_label": None if self.rating is None else self.rating.label,
        }
        if now is not None:
            wire["overdue"] = is_overdue(self, now)
        return wire


class Dated(Protocol):
    """What :func:`is_overdue` reads: an :class:`Order` or a ``workflow.OrderState``."""

    @property
    def status(self) -> Status: ...
    @property
    def due_at(self) -> int | None: ...
    @property
    def supply_by(self) -> int | None: ...


def is_overdue(order: Dated, now: int) -> bool:
    """Past its due date (accepted) or its supply-by date (awaiting materials)?"""
    if order.status is Status.ACCEPTED:
        due = order.due_at
    elif order.status is Status.AWAITING_MATERIALS:
        due = order.supply_by
    else:
        return False
    return due is not None and now > due


def new_order(
    *,
    order_id: int,
    grid: str,
    item: str | None,
    text: str | None,
    item_class: int | None,
    created_at: int,
    schedule: Schedule,
    escalate_after_s: float | None = None,
    item_name: str | None = None,
    required: tuple[str, ...] = (),
    time_limit_days: int | None = None,
) -> Order:
    """A freshly filed order: offered to its own grid, on the first rung of ``schedule``.

    It escalates to the operators ``escalate_after_s`` seconds after filing if still open
    (None: never).
    """
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
        offered_at=created_at,
        escalate_at=None
        if escalate_after_s is None
        else widen_deadline(created_at, escalate_after_s),
        item_name=item_name,
        required=required,
        time_limit_days=time_limit_days,
    )


def reoffered(order: Order, now: int) -> dict[str, Any]:
    """The ladder fields of ``order`` offered afresh from ``now`` (after a release): its own
    grid, on the first rung of its ladder, every step counted from ``now``."""
    schedule = order.schedule or default_schedule((order.widen_at - order.ladder_base) / 1000)
    return {
        "offered_at": now,
        "step": 0,
        "reach_grids": (order.grid,),
        "next_step_at": widen_deadline(now, schedule[1].after),
        "widen_at": widen_deadline(now, schedule[-1].after),
    }


def is_offered_to(order: Order, agent_grids: Collection[str], agent_id: int | None = None) -> bool:
    """Is ``order`` open to agent ``agent_id`` of ``agent_grids`` right now?

    Open orders are offered to their own grid; once widened, to every grid; never to an agent
    who released them (``excluded``).
    """
    if not order.is_open or (agent_id is not None and agent_id in order.excluded):
        return False
    if order.scope is Scope.ALL:
        return True
    return any(g in agent_grids for g in (order.reach_grids or (order.grid,)))


def decide_claim(
    order: Order | None, agent_id: int, agent_grids: Collection[str], *, at_limit: bool = False
) -> ClaimOutcome:
    """The outcome of ``agent_id`` claiming ``order`` (``None``: no such order).

    A repeat by the agent who already holds the order is ``WON`` again, so a client that lost
    its answer can simply ask again.  An order that has an agent (claimed and every later
    state but cancelled) is ``TAKEN`` for everyone else.  ``at_limit``: the agent holds as many
    orders as allowed, so an order it could win is ``LIMIT_REACHED`` instead.
    """
    if order is None:
        return ClaimOutcome.UNKNOWN_ORDER
    if not order.is_open:
        if order.claimed_by is None or order.status is Status.CANCELLED:
            return ClaimOutcome.NOT_OFFERED
        return ClaimOutcome.WON if order.claimed_by == agent_id else ClaimOutcome.TAKEN
    if not is_offered_to(order, agent_grids, agent_id):
        return ClaimOutcome.NOT_OFFERED
    return ClaimOutcome.LIMIT_REACHED if at_limit else ClaimOutcome.WON


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
        widen_deadline(order.ladder_base, order.schedule[step + 1].after) if following else None
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
    if order.status is Status.ESCALATED:
        return "expired"
    return None
