"""Quarterly payouts over HTTP: the quarter's points per agent with township subtotals, and
the approval that freezes it (admin token).  Every report also as CSV and XLSX."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dispatcher.context import Context
from dispatcher.core import ledger as L
from dispatcher.core import oversight, validate
from dispatcher.core.points import yuan
from dispatcher.core.roster import TokenKind
from dispatcher.web import params
from dispatcher.web.exports import Table, report_format, respond
from dispatcher.web.http import answer, body, context, principal, refusal_error
from dispatcher.web.points import (
    P,
    agent_row,
    agents_by_id,
    ledger_lines,
    needs_class,
    quarter_state,
)

# --- payouts -------------------------------------------------------------------------------


async def _payout(ctx: Context, quarter: str) -> dict[str, Any]:
    months = L.quarter_months(quarter)
    start, end = L.quarter_bounds(quarter)
    lines, orders, approvals = await ledger_lines(ctx, months, start, end)
    per = L.quarterly(lines, quarter)
    names = agents_by_id(await ctx.store.list_agents())
    tree = await ctx.store.grid_tree()
    levels = {code: (lvl, parent) for code, (lvl, parent, _) in tree.items()}

    def township(agent_id: int) -> str:
        agent = names.get(agent_id)
        if agent is None or not agent.grids:
            return ""
        return oversight.ancestor(agent.grids[0], "township", levels)

    rows = []
    for agent_id, t in per.items():
        monthly = {
            m: P(L.monthly(lines, m).get(agent_id, L.AgentTotal(agent_id)).points) for m in months
        }
        rows.append(
            {
                **agent_row(t, names.get(agent_id)),
                "township": township(agent_id),
                "months": monthly,
            }
        )
    group = {a: township(a) for a in per}
    subtotals = L.subtotals(per, group)
    total = L.sum_points(t.points for t in per.values())
    return {
        "quarter": quarter,
        "months": list(months),
        **quarter_state(quarter, approvals),
        "agents": rows,
        "townships": [
            {
                "township": code,
                "name": tree.get(code, ("", None, ""))[2] or None,
                "agents": sum(1 for a in per if group[a] == code),
                "points": P(pts),
                "yuan": P(yuan(pts)),
            }
            for code, pts in subtotals.items()
        ],
        "totals": {
            "orders": sum(t.orders for t in per.values()),
            "points": P(total),
            "yuan": P(yuan(total)),
        },
        "needs_class": needs_class(orders, start, end),
    }


def _payout_table(p: dict[str, Any]) -> Table:
    months = p["months"]
    columns = (
        "代办员编号",
        "姓名",
        "乡镇",
        *(f"{m} 积分" for m in months),
        "工单数",
        "季度积分",
        "金额(元)",
    )
    rows: list[list[Any]] = [
        [
            a["agent_id"],
            a["name"],
            a["township"],
            *(Decimal(a["months"][m]) for m in months),
            a["orders"],
            Decimal(a["points"]),
            Decimal(a["yuan"]),
        ]
        for a in p["agents"]
    ]
    for t in p["townships"]:
        rows.append(
            [
                "乡镇小计",
                t["name"] or t["township"] or "未归属",
                t["township"],
                *([None] * len(months)),
                None,
                Decimal(t["points"]),
                Decimal(t["yuan"]),
            ]
        )
    rows.append(
        [
            "合计",
            "",
            "",
            *([None] * len(months)),
            p["totals"]["orders"],
            Decimal(p["totals"]["points"]),
            Decimal(p["totals"]["yuan"]),
        ]
    )
    state = "已审定" if p["state"] == "approved" else "未审定"
    return Table(f"{p['quarter']} 发放 {state}", columns, rows)


async def payouts(request: Request) -> Response:
    """``GET /v1/admin/payouts?quarter=YYYY-Qn``: the approved snapshot, or the live figures
    of an open quarter."""
    await principal(request, TokenKind.ADMIN)
    params.only_params(request, ("quarter",))
    fmt = report_format(request)
    quarter = params.quarter(request.query_params.get("quarter"))
    ctx = context(request)
    report = await ctx.store.approval_snapshot(quarter) or await _payout(ctx, quarter)
    return respond(request, fmt, report, _payout_table(report), f"payout-{quarter}")


async def approve(request: Request) -> Response:
    """``POST /v1/admin/payouts/{quarter}/approve``: freeze the quarter with its payout."""
    who = await principal(request, TokenKind.ADMIN)
    quarter = params.quarter(request.path_params["quarter"])
    validate.only_fields(await body(request, empty_ok=True), ())
    ctx = context(request)
    now = ctx.clock()
    refusal = L.can_approve(quarter, now, await ctx.store.approvals())
    if refusal is not None:
        raise refusal_error(refusal)
    report = await _payout(ctx, quarter)
    report |= {"state": "approved", "approved_at": now, "approved_by": who.actor}
    if not await ctx.store.approve(quarter, now, who.actor, report):
        raise refusal_error(L.AlreadyApproved(quarter))  # another approval won the race
    return answer(request, report, 201)


routes = [
    Route("/v1/admin/payouts", payouts, methods=["GET"]),
    Route("/v1/admin/payouts/{quarter}/approve", approve, methods=["POST"]),
]
