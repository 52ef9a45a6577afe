"""What every HTTP route takes and answers, declared once (the OpenAPI document is built from it).

Each route of the app has an :class:`Operation` in :data:`OPERATIONS`, keyed by (method, path
template): a description, the token kinds that may call it, its body (a
:mod:`dispatcher.core.fields` declaration that the endpoint also checks the body with), its query
parameters, its answers and the error codes it may give per status.  The request bodies of the
endpoints are checked *through these objects* (``ORDER_BODY.check_map``, ``ACTION_BODIES``,
...), so the document cannot describe a body the server does not check.

:mod:`dispatcher.web.openapi` turns this into the OpenAPI 3.1 document; a test fails when the
app has a route without an operation here (``tests/web/test_openapi.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from dispatcher.core import fields as f
from dispatcher.core import refusals, validate
from dispatcher.core.catalog import (
    CATEGORY_MAX,
    ELIGIBLE_MAX,
    FEE_MAX,
    MATERIAL_MAX,
    MATERIALS_MAX,
    NAME_MAX,
    STEP_MAX,
    STEPS_MAX,
    TIME_LIMIT_MAX,
    Level,
)
from dispatcher.core.catalog import CODE_RE as ITEM_CODE_RE
from dispatcher.core.lifecycle import FEE_MAX_FEN, LIST_MAX, REASON_MAX, TEXT_MAX, Action
from dispatcher.core.orders import ClaimOutcome, Status
from dispatcher.core.points import Rating
from dispatcher.flows.filing import ORDER_BODY
from dispatcher.live import wire

Json = dict[str, Any]

# Token kinds, as security schemes of the document.  "metrics" is BANGBAN_METRICS_TOKEN.
ADMIN, INTAKE, AGENT, TRACKING, METRICS = "admin", "intake", "agent", "tracking", "metrics"
TOKEN_KINDS = (ADMIN, INTAKE, AGENT, TRACKING, METRICS)

JSON = "application/json"
MSGPACK = "application/msgpack"


@dataclass(frozen=True)
class Answer:
    """One documented answer: its description and the schema of its body."""

    description: str
    schema: Json | None = None
    media: str = JSON
    links: dict[str, Json] = field(default_factory=dict)
    also: dict[str, Json] = field(default_factory=dict)
    """More media types of the same answer (Open311's XML), media → schema."""


@dataclass(frozen=True)
class Operation:
    """One route and method.  ``auth`` lists the token kinds that may call it (empty: anyone);
    ``errors`` maps a status to the error codes it may carry (the common ones are added by
    :func:`error_codes`)."""

    operation_id: str
    summary: str
    description: str
    tag: str
    auth: tuple[str, ...]
    answers: dict[int, Answer]
    body: f.Obj | None = None
    body_media: tuple[str, ...] = (JSON, MSGPACK)
    raw_body: Json | None = None
    """The schema of a body that is not a JSON object checked by fields (a file upload)."""
    query: tuple[f.Query, ...] = ()
    errors: dict[int, tuple[str, ...]] = field(default_factory=dict)
    path_ids: tuple[str, ...] = ()
    """Path parameters that are order ids (a malformed or unknown one is 404)."""
    error_style: str = "bangban"
    """``open311``: errors in GeoReport's format, and only the statuses of ``errors``."""
    path_enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Path parameters with a fixed set of values (Open311's format: json or xml)."""


def error_codes(op: Operation, path: str) -> dict[int, tuple[str, ...]]:
    """Every error status of ``op`` with its codes: its own plus those every route shares."""
    out: dict[int, set[str]] = {status: set(codes) for status, codes in op.errors.items()}
    if op.error_style == "open311":
        return {status: tuple(sorted(codes)) for status, codes in sorted(out.items())}

    def add(status: int, *codes: str) -> None:
        out.setdefault(status, set()).update(codes)

    if op.auth:
        add(401, "unauthorized")
        add(403, "forbidden")
    if op.body is not None or op.raw_body is not None:
        add(400, "bad_json", "bad_body")
        add(413, "too_large")
        add(415, "unsupported_media_type")
    if op.body is not None:
        add(422, "missing_field", "unknown_field", "invalid_value")
    if "{" in path:
        add(404, "not_found")
    add(503, "unavailable")
    return {status: tuple(sorted(codes)) for status, codes in sorted(out.items())}


# -- answers ---------------------------------------------------------------------------------

_MS = {"type": "integer", "description": "epoch milliseconds"}
_MS_OR_NULL = {"type": ["integer", "null"], "description": "epoch milliseconds, or null"}
_STR_OR_NULL = {"type": ["string", "null"]}
_INT_OR_NULL = {"type": ["integer", "null"]}
_STRINGS = {"type": "array", "items": {"type": "string"}}

ORDER: Json = {
    "type": "object",
    "description": "A work order (代办工单).  Clients ignore fields they do not know.",
    "required": [
        "id",
        "status",
        "grid",
        "item",
        "text",
        "item_class",
        "created_at",
        "widen_at",
        "scope",
        "claimed_by",
        "claimed_at",
        "version",
    ],
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "status": {"type": "string", "enum": [s.value for s in Status]},
        "grid": {"type": "string"},
        "item": _STR_OR_NULL,
        "text": _STR_OR_NULL,
        "item_class": {"type": ["integer", "null"], "enum": [1, 2, None]},
        "created_at": _MS,
        "widen_at": _MS,
        "scope": {"type": "string", "enum": ["grid", "all"]},
        "claimed_by": _INT_OR_NULL,
        "claimed_at": _MS_OR_NULL,
        "version": {"type": "integer", "minimum": 1},
        "reach": {"type": "string"},
        "offered_grids": {"type": ["array", "null"], "items": {"type": "string"}},
        "next_step_at": _MS_OR_NULL,
        "escalate_at": _MS_OR_NULL,
        "item_name": _STR_OR_NULL,
        "materials": _STRINGS,
        "time_limit_days": _INT_OR_NULL,
        "missing": _STRINGS,
        "supply_by": _MS_OR_NULL,
        "accepted_at": _MS_OR_NULL,
        "due_at": _MS_OR_NULL,
        "replied_at": _MS_OR_NULL,
        "close_at": _MS_OR_NULL,
        "rating": {"type": ["string", "null"], "enum": [*(r.value for r in Rating), None]},
        "rating_label": _STR_OR_NULL,
        "overdue": {"type": "boolean"},
        "applicant": {
            "type": "object",
            "description": "Only for admins, the claiming agent and the tracking token.",
        },
        "routing": {"type": ["object", "null"], "description": "Only for admins."},
    },
}


def _with(base: Json, **props: Json) -> Json:
    out = dict(base)
    out["properties"] = {**base["properties"], **props}
    out["required"] = [*base["required"], *props]
    return out


EVENT = {
    "type": "object",
    "required": ["kind", "label", "at"],
    "properties": {
        "kind": {"type": "string"},
        "label": {"type": "string"},
        "at": _MS,
        "details": {"type": "object"},
    },
}
FILED = _with(
    ORDER,
    tracking_token={"type": "string", "description": "The applicant's token for this order."},
)
ACTED = _with(ORDER, event=EVENT)
CLAIM_RESULT = {
    "type": "object",
    "required": ["type", "request_id", "order_id", "result"],
    "properties": {
        "type": {"const": "claim_result"},
        "request_id": {"type": ["string", "integer"]},
        "order_id": {"type": "integer"},
        "result": {"type": "string", "enum": [o.value for o in ClaimOutcome]},
    },
}
GRID = {
    "type": "object",
    "required": ["code", "name", "level", "parent"],
    "properties": {
        "code": {"type": "string"},
        "name": {"type": "string"},
        "level": {"type": "string"},
        "parent": _STR_OR_NULL,
    },
}
AGENT_MAP = {
    "type": "object",
    "required": ["id", "name", "phone", "grids", "active"],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "phone": {"type": "string"},
        "grids": _STRINGS,
        "active": {"type": "boolean"},
    },
}
NEW_AGENT = _with(AGENT_MAP, token={"type": "string", "description": "Shown only here."})
ITEM = {
    "type": "object",
    "required": ["code", "name", "category", "item_class", "materials", "level", "retired"],
    "properties": {
        "code": {"type": "string"},
        "name": {"type": "string"},
        "category": {"type": "string"},
        "item_class": {"type": "integer", "enum": [1, 2]},
        "eligible": {"type": "string"},
        "materials": _STRINGS,
        "steps": _STRINGS,
        "time_limit_days": {"type": "integer"},
        "fee": {"type": "string"},
        "level": {"type": "string", "enum": [lv.value for lv in Level]},
        "retired": {"type": "boolean"},
    },
}


