"""The points ledger (积分台账): which order earns what, in which month, for whom; adjustments;
monthly statements and quarterly payouts; approval freezing a quarter.

Pure: every time is an epoch-millisecond argument, every sum a :class:`~decimal.Decimal`.

The rule (蓝山县, seed 002; per order in :func:`dispatcher.core.points.order_points`):

- An order earns in the month, Asia/Shanghai local time, in which it *closed* (rated, or
  closed unrated when the rating period ran out).  Cancelled or still-open orders earn nothing.
- An order closed without a class (free text never classified) earns nothing and is listed as
  needing a class; once an operator classifies it, it earns from then on.
- Operators add adjustments: agent, signed decimal points, reason, the month they are for.
- Approving a quarter's payout freezes it.  Anything that changes it afterwards (an order of
  that quarter classified late, an adjustment for one of its months) is not lost and does not
  rewrite what was paid: it lands in the month it was *recorded* in, which is always open (a
  quarter can only be approved once it is over), and carries ``moved_from`` so it is visible.

The ledger is a list of :class:`Line`; reports are sums over lines (:func:`monthly`,
:func:`quarterly`).  The same inputs always give the same lines in the same order.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar, Literal

from dispatcher.core.points import CLASS_POINTS, Rating, order_points, yuan
from dispatcher.core.refusals import Refusal
from dispatcher.core.workdays import CHINA

MONTH_RE = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")
QUARTER_RE = re.compile(r"^([0-9]{4})-Q([1-4])$")
ADJUSTMENT_MAX = Decimal("10000")  # one adjustment: at most ±10,000 points
POINTS_PLACES = Decimal("0.01")  # adjustments are in hundredths of a point at most


# --- periods -------------------------------------------------------------------------------


def parse_month(value: str) -> tuple[int, int]:
    """``'2026-11'`` → ``(2026, 11)``.  Raises ``ValueError``."""
    m = MONTH_RE.match(value)
    if m is None or not 2000 <= int(m.group(1)) <= 2999:
        raise ValueError(f"month must be YYYY-MM, got {value!r}")
    return int(m.group(1)), int(m.group(2))


def parse_quarter(value: str) -> tuple[int, int]:
    """``'2026-Q4'`` → ``(2026, 4)``.  Raises ``ValueError``."""
    m = QUARTER_RE.match(value)
    if m is None or not 2000 <= int(m.group(1)) <= 2999:
        raise ValueError(f"quarter must be YYYY-Qn, got {value!r}")
    return int(m.group(1)), int(m.group(2))


def month_key(at_ms: int, tz: dt.tzinfo = CHINA) -> str:
    """The local ``YYYY-MM`` of an epoch-ms time: 2026-11-30 23:30 in Shanghai is ``2026-11``;
    2026-12-01 00:10 there is ``2026-12``, although it is still 30 November in UTC."""
    return dt.datetime.fromtimestamp(at_ms / 1000, tz).strftime("%Y-%m")


def quarter_key(month: str) -> str:
    """``'2026-11'`` → ``'2026-Q4'``."""
    year, mon = parse_month(month)
    return f"{year}-Q{(mon - 1) // 3 + 1}"


def quarter_months(quarter: str) -> tuple[str, str, str]:
    year, q = parse_quarter(quarter)
    first = 3 * (q - 1) + 1
    a, b, c = (f"{year}-{m:02}" for m in range(first, first + 3))
    return a, b, c


def _local_start(year: int, month: int, tz: dt.tzinfo) -> int:
    if month == 13:
        year, month = year + 1, 1
    return int(dt.datetime(year, month, 1, tzinfo=tz).timestamp() * 1000)


def month_bounds(month: str, tz: dt.tzinfo = CHINA) -> tuple[int, int]:
    """``[start, end)`` of a local month in epoch ms."""
    year, mon = parse_month(month)
    return _local_start(year, mon, tz), _local_start(year, mon + 1, tz)


def quarter_bounds(quarter: str, tz: dt.tzinfo = CHINA) -> tuple[int, int]:
    """``[start, end)`` of a local quarter in epoch ms."""
    first, _, last = quarter_months(quarter)
    return month_bounds(first, tz)[0], month_bounds(last, tz)[1]


def quarter_is_over(quarter: str, now: int, tz: dt.tzinfo = CHINA) -> bool:
    return now >= quarter_bounds(quarter, tz)[1]


# --- inputs --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order as the ledger sees it.  ``closed_at`` is the time of its ``rated`` or
    ``closed_unrated`` event (None while open or when cancelled); ``classified_at`` is set
    when its class was given *after* it closed (None: it had its class when it closed)."""

    order_id: int
    agent_id: int | None
    status: str
    closed_at: int | None
    item_class: int | None
    rating: Rating | None
    item: str | None = None
    item_name: str | None = None
    grid: str = ""
    classified_at: int | None = None


