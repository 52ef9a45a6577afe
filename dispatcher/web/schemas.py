"""What HTTP routes take and answer, declared once (the OpenAPI document is built from it).

Each route of the app has an :class:`Operation` in
:data:`dispatcher.web.operations.OPERATIONS` (Open311's in :mod:`.open311_schema`), keyed by
(method, path template): a description, the token kinds that may call it, its body (a
:mod:`dispatcher.core.fields` declaration that the endpoint also checks the body with), its
query parameters, its answers and the error codes it may give per status.  The request bodies
of the endpoints are checked *through these objects* (``ORDER_BODY.check_map``,
``ACTION_BODIES``, ...), so the document cannot describe a body the server does not check.

:mod:`dispatcher.web.openapi` turns them into the OpenAPI 3.1 document; a test fails when the
app has a route without an operation (``tests/web/test_openapi.py``).
"""

from __future__ import annotations

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
from dispatcher.core.list_fields import CodeList, ListOf, Texts
from dispatcher.core.orders import Status
from dispatcher.core.points import Rating
from dispatcher.core.query import Query
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
    query: tuple[Query, ...] = ()
    errors: dict[int, tuple[str, ...]] = field(default_factory=dict)
    path_ids: tuple[str, ...] = ()
    """Path parameters that are order ids (a malformed or unknown one is 404)."""
    error_style: str = "bangban"
    """``open311``: errors in GeoReport's format, and only the statuses of ``errors``."""
    path_enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Path parameters with a fixed set of values (Open311's format: json or xml)."""
    headers: tuple[Json, ...] = ()
    """Header parameters (OpenAPI parameter objects), e.g. the SMS gateway's signature."""


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


# -- bodies ----------------------------------------------------------------------------------

VERSION = f.PositiveId(doc="The version of the order you saw: 409 `conflict` if it changed.")
_RECEIVED = Texts(4 * LIST_MAX, REASON_MAX, rules_max=LIST_MAX, doc="Materials received.")
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
            "references": Texts(4 * LIST_MAX, REASON_MAX, rules_max=LIST_MAX),
            "fees": ListOf(
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
    Action.CANCEL: f.Obj(
        {
            "reason": f.RawText(
                REASON_MAX, required=True, missing_code="invalid_value", doc="Why (required)."
            ),
            "version": VERSION,
        }
    ),
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
        "aliases": Texts(1000, 100, checked=True, doc="Other names (for address matching)."),
        "geometry": f.Opaque(
            {"type": "object", "description": "GeoJSON Polygon or MultiPolygon, WGS84."}
        ),
    }
)
AGENT_BODY = f.Obj(
    {
        "name": f.Text(100),
        "phone": f.Text(32, pattern=validate.PHONE_RE),
        "grids": CodeList(doc="The grids the agent serves."),
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
    "materials": Texts(MATERIALS_MAX, MATERIAL_MAX, checked=True, required=True, unique=True),
    "steps": Texts(STEPS_MAX, STEP_MAX, checked=True, required=True, unique=True, min_items=1),
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


def merge_codes(*maps: dict[int, tuple[str, ...]]) -> dict[int, tuple[str, ...]]:
    out: dict[int, set[str]] = {}
    for m in maps:
        for status, codes in m.items():
            out.setdefault(status, set()).update(codes)
    return {s: tuple(sorted(c)) for s, c in out.items()}


# -- query parameters (checked through these too) ------------------------------------------

LIST_QUERY = (
    Query("status", {"type": "string", "enum": [s.value for s in Status]}, "Only this state."),
    Query("overdue", {"type": "string", "enum": ["true", "false"]}, "Only overdue orders."),
    Query("agent_id", {"type": "integer", "minimum": 0, "maximum": 2**62}, "Only this agent's."),
    Query("after", {"type": "integer", "minimum": 0, "maximum": 2**62}, "Page: ids after this."),
    Query("limit", {"type": "integer", "minimum": 0, "maximum": 500}, "Page size (100)."),
)
"""The filters of ``GET /v1/admin/orders``."""

ALL_QUERY = Query(
    "all", {"type": "string", "enum": ["true", "false"]}, "true: retired items too (admins)."
)