def _list_of(name: str, item: Json, **more: Json) -> Json:
    return {
        "type": "object",
        "required": [name],
        "properties": {name: {"type": "array", "items": item}, **more},
    }


HEALTH = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

# -- bodies ----------------------------------------------------------------------------------

VERSION = f.PositiveId(doc="The version of the order you saw: 409 `conflict` if it changed.")
_RECEIVED = f.Texts(4 * LIST_MAX, REASON_MAX, rules_max=LIST_MAX, doc="Materials received.")
_REASON = f.RawText(REASON_MAX, doc="Why (kept in the trail).")
_AGENT_ID = f.PositiveId(doc="The agent to give the order to.")
_FEE = f.Obj(
    {
        "item": f.RawText(REASON_MAX, required=True, doc="What was paid for."),
        "amount_fen": f.Integer(1, FEE_MAX_FEN, required=True, doc="Paid, in fen (0.01 yuan)."),
    }
)

ACTION_BODIES: dict[Action, f.Obj] = {
    Action.ACCEPT: f.Obj(
        {
            "received": _RECEIVED,
            "green_card": f.Boolean(doc="容缺受理: accept with a minor material missing."),
            "supply_by": f.PositiveId(doc="With missing materials: when they are due (epoch ms)."),
            "version": VERSION,
        },
        required=False,
    ),
    Action.SUPPLY: f.Obj({"received": _RECEIVED, "version": VERSION}, required=False),
    Action.PROGRESS: f.Obj(
        {
            "note": f.RawText(TEXT_MAX, doc="What happened (trail)."),
            "desk": f.Choice(
                tuple(lv.value for lv in Level), required=False, doc="Where the matter is now."
            ),
            "version": VERSION,
        },
        required=False,
    ),
    Action.REPLY: f.Obj(
        {
            "result": f.RawText(TEXT_MAX, doc="The result, for the applicant."),
            "references": f.Texts(4 * LIST_MAX, REASON_MAX, rules_max=LIST_MAX),
            "fees": f.ListOf(
                _FEE,
                4 * LIST_MAX,
                doc="Fees advanced for the applicant.",
                message=f"'fees' must be a list of at most {LIST_MAX} fees {{item, amount_fen}}",
            ),
            "version": VERSION,
        },
        required=False,
    ),
    Action.RATE: f.Obj(
        {
            "rating": f.Choice(
                tuple(x for r in Rating for x in (r.value, r.label)),
                required=False,
                doc="One rating per order (一事一评): a code or its Chinese label.",
            ),
            "comment": f.RawText(REASON_MAX),
            "version": VERSION,
        },
        required=False,
    ),
    Action.RELEASE: f.Obj({"reason": _REASON, "version": VERSION}, required=False),
    Action.CANCEL: f.Obj({"reason": _REASON, "version": VERSION}, required=False),
    Action.REASSIGN: f.Obj(
        {"agent_id": _AGENT_ID, "reason": _REASON, "version": VERSION}, required=False
    ),
    Action.ASSIGN: f.Obj(
        {"agent_id": _AGENT_ID, "reason": _REASON, "version": VERSION}, required=False
    ),
}
"""The body of each ``POST /v1/orders/{id}/<action>``; :mod:`dispatcher.web.order_actions`
checks with these (types and list sizes; the workflow rules check the values)."""