@dataclass(frozen=True, slots=True)
class Adjustment:
    """An operator's correction (append-only): ``points`` may be negative."""

    id: int
    agent_id: int
    month: str  # the month it is for
    points: Decimal
    reason: str
    by: str
    at: int  # when it was recorded


@dataclass(frozen=True, slots=True)
class Approval:
    quarter: str
    approved_at: int
    by: str


def check_adjustment_points(raw: str) -> Decimal:
    """Parse adjustment points given as a decimal string or number text (``"-1.5"``).

    Raises ``ValueError``: not a finite decimal, zero, more than two places, beyond the cap."""
    try:
        value = Decimal(raw)
    except ArithmeticError:
        raise ValueError(f"not a decimal number: {raw!r}") from None
    if not value.is_finite():
        raise ValueError("points must be a finite number")
    if value == 0:
        raise ValueError("an adjustment of 0 points changes nothing")
    if value != value.quantize(POINTS_PLACES):
        raise ValueError("points have at most two decimal places")
    if abs(value) > ADJUSTMENT_MAX:
        raise ValueError(f"an adjustment is at most ±{ADJUSTMENT_MAX} points")
    return value


# --- the ledger ----------------------------------------------------------------------------

LineKind = Literal["order", "adjustment"]


@dataclass(frozen=True, slots=True)
class Line:
    """One entry of the ledger.  ``month`` is where it counts; ``natural_month`` where it
    would have counted; ``moved_from`` is set when an approved quarter pushed it on."""

    kind: LineKind
    agent_id: int
    month: str
    natural_month: str
    points: Decimal
    order: OrderRecord | None = None
    adjustment: Adjustment | None = None
    moved_from: str | None = None

    @property
    def ref(self) -> int:
        if self.order is not None:
            return self.order.order_id
        assert self.adjustment is not None
        return self.adjustment.id


def approved_before(approvals: Iterable[Approval], quarter: str, at: int) -> bool:
    """Was ``quarter`` approved before (or at) ``at``?"""
    return any(a.quarter == quarter and a.approved_at <= at for a in approvals)


def _landing(natural: str, recorded_at: int, approvals: Sequence[Approval]) -> tuple[str, bool]:
    """Where an entry recorded at ``recorded_at`` for ``natural`` counts, and whether moved."""
    if approved_before(approvals, quarter_key(natural), recorded_at):
        return month_key(recorded_at), True
    return natural, False


def needs_class(order: OrderRecord) -> bool:
    """A closed order that cannot earn until an operator gives it a class."""
    return order.status == "closed" and order.item_class not in CLASS_POINTS


def order_line(order: OrderRecord, approvals: Sequence[Approval] = ()) -> Line | None:
    """The ledger line of one order, or None when it earns nothing at all (not closed,
    cancelled, no agent, or no class yet: see :func:`needs_class`)."""
    if order.status != "closed" or order.closed_at is None or order.agent_id is None:
        return None
    if order.item_class not in CLASS_POINTS:
        return None
    assert order.item_class is not None
    natural = month_key(order.closed_at)
    recorded = max(order.closed_at, order.classified_at or order.closed_at)
    month, moved = _landing(natural, recorded, approvals)
    return Line(
        "order",
        order.agent_id,
        month,
        natural,
        order_points(order.item_class, order.rating),
        order=order,
        moved_from=natural if moved else None,
    )


def adjustment_line(adj: Adjustment, approvals: Sequence[Approval] = ()) -> Line:
    month, moved = _landing(adj.month, adj.at, approvals)
    return Line(
        "adjustment",
        adj.agent_id,
        month,
        adj.month,
        adj.points,
        adjustment=adj,
        moved_from=adj.month if moved else None,
    )


