"""Operations of the SMS routes: the gateway's signed callbacks, the console phone, the outbox,
an order's delivery log and presence (see :mod:`.schemas`; merged into
:data:`dispatcher.web.operations.OPERATIONS`).

The gateway's callbacks carry no bearer token: they are authenticated by their HMAC
signature headers (:mod:`dispatcher.core.sms`), declared here as header parameters; the
document's security list is empty for them, and their 401 is ``bad_signature``.
"""

from __future__ import annotations

from dispatcher.core import sms, validate
from dispatcher.core.query import Query
from dispatcher.web.schemas import ADMIN, JSON, Answer, Operation
from dispatcher.web.sms import MAX_TEXT

Json = dict[str, object]

_SIGNED_DOC = (
    "  Called by the SMS gateway, not with a bearer token: the request is authenticated by"
    f" `{sms.SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of the raw body>` keyed with"
    f" BANGBAN_SMS_SECRET and `{sms.TIMESTAMP_HEADER}` (epoch seconds, within 5 minutes);"
    " anything else (also any request while BANGBAN_SMS_SECRET is unset) is 401"
    " `bad_signature` before the body is read.  Idempotent by `id`."
)
SIGNATURE_HEADERS: tuple[Json, ...] = (
    {
        "name": sms.SIGNATURE_HEADER,
        "in": "header",
        "required": True,
        "description": "sha256=<hex HMAC-SHA256 of the raw body, keyed with BANGBAN_SMS_SECRET>",
        "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
    },
    {
        "name": sms.TIMESTAMP_HEADER,
        "in": "header",
        "required": True,
        "description": "Epoch seconds; within 5 minutes of the server's clock.",
        "schema": {"type": "string", "pattern": "^[0-9]{1,12}(\\.[0-9]+)?$"},
    },
)
_BODY_ERRORS: dict[int, tuple[str, ...]] = {
    422: ("missing_field", "unknown_field", "invalid_value")
}


def _inbound_body(id_required: bool) -> Json:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "from", "text"] if id_required else ["from", "text"],
        "properties": {
            "id": {
                "type": "string",
                "minLength": 1,
                "maxLength": 100,
                "description": "The gateway's message id.",
            },
            "from": {
                "type": "string",
                "pattern": validate.PHONE_RE.pattern,
                "maxLength": 32,
                "description": "The sender's phone.",
            },
            "text": {"type": "string", "maxLength": MAX_TEXT},
            "received_at": {"type": ["integer", "null"], "minimum": 0, "description": "epoch ms"},
        },
    }


HANDLED = {
    "type": "object",
    "required": ["id", "result", "repeat"],
    "properties": {
        "id": {"type": "string"},
        "result": {
            "type": "string",
            "description": "A claim outcome (won, taken, ...), or unknown_phone, unknown_code,"
            " garbage.",
        },
        "repeat": {"type": "boolean", "description": "This id was handled before."},
    },
}
TEXT = {
    "type": "object",
    "required": ["id", "kind", "to", "text", "status"],
    "properties": {
        "id": {"type": "string"},
        "kind": {"type": "string"},
        "to": {"type": "string"},
        "text": {"type": "string"},
        "order_id": {"type": ["integer", "null"]},
        "agent_id": {"type": ["integer", "null"]},
        "agent_name": {"type": ["string", "null"]},
        "status": {"type": "string"},
    },
}

SMS_OPERATIONS: dict[tuple[str, str], Operation] = {
    ("POST", "/v1/sms/inbound"): Operation(
        "sms_inbound",
        "An agent's text, from the gateway",
        "An agent claims by texting an order's short code (or answers a prompt); the reply is"
        " queued with the result." + _SIGNED_DOC,
        "sms",
        (),
        {200: Answer("How the text was handled.", HANDLED)},
        raw_body=_inbound_body(True),
        body_media=(JSON,),
        headers=SIGNATURE_HEADERS,
        errors=_BODY_ERRORS | {401: ("bad_signature",)},
    ),
    ("POST", "/v1/sms/receipts"): Operation(
        "sms_receipt",
        "A delivery report, from the gateway",
        "`status` delivered or failed (with `error`) for a text the server sent." + _SIGNED_DOC,
        "sms",
        (),
        {
            200: Answer(
                "`result`: applied, unchanged (a repeat) or unknown (no such text).",
                {
                    "type": "object",
                    "required": ["id", "result"],
                    "properties": {
                        "id": {"type": "string"},
                        "result": {"type": "string", "enum": ["applied", "unchanged", "unknown"]},
                    },
                },
            )
        },
        raw_body={
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "status"],
            "properties": {
                "id": {"type": "string", "minLength": 1, "maxLength": 100},
                "status": {"type": "string", "enum": ["delivered", "failed"]},
                "error": {"type": ["string", "null"], "maxLength": 500},
            },
        },
        body_media=(JSON,),
        headers=SIGNATURE_HEADERS,
        errors=_BODY_ERRORS | {401: ("bad_signature",)},
    ),
    ("POST", "/v1/admin/sms/inbound"): Operation(
        "console_sms_inbound",
        "The console's phone: a text as if from a phone",
        "For trying the SMS flow without a gateway: handled exactly as a gateway's inbound text"
        " (the `id` is made up when left out).",
        "sms",
        (ADMIN,),
        {200: Answer("How the text was handled.", HANDLED)},
        raw_body=_inbound_body(False),
        errors=_BODY_ERRORS,
    ),
    ("GET", "/v1/admin/sms/messages"): Operation(
        "sms_messages",
        "The outbox",
        "The newest `limit` texts (default 200), optionally only those to one phone.",
        "sms",
        (ADMIN,),
        {
            200: Answer(
                "The texts.",
                {
                    "type": "object",
                    "required": ["messages"],
                    "properties": {"messages": {"type": "array", "items": TEXT}},
                },
            )
        },
        query=(
            Query("to", {"type": "string", "maxLength": 32}, "Only texts to this phone."),
            Query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "How many (200)."),
        ),
        errors={422: ("invalid_value",)},
    ),
    ("GET", "/v1/admin/orders/{order_id}/sms"): Operation(
        "order_sms",
        "An order's delivery log",
        "Every text about the order: to whom, when, and whether it arrived; with the order's"
        " short code (what agents text to claim it).",
        "sms",
        (ADMIN,),
        {
            200: Answer(
                "The log.",
                {
                    "type": "object",
                    "required": ["order_id", "short_code", "texts"],
                    "properties": {
                        "order_id": {"type": "integer"},
                        "short_code": {"type": ["string", "null"]},
                        "texts": {"type": "array", "items": TEXT},
                    },
                },
            )
        },
        path_ids=("order_id",),
    ),
    ("GET", "/v1/admin/presence"): Operation(
        "presence",
        "Agents online now",
        "Agents with an open websocket to any process, with the processes each is connected to.",
        "sms",
        (ADMIN,),
        {
            200: Answer(
                "The agents online.",
                {
                    "type": "object",
                    "required": ["agents", "count"],
                    "properties": {
                        "agents": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["agent_id", "processes"],
                                "properties": {
                                    "agent_id": {"type": "integer"},
                                    "processes": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                        },
                        "count": {"type": "integer"},
                    },
                },
            )
        },
    ),
}