CLASSIFY_BODY = f.Obj(
    {"item": f.Code(doc="A live catalogue item code."), "version": VERSION}, required=True
)
CLAIM_BODY = f.Obj(
    {
        "request_id": f.Opaque(
            {
                "anyOf": [
                    {"type": "string", "minLength": 1, "maxLength": wire.MAX_REQUEST_ID_CHARS},
                    {"type": "integer", "minimum": -(2**63), "maximum": 2**64 - 1},
                ]
            },
            required=True,
            doc="Chosen by the client, unique per attempt: a repeat gets the same answer.",
            missing_code="invalid_value",
        )
    }
)

GRID_LEVELS = ("county", "township", "village", "community", "grid")
GRID_BODY = f.Obj(
    {
        "code": f.Code(doc="Unique grid code."),
        "name": f.Text(100),
        "level": f.Choice(GRID_LEVELS, required=False, doc="Default: grid."),
        "parent": f.Code(required=False, doc="The enclosing area's code."),
        "aliases": f.Texts(1000, 100, checked=True, doc="Other names (for address matching)."),
        "geometry": f.Opaque(
            {"type": "object", "description": "GeoJSON Polygon or MultiPolygon, WGS84."}
        ),
    }
)
AGENT_BODY = f.Obj(
    {
        "name": f.Text(100),
        "phone": f.Text(32, pattern=validate.PHONE_RE),
        "grids": f.CodeList(doc="The grids the agent serves."),
    }
)
TOKEN_BODY = f.Obj(
    {
        "kind": f.Choice(("intake",), doc="Agent tokens come with agents."),
        "name": f.Text(100, doc="Which front end holds it."),
    }
)

