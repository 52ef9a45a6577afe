"""Bad input: a stable code and a readable message for each, never a crash, nothing lost."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import msgpack
import pytest

from clients import AgentClient, ApiClient
from dispatcher.live import wire
from tests.servers import InProcessServer, intake_token, roster


@pytest.fixture
async def setup(server: InProcessServer) -> dict[str, Any]:
    async with server.admin() as admin:
        agents = await roster(admin, {"g1": 2})
        intake = await intake_token(admin)
    return {"agents": agents["g1"], "intake": intake}


async def _post(
    server: InProcessServer, token: str, path: str, content: bytes, ctype: str = "application/json"
) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post(
            path,
            content=content,
            headers={"Authorization": f"Bearer {token}", "Content-Type": ctype},
        )
    return r.status_code, r.json()


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"{not json", 400, "bad_json"),
        (b"[1, 2]", 400, "bad_body"),
        (b"", 400, "bad_body"),
        (json.dumps({"grid": "g1"}).encode(), 422, "missing_field"),
        (json.dumps({"text": "x"}).encode(), 422, "missing_field"),
        (json.dumps({"grid": "g1", "text": 5}).encode(), 422, "invalid_value"),
        (json.dumps({"grid": "g1", "text": "  "}).encode(), 422, "invalid_value"),
        (json.dumps({"grid": "g1", "text": "x" * 2001}).encode(), 422, "invalid_value"),
        (json.dumps({"grid": ["g1"], "text": "x"}).encode(), 422, "invalid_value"),
        (json.dumps({"grid": "g1", "text": "x", "gird": "g1"}).encode(), 422, "unknown_field"),
        (json.dumps({"grid": "g1", "text": "x", "item_class": 3}).encode(), 422, "invalid_value"),
        (
            json.dumps({"grid": "g1", "text": "x", "applicant": {"phone": "abc"}}).encode(),
            422,
            "invalid_value",
        ),
        (json.dumps({"grid": "nope", "text": "x"}).encode(), 422, "unknown_grid"),
        (
            json.dumps({"location": {"lat": 91, "lon": 0}, "text": "x"}).encode(),
            422,
            "invalid_value",
        ),
        (json.dumps({"grid": "g1", "text": "x" * 70_000}).encode(), 413, "too_large"),
    ],
)
async def test_bad_order_bodies(
    server: InProcessServer, setup: dict[str, Any], content: bytes, status: int, code: str
) -> None:
    got_status, body = await _post(server, setup["intake"], "/v1/orders", content)
    assert (got_status, body["error"]["code"]) == (status, code)
    assert body["error"]["message"]


async def test_unsupported_content_type(server: InProcessServer, setup: dict[str, Any]) -> None:
    status, body = await _post(server, setup["intake"], "/v1/orders", b"x", "text/plain")
    assert (status, body["error"]["code"]) == (415, "unsupported_media_type")


async def test_nothing_is_filed_by_a_bad_request(
    server: InProcessServer, setup: dict[str, Any]
) -> None:
    await _post(server, setup["intake"], "/v1/orders", b'{"grid": "nope", "text": "x"}')
    async with ApiClient(server.url, setup["intake"]) as api:
        order = await api.file_order(grid="g1", text="x")
    assert order["id"] == 1


async def test_msgpack_bodies_and_answers(server: InProcessServer, setup: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post(
            "/v1/orders",
            content=msgpack.packb({"grid": "g1", "text": "x"}),
            headers={
                "Authorization": f"Bearer {setup['intake']}",
                "Content-Type": "application/msgpack",
                "Accept": "application/msgpack",
            },
        )
    assert r.status_code == 201
    assert msgpack.unpackb(r.content)["grid"] == "g1"


async def test_unknown_paths_methods_and_ids(
    server: InProcessServer, setup: dict[str, Any]
) -> None:
    headers = {"Authorization": f"Bearer {server.settings.admin_token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        for path, status, code in [
            ("/v1/nope", 404, "not_found"),
            ("/v1/orders/abc", 404, "not_found"),
            ("/v1/orders/99999", 404, "not_found"),
            ("/v1/orders/-1", 404, "not_found"),
        ]:
            r = await http.get(path)
            assert (r.status_code, r.json()["error"]["code"]) == (status, code), path
        r = await http.delete("/v1/orders")
        assert (r.status_code, r.json()["error"]["code"]) == (405, "method_not_allowed")


async def test_bad_claim_bodies(server: InProcessServer, setup: dict[str, Any]) -> None:
    token = setup["agents"][0]["token"]
    for body in (b"{}", b'{"request_id": ""}', b'{"request_id": [1]}', b'{"request_id": true}'):
        status, answer = await _post(server, token, "/v1/orders/1/claim", body)
        assert (status, answer["error"]["code"]) == (422, "invalid_value"), body


async def test_bad_admin_bodies(server: InProcessServer) -> None:
    token = server.settings.admin_token or ""
    cases = [
        ("/v1/admin/grids", {"code": "a b", "name": "x"}, 422, "invalid_value"),
        ("/v1/admin/grids", {"code": "g1"}, 422, "missing_field"),
        ("/v1/admin/grids", {"code": "g1", "name": "x", "level": "planet"}, 422, "invalid_value"),
        (
            "/v1/admin/agents",
            {"name": "x", "phone": "13800000000", "grids": ["zz"]},
            422,
            "unknown_grid",
        ),
        (
            "/v1/admin/agents",
            {"name": "x", "phone": "13800000000", "grids": []},
            422,
            "invalid_value",
        ),
        ("/v1/admin/tokens", {"kind": "admin", "name": "x"}, 422, "invalid_value"),
    ]
    for path, body, status, code in cases:
        got, answer = await _post(server, token, path, json.dumps(body).encode())
        assert (got, answer["error"]["code"]) == (status, code), (path, body)


async def test_grid_upsert_and_duplicate_phone(server: InProcessServer) -> None:
    async with server.admin() as admin:
        r1 = await admin.request("POST", "/v1/admin/grids", {"code": "g7", "name": "一"})
        r2 = await admin.request("POST", "/v1/admin/grids", {"code": "g7", "name": "二"})
        assert (r1.status_code, r2.status_code, r2.json()["name"]) == (201, 200, "二")
        await admin.create_agent("甲", "13811112222", ["g7"])
        r = await admin.request(
            "POST", "/v1/admin/agents", {"name": "乙", "phone": "13811112222", "grids": ["g7"]}
        )
        assert (r.status_code, r.json()["error"]["code"]) == (409, "duplicate_phone")


async def _errors(agent: AgentClient, n: int) -> list[wire.Error]:
    out: list[wire.Error] = []
    while len(out) < n:
        frame = await agent.recv(timeout=5)
        if isinstance(frame, wire.Error):
            out.append(frame)
    return out


async def test_bad_frames_get_errors_and_the_connection_stays(
    server: InProcessServer, setup: dict[str, Any]
) -> None:
    a, b = setup["agents"]
    async with (
        AgentClient.connect(server.url, a["token"]) as ca,
        AgentClient.connect(server.url, b["token"]) as cb,
        ApiClient(server.url, setup["intake"]) as api,
    ):
        await ca.send_raw(b"\xc1garbage")
        await ca.send_raw("{not json")
        await ca.send_raw(msgpack.packb({"type": "dance"}))
        await ca.send_raw(msgpack.packb({"type": "claim", "order_id": "x", "request_id": "r7"}))
        await ca.send_raw(json.dumps({"type": "claim", "request_id": "r8"}))
        errors = await _errors(ca, 5)
        assert [e.code for e in errors] == [
            "bad_frame",
            "bad_frame",
            "unknown_type",
            "invalid_value",
            "invalid_value",
        ]
        assert [e.request_id for e in errors][3:] == ["r7", "r8"]
        assert all(e.message for e in errors)
        # Still open, still useful: a JSON text frame on a msgpack connection works too.
        order = await api.file_order(grid="g1", text="x")
        await ca.wait_offer(order["id"], timeout=5)
        await ca.send_raw(
            json.dumps({"type": "claim", "order_id": order["id"], "request_id": "ok"})
        )
        frame = await ca.recv(timeout=5)
        while not isinstance(frame, wire.ClaimResult):
            frame = await ca.recv(timeout=5)
        assert (frame.request_id, frame.result) == ("ok", "won")
        assert not cb.closed


async def test_oversized_frame_closes_1009_and_spares_others(
    server: InProcessServer, setup: dict[str, Any]
) -> None:
    a, b = setup["agents"]
    async with (
        AgentClient.connect(server.url, a["token"]) as ca,
        AgentClient.connect(server.url, b["token"]) as cb,
        ApiClient(server.url, setup["intake"]) as api,
    ):
        await ca.send_raw(b"\x00" * (64 * 1024 + 1))
        assert await ca.wait_closed(timeout=5) == 1009
        order = await api.file_order(grid="g1", text="x")
        await cb.wait_offer(order["id"], timeout=5)
        assert (await cb.claim(order["id"])).result == "won"


async def test_flooding_is_rate_limited_not_fatal(
    server: InProcessServer, setup: dict[str, Any]
) -> None:
    async with AgentClient.connect(server.url, setup["agents"][0]["token"]) as ca:
        ping = msgpack.packb({"type": "ping"})
        await asyncio.gather(*(ca.send_raw(ping) for _ in range(300)))
        codes = []
        for _ in range(300):
            frame = await ca.recv(timeout=5)
            if isinstance(frame, wire.Error):
                codes.append(frame.code)
        assert codes and set(codes) == {"rate_limited"}
        assert not ca.closed


async def test_json_encoding_connection_gets_text_frames(
    server: InProcessServer, setup: dict[str, Any]
) -> None:
    async with AgentClient.connect(server.url, setup["agents"][0]["token"], encoding="json") as ca:
        assert ca.welcome.agent_id == setup["agents"][0]["id"]
        await ca.send_raw(msgpack.packb({"type": "claim", "order_id": 1}))
        (err,) = await _errors(ca, 1)
        assert err.code == "invalid_value"
