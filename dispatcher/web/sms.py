"""SMS endpoints: the gateway's inbound texts and delivery reports (signed), and the
operators' views (presence, an order's delivery log, the console phone).

The gateway's requests carry ``X-Bangban-Signature: sha256=<hex HMAC-SHA256 of the raw body>``
keyed with ``BANGBAN_SMS_SECRET`` and ``X-Bangban-Timestamp`` (epoch seconds, ±5 minutes);
anything else is 401 ``bad_signature`` before the body is looked at.  docs/PROTOCOL.md.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dispatcher.core import sms, validate
from dispatcher.core.roster import TokenKind
from dispatcher.exceptions import AuthError, RequestError
from dispatcher.flows import presence, sms_inbound
from dispatcher.web.http import answer, body, body_bytes, context, principal

MAX_TEXT = 1000


async def _signed(request: Request) -> dict[str, Any]:
    """The body of a gateway request, if signed; raises 401 ``bad_signature`` otherwise."""
    ctx = context(request)
    raw = await body_bytes(request)
    why = sms.verify(
        ctx.settings.sms_secret,
        raw,
        request.headers.get(sms.SIGNATURE_HEADER),
        request.headers.get(sms.TIMESTAMP_HEADER),
        ctx.clock(),
    )
    if why is not None:
        raise AuthError(why, code="bad_signature")
    try:
        data = json.loads(raw or b"null")
    except ValueError as exc:
        raise RequestError(f"body is not valid JSON: {exc}", code="bad_json") from None
    if not isinstance(data, dict):
        raise RequestError("body must be an object", code="bad_body")
    return data


def _inbound(data: dict[str, Any]) -> sms_inbound.Inbound:
    validate.only_fields(data, ("id", "from", "text", "received_at"))
    inbound_id = validate.text(data, "id", max_len=100)
    sender = validate.text(data, "from", max_len=32, pattern=validate.PHONE_RE)
    text = data.get("text")
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise validate.invalid("text", f"'text' must be a string of at most {MAX_TEXT} characters")
    received = data.get("received_at")
    if received is not None and (
        isinstance(received, bool) or not isinstance(received, int) or received < 0
    ):
        raise validate.invalid("received_at", "'received_at' must be epoch milliseconds")
    assert inbound_id is not None and sender is not None
    return sms_inbound.Inbound(inbound_id, sender, text, received)


async def inbound(request: Request) -> Response:
    """An agent's text, from the gateway.  Idempotent by ``id``."""
    text = _inbound(await _signed(request))
    handled = await sms_inbound.handle(context(request), text)
    return answer(
        request,
        {"id": text.id, "result": handled.result, "repeat": handled.repeat},
    )


async def receipts(request: Request) -> Response:
    """A delivery report, from the gateway.  Idempotent by ``id``."""
    data = await _signed(request)
    validate.only_fields(data, ("id", "status", "error"))
    message_id = validate.text(data, "id", max_len=100)
    status = data.get("status")
    if status not in ("delivered", "failed"):
        raise validate.invalid("status", "'status' must be delivered or failed")
    error = data.get("error")
    if error is not None and (not isinstance(error, str) or len(error) > 500):
        raise validate.invalid("error", "'error' must be a string of at most 500 characters")
    assert message_id is not None
    result = await sms_inbound.receipt(context(request), message_id, sms.Status(status), error)
    return answer(request, {"id": message_id, "result": result})


async def console_inbound(request: Request) -> Response:
    """The console's phone (no gateway): an operator sends a text as if from ``from``."""
    await principal(request, TokenKind.ADMIN)
    data = await body(request)
    data.setdefault("id", "console-" + secrets.token_hex(8))
    text = _inbound(data)
    handled = await sms_inbound.handle(context(request), text)
    return answer(request, {"id": text.id, "result": handled.result, "repeat": handled.repeat})


async def messages(request: Request) -> Response:
    """The texts in the outbox, newest ``limit`` (≤ 500), optionally to one phone ``to``."""
    await principal(request, TokenKind.ADMIN)
    to = request.query_params.get("to") or None
    raw_limit = request.query_params.get("limit", "200")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 500:
        raise validate.invalid("limit", "'limit' must be 1..500")
    texts = await context(request).store.texts(to=to, limit=int(raw_limit))
    return answer(request, {"messages": texts})


async def order_texts(request: Request) -> Response:
    """The delivery log of one order: who was texted, when, and whether it arrived."""
    await principal(request, TokenKind.ADMIN)
    raw = request.path_params["order_id"]
    if not raw.isdigit() or not 0 < int(raw) < 2**63:
        raise RequestError("no such order", code="not_found", status=404)
    ctx = context(request)
    order_id = int(raw)
    if await ctx.store.get_order(order_id) is None:
        raise RequestError("no such order", code="not_found", status=404)
    texts = await ctx.store.texts(order_id=order_id, limit=10_000)
    return answer(
        request,
        {
            "order_id": order_id,
            "short_code": await ctx.store.short_code(order_id),
            "texts": texts,
        },
    )


async def online_agents(request: Request) -> Response:
    """Agents connected right now, to any process."""
    await principal(request, TokenKind.ADMIN)
    found = await presence.online(context(request))
    agents = [{"agent_id": a, "processes": p} for a, p in sorted(found.items())]
    return answer(request, {"agents": agents, "count": len(agents)})


routes = [
    Route("/v1/sms/inbound", inbound, methods=["POST"]),
    Route("/v1/sms/receipts", receipts, methods=["POST"]),
    Route("/v1/admin/sms/inbound", console_inbound, methods=["POST"]),
    Route("/v1/admin/sms/messages", messages, methods=["GET"]),
    Route("/v1/admin/orders/{order_id}/sms", order_texts, methods=["GET"]),
    Route("/v1/admin/presence", online_agents, methods=["GET"]),
]
