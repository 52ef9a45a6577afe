"""Bad input to the workflow endpoints: a clear error code, and nothing changed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from clients import ApiClient
from dispatcher.core.lifecycle import REASON_MAX, TEXT_MAX
from tests.servers import InProcessServer
from tests.steps import MATERIALS, Team, claimed, error, events, ok, post, row, team


@pytest.fixture
async def t(server: InProcessServer) -> Team:
    return await team(server.url, server.settings.admin_token or "")


# (action, body, status, code, field) sent by the claiming agent to a claimed order.
AGENT_CASES: list[tuple[str, dict[str, Any], int, str, str | None]] = [
    ("accept", {"received": ["户口本复印件"]}, 422, "unknown_material", "received"),
    ("accept", {"received": "出生医学证明"}, 422, "invalid_value", "received"),
    ("accept", {"received": [1, 2]}, 422, "invalid_value", "received"),
    ("accept", {"received": MATERIALS, "colour": "red"}, 422, "unknown_field", "colour"),
    ("accept", {"received": MATERIALS[:1], "supply_by": 1}, 422, "invalid_value", "supply_by"),
    ("accept", {"received": MATERIALS[:1], "supply_by": "明天"}, 422, "invalid_value", "supply_by"),
    ("accept", {"received": MATERIALS, "green_card": "yes"}, 422, "invalid_value", "green_card"),
    ("accept", {"received": ["x" * (REASON_MAX + 1)]}, 422, "invalid_value", "received"),
    ("accept", {"received": MATERIALS, "version": 0}, 422, "invalid_value", "version"),
    ("accept", {"received": MATERIALS, "version": 99}, 409, "conflict", None),
    ("release", {"reason": "x" * (REASON_MAX + 1)}, 422, "invalid_value", "reason"),
    ("progress", {"note": "x"}, 409, "illegal_transition", None),
    ("reply", {"result": "已办结"}, 409, "illegal_transition", None),
    ("classify", {"item": "ZZ-999"}, 422, "unknown_item", "item"),
    ("classify", {"item": "not a code!"}, 422, "invalid_value", "item"),
]


@pytest.mark.parametrize(("action", "body", "status", "code", "field"), AGENT_CASES)
async def test_bad_agent_input_changes_nothing(
    server: InProcessServer,
    t: Team,
    action: str,
    body: dict[str, Any],
    status: int,
    code: str,
    field: str | None,
) -> None:
    order = await claimed(t)
    before = await row(server.settings.database_url, order["id"])
    r = await post(t.url, t.agent()["token"], order["id"], action, **body)
    assert error(r) == (status, code), r.text
    if field is not None:
        assert r.json()["error"]["details"]["field"] == field
    assert r.json()["error"]["message"]
    after = await row(server.settings.database_url, order["id"])
    assert dict(after) == dict(before)
    assert [e["kind"] for e in await events(server.settings.database_url, order["id"])] == [
        "filed",
        "claimed",
    ]


async def _accepted(t: Team) -> dict[str, Any]:
    order = await claimed(t)
    await ok(t.url, t.agent()["token"], order["id"], "accept", received=MATERIALS)
    return order


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"note": ""}, "note"),
        ({"note": "x" * (TEXT_MAX + 1)}, "note"),
        ({"note": 5}, "note"),
        ({"note": "已送", "desk": "province"}, "desk"),
    ],
)
async def test_bad_progress_notes(t: Team, body: dict[str, Any], field: str) -> None:
    order = await _accepted(t)
    r = await post(t.url, t.agent()["token"], order["id"], "progress", **body)
    assert error(r) == (422, "invalid_value")
    assert r.json()["error"]["details"]["field"] == field


@pytest.mark.parametrize(
    "fees",
    [
        [{"item": "快递", "amount_fen": 0}],
        [{"item": "快递", "amount_fen": 1.5}],
        [{"item": "快递"}],
        ["快递 12元"],
        [{"item": "快递", "amount_fen": 10}] * 31,
    ],
)
async def test_bad_fees(t: Team, fees: list[Any]) -> None:
    order = await _accepted(t)
    r = await post(t.url, t.agent()["token"], order["id"], "reply", result="已办结", fees=fees)
    assert error(r) == (422, "invalid_value")
    assert r.json()["error"]["details"]["field"] == "fees"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rating": "好评"}, "rating"),
        ({"rating": 5}, "rating"),
        ({}, "rating"),
        ({"rating": "满意", "comment": "x" * (REASON_MAX + 1)}, "comment"),
    ],
)
async def test_ratings_outside_the_scale(
    server: InProcessServer, t: Team, body: dict[str, Any], field: str
) -> None:
    order = await _accepted(t)
    await ok(t.url, t.agent()["token"], order["id"], "reply", result="已办结")
    r = await post(t.url, order["tracking_token"], order["id"], "rate", **body)
    assert error(r) == (422, "invalid_value")
    assert r.json()["error"]["details"]["field"] == field
    assert (await row(server.settings.database_url, order["id"]))["status"] == "replied"
    # Codes and labels of the scale are both accepted.
    await ok(t.url, order["tracking_token"], order["id"], "rate", rating="very_satisfied")


async def test_cancel_needs_a_reason_and_unknown_orders_are_404(t: Team) -> None:
    order = await claimed(t)
    r = await post(t.url, order["tracking_token"], order["id"], "cancel")
    assert error(r) == (422, "invalid_value")
    for path in ("/v1/orders/987654/accept", "/v1/orders/abc/accept", "/v1/orders/-1/cancel"):
        async with ApiClient(t.url, t.agent()["token"]) as api:
            assert error(await api.request("POST", path, {})) == (404, "not_found")
    async with httpx.AsyncClient(base_url=t.url) as http:
        r = await http.post(
            f"/v1/orders/{order['id']}/accept",
            content=b"{not json",
            headers={"Authorization": f"Bearer {t.agent()['token']}"},
        )
        assert error(r) == (400, "bad_json")
        r = await http.post(
            f"/v1/orders/{order['id']}/release",
            headers={"Authorization": f"Bearer {t.agent()['token']}"},
        )
        assert r.status_code == 200  # no body at all: an action without params
    r = await post(t.url, t.admin_token, order["id"], "assign", agent_id="seven")
    assert error(r) == (422, "invalid_value")
