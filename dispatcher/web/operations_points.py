"""Operations of points, payouts, oversight, fair play and follow-up calls (see
:mod:`.schemas`; merged into :data:`dispatcher.web.operations.OPERATIONS`).

These endpoints check their query strings and bodies by hand (:mod:`dispatcher.web.params`);
the declarations here say what they check.  Points and yuan are decimal strings.
"""

from __future__ import annotations

from dispatcher.core import fields as f
from dispatcher.core.followup import COMMENT_MAX
from dispatcher.core.query import Query
from dispatcher.web.exports import XLSX
from dispatcher.web.schemas import ADMIN, AGENT, MSGPACK, Answer, Operation

Json = dict[str, object]

_MONTH_RE = "^2[0-9]{3}-(0[1-9]|1[0-2])$"
_QUARTER_RE = "^2[0-9]{3}-Q[1-4]$"
_DECIMAL = {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$", "description": "decimal"}
_ID = {"type": "integer", "minimum": 1, "maximum": 2**62 - 1}

FORMAT = Query(
    "format",
    {"type": "string", "enum": ["json", "csv", "xlsx"]},
    "json (default), csv (UTF-8 with BOM) or xlsx; files are attachments named by the report.",
)
MONTH = Query(
    "month",
    {"type": "string", "pattern": _MONTH_RE},
    "YYYY-MM (2000-2999), Asia/Shanghai local time.",
)
QUARTER = Query(
    "quarter",
    {"type": "string", "pattern": _QUARTER_RE},
    "YYYY-Qn (2000-2999), Asia/Shanghai local time.",
)
_PERIOD_DOC = "  Give exactly one of `month` and `quarter` (else 422 `invalid_value`)."
_PARAM_ERRORS: dict[int, tuple[str, ...]] = {
    422: ("missing_field", "unknown_field", "invalid_value")
}
"""A missing required parameter, one not listed (``unknown_field``), a malformed one."""
_BODY_ERRORS: dict[int, tuple[str, ...]] = {
    422: ("missing_field", "unknown_field", "invalid_value")
}


def report(description: str, schema: Json | None = None) -> Answer:
    """A report: JSON (or msgpack), CSV or XLSX by ``?format=``."""
    body: Json = schema or {"type": "object"}
    return Answer(
        description,
        dict(body),
        also={
            MSGPACK: dict(body),
            "text/csv": {"type": "string"},
            XLSX: {"type": "string", "contentMediaType": XLSX},
        },
    )


def _obj(required: tuple[str, ...], **props: Json) -> Json:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(required),
        "properties": props,
    }


_TOTALS: Json = {
    "type": "object",
    "required": ["orders", "points", "yuan"],
    "properties": {"orders": {"type": "integer"}, "points": _DECIMAL, "yuan": _DECIMAL},
}
_STATEMENT: Json = {
    "type": "object",
    "required": ["month", "quarter_state", "agent", "orders", "adjustments", "totals"],
    "properties": {
        "month": {"type": "string"},
        "quarter_state": {"type": "string", "enum": ["open", "approved"]},
        "agent": {"type": "object"},
        "orders": {"type": "array", "items": {"type": "object"}},
        "adjustments": {"type": "array", "items": {"type": "object"}},
        "needs_class": {"type": "array", "items": {"type": "object"}},
        "totals": _TOTALS,
    },
}
_MONTH_REPORT: Json = {
    "type": "object",
    "required": ["month", "quarter", "quarter_state", "agents", "totals", "needs_class"],
    "properties": {
        "month": {"type": "string"},
        "quarter": {"type": "string"},
        "quarter_state": {"type": "string", "enum": ["open", "approved"]},
        "agents": {"type": "array", "items": {"type": "object"}},
        "totals": _TOTALS,
        "needs_class": {"type": "array", "items": {"type": "object"}},
    },
}
_PAYOUT: Json = {
    "type": "object",
    "required": ["quarter", "months", "state", "agents", "townships", "totals"],
    "properties": {
        "quarter": {"type": "string"},
        "months": {"type": "array", "items": {"type": "string"}},
        "state": {"type": "string", "enum": ["open", "approved"]},
        "approved_at": {"type": ["integer", "null"]},
        "approved_by": {"type": ["string", "null"]},
        "agents": {"type": "array", "items": {"type": "object"}},
        "townships": {"type": "array", "items": {"type": "object"}},
        "totals": _TOTALS,
        "needs_class": {"type": "array", "items": {"type": "object"}},
    },
}
_CALLS: Json = {
    "type": "object",
    "required": ["month", "seed", "share", "candidates", "drawn_at", "drawn_by", "orders"],
    "properties": {
        "month": {"type": "string"},
        "seed": {"type": "integer"},
        "share": _DECIMAL,
        "candidates": {"type": "integer"},
        "drawn_at": {"type": "integer"},
        "drawn_by": {"type": "string"},
        "orders": {"type": "array", "items": {"type": "object"}},
    },
}
_REASON = {"type": "string", "minLength": 1, "maxLength": COMMENT_MAX, "pattern": f.LINE_PATTERN}

