"""Points, pay and oversight over HTTP (admin token, except the agent's own statement).

Monthly points and statements, quarterly payouts and their approval, adjustments, classes
given after closing, oversight reports, follow-up calls, fair play.  Every report answers JSON,
or ``?format=csv`` / ``?format=xlsx`` (:mod:`dispatcher.web.exports`).  Points and yuan are
decimal strings on the wire (``"3.5"``).  The rules are in :mod:`dispatcher.core`; this module
decodes, reads the store, calls the core and encodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dispatcher.context import Context
from dispatcher.core import followup, validate
from dispatcher.core import ledger as L
from dispatcher.core.points import yuan
from dispatcher.core.roster import Agent, Principal, TokenKind
from dispatcher.exceptions import ConflictError, NotFoundError
from dispatcher.web import params
from dispatcher.web.exports import Table, Time, report_format, respond
from dispatcher.web.http import answer, body, context, principal

P = L.points_text


# --- the ledger as reports -----------------------------------------------------------------


async def ledger_lines(
    ctx: Context, months: Sequence[str], start: int, end: int
) -> tuple[list[L.Line], list[L.OrderRecord], list[L.Approval]]:
    orders = await ctx.store.ledger_orders(start, end)
    adjustments = await ctx.store.adjustments(months, start, end)
    approvals = await ctx.store.approvals()
    return L.ledger(orders, adjustments, approvals), orders, approvals


def needs_class(orders: Sequence[L.OrderRecord], start: int, end: int) -> list[dict[str, Any]]:
    return [
        {
            "order_id": o.order_id,
            "agent_id": o.agent_id,
            "grid": o.grid,
            "item_name": o.item_name,
            "closed_at": o.closed_at,
        }
        for o in orders
        if L.needs_class(o) and o.closed_at is not None and start <= o.closed_at < end
    ]


def agents_by_id(agents: Sequence[Agent]) -> dict[int, Agent]:
    return {a.id: a for a in agents}


def agent_row(t: L.AgentTotal, agent: Agent | None) -> dict[str, Any]:
    return {
        "agent_id": t.agent_id,
        "name": None if agent is None else agent.name,
        "grids": [] if agent is None else list(agent.grids),
        "orders": t.orders,
        "points": P(t.points),
        "yuan": P(t.yuan),
        "unsatisfied": t.unsatisfied,
        "unrated": t.unrated,
        "adjustments": P(t.adjustments),
    }


def quarter_state(quarter: str, approvals: Sequence[L.Approval]) -> dict[str, Any]:
    found = next((a for a in approvals if a.quarter == quarter), None)
    if found is None:
        return {"state": "open", "approved_at": None, "approved_by": None}
    return {"state": "approved", "approved_at": found.approved_at, "approved_by": found.by}


async def _month_report(ctx: Context, month: str) -> dict[str, Any]:
    start, end = L.month_bounds(month)
    lines, orders, approvals = await ledger_lines(ctx, (month,), start, end)
    per = L.monthly(lines, month)
    names = agents_by_id(await ctx.store.list_agents())
    rows = [agent_row(t, names.get(a)) for a, t in per.items()]
    total = L.sum_points(t.points for t in per.values())
    quarter = L.quarter_key(month)
    return {
        "month": month,
        "quarter": quarter,
        "quarter_state": quarter_state(quarter, approvals)["state"],
        "agents": rows,
        "totals": {
            "orders": sum(t.orders for t in per.values()),
            "points": P(total),
            "yuan": P(yuan(total)),
        },
        "needs_class": needs_class(orders, start, end),
    }


def _line_wire(line: L.Line) -> dict[str, Any]:
    if line.order is not None:
        o = line.order
        return {
            "order_id": o.order_id,
            "item": o.item,
            "item_name": o.item_name,
            "item_class": o.item_class,
            "rating": None if o.rating is None else o.rating.value,
            "rating_label": None if o.rating is None else o.rating.label,
            "closed_at": o.closed_at,
            "points": P(line.points),
            "natural_month": line.natural_month,
            "moved_from": line.moved_from,
        }
    a = line.adjustment
    assert a is not None
    return {
        "id": a.id,
        "points": P(a.points),
        "reason": a.reason,
        "by": a.by,
        "at": a.at,
        "for_month": a.month,
        "moved_from": line.moved_from,
    }


async def _statement(ctx: Context, month: str, agent: Agent) -> dict[str, Any]:
    start, end = L.month_bounds(month)
    lines, orders, approvals = await ledger_lines(ctx, (month,), start, end)
    mine = L.statement(lines, agent.id, (month,))
    total = L.sum_points(ln.points for ln in mine)
    return {
        "month": month,
        "quarter_state": quarter_state(L.quarter_key(month), approvals)["state"],
        "agent": {"agent_id": agent.id, "name": agent.name, "grids": list(agent.grids)},
        "orders": [_line_wire(ln) for ln in mine if ln.kind == "order"],
        "adjustments": [_line_wire(ln) for ln in mine if ln.kind == "adjustment"],
        "needs_class": [n for n in needs_class(orders, start, end) if n["agent_id"] == agent.id],
        "totals": {
            "orders": sum(1 for ln in mine if ln.kind == "order"),
            "points": P(total),
            "yuan": P(yuan(total)),
        },
    }


_STATEMENT_COLUMNS = (
    "类型",
    "编号",
    "事项",
    "类别",
    "评价",
    "办结时间",
    "积分",
    "原属月份",
    "说明",
)


def _statement_table(s: dict[str, Any]) -> Table:
    rows: list[list[Any]] = []
    for o in s["orders"]:
        rows.append(
            [
                "工单",
                o["order_id"],
                o["item_name"] or o["item"],
                o["item_class"],
                o["rating_label"] or "未评价",
                Time(o["closed_at"]),
                Decimal(o["points"]),
                o["moved_from"],
                "",
            ]
        )
    for a in s["adjustments"]:
        rows.append(
            [
                "调整",
                a["id"],
                "",
                None,
                "",
                Time(a["at"]),
                Decimal(a["points"]),
                a["moved_from"],
                a["reason"],
            ]
        )
    rows.append(
        [
            "合计",
            None,
            "",
            None,
            "",
            None,
            Decimal(s["totals"]["points"]),
            None,
            f"{s['totals']['yuan']} 元",
        ]
    )
    return Table(f"积分明细 {s['month']}", _STATEMENT_COLUMNS, rows)


async def month_points(request: Request) -> Response:
    """``GET /v1/admin/points?month=YYYY-MM[&agent_id=]``."""
    await principal(request, TokenKind.ADMIN)
    params.only_params(request, ("month", "agent_id"))
    fmt = report_format(request)
    month = params.month(request.query_params.get("month"))
    agent_id = params.query_id(request, "agent_id")
    ctx = context(request)
    if agent_id is not None:
        agent = await ctx.store.get_agent(agent_id)
        if agent is None:
            raise NotFoundError("no such agent")
        s = await _statement(ctx, month, agent)
        return respond(request, fmt, s, _statement_table(s), f"statement-{agent.id}-{month}")
    report = await _month_report(ctx, month)
    table = Table(
        f"积分 {month}",
        ("代办员编号", "姓名", "网格", "工单数", "积分", "金额(元)", "不满意", "未评价", "调整"),
        [
            [
                a["agent_id"],
                a["name"],
                ";".join(a["grids"]),
                a["orders"],
                Decimal(a["points"]),
                Decimal(a["yuan"]),
                a["unsatisfied"],
                a["unrated"],
                Decimal(a["adjustments"]),
            ]
            for a in report["agents"]
        ],
    )
    return respond(request, fmt, report, table, f"points-{month}")


async def agent_points(request: Request) -> Response:
    """``GET /v1/agent/points?month=``: the calling agent's own statement."""
    who: Principal = await principal(request, TokenKind.AGENT)
    assert who.agent is not None
    params.only_params(request, ("month",))
    fmt = report_format(request)
    month = params.month(request.query_params.get("month"))
    s = await _statement(context(request), month, who.agent)
    return respond(request, fmt, s, _statement_table(s), f"statement-{who.agent.id}-{month}")


