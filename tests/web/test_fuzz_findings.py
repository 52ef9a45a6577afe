"""What schemathesis found with its acceptance/rejection checks on, pinned as plain tests."""

from __future__ import annotations

from typing import Any

import httpx

from clients import ApiClient
from tests.servers import InProcessServer, intake_token, roster


async def _claimed(server: InProcessServer) -> tuple[dict[str, Any], str]:
    async with server.admin() as admin:
        agents = await roster(admin, {"g1": 1})
        intake = await intake_token(admin)
    async with ApiClient(server.url, intake) as front:
        order = await front.file_order(grid="g1", text="办低保")
    token = agents["g1"][0]["token"]
    async with ApiClient(server.url, token) as agent:
        assert (await agent.claim(order["id"]))["result"] == "won"
    return order, token


async def test_a_fee_without_its_item_is_422_not_500(server: InProcessServer) -> None:
    order, token = await _claimed(server)
    async with ApiClient(server.url, token) as agent:
        await agent.act(order["id"], "accept")
        r = await agent.request(
            "POST", f"/v1/orders/{order['id']}/reply", {"result": "好", "fees": [{"amount_fen": 5}]}
        )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"]["field"] == "fees"


async def test_whole_numbers_written_as_floats_are_whole_numbers(server: InProcessServer) -> None:
    """JSON Schema's integers include 2.0; the server now agrees with its document."""
    order, token = await _claimed(server)
    async with ApiClient(server.url, token) as agent:
        accepted = await agent.act(order["id"], "accept", version=float(order["version"] + 1))
    assert accepted["status"] == "accepted"
    async with server.admin() as admin:
        item = (await admin.catalog())[0]
        r = await admin.request(
            "PATCH", f"/v1/admin/catalog/{item['code']}", {"time_limit_days": 7.0}
        )
    assert r.status_code == 200 and r.json()["time_limit_days"] == 7


async def test_the_catalogue_refuses_an_unknown_all(server: InProcessServer) -> None:
    headers = {"Authorization": f"Bearer {server.settings.admin_token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        r = await http.get("/v1/catalog", params={"all": "maybe"})
    assert r.status_code == 422 and r.json()["error"]["details"] == {"field": "all"}