_ITEM_FIELDS: dict[str, f.Field] = {
    "code": f.Text(16, pattern=ITEM_CODE_RE, doc="Like HJ-001."),
    "name": f.Text(NAME_MAX),
    "category": f.Text(CATEGORY_MAX),
    "item_class": f.Integer(1, 2, required=True),
    "eligible": f.Text(ELIGIBLE_MAX, doc="Who may apply."),
    "materials": f.Texts(MATERIALS_MAX, MATERIAL_MAX, checked=True, required=True, unique=True),
    "steps": f.Texts(STEPS_MAX, STEP_MAX, checked=True, required=True, unique=True, min_items=1),
    "time_limit_days": f.Integer(0, TIME_LIMIT_MAX, required=True, doc="Working days."),
    "fee": f.Text(FEE_MAX),
    "level": f.Choice(tuple(lv.value for lv in Level)),
    "retired": f.Boolean(),
}
# Catalogue items are checked by core.catalog.parse_item (which also reads the catalogue file);
# these declarations use its limits, and the schemathesis run checks that they agree.
ITEM_BODY = f.Obj(_ITEM_FIELDS, doc="A catalogue item.")
ITEM_PUT = f.Obj(
    {**_ITEM_FIELDS, "code": f.optional(_ITEM_FIELDS["code"])},
    doc="The whole item; `code` may be left out and cannot change.",
)
ITEM_PATCH = f.Obj(
    {k: f.optional(v) for k, v in _ITEM_FIELDS.items()},
    doc="Some fields of a catalogue item; the rest stay.",
)


def _refusal_codes() -> dict[int, tuple[str, ...]]:
    """Status → codes of every workflow refusal (the rules' own classes, so they cannot drift)."""
    out: dict[int, set[str]] = {}
    todo: list[type[refusals.Refusal]] = [refusals.Refusal]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if hasattr(cls, "code") and hasattr(cls, "status"):
            out.setdefault(cls.status, set()).add(cls.code)
    return {s: tuple(sorted(c)) for s, c in out.items()}


ACTION_ERRORS = _refusal_codes()


def _merge(*maps: dict[int, tuple[str, ...]]) -> dict[int, tuple[str, ...]]:
    out: dict[int, set[str]] = {}
    for m in maps:
        for status, codes in m.items():
            out.setdefault(status, set()).update(codes)
    return {s: tuple(sorted(c)) for s, c in out.items()}


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
_ACT_LINKS = {
    f"{a.value.capitalize()}Order": {
        "operationId": f"{a.value}_order",
        "parameters": {"order_id": "$response.body#/order_id"},
    }
    for a in (Action.ACCEPT, Action.PROGRESS, Action.REPLY, Action.RELEASE)
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
        "The tracking token before acceptance, or an admin.",
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
        errors=_merge(ACTION_ERRORS, extra),
        path_ids=("order_id",),
    )


_LIST_QUERY = (
    f.Query("status", {"type": "string", "enum": [s.value for s in Status]}, "Only this state."),
    f.Query("overdue", {"type": "string", "enum": ["true", "false"]}, "Only overdue orders."),
    f.Query("agent_id", {"type": "integer", "minimum": 0}, "Only this agent's."),
    f.Query("after", {"type": "integer", "minimum": 0}, "Page: ids after this one."),
    f.Query("limit", {"type": "integer", "minimum": 0, "maximum": 500}, "Page size (100)."),
)