def ledger(
    orders: Iterable[OrderRecord],
    adjustments: Iterable[Adjustment] = (),
    approvals: Sequence[Approval] = (),
) -> list[Line]:
    """Every line, orders first (by order id) then adjustments (by id)."""
    lines = [
        ln for o in sorted(orders, key=lambda o: o.order_id) if (ln := order_line(o, approvals))
    ]
    lines += [adjustment_line(a, approvals) for a in sorted(adjustments, key=lambda a: a.id)]
    return lines


# --- reports -------------------------------------------------------------------------------


@dataclass(slots=True)
class AgentTotal:
    """One agent's figures over a period."""

    agent_id: int
    orders: int = 0
    points: Decimal = field(default_factory=Decimal)
    unsatisfied: int = 0
    unrated: int = 0
    adjustments: Decimal = field(default_factory=Decimal)

    @property
    def yuan(self) -> Decimal:
        return yuan(self.points)

    def add(self, line: Line) -> None:
        self.points += line.points
        if line.order is not None:
            self.orders += 1
            if line.order.rating is Rating.UNSATISFIED:
                self.unsatisfied += 1
            elif line.order.rating is None:
                self.unrated += 1
        else:
            self.adjustments += line.points


def totals(lines: Iterable[Line], months: Iterable[str]) -> dict[int, AgentTotal]:
    """Per agent, the lines counting in ``months`` (by agent id)."""
    wanted = set(months)
    out: dict[int, AgentTotal] = {}
    for line in lines:
        if line.month in wanted:
            out.setdefault(line.agent_id, AgentTotal(line.agent_id)).add(line)
    return dict(sorted(out.items()))


def monthly(lines: Iterable[Line], month: str) -> dict[int, AgentTotal]:
    parse_month(month)
    return totals(lines, (month,))


def quarterly(lines: Iterable[Line], quarter: str) -> dict[int, AgentTotal]:
    return totals(lines, quarter_months(quarter))


def statement(lines: Iterable[Line], agent_id: int, months: Iterable[str]) -> list[Line]:
    """One agent's lines counting in ``months``, in ledger order."""
    wanted = set(months)
    return [ln for ln in lines if ln.agent_id == agent_id and ln.month in wanted]


def sum_points(values: Iterable[Decimal]) -> Decimal:
    return sum(values, Decimal(0))


def subtotals(
    per_agent: Mapping[int, AgentTotal], group_of: Mapping[int, str]
) -> dict[str, Decimal]:
    """Points per group (e.g. township) from per-agent totals; agents without one in ``''``."""
    out: dict[str, Decimal] = {}
    for agent_id, t in per_agent.items():
        key = group_of.get(agent_id, "")
        out[key] = out.get(key, Decimal(0)) + t.points
    return dict(sorted(out.items()))


def points_text(value: Decimal) -> str:
    """Points or yuan on the wire: a decimal string without exponent or trailing zeros
    (``"3.5"``, ``"0"``, ``"-1.25"``, ``"100"``)."""
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")


@dataclass(frozen=True, slots=True)
class QuarterNotOver(Refusal):
    """A quarter is approved only once it is over (local time)."""

    quarter: str
    code: ClassVar[str] = "quarter_not_over"
    status: ClassVar[int] = 409
    template: ClassVar[str] = "{quarter} is not over yet (local time)"


@dataclass(frozen=True, slots=True)
class AlreadyApproved(Refusal):
    """An approved quarter is frozen; it is approved once."""

    quarter: str
    code: ClassVar[str] = "already_approved"
    status: ClassVar[int] = 409
    template: ClassVar[str] = "{quarter} is approved already; it is frozen"


def can_approve(
    quarter: str, now: int, approvals: Sequence[Approval], tz: dt.tzinfo = CHINA
) -> QuarterNotOver | AlreadyApproved | None:
    """None if ``quarter`` may be approved at ``now``, else the refusal (a value)."""
    if any(a.quarter == quarter for a in approvals):
        return AlreadyApproved(quarter)
    if not quarter_is_over(quarter, now, tz):
        return QuarterNotOver(quarter)
    return None
