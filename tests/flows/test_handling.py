"""Every transition after the grab, through HTTP, against real Redis and Postgres."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clients import AgentClient, ApiClient, TrackingClient
from dispatcher.core.workdays import load_calendar
from dispatcher.live import wire
from tests.servers import InProcessServer
from tests.steps import (
    ITEM,
    MATERIALS,
    Team,
    claimed,
    error,
    events,
    file,
    get,
    ok,
    post,
    row,
    team,
)


@pytest.fixture
async def t(server: InProcessServer) -> Team:
    return await team(server.url, server.settings.admin_token or "")


async def test_filing_copies_the_item_onto_the_order(t: Team) -> None:
    order = await file(t)
    assert (order["item"], order["item_name"], order["item_class"]) == (
        ITEM,
        "出生登记（新生儿落户）",
        1,
    )
    assert order["materials"] == MATERIALS and order["time_limit_days"] == 3
    assert order["escalate_at"] == order["created_at"] + 86_400_000
    assert order["status"] == "offered" and order["missing"] == [] and order["rating"] is None


async def test_accept_progress_reply_rate(server: InProcessServer, t: Team) -> None:
    """The whole happy path: 受理 → 代办 → 回复 → 回访, each step in the trail with its label."""
    order = await claimed(t)
    agent, oid = t.agent()["token"], order["id"]
    accepted = await ok(t.url, agent, oid, "accept", received=MATERIALS)
    assert accepted["status"] == "accepted" and accepted["missing"] == []
    due = load_calendar().add_working_days(accepted["accepted_at"], 3)
    assert accepted["due_at"] == due and accepted["overdue"] is False
    assert accepted["event"]["label"] == "代办员已受理您的申请"

    note = await ok(t.url, agent, oid, "progress", note="已送乡镇派出所", desk="township")
    assert note["status"] == "accepted" and note["event"]["details"]["desk"] == "township"
    replied = await ok(
        t.url,
        agent,
        oid,
        "reply",
        result="已落户，户口簿已送达",
        references=["受理号2026-001"],
        fees=[{"item": "快递", "amount_fen": 1200}],
    )
    assert replied["status"] == "replied"
    assert replied["close_at"] == replied["replied_at"] + server.settings.close_after * 1000
    assert replied["event"]["details"]["fees_total_fen"] == 1200

    rated = await ok(t.url, order["tracking_token"], oid, "rate", rating="满意", comment="很快")
    assert (rated["status"], rated["rating"], rated["rating_label"]) == (
        "closed",
        "satisfied",
        "满意",
    )

    trail = await get(t.url, order["tracking_token"], f"/v1/orders/{oid}/events")
    kinds = [e["kind"] for e in trail["events"]]
    assert kinds == ["filed", "claimed", "accepted", "progress", "replied", "rated"]
    assert all(e["label"] and not e["label"].isascii() for e in trail["events"])
    assert trail["events"][-1]["label"] == "感谢您的评价，本次代办已办结"
    assert (await row(server.settings.database_url, oid))["version"] == 6
    async with ApiClient(t.url, t.admin_token) as admin:
        metrics = (await admin.request("GET", "/metrics")).text
    assert 'bangban_workflow_events_total{kind="rated"} 1.0' in metrics


async def test_missing_materials_wait_then_supply(t: Team) -> None:
    order = await claimed(t)
    agent, oid = t.agent()["token"], order["id"]
    r = await post(t.url, agent, oid, "accept", received=MATERIALS[:2])
    assert error(r) == (422, "invalid_value")
    assert r.json()["error"]["details"]["field"] == "supply_by"
    supply_by = order["created_at"] + 3 * 86_400_000
    waiting = await ok(t.url, agent, oid, "accept", received=MATERIALS[:2], supply_by=supply_by)
    assert waiting["status"] == "awaiting_materials" and waiting["missing"] == MATERIALS[2:]
    assert waiting["supply_by"] == supply_by and waiting["due_at"] is None
    part = await ok(t.url, agent, oid, "supply", received=MATERIALS[2:3])
    assert part["status"] == "awaiting_materials" and part["missing"] == MATERIALS[3:]
    done = await ok(t.url, agent, oid, "supply", received=MATERIALS[3:])
    assert done["status"] == "accepted" and done["missing"] == [] and done["due_at"]


async def test_green_card_accepts_with_a_material_missing(t: Team) -> None:
    order = await claimed(t)
    agent, oid = t.agent()["token"], order["id"]
    green = await ok(t.url, agent, oid, "accept", received=MATERIALS[:3], green_card=True)
    assert green["status"] == "accepted" and green["missing"] == MATERIALS[3:]
    assert green["event"]["kind"] == "accepted_green_card"
    later = await ok(t.url, agent, oid, "supply", received=MATERIALS[3:])
    assert later["status"] == "accepted" and later["missing"] == []


async def test_release_offers_it_again_but_not_to_the_releaser(
    server: InProcessServer, t: Team
) -> None:
    a, b = t.agent("g1", 0), t.agent("g1", 1)
    order = await claimed(t, a)
    async with (
        AgentClient.connect(t.url, b["token"]) as other,
        AgentClient.connect(t.url, a["token"]) as releasing,
    ):
        released = await ok(t.url, a["token"], order["id"], "release", reason="临时外出")
        assert released["status"] == "offered" and released["claimed_by"] is None
        offer = await other.wait_offer(order["id"], timeout=5)
        assert offer["version"] == released["version"]
        frame = await releasing.recv(timeout=5)  # its own order changed: an update, no offer
        while not isinstance(frame, wire.Update):
            frame = await releasing.recv(timeout=5)
        assert frame.event is not None and frame.event["kind"] == "released"
        assert order["id"] not in releasing.offers
    # A fresh ladder from the release, and a fresh escalation deadline.
    widen_after = server.settings.widen_after * 1000
    assert released["widen_at"] - released["event"]["at"] == widen_after
    assert (
        released["escalate_at"] - released["event"]["at"] == server.settings.escalate_after * 1000
    )
    async with AgentClient.connect(t.url, a["token"]) as releaser:
        assert order["id"] not in releaser.offers  # not in its snapshot
        assert (await releaser.claim(order["id"])).result == "not_offered"
    async with ApiClient(t.url, b["token"]) as api:
        assert (await api.claim(order["id"]))["result"] == "won"
    stored = await row(server.settings.database_url, order["id"])
    assert list(stored["excluded"]) == [a["id"]] and stored["claimed_by"] == b["id"]


async def test_cancel_by_the_applicant_until_accepted_then_by_an_operator(t: Team) -> None:
    first = await file(t)
    cancelled = await ok(t.url, first["tracking_token"], first["id"], "cancel", reason="不需要了")
    assert cancelled["status"] == "cancelled" and cancelled["event"]["details"]["by"] == "applicant"

    second = await claimed(t)
    await ok(t.url, t.agent()["token"], second["id"], "accept", received=MATERIALS)
    r = await post(t.url, second["tracking_token"], second["id"], "cancel", reason="不需要了")
    assert error(r) == (409, "illegal_transition")
    assert r.json()["error"]["details"]["current_state"] == "accepted"
    by_operator = await ok(t.url, t.admin_token, second["id"], "cancel", reason="申请人撤回")
    assert by_operator["status"] == "cancelled"


async def test_cancel_withdraws_an_open_offer(t: Team) -> None:
    async with AgentClient.connect(t.url, t.agent()["token"]) as agent:
        order = await file(t)
        await agent.wait_offer(order["id"], timeout=5)
        await ok(t.url, order["tracking_token"], order["id"], "cancel", reason="不需要了")
        frame = await agent.recv(timeout=5)
        while not isinstance(frame, wire.Withdrawn):
            frame = await agent.recv(timeout=5)
        assert (frame.order_id, frame.reason) == (order["id"], "cancelled")


async def test_reassign_moves_the_order_and_tells_both_agents(t: Team) -> None:
    a, b = t.agent("g1", 0), t.agent("g1", 1)
    order = await claimed(t, a)
    async with (
        AgentClient.connect(t.url, a["token"]) as old,
        AgentClient.connect(t.url, b["token"]) as new,
    ):
        moved = await ok(
            t.url, t.admin_token, order["id"], "reassign", agent_id=b["id"], reason="原代办员生病"
        )
        assert (moved["status"], moved["claimed_by"]) == ("claimed", b["id"])
        for client in (old, new):
            frame = await client.recv(timeout=5)
            while not isinstance(frame, wire.Update):
                frame = await client.recv(timeout=5)
            assert frame.order["claimed_by"] == b["id"]
            assert frame.event is not None and frame.event["kind"] == "reassigned"
    r = await post(t.url, a["token"], order["id"], "accept", received=MATERIALS)
    assert error(r) == (403, "forbidden")
    await ok(t.url, b["token"], order["id"], "accept", received=MATERIALS)
    r = await post(t.url, t.admin_token, order["id"], "reassign", agent_id=987654)
    assert error(r) == (422, "unknown_agent")


async def test_classify_a_free_text_order(t: Team) -> None:
    order = await claimed(t, text="家里添了孩子，要上户口")
    assert order["item"] is None and order["materials"] == []
    agent = t.agent()["token"]
    r = await post(t.url, agent, order["id"], "classify", item="NOPE-001")
    assert error(r) == (422, "unknown_item")
    r = await post(t.url, agent, order["id"], "classify", item="WJ-004")  # retired in the file
    assert error(r) == (422, "retired_item")
    done = await ok(t.url, agent, order["id"], "classify", item=ITEM)
    assert (done["item"], done["item_class"], done["materials"]) == (ITEM, 1, MATERIALS)
    assert done["event"]["kind"] == "classified"
    r = await post(t.url, agent, order["id"], "accept", received=["户口本复印件"])
    assert error(r) == (422, "unknown_material")
    await ok(t.url, agent, order["id"], "accept", received=MATERIALS)
    r = await post(t.url, agent, order["id"], "classify", item=ITEM)
    assert error(r) == (409, "illegal_transition")


async def test_who_may_do_what(t: Team) -> None:
    order = await claimed(t)
    oid, applicant, holder = order["id"], order["tracking_token"], t.agent()["token"]
    other = t.agent("g1", 1)["token"]
    assert error(await post(t.url, applicant, oid, "accept", received=MATERIALS)) == (
        403,
        "forbidden",
    )
    assert error(await post(t.url, t.intake, oid, "cancel", reason="x")) == (403, "forbidden")
    assert error(await post(t.url, other, oid, "accept", received=MATERIALS)) == (403, "forbidden")
    assert error(await post(t.url, holder, oid, "rate", rating="满意")) == (403, "forbidden")
    r = await post(t.url, applicant, oid, "rate", rating="满意")
    assert error(r) == (409, "illegal_transition")
    assert r.json()["error"]["details"] == {"current_state": "claimed", "action": "rate"}
    assert error(await post(t.url, t.admin_token, oid, "assign", agent_id=1)) == (
        409,
        "illegal_transition",
    )
    assert error(await post(t.url, holder, 999999, "accept")) == (404, "not_found")
    assert error(await post(t.url, applicant, 999999, "cancel", reason="x")) == (404, "not_found")
    another = await file(t)
    r = await post(t.url, another["tracking_token"], oid, "cancel", reason="x")
    assert error(r) == (403, "forbidden")


async def test_agent_view_and_held_list(t: Team) -> None:
    order = await claimed(t)
    agent = t.agent()["token"]
    view = await get(t.url, agent, f"/v1/orders/{order['id']}")
    assert view["overdue"] is False and view["status"] == "claimed"
    mine = await get(t.url, agent, "/v1/agent/orders")
    assert [o["id"] for o in mine["orders"]] == [order["id"]]


async def test_tracking_socket_shows_each_step_with_its_label(t: Team) -> None:
    order = await file(t)
    oid, agent = order["id"], t.agent()["token"]
    async with TrackingClient.connect(t.url, oid, order["tracking_token"]) as tracker:
        first = await tracker.recv(timeout=5)
        assert first.event is not None and first.event["kind"] == "filed"
        async with ApiClient(t.url, agent) as api:
            await api.claim(oid)
        await ok(t.url, agent, oid, "accept", received=MATERIALS)
        await ok(t.url, agent, oid, "reply", result="已办结")
        await ok(t.url, order["tracking_token"], oid, "rate", rating="非常满意")
        seen: list[dict[str, Any]] = []
        while len(seen) < 4:
            frame = await tracker.recv(timeout=5)
            assert frame.event is not None
            seen.append(frame.event)
    assert [e["kind"] for e in seen] == ["claimed", "accepted", "replied", "rated"]
    assert [e["label"] for e in seen] == [
        "代办员已接单",
        "代办员已受理您的申请",
        "代办员已回复办理结果，请您评价",
        "感谢您的评价，本次代办已办结",
    ]
    assert seen[1]["details"]["missing"] == [] and all(e["at"] for e in seen)
    assert tracker.order["status"] == "closed"


async def test_events_carry_who_did_what(server: InProcessServer, t: Team) -> None:
    order = await claimed(t)
    await ok(t.url, t.admin_token, order["id"], "cancel", reason="重复申请")
    trail = await events(server.settings.database_url, order["id"])
    last = trail[-1]
    assert last["kind"] == "cancelled" and last["actor"] == "admin:env"
    assert json.loads(last["details"]) == {"reason": "重复申请", "by": "operator"}