# -- Open311 GeoReport v2 (dispatcher/web/open311.py) ----------------------------------------

XML = "text/xml"
OPEN311_FORM = f.Obj(
    {
        "api_key": f.Text(200, doc="An intake token (required)."),
        "service_code": f.Code(doc="A catalogue item code (GET services)."),
        "jurisdiction_id": f.Text(100, required=False, doc="Accepted and ignored (one county)."),
        "lat": f.Text(32, required=False, pattern=re.compile(r"^-?[0-9]+(\.[0-9]+)?$")),
        "long": f.Text(32, required=False, pattern=re.compile(r"^-?[0-9]+(\.[0-9]+)?$")),
        "address_string": f.Text(200, required=False, doc="Matched to grid names."),
        "address_id": f.Text(100, required=False, doc="Not supported: give lat/long or address."),
        "description": f.Text(2000, required=False, doc="The need in the applicant's words."),
        "first_name": f.Text(50, required=False),
        "last_name": f.Text(50, required=False),
        "phone": f.Text(32, required=False, pattern=validate.PHONE_RE),
        "email": f.Text(254, required=False, doc="Accepted, not stored."),
        "device_id": f.Text(100, required=False, doc="Accepted, not stored."),
        "account_id": f.Text(100, required=False, doc="Accepted, not stored."),
        "media_url": f.Text(2000, required=False, doc="Accepted, not stored."),
    },
    patterns=(
        (
            r"attribute\[M[1-9][0-9]?\]",
            {"type": "string", "enum": ["yes", "no"], "description": "A material: yes / no."},
        ),
    ),
    doc="GeoReport v2 form fields.  Empty fields count as absent.",
)
"""The form of ``POST /open311/v2/requests.{fmt}``, checked by the endpoint through this."""

_STR = {"type": ["string", "null"]}
_O311_SERVICE = {
    "type": "object",
    "required": ["service_code", "service_name", "metadata", "type", "group"],
    "properties": {
        "service_code": {"type": "string"},
        "service_name": {"type": "string"},
        "description": {"type": "string"},
        "metadata": {"type": "boolean"},
        "type": {"type": "string", "enum": ["realtime", "batch", "blackbox"]},
        "keywords": {"type": "string"},
        "group": {"type": "string"},
    },
}
_O311_DEFINITION = {
    "type": "object",
    "required": ["service_code", "attributes"],
    "properties": {
        "service_code": {"type": "string"},
        "attributes": {"type": "array", "items": {"type": "object"}},
    },
}
_O311_REQUEST = {
    "type": "object",
    "required": ["service_request_id", "status", "requested_datetime"],
    "properties": {
        "service_request_id": {"type": "string"},
        "status": {"type": "string", "enum": ["open", "closed"]},
        "status_notes": _STR,
        "service_name": _STR,
        "service_code": _STR,
        "agency_responsible": _STR,
        "service_notice": _STR,
        "requested_datetime": {"type": "string"},
        "updated_datetime": _STR,
        "expected_datetime": _STR,
        "address": _STR,
        "lat": {"type": ["number", "null"]},
        "long": {"type": ["number", "null"]},
    },
}
_O311_FILED = {
    "type": "object",
    "required": ["service_request_id", "service_notice"],
    "properties": {
        "service_request_id": {"type": "string"},
        "service_notice": {"type": "string"},
        "account_id": _STR,
        "bangban_tracking_token": {
            "type": "string",
            "description": "Extension: the applicant's tracking token for /v1/orders/{id}.",
        },
    },
}


def _o311(description: str, item: Json) -> Answer:
    return Answer(description, {"type": "array", "items": item}, also={XML: {"type": "string"}})


