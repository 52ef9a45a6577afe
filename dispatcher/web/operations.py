"""The table of operations: every route of the app, described (see :mod:`.schemas`).

:mod:`dispatcher.web.openapi` builds the document from :data:`OPERATIONS`; a route of the app
missing here fails ``tests/web/test_openapi.py``.
"""

from __future__ import annotations

from dispatcher.core.lifecycle import Action
from dispatcher.flows.filing import ORDER_BODY
from dispatcher.web.answers import ACTED, CLAIM_RESULT, EVENT, FILED, HEALTH, ITEM, ORDER, list_of
from dispatcher.web.open311_schema import OPEN311_OPERATIONS
from dispatcher.web.operations_admin import ADMIN_OPERATIONS
from dispatcher.web.operations_pages import PAGE_OPERATIONS
from dispatcher.web.operations_points import POINTS_OPERATIONS
from dispatcher.web.operations_sms import SMS_OPERATIONS
from dispatcher.web.schemas import (
    ACTION_BODIES,
    ACTION_ERRORS,
    ADMIN,
    AGENT,
    ALL_QUERY,
    CLAIM_BODY,
    CLASSIFY_BODY,
    INTAKE,
    ITEM_BODY,
    ITEM_PATCH,
    ITEM_PUT,
    METRICS,
    TRACKING,
    Answer,
    Operation,
    merge_codes,
)

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "1..200 visible ASCII characters, per filer: a repeat never files a second"
    " order (422 `invalid_value` if malformed, `idempotency_key_reused` with another body).",
    "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,200}$"},
}
FILING_PENDING = {
    "type": "object",
    "required": ["status", "idempotency_key", "message"],
    "properties": {
        "status": {"const": "pending"},
        "idempotency_key": {"type": "string"},
        "message": {"type": "string"},
    },
}
_ORDER_LINKS = {
    "GetOrder": {
        "operationId": "get_order",
        "parameters": {"order_id": "$response.body#/id"},
        "description": "Read the order just filed.",
    },
    "ClaimOrder": {
        "operationId": "claim_order",
        "parameters": {"order_id": "$response.body#/id"},
        "description": "An agent of its grid grabs it.",
    },
    "OrderEvents": {
        "operationId": "order_events",
        "parameters": {"order_id": "$response.body#/id"},
    },
}
_ACTION_DOCS: dict[Action, tuple[str, str, tuple[str, ...]]] = {
    Action.ACCEPT: (
        "Accept (受理) a claimed order",
        "The claiming agent checks the materials: all present, or missing ones with"
        " `supply_by` (补办件), or `green_card` for a minor one missing (容缺受理).",
        (AGENT,),
    ),
    Action.SUPPLY: ("Record supplied materials", "The claiming agent.", (AGENT,)),
    Action.PROGRESS: (
        "Note progress",
        "The claiming agent adds a trail note; `desk` says the matter went to the township or"
        " county.",
        (AGENT,),
    ),
    Action.REPLY: (
        "Reply with the result",
        "The claiming agent reports the result, references and fees advanced.",
        (AGENT,),
    ),
    Action.RATE: (
        "Rate the order",
        "The order's tracking token rates it once (一事一评).",
        (TRACKING,),
    ),
    Action.RELEASE: (
        "Release a claimed order",
        "The claiming agent gives it back; it is offered again, not to them.",
        (AGENT,),
    ),
    Action.CANCEL: (
        "Cancel an order",
        "The tracking token before acceptance, or an admin (who must give a `reason`).",
        (TRACKING, ADMIN),
    ),
    Action.REASSIGN: ("Reassign a held order", "An admin gives it to another agent.", (ADMIN,)),
    Action.ASSIGN: ("Assign an escalated order", "An admin gives it to an agent.", (ADMIN,)),
}


def _action_operation(action: Action) -> Operation:
    summary, description, auth = _ACTION_DOCS[action]
    extra: dict[int, tuple[str, ...]] = {}
    if action in (Action.REASSIGN, Action.ASSIGN):
        extra = {422: ("unknown_agent",)}
    return Operation(
        operation_id=f"{action.value}_order",
        summary=summary,
        description=description
        + " Answers the order as recorded plus `event`, the trail entry added.",
        tag="workflow",
        auth=auth,
        body=ACTION_BODIES[action],
        answers={200: Answer("The order after the action, with the trail entry.", ACTED)},
        errors=merge_codes(ACTION_ERRORS, extra),
        path_ids=("order_id",),
    )


