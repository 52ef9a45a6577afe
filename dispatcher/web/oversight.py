"""Oversight over HTTP (admin token): the inactive list, the ranking, the figures per grid,
township and county, and fair play in the grab.  Every report also as CSV and XLSX."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dispatcher.core import fairplay, oversight, validate
from dispatcher.core import ledger as L
from dispatcher.core.roster import TokenKind
from dispatcher.web import params
from dispatcher.web.exports import Table, Time, report_format, respond
from dispatcher.web.http import context, principal
from dispatcher.web.points import agent_row, agents_by_id, ledger_lines

P = L.points_text
RANK_LIMIT_MAX = 500

# --- oversight -----------------------------------------------------------------------------


async def inactive(request: Request) -> Response:
    """``GET /v1/admin/oversight/inactive[?days=]``: the list for dismissal."""
    await principal(request, TokenKind.ADMIN)
    params.only_params(request, ("days",))
    fmt = report_format(request)
    ctx = context(request)
    days = params.query_int(request, "days", ctx.settings.inactive_days, 1, 3650)
    now = ctx.clock()
    listed = oversight.inactive(await ctx.store.agent_activity(), now, days)
    report = {"days": days, "at": now, "agents": listed}
    table = Table(
        f"{days}天未办理",
        ("代办员编号", "姓名", "网格", "最近办理", "未办理天数"),
        [
            [
                a["agent_id"],
                a["name"],
                ";".join(a["grids"]),
                Time(a["last_active_at"]),
                "从未办理" if a["idle_days"] is None else a["idle_days"],
            ]
            for a in listed
        ],
    )
    return respond(request, fmt, report, table, f"inactive-{days}d")


async def top(request: Request) -> Response:
    """``GET /v1/admin/oversight/top?month=|quarter=[&limit=]``: ranking for commendation."""
    await principal(request, TokenKind.ADMIN)
    params.only_params(request, ("month", "quarter", "limit"))
    fmt = report_format(request)
    label, months, start, end = params.period(request)
    limit = params.query_int(request, "limit", 10, 1, RANK_LIMIT_MAX)
    ctx = context(request)
    lines, _, _ = await ledger_lines(ctx, months, start, end)
    per = L.totals(lines, months)
    names = agents_by_id(await ctx.store.list_agents())
    ranked = oversight.ranking({a: (t.orders, t.points) for a, t in per.items()}, limit)
    rows = [{"rank": rank, **agent_row(per[a], names.get(a))} for a, rank in ranked]
    table = Table(
        f"排名 {label}",
        ("名次", "代办员编号", "姓名", "网格", "工单数", "积分", "不满意"),
        [
            [
                r["rank"],
                r["agent_id"],
                r["name"],
                ";".join(r["grids"]),
                r["orders"],
                Decimal(r["points"]),
                r["unsatisfied"],
            ]
            for r in rows
        ],
    )
    return respond(request, fmt, {"period": label, "agents": rows}, table, f"top-{label}")


_LEVELS = ("grid", "township", "county")
_FIGURE_COLUMNS = (
    "filed",
    "claimed",
    "claimed_in_time",
    "widened",
    "escalated",
    "median_claim_ms",
    "on_time",
    "closed",
    "rated",
    "satisfaction",
    "participation",
)
_FIGURE_LABELS = (
    "受理工单",
    "已接单",
    "10分钟内接单率",
    "扩散率",
    "转交率",
    "接单时长中位数(毫秒)",
    "按时办结率",
    "已办结",
    "已评价",
    "实际参评满意率",
    "参评率",
)


def _wire_figures(f: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (P(v) if isinstance(v, Decimal) else v) for k, v in f.items()}


async def figures(request: Request) -> Response:
    """``GET /v1/admin/oversight/figures?month=|quarter=[&by=grid|township|county]``."""
    await principal(request, TokenKind.ADMIN)
    params.only_params(request, ("month", "quarter", "by"))
    fmt = report_format(request)
    label, _, start, end = params.period(request)
    by = request.query_params.get("by", "grid")
    if by not in _LEVELS:
        raise validate.invalid("by", "'by' must be grid, township or county")
    ctx = context(request)
    tree = await ctx.store.grid_tree()
    levels = {code: (lvl, parent) for code, (lvl, parent, _) in tree.items()}
    facts = await ctx.store.order_facts(start, end)
    group_of = {
        code: code if by == "grid" else oversight.ancestor(code, by, levels)
        for code in {f.grid for f in facts}
    }
    window = round(ctx.settings.schedule[-1].after * 1000)
    groups = oversight.grouped(facts, group_of, window)
    rows = [
        {by: code or None, "name": tree.get(code, ("", None, ""))[2] or None, **_wire_figures(f)}
        for code, f in groups.items()
    ]
    report = {
        "period": label,
        "by": by,
        "window_ms": window,
        "groups": rows,
        "all": _wire_figures(oversight.figures(facts, window)),
    }
    table = Table(
        f"督查 {label}",
        ("代码", "名称", *_FIGURE_LABELS),
        [
            [
                r[by],
                r["name"],
                *(Decimal(r[k]) if isinstance(r[k], str) else r[k] for k in _FIGURE_COLUMNS),
            ]
            for r in rows
        ],
    )
    return respond(request, fmt, report, table, f"oversight-{by}-{label}")


# --- fair play -----------------------------------------------------------------------------


async def fair_play(request: Request) -> Response:
    """``GET /v1/admin/fairplay?month=|quarter=[&grid=]``: per agent offers, claims, wins,
    reaction times and flags; per grid shares of wins against shares of offers."""
    await principal(request, TokenKind.ADMIN)
    params.only_params(request, ("month", "quarter", "grid"))
    fmt = report_format(request)
    label, _, start, end = params.period(request)
    grid_filter = request.query_params.get("grid")
    if grid_filter is not None and not validate.CODE_RE.match(grid_filter):
        raise validate.invalid("grid", "'grid' must be a grid code")
    ctx = context(request)
    s = ctx.settings
    thresholds = fairplay.Thresholds(s.fast_claim_ms, s.regular_cv, s.regular_min_claims)
    counts = await ctx.store.offer_counts(params.local_day(start), params.local_day(end - 1))
    timings = await ctx.store.claim_timings(start, end)
    if grid_filter is not None:
        counts = {k: n for k, n in counts.items() if k[1] == grid_filter}
        timings = [t for t in timings if t.grid == grid_filter]
    offers: dict[int, int] = {}
    for (agent_id, _), n in counts.items():
        offers[agent_id] = offers.get(agent_id, 0) + n
    names = agents_by_id(await ctx.store.list_agents())
    agents = []
    for p in fairplay.profiles(offers, timings, thresholds):
        agent = names.get(p.agent_id)
        agents.append({**p.summary(), "name": None if agent is None else agent.name})
    grids: dict[str, tuple[dict[int, int], dict[int, int]]] = {}
    for (agent_id, grid), n in counts.items():
        grids.setdefault(grid, ({}, {}))[0][agent_id] = n
    for t in timings:
        if t.outcome == "won":
            wins = grids.setdefault(t.grid, ({}, {}))[1]
            wins[t.agent_id] = wins.get(t.agent_id, 0) + 1
    fairness = [
        {
            "grid": grid,
            "agents": [
                {
                    "agent_id": sh.agent_id,
                    "offers": sh.offers,
                    "wins": sh.wins,
                    "offer_share": P(sh.offer_share),
                    "win_share": P(sh.win_share),
                    "ratio": None if sh.ratio is None else P(sh.ratio),
                }
                for sh in fairplay.fairness(o, w)
            ],
        }
        for grid, (o, w) in sorted(grids.items())
    ]
    report = {
        "period": label,
        "thresholds": {
            "fast_ms": s.fast_claim_ms,
            "regular_cv": s.regular_cv,
            "regular_min_claims": s.regular_min_claims,
            "min_reaction_ms": s.min_reaction_ms,
        },
        "agents": agents,
        "grids": fairness,
    }

    def stat(a: dict[str, Any], key: str) -> Any:
        reaction: dict[str, Any] = a["reaction"]
        return reaction.get(key)

    table = Table(
        f"公平抢单 {label}",
        (
            "代办员编号",
            "姓名",
            "推送",
            "抢单",
            "抢中",
            "被忽略",
            "过快",
            "最快(毫秒)",
            "中位数(毫秒)",
            "变异系数",
            "标记",
        ),
        [
            [
                a["agent_id"],
                a["name"],
                a["offers"],
                a["claims"],
                a["wins"],
                a["ignored"],
                a["fast_claims"],
                stat(a, "min_ms"),
                stat(a, "p50_ms"),
                stat(a, "cv"),
                ";".join(str(f) for f in a["flags"]),
            ]
            for a in agents
        ],
    )
    return respond(request, fmt, report, table, f"fairplay-{label}")


routes = [
    Route("/v1/admin/oversight/inactive", inactive, methods=["GET"]),
    Route("/v1/admin/oversight/top", top, methods=["GET"]),
    Route("/v1/admin/oversight/figures", figures, methods=["GET"]),
    Route("/v1/admin/fairplay", fair_play, methods=["GET"]),
]