_FMT: dict[str, tuple[str, ...]] = {"fmt": ("json", "xml")}
_O311_READ_ERRORS: dict[int, tuple[str, ...]] = {400: ("400",), 404: ("404",), 503: ("503",)}
_O311_DATES = (
    f.Query("service_request_id", {"type": "string"}, "Comma-separated ids; overrides the rest."),
    f.Query("service_code", {"type": "string"}, "Comma-separated item codes."),
    f.Query("status", {"type": "string"}, "open, closed (comma-separated)."),
    f.Query(
        "start_date", {"type": "string"}, "W3C datetime with time zone (default: 90 days ago)."
    ),
    f.Query("end_date", {"type": "string"}, "W3C datetime with time zone (at most 90 days on)."),
)
OPEN311_OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "/open311/discovery.{fmt}"): Operation(
        "open311_discovery",
        "Open311 service discovery",
        "Where the GeoReport v2 endpoint is and which formats it speaks.  No token needed.",
        "open311",
        (),
        {
            200: Answer(
                "The discovery document.", {"type": "object"}, also={XML: {"type": "string"}}
            )
        },
        error_style="open311",
        errors={404: ("404",)},
        path_enums=_FMT,
    ),
    ("GET", "/open311/v2/services.{fmt}"): Operation(
        "open311_services",
        "GeoReport: the services (the catalogue)",
        "Each live catalogue item as a service; `group` is its category.  No token needed.",
        "open311",
        (),
        {200: _o311("The services.", _O311_SERVICE)},
        error_style="open311",
        errors=_O311_READ_ERRORS,
        path_enums=_FMT,
    ),
    ("GET", "/open311/v2/services/{service_code}.{fmt}"): Operation(
        "open311_service_definition",
        "GeoReport: a service definition",
        "The item's required materials as attributes M1, M2, ... (yes/no: does the applicant"
        " have it?).  No token needed.",
        "open311",
        (),
        {200: Answer("The definition.", _O311_DEFINITION, also={XML: {"type": "string"}})},
        error_style="open311",
        errors=_O311_READ_ERRORS,
        path_enums=_FMT,
    ),
    ("POST", "/open311/v2/requests.{fmt}"): Operation(
        "open311_create_request",
        "GeoReport: file a service request",
        "Files an order through the same path as POST /v1/orders.  `api_key` is an intake"
        " token (403 otherwise); `service_code` a live item; `lat`/`long` or `address_string`"
        " route it; `attribute[Mn]` say which materials the applicant has (added to the"
        " order's text for the agent).",
        "open311",
        (),
        {201: _o311("The new request's id and notice.", _O311_FILED)},
        body=OPEN311_FORM,
        body_media=("application/x-www-form-urlencoded",),
        error_style="open311",
        errors={400: ("400",), 403: ("403",), 404: ("404",), 413: ("413",), 503: ("503",)},
        path_enums=_FMT,
    ),
    ("GET", "/open311/v2/requests.{fmt}"): Operation(
        "open311_requests",
        "GeoReport: service requests",
        "Public reads without personal data: `address` and `lat`/`long` are the order's grid,"
        " not the applicant's; no names, phones or free text.  At most 1000, newest first.",
        "open311",
        (),
        {200: _o311("The requests.", _O311_REQUEST)},
        query=_O311_DATES,
        error_style="open311",
        errors=_O311_READ_ERRORS,
        path_enums=_FMT,
    ),
    ("GET", "/open311/v2/requests/{service_request_id}.{fmt}"): Operation(
        "open311_request",
        "GeoReport: one service request",
        "As GET requests, for one id (a list of one, as the specification says).",
        "open311",
        (),
        {200: _o311("The request.", _O311_REQUEST)},
        error_style="open311",
        errors=_O311_READ_ERRORS,
        path_enums=_FMT,
    ),
}