POINTS_OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "/v1/admin/points"): Operation(
        "month_points",
        "Points of a month (积分)",
        "Every agent's orders, points and yuan for the month, with the orders still needing a"
        " class; with `agent_id`, that agent's statement (404 for an unknown agent).",
        "points",
        (ADMIN,),
        {200: report("The month's points, or one agent's statement.")},
        query=(
            Query(MONTH.name, MONTH.json_schema, MONTH.doc, required=True),
            Query("agent_id", _ID, "One agent's statement."),
            FORMAT,
        ),
        errors=_PARAM_ERRORS | {404: ("not_found",)},
    ),
    ("GET", "/v1/agent/points"): Operation(
        "my_points",
        "The calling agent's statement (我的积分)",
        "The agent's own orders, adjustments and totals for the month.",
        "points",
        (AGENT,),
        {200: report("The statement.", _STATEMENT)},
        query=(Query(MONTH.name, MONTH.json_schema, MONTH.doc, required=True), FORMAT),
        errors=_PARAM_ERRORS,
    ),
    ("POST", "/v1/admin/adjustments"): Operation(
        "add_adjustment",
        "Adjust an agent's points",
        "Append-only: a correction is another adjustment; 0 points is refused.  `month` may"
        " not be in the future;"
        " an adjustment for an approved quarter counts in the next open month (`moved_from`)."
        "  422 `unknown_agent` for an agent that does not exist.",
        "points",
        (ADMIN,),
        {201: Answer("The ledger line.", {"type": "object"})},
        raw_body=_obj(
            ("agent_id", "month", "points", "reason"),
            agent_id=_ID,
            month={"type": "string", "pattern": _MONTH_RE},
            points={
                "anyOf": [_DECIMAL, {"type": "integer"}],
                "description": 'Points to add (negative to take), e.g. "-1.5".',
            },
            reason=_REASON,
        ),
        errors=_BODY_ERRORS | {422: (*_BODY_ERRORS[422], "unknown_agent")},
    ),
    ("POST", "/v1/admin/points/classify"): Operation(
        "classify_for_points",
        "Give a closed order its class",
        "A closed free-text order that was never classified earns nothing until an operator"
        " gives it `item_class` 1 or 2.  404 for an unknown order; 409 `not_closed` or"
        " `has_class`.",
        "points",
        (ADMIN,),
        {200: Answer("The order's class and the points it now earns.", {"type": "object"})},
        raw_body=_obj(
            ("order_id", "item_class", "reason"),
            order_id=_ID,
            item_class={"type": "integer", "enum": [1, 2]},
            reason=_REASON,
        ),
        errors=_BODY_ERRORS | {404: ("not_found",), 409: ("not_closed", "has_class")},
    ),
    ("GET", "/v1/admin/payouts"): Operation(
        "payouts",
        "A quarter's payout (季度发放)",
        "Per agent the points of each month, the quarter's points and yuan, township subtotals."
        "  An approved quarter answers its frozen snapshot; an open one its live figures.",
        "points",
        (ADMIN,),
        {200: report("The payout.", _PAYOUT)},
        query=(Query(QUARTER.name, QUARTER.json_schema, QUARTER.doc, required=True), FORMAT),
        errors=_PARAM_ERRORS,
    ),
    ("POST", "/v1/admin/payouts/{quarter}/approve"): Operation(
        "approve_payout",
        "Approve (审定) a quarter's payout",
        "Freezes the quarter: its payout is kept as approved, later adjustments move to the next"
        " open month.  `quarter` is YYYY-Qn (else 422 `invalid_value`); the quarter must be"
        " over (409 `quarter_not_over`) and is approved once (409 `already_approved`).  The"
        " body, if any, is an empty object.",
        "points",
        (ADMIN,),
        {201: Answer("The approved payout.", _PAYOUT)},
        raw_body=_obj(()),
        errors={
            422: ("invalid_value", "unknown_field"),
            409: ("quarter_not_over", "already_approved"),
        },
    ),
    ("GET", "/v1/admin/oversight/inactive"): Operation(
        "inactive_agents",
        "Agents who handled nothing lately (督查: 长期未办理)",
        "Agents with no order handled in `days` days (default BANGBAN_INACTIVE_DAYS), for"
        " dismissal.",
        "oversight",
        (ADMIN,),
        {200: report("The list.")},
        query=(
            Query("days", {"type": "integer", "minimum": 1, "maximum": 3650}, "Idle days."),
            FORMAT,
        ),
        errors=_PARAM_ERRORS,
    ),
    ("GET", "/v1/admin/oversight/top"): Operation(
        "top_agents",
        "Ranking for commendation (排名)",
        "Agents by orders then points over the period." + _PERIOD_DOC,
        "oversight",
        (ADMIN,),
        {200: report("The ranking.")},
        query=(
            MONTH,
            QUARTER,
            Query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "How many (10)."),
            FORMAT,
        ),
        errors=_PARAM_ERRORS,
    ),
    ("GET", "/v1/admin/oversight/figures"): Operation(
        "oversight_figures",
        "Dispatch figures per grid, township or county",
        "Filed, claimed in time, widened, escalated, median claim time, on time, satisfaction"
        " and participation, by `by` (default grid)." + _PERIOD_DOC,
        "oversight",
        (ADMIN,),
        {200: report("The figures.")},
        query=(
            MONTH,
            QUARTER,
            Query("by", {"type": "string", "enum": ["grid", "township", "county"]}, "Grouping."),
            FORMAT,
        ),
        errors=_PARAM_ERRORS,
    ),
    ("GET", "/v1/admin/fairplay"): Operation(
        "fair_play",
        "Fair play in the grab (公平抢单)",
        "Per agent offers, claims, wins, reaction times and flags (`too_fast`,"
        " `machine_regular`); per grid each agent's share of wins against its share of offers."
        + _PERIOD_DOC,
        "oversight",
        (ADMIN,),
        {200: report("The report.")},
        query=(
            MONTH,
            QUARTER,
            Query("grid", {"type": "string", "minLength": 1, "maxLength": 64}, "One grid."),
            FORMAT,
        ),
        errors=_PARAM_ERRORS,
    ),
    ("GET", "/v1/admin/followups"): Operation(
        "followup_calls",
        "A month's follow-up call list (回访)",
        "The sampled orders with the applicants' contacts and the outcomes so far.  404"
        " `no_sample` before the month's sample is drawn.",
        "followups",
        (ADMIN,),
        {200: report("The call list.", _CALLS)},
        query=(Query(MONTH.name, MONTH.json_schema, MONTH.doc, required=True), FORMAT),
        errors=_PARAM_ERRORS | {404: ("no_sample",)},
    ),
    ("POST", "/v1/admin/followups/{month}/sample"): Operation(
        "draw_followup_sample",
        "Draw a month's follow-up sample",
        "Once per month, after it is over (409 `month_not_over`, `already_sampled`).  `month`"
        " is YYYY-MM (else 422).  `seed` makes the draw repeatable (random by default);"
        " `share` is the sampled share (default BANGBAN_FOLLOWUP_SHARE).",
        "followups",
        (ADMIN,),
        {201: Answer("The call list.", _CALLS)},
        raw_body=_obj(
            (),
            seed={"type": "integer", "minimum": 0, "maximum": 2**62 - 1},
            share={
                "type": "string",
                "pattern": "^[0-9]+(\\.[0-9]{1,4})?$",
                "description": "0.001 to 1, at most four decimals.",
            },
        ),
        errors=_BODY_ERRORS | {404: ("no_sample",), 409: ("month_not_over", "already_sampled")},
    ),
    ("POST", "/v1/admin/followups/calls"): Operation(
        "record_followup_call",
        "Record a follow-up call's outcome",
        "`satisfied` must be null when nobody was reached.  The outcome goes into the order's"
        " trail; `contradicts` says it disagrees with the applicant's rating.  404 for an"
        " unknown order, 422 `not_sampled` for an order in no sample.",
        "followups",
        (ADMIN,),
        {201: Answer("The outcome recorded.", {"type": "object"})},
        raw_body=_obj(
            ("order_id", "reached"),
            order_id=_ID,
            reached={"type": "boolean"},
            satisfied={"type": ["boolean", "null"]},
            comment={"type": ["string", "null"], "maxLength": COMMENT_MAX},
        ),
        errors=_BODY_ERRORS | {422: (*_BODY_ERRORS[422], "not_sampled"), 404: ("not_found",)},
    ),
}
