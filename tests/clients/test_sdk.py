"""The Python SDK (``clients``): each ApiClient method is a documented operation, and the
workflow round trip works through it against a real server."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import clients
from clients import ApiClient, ApiError
from dispatcher.web.operations import OPERATIONS
from tests.servers import InProcessServer, intake_token, roster

_NAMED = re.compile(r"``(GET|POST|PUT|PATCH) (/[^`? ]+)")
_ACTIONS = ("accept", "supply", "progress", "reply", "rate", "release", "cancel", "reassign")


def _templates(path: str) -> list[str]:
    path = path.replace("{id}", "{order_id}")
    if "<action>" in path:
        return [path.replace("<action>", a) for a in (*_ACTIONS, "assign", "classify")]
    return [path]


def test_every_sdk_method_names_a_documented_operation() -> None:
    """Each public ApiClient method's docstring starts with the operation it calls, and that
    operation is in the OpenAPI document: the SDK cannot call a route the server lacks."""
    methods = {
        name: fn
        for name, fn in inspect.getmembers(ApiClient, inspect.iscoroutinefunction)
        if not name.startswith("_") and name not in ("request", "aclose", "__aenter__")
    }
    assert len(methods) >= 15
    for name, fn in methods.items():
        found = _NAMED.search(fn.__doc__ or "")
        assert found is not None, f"ApiClient.{name} does not name its operation"
        method, path = found.groups()
        for template in _templates(path):
            assert (method, template) in OPERATIONS, (name, method, template)


def test_the_sdk_is_typed_and_ships_its_marker() -> None:
    assert (Path(clients.__file__).parent / "py.typed").is_file()
    for name in clients.__all__:
        obj = getattr(clients, name)
        for attr, member in inspect.getmembers(obj, inspect.isfunction):
            if not attr.startswith("_"):
                hints = inspect.get_annotations(member)
                assert "return" in hints, f"{name}.{attr} has no return annotation"


async def test_a_round_trip_through_the_sdk(server: InProcessServer) -> None:
    async with server.admin() as admin:
        agents = await roster(admin, {"g1": 1})
        intake = await intake_token(admin)
        items = await admin.catalog()
        item = await admin.catalog_item(items[0]["code"])
        assert item == items[0]
    async with ApiClient(server.url, intake) as front:
        order = await front.file_order(grid="g1", item=item["code"], applicant={"name": "李四"})
    async with ApiClient(server.url, agents["g1"][0]["token"]) as agent:
        assert (await agent.claim(order["id"]))["result"] == "won"
        held = await agent.held_orders()
        assert [o["id"] for o in held["orders"]] == [order["id"]]
        accepted = await agent.act(order["id"], "accept", received=item["materials"])
        assert accepted["status"] == "accepted" and accepted["event"]["kind"] == "accepted"
        with pytest.raises(ApiError) as stale:
            await agent.act(order["id"], "progress", note="x", version=1)
        assert (stale.value.status, stale.value.code) == (409, "conflict")
        await agent.act(order["id"], "reply", result="已办结", version=accepted["version"])
    async with ApiClient(server.url, order["tracking_token"]) as applicant:
        rated = await applicant.act(order["id"], "rate", rating="满意")
        assert rated["status"] == "closed"
        with pytest.raises(ApiError) as again:
            await applicant.act(order["id"], "rate", rating="满意")
        assert again.value.code == "illegal_transition"
        kinds = [e["kind"] for e in await applicant.order_events(order["id"])]
    assert kinds == ["filed", "claimed", "accepted", "replied", "rated"]
    async with server.admin() as admin:
        closed = await admin.list_orders(status="closed")
        assert [o["id"] for o in closed] == [order["id"]]
