"""A small local SMS gateway: the demo's phones, and the provider the tests talk to.

It speaks the gateway contract of docs/PROTOCOL.md from the provider's side:

* ``POST /send``: Bangban's outbound texts (``BANGBAN_SMS_URL`` points here).  The signature
  is checked (401 otherwise); each text lands in its phone's inbox once per ``id`` (a repeat
  is answered 200 and counted, as a provider that dedupes would).  With ``--receipts`` a
  delivery report is posted back to ``<server>/v1/sms/receipts``.
* ``GET /``: every phone's inbox in a browser page, with a box to reply from that phone
  (``POST /reply`` → a signed ``POST <server>/v1/sms/inbound``).
* ``GET /messages``: the same as JSON, plus every request as received (tests read this).
* ``POST /script``: behaviour for the next requests to ``/send``, in order, like a provider
  having a bad day: ``{"faults": [{"status": 500}, {"delay": 3.0}, {"status": 200}]}``.

Run: ``BANGBAN_SMS_SECRET=S python -m dispatcher.sms_gateway --port 8025 --server
http://127.0.0.1:8000``
(``bangban serve --demo`` starts it for you).  It lives in the package, not in tests/ or a tools
folder, so that the demo can start it with the same interpreter and no extra install, and so
the tests and the demo exercise one implementation; the server never imports it.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import secrets
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from dispatcher.core import sms


@dataclass
class GatewayState:
    secret: str
    server: str | None = None
    receipts: bool = False
    received: list[dict[str, Any]] = field(default_factory=list)
    """Every request to /send, in order, with how it was answered."""
    inbox: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Phone → the texts it got (once per id), and the replies sent from it."""
    seen: set[str] = field(default_factory=set)
    faults: deque[dict[str, Any]] = field(default_factory=deque)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


def _signed_headers(secret: str, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        sms.SIGNATURE_HEADER: sms.sign(secret, body),
        sms.TIMESTAMP_HEADER: str(int(time.time())),
    }


def create_gateway(state: GatewayState) -> Starlette:
    async def post_back(path: str, payload: dict[str, Any]) -> httpx.Response:
        assert state.server is not None
        body = json.dumps(payload, ensure_ascii=False).encode()
        async with httpx.AsyncClient(timeout=10) as http:
            return await http.post(
                state.server + path, content=body, headers=_signed_headers(state.secret, body)
            )

    async def receipt(message_id: str) -> None:
        try:
            await post_back("/v1/sms/receipts", {"id": message_id, "status": "delivered"})
        except httpx.HTTPError:
            pass  # a provider's report that does not arrive: the text simply stays `sent`

    async def send(request: Request) -> Response:
        raw = await request.body()
        why = sms.verify(
            state.secret,
            raw,
            request.headers.get(sms.SIGNATURE_HEADER),
            request.headers.get(sms.TIMESTAMP_HEADER),
            int(time.time() * 1000),
        )
        if why is not None:
            state.received.append({"status": 401, "error": why, "at": time.time()})
            return JSONResponse({"error": why}, 401)
        msg = json.loads(raw)
        fault = state.faults.popleft() if state.faults else {}
        entry = {**msg, "at": time.time(), "status": fault.get("status", 200)}
        state.received.append(entry)
        if fault.get("delay"):
            await asyncio.sleep(float(fault["delay"]))
        if entry["status"] >= 300:
            return JSONResponse({"error": "provider trouble"}, entry["status"])
        duplicate = msg["id"] in state.seen
        if not duplicate:
            state.seen.add(msg["id"])
            state.inbox.setdefault(msg["to"], []).append(
                {"id": msg["id"], "dir": "in", "text": msg["text"], "kind": msg["kind"]}
            )
            if state.receipts and state.server:
                task = asyncio.create_task(receipt(msg["id"]))
                state.tasks.add(task)
                task.add_done_callback(state.tasks.discard)
        return JSONResponse({"accepted": True, "duplicate": duplicate})

    async def reply(request: Request) -> Response:
        raw = (await request.body()).decode()
        if request.headers.get("content-type", "").startswith("application/json"):
            data = json.loads(raw or "{}")
        else:  # an HTML form (urlencoded: no multipart parser needed)
            data = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
        phone, text = str(data.get("from") or ""), str(data.get("text") or "")
        inbound_id = "gw-" + secrets.token_hex(8)
        state.inbox.setdefault(phone, []).append({"id": inbound_id, "dir": "out", "text": text})
        answer: dict[str, Any] = {}
        try:
            r = await post_back(
                "/v1/sms/inbound",
                {
                    "id": inbound_id,
                    "from": phone,
                    "text": text,
                    "received_at": int(time.time() * 1000),
                },
            )
            answer = {"status": r.status_code, "body": r.json()}
        except (httpx.HTTPError, ValueError) as exc:
            answer = {"error": repr(exc)}
        if "json" in request.headers.get("accept", ""):
            return JSONResponse({"id": inbound_id, **answer})
        return RedirectResponse("/", 303)

    async def script(request: Request) -> Response:
        data = await request.json()
        state.faults.extend(data.get("faults") or [])
        return JSONResponse({"queued": len(state.faults)})

    async def messages(request: Request) -> Response:
        return JSONResponse({"received": state.received, "inbox": state.inbox})

    async def page(request: Request) -> Response:
        parts = [
            "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=3>",
            "<title>帮办 demo phones</title>",
            "<style>body{font:15px sans-serif;margin:1em}section{border:1px solid #ccc;"
            "border-radius:8px;padding:.5em 1em;margin:.5em 0;max-width:40em}"
            ".in{background:#eef}.out{background:#efe;text-align:right}"
            "p{margin:.3em 0;padding:.3em;border-radius:6px}</style>",
            f"<h1>Demo phones</h1><p>{len(state.inbox)} phone(s); the page refreshes itself."
            " Reply with the order's code (e.g. A7K2) to grab it.</p>",
        ]
        for phone, texts in sorted(state.inbox.items()):
            rows = "".join(f"<p class={t['dir']}>{html.escape(t['text'])}</p>" for t in texts[-20:])
            parts.append(
                f"<section><h3>{html.escape(phone)}</h3>{rows}"
                "<form method=post action=/reply>"
                f"<input type=hidden name=from value='{html.escape(phone)}'>"
                "<input name=text placeholder='reply, e.g. A7K2' size=30> <button>send</button>"
                "</form></section>"
            )
        return HTMLResponse("".join(parts))

    return Starlette(
        routes=[
            Route("/send", send, methods=["POST"]),
            Route("/reply", reply, methods=["POST"]),
            Route("/script", script, methods=["POST"]),
            Route("/messages", messages, methods=["GET"]),
            Route("/", page, methods=["GET"]),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m dispatcher.sms_gateway")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument(
        "--secret",
        default=os.environ.get("BANGBAN_SMS_SECRET"),
        help="the same as the server's BANGBAN_SMS_SECRET (default: that variable)",
    )
    parser.add_argument("--server", required=True, help="Bangban's base URL, for replies")
    parser.add_argument("--receipts", action="store_true", help="post delivery reports back")
    args = parser.parse_args(argv)
    if not args.secret:
        parser.error("give --secret or set BANGBAN_SMS_SECRET")
    state = GatewayState(args.secret, args.server.rstrip("/"), args.receipts)
    print(f"sms gateway: phones at http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(create_gateway(state), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
