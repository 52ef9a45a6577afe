"""Authentication and authorisation: every kind of wrong token gets its stable answer."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from clients import AgentClient, ApiClient, ConnectionRejectedError, TrackingClient
from tests.servers import InProcessServer, intake_token, roster


async def _setup(server: InProcessServer) -> dict[str, Any]:
    async with server.admin() as admin:
        agents = await roster(admin, {"g1": 2, "g2": 1})
        intake = await intake_token(admin)
    async with ApiClient(server.url, intake) as api:
        one = await api.file_order(
            grid="g1", text="one", applicant={"name": "张三", "phone": "13700000001"}
        )
        two = await api.file_order(grid="g1", text="two")
    return {"agents": agents, "intake": intake, "one": one, "two": two}


async def _status(
    server: InProcessServer, method: str, path: str, token: str | None, json: Any = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.request(method, path, headers=headers, json=json)
    return r.status_code, r.json()


async def test_http_missing_wrong_and_malformed_tokens_are_401(server: InProcessServer) -> None:
    s = await _setup(server)
    path = f"/v1/orders/{s['one']['id']}"
    for token in (None, "bba_nope", "x" * 500):
        status, body = await _status(server, "GET", path, token)
        assert (status, body["error"]["code"]) == (401, "unauthorized")
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.get(path, headers={"Authorization": f"Basic {s['intake']}"})
    assert r.status_code == 401


async def test_http_right_token_wrong_object_is_403(server: InProcessServer) -> None:
    s = await _setup(server)
    g1, g2 = s["agents"]["g1"][0], s["agents"]["g2"][0]
    one, two = s["one"], s["two"]
    cases = [
        ("POST", "/v1/orders", g1["token"], {"grid": "g1", "text": "x"}),  # agents don't file
        ("POST", "/v1/orders", one["tracking_token"], {"grid": "g1", "text": "x"}),
        ("GET", f"/v1/orders/{two['id']}", one["tracking_token"], None),  # not my order
        ("GET", f"/v1/orders/{one['id']}", g2["token"], None),  # not offered to g2
        ("GET", f"/v1/orders/{one['id']}", s["intake"], None),
        ("GET", f"/v1/orders/{one['id']}/events", g2["token"], None),
        ("POST", f"/v1/orders/{one['id']}/claim", s["intake"], {"request_id": "r"}),
        ("POST", f"/v1/orders/{one['id']}/claim", one["tracking_token"], {"request_id": "r"}),
        ("POST", "/v1/admin/grids", s["intake"], {"code": "g9", "name": "x"}),
        ("GET", "/v1/admin/agents", g1["token"], None),
        ("POST", "/v1/admin/tokens", one["tracking_token"], {"kind": "intake", "name": "x"}),
    ]
    for method, path, token, body in cases:
        status, answer = await _status(server, method, path, token, body)
        assert (status, answer["error"]["code"]) == (403, "forbidden"), (method, path)


async def test_who_reads_what(server: InProcessServer) -> None:
    """The applicant and the claiming agent see the applicant; an offered agent does not."""
    s = await _setup(server)
    one = s["one"]
    a, b = s["agents"]["g1"]
    status, body = await _status(server, "GET", f"/v1/orders/{one['id']}", one["tracking_token"])
    assert status == 200 and body["applicant"] == {"name": "张三", "phone": "13700000001"}
    status, body = await _status(server, "GET", f"/v1/orders/{one['id']}", b["token"])
    assert status == 200 and "applicant" not in body
    async with ApiClient(server.url, a["token"]) as agent:
        assert (await agent.claim(one["id"]))["result"] == "won"
    status, body = await _status(server, "GET", f"/v1/orders/{one['id']}", a["token"])
    assert status == 200 and body["applicant"]["name"] == "张三"
    status, body = await _status(server, "GET", f"/v1/orders/{one['id']}", b["token"])
    assert (status, body["error"]["code"]) == (403, "forbidden")  # no longer offered to b


@pytest.mark.parametrize("token", [None, "bbg_wrong", ""])
async def test_agent_socket_without_a_valid_token_closes_4401(
    server: InProcessServer, token: str | None
) -> None:
    with pytest.raises(ConnectionRejectedError) as err:
        await AgentClient.connect(server.url, token)
    assert err.value.code == 4401


async def test_agent_socket_with_a_non_agent_token_closes_4403(server: InProcessServer) -> None:
    s = await _setup(server)
    for token in (s["intake"], s["one"]["tracking_token"]):
        with pytest.raises(ConnectionRejectedError) as err:
            await AgentClient.connect(server.url, token)
        assert err.value.code == 4403


async def test_tracking_socket_only_for_its_own_order(server: InProcessServer) -> None:
    s = await _setup(server)
    one, two = s["one"], s["two"]
    with pytest.raises(ConnectionRejectedError) as err:
        await TrackingClient.connect(server.url, two["id"], one["tracking_token"])
    assert err.value.code == 4403
    with pytest.raises(ConnectionRejectedError) as err:
        await TrackingClient.connect(server.url, one["id"], None)
    assert err.value.code == 4401
    with pytest.raises(ConnectionRejectedError) as err:
        await TrackingClient.connect(server.url, one["id"], s["agents"]["g1"][0]["token"])
    assert err.value.code == 4403


async def test_agent_socket_accepts_the_authorization_header(server: InProcessServer) -> None:
    from websockets.asyncio.client import connect

    from dispatcher.live import wire

    s = await _setup(server)
    agent = s["agents"]["g1"][0]
    url = server.url.replace("http", "ws") + "/v1/agent/ws"
    async with connect(url, additional_headers={"Authorization": f"Bearer {agent['token']}"}) as ws:
        welcome = wire.decode_server(await ws.recv())
        assert isinstance(welcome, wire.Welcome) and welcome.agent_id == agent["id"]
