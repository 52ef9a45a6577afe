"""The widening ladder: how far an open order is offered, and from when.

Pure data and arithmetic on times (epoch milliseconds, settings in seconds); moving an order
up its ladder is :func:`dispatcher.core.orders.advanced`.  ``BANGBAN_WIDEN_SCHEDULE`` is parsed
here (``grid@0,neighbours@300,all@600``).
"""

from __future__ import annotations

import enum
import functools
import itertools
from dataclasses import dataclass


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


@functools.lru_cache(maxsize=256)
def parse_schedule(text: str) -> Schedule:
    """Parse ``grid@0,neighbours@300,all@600``.  Raises ValueError saying what is wrong.

    Every order read from Postgres carries its ladder as this text, and a deployment has a
    handful of them: the answer (immutable) is remembered.

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


def widen_deadline(created_at: int, widen_after_s: float) -> int:
    """When an order filed at ``created_at`` widens to all grids (epoch ms)."""
    return created_at + round(widen_after_s * 1000)