# --- adjustments and classes ---------------------------------------------------------------


def _points_value(data: dict[str, Any]) -> Decimal:
    raw = data.get("points")
    if raw is None:
        raise validate.invalid("points", "'points' is required", "missing_field")
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise validate.invalid("points", "'points' must be a decimal string such as \"-1.5\"")
    try:
        return L.check_adjustment_points(str(raw))
    except (ValueError, InvalidOperation) as exc:
        raise validate.invalid("points", f"'points': {exc}") from None


async def add_adjustment(request: Request) -> Response:
    """``POST /v1/admin/adjustments`` {agent_id, month, points, reason}: append-only."""
    who = await principal(request, TokenKind.ADMIN)
    data = await body(request)
    validate.only_fields(data, ("agent_id", "month", "points", "reason"))
    agent_id = params.body_id(data, "agent_id")
    if not isinstance(data.get("month"), str | None):
        raise validate.invalid("month", "'month' must be YYYY-MM")
    month = params.month(data.get("month"))
    points = _points_value(data)
    reason = validate.text(data, "reason", max_len=followup.COMMENT_MAX)
    assert reason is not None
    ctx = context(request)
    now = ctx.clock()
    if month > L.month_key(now):
        raise validate.invalid("month", "'month' is in the future")
    adj = await ctx.store.add_adjustment(agent_id, month, points, reason, who.actor, now)
    if adj is None:
        raise validate.invalid("agent_id", "no such agent", "unknown_agent")
    line = L.adjustment_line(adj, await ctx.store.approvals())
    return answer(request, {**_line_wire(line), "agent_id": agent_id, "month": line.month}, 201)


