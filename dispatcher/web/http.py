"""HTTP plumbing shared by the endpoints: bodies in, answers out, errors as JSON.

Bodies are JSON by default; ``Content-Type: application/msgpack`` is accepted, and an
``Accept: application/msgpack`` request gets MessagePack back.  Every error is
``{"error": {"code", "message"}}`` (plus ``details`` where a field is named) with a fitting
status; the codes are stable.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import msgpack
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dispatcher import auth
from dispatcher.context import Context
from dispatcher.core import validate
from dispatcher.core.refusals import Refusal
from dispatcher.core.roster import Principal, TokenKind
from dispatcher.exceptions import (
    DispatchError,
    ForbiddenError,
    RateLimitedError,
    RedisUnavailableError,
    RequestError,
    StoreUnavailableError,
)

log = logging.getLogger("bangban.http")

MAX_BODY_BYTES = 64 * 1024


def refusal_error(refusal: Refusal) -> RequestError:
    """The HTTP error for a refusal: its status, code, message, and its fields as ``details``."""
    return RequestError(
        refusal.message, code=refusal.code, status=refusal.status, details=refusal.details()
    )


MSGPACK = "application/msgpack"


def context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


async def principal(request: Request, *kinds: TokenKind) -> Principal:
    """The caller, if its token is one of ``kinds``.  Raises AuthError (401) / Forbidden (403)."""
    who = await context(request).auth.resolve(auth.bearer(request.headers.get("authorization")))
    if kinds and who.kind not in kinds:
        raise ForbiddenError(f"a {who.kind.value} token may not do this")
    return who


async def body_bytes(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body, refused with 413 ``too_large`` past ``limit`` bytes (before reading it
    all when the client declared its length)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(f"body larger than {limit} bytes", code="too_large", status=413)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise RequestError(f"body larger than {limit} bytes", code="too_large", status=413)
    return bytes(raw)


async def body(request: Request, *, empty_ok: bool = False) -> dict[str, Any]:
    """The request body as a map (``{}`` for no body at all when ``empty_ok``).  Raises
    RequestError 400/413/415."""
    raw = await body_bytes(request)
    if empty_ok and not raw.strip():
        return {}
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
    try:
        if ctype == MSGPACK:
            data = msgpack.unpackb(raw, raw=False)
        elif ctype in ("application/json", "", "text/json"):
            data = json.loads(raw or b"null")
        else:
            raise RequestError(
                f"content type {ctype!r} is not supported; send JSON or msgpack",
                code="unsupported_media_type",
                status=415,
            )
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise RequestError(f"body is not valid {ctype}: {exc}", code="bad_json") from None
    except RecursionError:
        raise RequestError("body is nested too deeply", code="bad_json") from None
    if not isinstance(data, dict):
        raise RequestError("body must be an object", code="bad_body")
    # The text rule for every string in the body, before any endpoint sees it.
    cleaned: dict[str, Any] = validate.clean_tree(data)
    return cleaned


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, as JSON's \ud800 escapes allow
        return False
    return True


def unstorable(data: Any, field: str | None = None) -> str | None:
    """The top-level field of ``data`` holding text that Postgres cannot store (NUL, or a lone
    surrogate), or None.  Found by schemathesis: such text used to reach the store as a 500."""
    if isinstance(data, str):
        return None if _storable(data) else (field or "body")
    if isinstance(data, dict):
        for key, value in data.items():
            name = field if field is not None else str(key)
            if not isinstance(key, str) or not _storable(key):
                return name if _storable(name) else "body"
            found = unstorable(value, name)
            if found is not None:
                return found
    elif isinstance(data, list):
        for value in data:
            found = unstorable(value, field)
            if found is not None:
                return found
    return None


def answer(request: Request, data: Any, status: int = 200) -> Response:
    if MSGPACK in request.headers.get("accept", ""):
        return Response(msgpack.packb(data, use_bin_type=True), status, media_type=MSGPACK)
    return JSONResponse(data, status)


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if details:
        err["details"] = details
    return {"error": err}


async def on_dispatch_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, RateLimitedError):
        wait = str(max(1, math.ceil(exc.retry_after)))
        body = error_body(exc.code, exc.message, exc.details)
        return JSONResponse(body, exc.status, headers={"Retry-After": wait})
    if isinstance(exc, RequestError):
        return JSONResponse(error_body(exc.code, exc.message, exc.details), exc.status)
    if isinstance(exc, StoreUnavailableError | RedisUnavailableError):
        part = "postgres" if isinstance(exc, StoreUnavailableError) else "redis"
        log.warning("unavailable path=%s part=%s error=%s", request.url.path, part, exc)
        return JSONResponse(
            error_body("unavailable", f"{part} is unavailable; nothing was changed, retry"),
            503,
            headers={"Retry-After": "1"},
        )
    log.error("request failed path=%s error=%r", request.url.path, exc)
    return JSONResponse(error_body("internal", "internal error"), 500)


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    400: "bad_request",
}


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error path=%s", request.url.path, exc_info=exc)
    return JSONResponse(error_body("internal", "internal error"), 500)


EXCEPTION_HANDLERS = {
    DispatchError: on_dispatch_error,
    HTTPException: on_http_error,
    Exception: on_unexpected,
}