OPERATIONS: dict[tuple[str, str], Operation] = {
    ("POST", "/v1/orders"): Operation(
        "file_order",
        "File an order",
        "A front end files a request on an applicant's behalf.  Give `item` or `text`, and"
        " `grid`, `location` or `address`.  The order is durable before the answer; it is"
        " then offered live to the agents of its grid.",
        "orders",
        (INTAKE, ADMIN),
        {
            201: Answer(
                "The order, with its tracking token and the applicant's `tracking_url`.  A"
                " repeat with the same `Idempotency-Key` and body answers the same order (with a"
                " new tracking token) and the header `Idempotency-Replayed: true`.",
                FILED,
                links=_ORDER_LINKS,
            ),
            202: Answer(
                "`pending`: the insert's answer was lost and whether it was recorded is not"
                " known yet; repeat the request with the same `Idempotency-Key` (also in the"
                " answer's headers, with `Retry-After`) to learn which.  It never files twice.",
                FILING_PENDING,
            ),
        },
        body=ORDER_BODY,
        headers=(IDEMPOTENCY_KEY,),
        errors={
            422: (
                "unknown_item",
                "retired_item",
                "unknown_grid",
                "unroutable",
                "ambiguous_address",
                "idempotency_key_reused",
            ),
            429: ("rate_limited",),
        },
    ),
    ("GET", "/v1/orders/{order_id}"): Operation(
        "get_order",
        "Read an order",
        "Admins, the claiming agent, an agent it is offered to, and its tracking token.  The"
        " applicant's contact details only for admins, the claiming agent and the tracking"
        " token.",
        "orders",
        (ADMIN, AGENT, TRACKING),
        {200: Answer("The order.", ORDER)},
        path_ids=("order_id",),
    ),
    ("POST", "/v1/orders/{order_id}/claim"): Operation(
        "claim_order",
        "Grab (抢单) an order",
        "First claim wins.  A lost claim is a 200 answer with `result` `taken`, not an error."
        "  202 with `result` `pending` when the claim's write was sent and its answer lost:"
        " repeat the same request (same `request_id`) to learn the outcome.  422 `too_fast`"
        " for a claim sooner than BANGBAN_MIN_REACTION_MS after the offer (not decided: claim"
        " again); 429 `rate_limited` past BANGBAN_CLAIM_RATE claims a minute (`Retry-After`).",
        "orders",
        (AGENT,),
        {
            200: Answer(
                "What the claim means for this agent.",
                CLAIM_RESULT,
                links={
                    "Accept": {
                        "operationId": "accept_order",
                        "parameters": {"order_id": "$response.body#/order_id"},
                    }
                },
            ),
            202: Answer("`result` `pending`: not known yet; repeat the request.", CLAIM_RESULT),
        },
        body=CLAIM_BODY,
        errors={422: ("too_fast",), 429: ("rate_limited",)},
        path_ids=("order_id",),
    ),
    ("GET", "/v1/orders/{order_id}/events"): Operation(
        "order_events",
        "The trail of an order (痕迹管理)",
        "Every event, oldest first.  Same readers as the order.",
        "orders",
        (ADMIN, AGENT, TRACKING),
        {
            200: Answer(
                "The trail.",
                {
                    "type": "object",
                    "required": ["order_id", "events"],
                    "properties": {
                        "order_id": {"type": "integer"},
                        "events": {"type": "array", "items": EVENT},
                    },
                },
            )
        },
        path_ids=("order_id",),
    ),
    **{("POST", f"/v1/orders/{{order_id}}/{a.value}"): _action_operation(a) for a in ACTION_BODIES},
    ("POST", "/v1/orders/{order_id}/classify"): Operation(
        "classify_order",
        "Give a free-text order its catalogue item",
        "An admin (or the claiming agent) names the item; its class and materials are copied.",
        "workflow",
        (ADMIN, AGENT),
        {200: Answer("The order after the action, with the trail entry.", ACTED)},
        body=CLASSIFY_BODY,
        errors=merge_codes(ACTION_ERRORS, {422: ("unknown_item", "retired_item")}),
        path_ids=("order_id",),
    ),
    ("GET", "/v1/agent/orders"): Operation(
        "my_orders",
        "The orders the calling agent holds",
        "Claimed, accepted and awaiting materials, each with `overdue`; `limit` is how many an"
        " agent may hold.",
        "orders",
        (AGENT,),
        {200: Answer("The held orders.", list_of("orders", ORDER, limit={"type": "integer"}))},
    ),
    ("GET", "/v1/healthz"): Operation(
        "healthz",
        "Health",
        "200 when Redis runs our scripts, Postgres answers and pub/sub is subscribed; 503"
        " naming what is down.  No token needed.",
        "health",
        (),
        {200: Answer("All parts answer.", HEALTH), 503: Answer("A part is down.", HEALTH)},
    ),
    ("GET", "/metrics"): Operation(
        "metrics",
        "Prometheus metrics",
        "Text exposition format.  Needs BANGBAN_METRICS_TOKEN as a bearer token when that is"
        " set, else an admin token.",
        "health",
        (METRICS, ADMIN),
        {200: Answer("Metrics.", {"type": "string"}, media="text/plain")},
    ),
    ("GET", "/v1/catalog"): Operation(
        "list_catalog",
        "The catalogue (事项目录)",
        "The live items with their service guides.  `?all=true` adds retired ones for admins.",
        "catalogue",
        (INTAKE, AGENT, ADMIN),
        {200: Answer("The items.", list_of("items", ITEM))},
        query=(ALL_QUERY,),
        errors={422: ("invalid_value",)},
    ),
    ("GET", "/v1/catalog/{code}"): Operation(
        "get_item",
        "One catalogue item",
        "The item and its service guide (retired ones too).",
        "catalogue",
        (INTAKE, AGENT, ADMIN),
        {200: Answer("The item.", ITEM)},
        errors={404: ("unknown_item",)},
    ),
    ("POST", "/v1/admin/catalog"): Operation(
        "create_item",
        "Create a catalogue item",
        "Operators add an item.",
        "catalogue",
        (ADMIN,),
        {201: Answer("The item.", ITEM)},
        body=ITEM_BODY,
        errors={409: ("duplicate_item",)},
    ),
    ("GET", "/v1/admin/catalog"): Operation(
        "admin_list_catalog",
        "The catalogue, for operators",
        "As GET /v1/catalog.",
        "catalogue",
        (INTAKE, AGENT, ADMIN),
        {200: Answer("The items.", list_of("items", ITEM))},
        query=(ALL_QUERY,),
        errors={422: ("invalid_value",)},
    ),
    ("PUT", "/v1/admin/catalog/{code}"): Operation(
        "replace_item",
        "Replace a catalogue item",
        "The whole item; `code` cannot change.  Orders filed before keep what they copied.",
        "catalogue",
        (ADMIN,),
        {200: Answer("The item.", ITEM)},
        body=ITEM_PUT,
        errors={404: ("unknown_item",)},
    ),
    ("PATCH", "/v1/admin/catalog/{code}"): Operation(
        "patch_item",
        "Change some fields of a catalogue item",
        "The fields given, on top of the stored item.",
        "catalogue",
        (ADMIN,),
        {200: Answer("The item.", ITEM)},
        body=ITEM_PATCH,
        errors={404: ("unknown_item",)},
    ),
    ("POST", "/v1/admin/catalog/{code}/retire"): Operation(
        "retire_item",
        "Retire a catalogue item",
        "No new order may name it; orders filed with it keep it.  Idempotent.",
        "catalogue",
        (ADMIN,),
        {200: Answer("The item.", ITEM)},
        errors={404: ("unknown_item",)},
    ),
    **ADMIN_OPERATIONS,
    **POINTS_OPERATIONS,
    **SMS_OPERATIONS,
    **PAGE_OPERATIONS,
    ("GET", "/openapi.json"): Operation(
        "openapi",
        "This document",
        "The OpenAPI 3.1 description of the HTTP API, built from the declarations the server"
        " checks requests with.  No token needed.",
        "docs",
        (),
        {200: Answer("The document.", {"type": "object"})},
    ),
    ("GET", "/docs"): Operation(
        "docs",
        "API reference page",
        "Swagger UI over /openapi.json, served from this server (no internet needed).",
        "docs",
        (),
        {200: Answer("An HTML page.", {"type": "string"}, media="text/html")},
    ),
    **OPEN311_OPERATIONS,
}