async def classify(request: Request) -> Response:
    """``POST /v1/admin/points/classify`` {order_id, item_class, reason}: give a closed
    order without a class (free text never classified) its class, so that it earns."""
    who = await principal(request, TokenKind.ADMIN)
    data = await body(request)
    validate.only_fields(data, ("order_id", "item_class", "reason"))
    order_id = params.body_id(data, "order_id")
    item_class = data.get("item_class")
    if item_class is None:
        raise validate.invalid("item_class", "'item_class' is required", "missing_field")
    if isinstance(item_class, bool) or item_class not in (1, 2):
        raise validate.invalid("item_class", "'item_class' must be 1 or 2")
    reason = validate.text(data, "reason", max_len=followup.COMMENT_MAX)
    assert reason is not None
    ctx = context(request)
    now = ctx.clock()
    result = await ctx.store.classify_for_points(order_id, item_class, reason, who.actor, now)
    if result == "unknown_order":
        raise NotFoundError("no such order")
    if result == "not_closed":
        raise ConflictError("only a closed order is classified here", code="not_closed")
    if result == "has_class":
        raise ConflictError("this order has its class already", code="has_class")
    order = await ctx.store.get_order(order_id)
    assert order is not None
    closed = await ctx.store.ledger_orders(now, now + 1)
    record = next((o for o in closed if o.order_id == order_id), None)
    line = None if record is None else L.order_line(record, await ctx.store.approvals())
    return answer(
        request,
        {
            "order_id": order_id,
            "item_class": item_class,
            "month": None if line is None else line.month,
            "points": None if line is None else P(line.points),
            "moved_from": None if line is None else line.moved_from,
        },
    )


routes = [
    Route("/v1/admin/points", month_points, methods=["GET"]),
    Route("/v1/admin/points/classify", classify, methods=["POST"]),
    Route("/v1/admin/adjustments", add_adjustment, methods=["POST"]),
    Route("/v1/agent/points", agent_points, methods=["GET"]),
]
