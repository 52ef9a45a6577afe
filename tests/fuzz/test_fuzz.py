"""Property-based fuzzing of the edge (hypothesis): every endpoint of
:data:`~tests.fuzz.strategies.ENDPOINTS` and every frame type of
:data:`~tests.fuzz.strategies.FRAMES`, with bodies, path ids, query strings and frames of every
shape.  The server must answer each with a documented 4xx (``{"error": {"code", "message"}}``)
or a 2xx, never a 5xx; a websocket must answer each bad frame with an ``error`` frame and stay
open; and a refused request must leave the order it names unchanged.

Hypothesis runs in a worker thread with blocking clients while the server runs on the test's
event loop.  The profile (:data:`~tests.fuzz.strategies.PROFILE`) is derandomized and bounded,
so each test takes a few seconds and CI sees the same cases every run.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from clients.framesocket import ws_url
from dispatcher.live import wire
from tests.fuzz import strategies as fz
from tests.servers import InProcessServer
from tests.steps import Team, claimed, team

FRAME_ERRORS = {
    wire.BAD_FRAME,
    wire.UNKNOWN_TYPE,
    wire.INVALID_VALUE,
    wire.FORBIDDEN,
    wire.RATE_LIMITED,
}
RAN: dict[str, int] = {}
_lock = threading.Lock()


def _count(name: str) -> None:
    with _lock:
        RAN[name] = RAN.get(name, 0) + 1


@pytest.fixture
async def world(server: InProcessServer) -> dict[str, Any]:
    t: Team = await team(server.url, server.settings.admin_token or "", {"g1": 2})
    victim = await claimed(t, t.agent("g1", 0))
    return {
        "url": server.url,
        "tokens": {
            "admin": t.admin_token,
            "intake": t.intake,
            "holder": t.agent("g1", 0)["token"],
            "other": t.agent("g1", 1)["token"],
            "tracking": victim["tracking_token"],
        },
        "victim": victim["id"],
    }


def _version(http: httpx.Client, admin: str, order_id: int) -> int:
    r = http.get(f"/v1/orders/{order_id}", headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 200, r.text
    version: int = r.json()["version"]
    return version


def _fuzz_http(w: dict[str, Any], ep: fz.Endpoint) -> None:
    tokens = w["tokens"]
    name = f"{ep.method} {ep.path}"
    with httpx.Client(base_url=w["url"], timeout=30) as http:

        @fz.PROFILE
        @given(
            body=fz.body_for(ep.fields),
            pid=fz.path_ids,
            query=st.dictionaries(st.sampled_from(ep.query or ("x",)), fz.query_values, max_size=3),
        )
        def run(body: Any, pid: str, query: dict[str, str]) -> None:
            _count(name)
            path = ep.path.format(order=w["victim"], id=pid)
            if ep.query:
                path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
            before = _version(http, tokens["admin"], w["victim"])
            content = fz.raw_body(body) if ep.method in ("POST", "PUT", "PATCH") else None
            r = http.request(
                ep.method,
                path,
                content=content,
                headers={
                    "Authorization": f"Bearer {tokens[ep.token]}",
                    "Content-Type": "application/json",
                },
            )
            assert r.status_code < 500, (path, body, r.text)
            if r.status_code >= 400:
                err = r.json()["error"]
                assert isinstance(err["code"], str) and isinstance(err["message"], str)
                assert _version(http, tokens["admin"], w["victim"]) == before, (path, body)

        run()


@pytest.mark.parametrize("ep", fz.ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
async def test_endpoints_answer_every_body_with_a_documented_4xx(
    world: dict[str, Any], ep: fz.Endpoint
) -> None:
    await asyncio.to_thread(_fuzz_http, world, ep)


def _until_pong(ws: Any, rid: str) -> list[dict[str, Any]]:
    """Frames received until the pong answering ``rid``."""
    seen: list[dict[str, Any]] = []
    while True:
        frame = wire.unpack(ws.recv(timeout=10))
        if frame["type"] == "pong" and frame.get("request_id") == rid:
            return seen
        seen.append(frame)


def _fuzz_frames(w: dict[str, Any], kind: str | None) -> None:
    name = f"frame {kind or 'raw'}"
    uri = ws_url(w["url"], "/v1/agent/ws", w["tokens"]["other"], "json")
    with httpx.Client(base_url=w["url"], timeout=30) as http, connect(uri) as ws:
        before = _version(http, w["tokens"]["admin"], w["victim"])
        n = [0]
        strategy = (
            st.tuples(fz.frame_maps(kind), st.booleans())
            if kind is not None
            else st.tuples(fz.raw_frames, st.just(False))
        )

        @fz.PROFILE
        @given(case=strategy)
        def run(case: tuple[Any, bool]) -> None:
            _count(name)
            frame, as_msgpack = case
            data = fz.encoded(frame, as_msgpack) if kind is not None else frame
            n[0] += 1
            rid = f"fuzz-{n[0]}"
            try:
                ws.send(data)
                ws.send(json.dumps({"type": "ping", "request_id": rid}))
                answers = _until_pong(ws, rid)
            except ConnectionClosed as exc:
                raise AssertionError(f"connection dropped by {data!r}: {exc}") from None
            for answer in answers:
                if answer["type"] == "error":
                    assert answer["code"] in FRAME_ERRORS, (data, answer)
            threading.Event().wait(0.03)  # under the frame rate limit (50 a second)

        run()
        assert _version(http, w["tokens"]["admin"], w["victim"]) == before


@pytest.mark.parametrize("kind", [*fz.FRAMES, None], ids=lambda k: k or "raw")
async def test_frames_get_an_error_frame_and_the_connection_stays(
    world: dict[str, Any], kind: str | None
) -> None:
    await asyncio.to_thread(_fuzz_frames, world, kind)


def test_zz_report() -> None:
    """How many cases ran (printed with ``-s``; the report in the closing note comes from it)."""
    total = sum(RAN.values())
    print(f"\nfuzz cases run: {total} over {len(RAN)} targets")
    for name, count in sorted(RAN.items()):
        print(f"  {count:4d}  {name}")
