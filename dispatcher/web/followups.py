"""Follow-up calls (回访) over HTTP (admin token): draw a month's sample, the call list, the
outcomes.  Sampled orders and outcomes go into the orders' trails."""

from __future__ import annotations

import secrets
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dispatcher.context import Context
from dispatcher.core import followup, validate
from dispatcher.core import ledger as L
from dispatcher.core.roster import TokenKind
from dispatcher.exceptions import ConflictError, NotFoundError, RequestError
from dispatcher.web import params
from dispatcher.web.exports import Table, report_format, respond
from dispatcher.web.http import answer, body, context, principal
from dispatcher.web.points import ledger_lines

P = L.points_text

# --- follow-up calls -----------------------------------------------------------------------


async def draw_sample(request: Request) -> Response:
    """``POST /v1/admin/followups/{month}/sample`` [{seed, share}]: draw the month's sample
    (once; the month must be over)."""
    who = await principal(request, TokenKind.ADMIN)
    month = params.month(request.path_params["month"])
    data = await body(request, empty_ok=True)
    validate.only_fields(data, ("seed", "share"))
    ctx = context(request)
    seed = data.get("seed")
    if seed is None:
        seed = secrets.randbits(62)
    elif isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**62:
        raise validate.invalid("seed", "'seed' must be a whole number from 0 to 2^62-1")
    share = ctx.settings.followup_share
    if data.get("share") is not None:
        if not isinstance(data["share"], str):
            raise validate.invalid("share", "'share' must be a decimal string such as \"0.1\"")
        try:
            share = Decimal(data["share"])
        except InvalidOperation:
            raise validate.invalid("share", "'share' must be a decimal string") from None
        if not share.is_finite() or not followup.SHARE_MIN <= share <= followup.SHARE_MAX:
            raise validate.invalid("share", "'share' must be between 0.001 and 1")
        if share != share.quantize(Decimal("0.0001")):
            raise validate.invalid("share", "'share' has at most four decimal places")
    now = ctx.clock()
    start, end = L.month_bounds(month)
    if now < end:
        raise ConflictError(f"{month} is not over yet (local time)", code="month_not_over")
    lines, _, _ = await ledger_lines(ctx, (month,), start, end)
    pool = [
        followup.Candidate(ln.ref, ln.agent_id)
        for ln in lines
        if ln.kind == "order" and ln.month == month
    ]
    chosen = followup.select(pool, share, seed)
    if not await ctx.store.save_followup_sample(
        month, seed, share, len(pool), chosen, who.actor, now
    ):
        raise ConflictError(f"{month} has its sample already", code="already_sampled")
    return answer(request, await _call_report(ctx, month), 201)


async def _call_report(ctx: Context, month: str) -> dict[str, Any]:
    sample = await ctx.store.followup_sample(month)
    if sample is None:
        raise NotFoundError(f"{month} has no follow-up sample yet", code="no_sample")
    calls = await ctx.store.call_list(sample["order_ids"])
    for c in calls:
        rating = c.pop("rating")
        c["rating"] = None if rating is None else rating.value
        c["rating_label"] = None if rating is None else rating.label
    return {
        "month": month,
        "seed": sample["seed"],
        "share": P(sample["share"]),
        "candidates": sample["candidates"],
        "drawn_at": sample["at"],
        "drawn_by": sample["by"],
        "orders": calls,
    }


async def call_list(request: Request) -> Response:
    """``GET /v1/admin/followups?month=``: the month's call list with outcomes so far."""
    await principal(request, TokenKind.ADMIN)
    params.only_params(request, ("month",))
    fmt = report_format(request)
    month = params.month(request.query_params.get("month"))
    report = await _call_report(context(request), month)

    def yes_no(v: bool | None) -> str:
        return "" if v is None else ("是" if v else "否")

    table = Table(
        f"回访 {month}",
        (
            "工单",
            "申请人",
            "电话",
            "代办员",
            "事项",
            "评价",
            "已接通",
            "满意",
            "与评价不符",
            "备注",
        ),
        [
            [
                c["order_id"],
                c["applicant_name"],
                c["applicant_phone"],
                c["agent_name"],
                c["item_name"],
                c["rating_label"] or "未评价",
                *(
                    (
                        yes_no(c["call"]["reached"]),
                        yes_no(c["call"]["satisfied"]),
                        yes_no(c["call"]["contradicts"]),
                        c["call"]["comment"],
                    )
                    if c["call"]
                    else ("", "", "", "")
                ),
            ]
            for c in report["orders"]
        ],
    )
    return respond(request, fmt, report, table, f"followups-{month}")


async def record_call(request: Request) -> Response:
    """``POST /v1/admin/followups/calls`` {order_id, reached, satisfied, comment}."""
    who = await principal(request, TokenKind.ADMIN)
    data = await body(request)
    validate.only_fields(data, ("order_id", "reached", "satisfied", "comment"))
    order_id = params.body_id(data, "order_id")
    reached = params.flag(data, "reached")
    satisfied = params.flag(data, "satisfied", nullable=True)
    assert reached is not None
    if not reached and satisfied is not None:
        raise validate.invalid("satisfied", "'satisfied' must be null when nobody was reached")
    comment = validate.text(data, "comment", max_len=followup.COMMENT_MAX, required=False)
    ctx = context(request)
    order = await ctx.store.get_order(order_id)
    if order is None:
        raise NotFoundError("no such order")
    month = await ctx.store.sample_month_of(order_id)
    if month is None:
        raise RequestError(
            "this order is in no follow-up sample",
            code="not_sampled",
            status=422,
            details={"field": "order_id"},
        )
    outcome = followup.Outcome(reached, satisfied, comment)
    flag = followup.contradicts(order.rating, outcome)
    await ctx.store.record_call(order_id, month, outcome, flag, who.actor, ctx.clock())
    return answer(
        request,
        {
            "order_id": order_id,
            "month": month,
            "reached": reached,
            "satisfied": satisfied,
            "comment": comment,
            "contradicts": flag,
        },
        201,
    )


routes = [
    Route("/v1/admin/followups", call_list, methods=["GET"]),
    Route("/v1/admin/followups/{month}/sample", draw_sample, methods=["POST"]),
    Route("/v1/admin/followups/calls", record_call, methods=["POST"]),
]