OPERATIONS: dict[tuple[str, str], Operation] = {
    ("POST", "/v1/orders"): Operation(
        "file_order",
        "File an order",
        "A front end files a request on an applicant's behalf.  Give `item` or `text`, and"
        " `grid`, `location` or `address`.  The order is durable before the answer; it is"
        " then offered live to the agents of its grid.",
        "orders",
        (INTAKE, ADMIN),
        {201: Answer("The order, with its tracking token.", FILED, links=_ORDER_LINKS)},
        body=ORDER_BODY,
        errors={
            422: ("unknown_item", "retired_item", "unknown_grid", "unroutable", "ambiguous_address")
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
        "First claim wins.  A lost claim is a 200 answer with `result` `taken`, not an error.",
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
            )
        },
        body=CLAIM_BODY,
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
        errors=_merge(ACTION_ERRORS, {422: ("unknown_item", "retired_item")}),
        path_ids=("order_id",),
    ),
    ("GET", "/v1/agent/orders"): Operation(
        "my_orders",
        "The orders the calling agent holds",
        "Claimed, accepted and awaiting materials, each with `overdue`; `limit` is how many an"
        " agent may hold.",
        "orders",
        (AGENT,),
        {200: Answer("The held orders.", _list_of("orders", ORDER, limit={"type": "integer"}))},
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
        {200: Answer("The items.", _list_of("items", ITEM))},
        query=(f.Query("all", {"type": "string", "enum": ["true", "false"]}, "Admins only."),),
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
        {200: Answer("The items.", _list_of("items", ITEM))},
        query=(f.Query("all", {"type": "string", "enum": ["true", "false"]}, "Add retired."),),
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
    ("POST", "/v1/admin/grids"): Operation(
        "put_grid",
        "Create or update one grid",
        "By code: 201 created, 200 updated.  Checked against the live grid set.",
        "admin",
        (ADMIN,),
        {201: Answer("Created.", GRID), 200: Answer("Updated.", GRID)},
        body=GRID_BODY,
        errors={422: ("invalid_grid_file",)},
    ),
    ("GET", "/v1/admin/grids"): Operation(
        "list_grids",
        "The grids",
        "Every live grid.",
        "admin",
        (ADMIN,),
        {200: Answer("The grids.", _list_of("grids", GRID))},
    ),
    ("POST", "/v1/admin/grids/import"): Operation(
        "import_grids",
        "Replace the grid set",
        "A GeoJSON FeatureCollection (WGS84), all or nothing.",
        "admin",
        (ADMIN,),
        {200: Answer("What was imported.", {"type": "object"})},
        raw_body={"type": "object", "description": "GeoJSON FeatureCollection"},
        body_media=(JSON, "application/geo+json"),
        query=(
            f.Query(
                "source",
                {"type": "string", "minLength": 1, "maxLength": 100},
                "Where the file came from (kept; default api).",
            ),
        ),
        errors={422: ("invalid_grid_file", "invalid_value")},
    ),
    ("POST", "/v1/admin/agents/import"): Operation(
        "import_agents",
        "Create agents from a CSV roster",
        "Columns name, phone, grids (separated by ';'); all or nothing.",
        "admin",
        (ADMIN,),
        {201: Answer("The agents, with tokens.", _list_of("agents", NEW_AGENT))},
        raw_body={"type": "string"},
        body_media=("text/csv",),
        errors={422: ("invalid_roster", "unknown_grid"), 409: ("duplicate_phone",)},
    ),
    ("POST", "/v1/admin/agents"): Operation(
        "create_agent",
        "Create an agent",
        "The agent's token is in this answer only.",
        "admin",
        (ADMIN,),
        {201: Answer("The agent and its token.", NEW_AGENT)},
        body=AGENT_BODY,
        errors={422: ("unknown_grid",), 409: ("duplicate_phone",)},
    ),
    ("GET", "/v1/admin/agents"): Operation(
        "list_agents",
        "The agents",
        "Every agent (no tokens).",
        "admin",
        (ADMIN,),
        {200: Answer("The agents.", _list_of("agents", AGENT_MAP))},
    ),
    ("POST", "/v1/admin/tokens"): Operation(
        "create_token",
        "Create an intake token",
        "For a front end that files orders.  The token is in this answer only.",
        "admin",
        (ADMIN,),
        {
            201: Answer(
                "The token.",
                {
                    "type": "object",
                    "required": ["token", "kind", "name"],
                    "properties": {
                        "token": {"type": "string"},
                        "kind": {"const": "intake"},
                        "name": {"type": "string"},
                    },
                },
            )
        },
        body=TOKEN_BODY,
    ),
    ("GET", "/v1/admin/tokens"): Operation(
        "list_tokens",
        "The admin and intake tokens",
        "Metadata only, never the tokens.",
        "admin",
        (ADMIN,),
        {200: Answer("The tokens.", _list_of("tokens", {"type": "object"}))},
    ),
    ("GET", "/v1/admin/orders"): Operation(
        "list_orders",
        "Orders, for operators",
        "Filter by status, overdue, agent; page by id.  Each order has `overdue`.",
        "admin",
        (ADMIN,),
        {200: Answer("The orders.", _list_of("orders", ORDER))},
        query=_LIST_QUERY,
        errors={422: ("invalid_value",)},
    ),
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
