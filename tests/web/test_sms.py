"""SMS through a real local gateway: offers to offline agents, claims by reply, signatures,
retries, the applicant's texts, the delivery log and presence (one server process)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from clients import AgentClient, ApiClient
from dispatcher.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.servers import InProcessServer
from tests.steps import ITEM, MATERIALS, Team, claimed, file, get, ok, team
from tests.web.sms_harness import (
    GatewayServer,
    code_of,
    outbox,
    present,
    signed_post,
    sms_settings,
    until,
)


def inbound(phone: str, text: str, inbound_id: str) -> dict[str, Any]:
    return {"id": inbound_id, "from": phone, "text": text, "received_at": int(time.time() * 1000)}


async def test_offline_agents_get_one_offer_text_each_and_connected_ones_none(
    settings: Settings,
) -> None:
    async with GatewayServer() as gw, InProcessServer(sms_settings(settings, gw)) as srv:
        t = await team(srv.url, ADMIN_TOKEN, {"g1": 3, "g2": 1})
        online = t.agent("g1", 0)
        async with AgentClient.connect(srv.url, online["token"]):
            listed = await until(lambda: present(srv.url), what="presence")
            assert [a["agent_id"] for a in listed["agents"]] == [online["id"]]
            order = await file(t)
            offline = [t.agent("g1", 1), t.agent("g1", 2)]
            await until(lambda: all(gw.texts_to(a["phone"]) for a in offline), what="offers")
            await asyncio.sleep(1.0)  # time for any duplicate to show up
        for agent in offline:
            (text,) = gw.texts_to(agent["phone"])
            assert text["kind"] == "offer"
            assert "出生登记" in text["text"] and "回复" in text["text"]
            assert f"https://bangban.example/app/#o={order['id']}" in text["text"]
        assert gw.texts_to(online["phone"]) == []
        assert gw.texts_to(t.agent("g2", 0)["phone"]) == []  # another grid, not widened
        rows = await outbox(settings.database_url, order["id"])
        assert sorted(r["agent_id"] for r in rows) == sorted(a["id"] for a in offline)
        assert {r["status"] for r in rows} == {"sent"}
        assert all(len(gw.requests_for(r["id"])) == 1 for r in rows)


async def test_offers_text_connected_agents_too_when_set_to_all(settings: Settings) -> None:
    async with GatewayServer() as gw:
        async with InProcessServer(sms_settings(settings, gw, sms_offers="all")) as srv:
            t = await team(srv.url, ADMIN_TOKEN, {"g1": 2})
            online = t.agent("g1", 0)
            async with AgentClient.connect(srv.url, online["token"]):
                await until(lambda: present(srv.url), what="presence")
                await file(t)
                await until(lambda: len(gw.state.seen) == 2, what="both texted")
            assert len(gw.texts_to(online["phone"])) == 1


async def test_widening_texts_the_newly_reached_offline_agents(settings: Settings) -> None:
    s = dataclasses.replace(settings, widen_after=2.0)
    async with (
        GatewayServer() as gw,
        InProcessServer(sms_settings(s, gw, sms_widen_grids=0)) as srv,
    ):
        t = await team(srv.url, ADMIN_TOKEN, {"g1": 1, "g2": 2})
        order = await file(t)
        home, others = t.agent("g1", 0), [t.agent("g2", 0), t.agent("g2", 1)]
        await until(lambda: gw.texts_to(home["phone"]), what="first offer")
        assert all(not gw.texts_to(a["phone"]) for a in others)
        await until(lambda: all(gw.texts_to(a["phone"]) for a in others), what="widened offers")
        await asyncio.sleep(0.5)
        assert len(gw.texts_to(home["phone"])) == 1  # reached before: not texted again
        rows = await outbox(settings.database_url, order["id"])
        assert sorted((r["agent_id"], r["step"]) for r in rows) == sorted(
            [(home["id"], 0)] + [(a["id"], 1) for a in others]
        )


async def test_a_reply_claims_and_two_replies_give_one_winner(settings: Settings) -> None:
    async with GatewayServer() as gw, InProcessServer(sms_settings(settings, gw)) as srv:
        t = await team(srv.url, ADMIN_TOKEN, {"g1": 3})
        order = await file(t)
        a, b, c = t.agent("g1", 0), t.agent("g1", 1), t.agent("g1", 2)
        await until(lambda: gw.texts_to(a["phone"]) and gw.texts_to(b["phone"]), what="offers")
        code = code_of(gw.texts_to(a["phone"])[0]["text"])
        ra, rb = await asyncio.gather(
            signed_post(srv.url, "/v1/sms/inbound", inbound(a["phone"], f"{code}抢单", "in-a")),
            signed_post(
                srv.url, "/v1/sms/inbound", inbound("+86" + b["phone"], code.lower(), "in-b")
            ),
        )
        assert ra.status_code == rb.status_code == 200, (ra.text, rb.text)
        results = {ra.json()["result"]: a, rb.json()["result"]: b}
        assert sorted(results) == ["taken", "won"]
        winner, loser = results["won"], results["taken"]
        await until(lambda: len(gw.texts_to(winner["phone"])) == 2, what="winner's reply")
        await until(lambda: len(gw.texts_to(loser["phone"])) == 2, what="loser's reply")
        assert "抢单成功" in gw.texts_to(winner["phone"])[1]["text"]
        assert "已被他人抢走" in gw.texts_to(loser["phone"])[1]["text"]
        stored = await get(srv.url, ADMIN_TOKEN, f"/v1/orders/{order['id']}")
        assert stored["status"] == "claimed" and stored["claimed_by"] == winner["id"]
        # The same text again (a gateway retry): the first answer, no second reply.
        again = await signed_post(
            srv.url,
            "/v1/sms/inbound",
            inbound(winner["phone"], code, "in-a" if winner is a else "in-b"),
        )
        assert again.json() == {**again.json(), "result": "won", "repeat": True}
        # The websocket/HTTP claim rule is the same one: the third agent is told `taken`.
        async with ApiClient(srv.url, c["token"]) as api:
            assert (await api.claim(order["id"]))["result"] == "taken"
        await asyncio.sleep(0.5)
        assert len(gw.texts_to(winner["phone"])) == 2


async def test_unknown_phones_codes_and_garbage_never_claim(settings: Settings) -> None:
    async with GatewayServer() as gw, InProcessServer(sms_settings(settings, gw)) as srv:
        t = await team(srv.url, ADMIN_TOKEN, {"g1": 1, "g2": 1})
        order = await file(t)
        agent = t.agent()
        await until(lambda: gw.texts_to(agent["phone"]), what="offer")
        code = code_of(gw.texts_to(agent["phone"])[0]["text"])
        elsewhere = t.agent("g2")  # an agent never texted this code
        other = await signed_post(
            srv.url, "/v1/sms/inbound", inbound(elsewhere["phone"], code, "x0")
        )
        assert other.json()["result"] == "unknown_code"
        stranger = await signed_post(srv.url, "/v1/sms/inbound", inbound("13100000000", code, "x1"))
        assert stranger.status_code == 200 and stranger.json()["result"] == "unknown_phone"
        noise = await signed_post(srv.url, "/v1/sms/inbound", inbound(agent["phone"], "好的", "x2"))
        assert noise.json()["result"] == "garbage"
        wrong = await signed_post(srv.url, "/v1/sms/inbound", inbound(agent["phone"], "ZZZZ", "x3"))
        assert wrong.json()["result"] == "unknown_code"
        await until(lambda: len(gw.texts_to(agent["phone"])) == 3, what="two hints")
        hints = [m["text"] for m in gw.texts_to(agent["phone"])[1:]]
        assert any("未能识别" in h for h in hints) and any("没有找到工单 ZZZZ" in h for h in hints)
        assert gw.texts_to("13100000000") == []
        stored = await get(srv.url, ADMIN_TOKEN, f"/v1/orders/{order['id']}")
        assert stored["status"] == "offered"


async def test_bad_signatures_and_stale_timestamps_are_refused(settings: Settings) -> None:
    async with GatewayServer() as gw, InProcessServer(sms_settings(settings, gw)) as srv:
        t = await team(srv.url, ADMIN_TOKEN, {"g1": 1})
        await file(t)
        body = inbound(t.agent()["phone"], "A7K2", "sig-1")
        for kwargs in ({"secret": "wrong"}, {"timestamp": time.time() - 600}):
            r = await signed_post(srv.url, "/v1/sms/inbound", body, **kwargs)
            assert r.status_code == 401 and r.json()["error"]["code"] == "bad_signature"
            r = await signed_post(
                srv.url, "/v1/sms/receipts", {"id": "x", "status": "delivered"}, **kwargs
            )
            assert r.status_code == 401
        async with ApiClient(srv.url, ADMIN_TOKEN) as api:  # a bearer token is no signature
            r = await api.request("POST", "/v1/sms/inbound", body)
            assert r.status_code == 401
        bad = await signed_post(srv.url, "/v1/sms/inbound", {"id": "y", "from": "1"})
        assert bad.status_code == 422
        await asyncio.sleep(0.3)
        assert not gw.texts_to(t.agent()["phone"])[1:]  # nothing answered the refused texts


async def test_a_gateway_failing_three_times_gets_the_text_once(settings: Settings) -> None:
    async with GatewayServer() as gw, InProcessServer(sms_settings(settings, gw)) as srv:
        gw.script({"status": 500}, {"status": 503}, {"status": 500})
        t = await team(srv.url, ADMIN_TOKEN, {"g1": 1})
        order = await file(t)
        agent = t.agent()
        await until(lambda: gw.texts_to(agent["phone"]), what="the text, at last")
        (row,) = await outbox(settings.database_url, order["id"])
        assert [r["status"] for r in gw.requests_for(row["id"])] == [500, 503, 500, 200]
        assert row["status"] == "sent" and row["attempts"] == 4
        assert len(gw.texts_to(agent["phone"])) == 1
        scraped = srv.ctx.metrics.render().decode()
        assert 'bangban_sms_total{kind="offer",outcome="retry"} 3.0' in scraped
        assert 'bangban_sms_total{kind="offer",outcome="sent"} 1.0' in scraped


async def test_a_slow_gateway_is_retried_with_the_same_id(settings: Settings) -> None:
    async with GatewayServer() as gw, InProcessServer(sms_settings(settings, gw)) as srv:
        gw.script({"delay": 2.0})  # longer than BANGBAN_SMS_TIMEOUT (1 s): the answer is lost
        t = await team(srv.url, ADMIN_TOKEN, {"g1": 1})
        order = await file(t)
        await until(lambda: len(gw.state.received) >= 2, what="the retry")
        (row,) = await outbox(settings.database_url, order["id"])
        await until(lambda: gw.texts_to(t.agent()["phone"]), what="the text")
        ids = {r["id"] for r in gw.state.received}
        assert ids == {row["id"]}  # the same id both times, so the provider can dedupe
        assert len(gw.texts_to(t.agent()["phone"])) == 1


async def test_a_gateway_refusing_for_good_marks_failed_without_retrying(
    settings: Settings,
) -> None:
    async with GatewayServer() as gw, InProcessServer(sms_settings(settings, gw)) as srv:
        gw.script({"status": 400})
        t = await team(srv.url, ADMIN_TOKEN, {"g1": 1})
        order = await file(t)
        await until(lambda: gw.state.received, what="one try")
        await asyncio.sleep(0.5)
        (row,) = await outbox(settings.database_url, order["id"])
        assert row["status"] == "failed" and row["attempts"] == 1
        assert len(gw.state.received) == 1


async def test_receipts_and_the_delivery_log(settings: Settings) -> None:
    async with GatewayServer() as gw, InProcessServer(sms_settings(settings, gw)) as srv:
        t = await team(srv.url, ADMIN_TOKEN, {"g1": 2})
        order = await file(t)
        await until(lambda: len(gw.state.seen) == 2, what="two offers")
        rows = await outbox(settings.database_url, order["id"])
        await until(lambda: _all_sent(settings.database_url, order["id"]), what="recorded as sent")
        first, second = rows
        for _ in range(2):  # idempotent by id
            r = await signed_post(
                srv.url, "/v1/sms/receipts", {"id": first["id"], "status": "delivered"}
            )
            assert r.status_code == 200
        assert r.json()["result"] == "unchanged"
        r = await signed_post(
            srv.url, "/v1/sms/receipts", {"id": second["id"], "status": "failed", "error": "off"}
        )
        assert r.json()["result"] == "applied"
        r = await signed_post(
            srv.url,
            "/v1/sms/receipts",
            {"id": "00000000-0000-0000-0000-000000000000", "status": "delivered"},
        )
        assert r.status_code == 200 and r.json()["result"] == "unknown"
        log = await get(srv.url, ADMIN_TOKEN, f"/v1/admin/orders/{order['id']}/sms")
        assert len(log["short_code"]) == 4
        by_agent = {x["agent_id"]: x for x in log["texts"]}
        assert by_agent[first["agent_id"]]["status"] == "delivered"
        assert by_agent[first["agent_id"]]["delivered_at"] is not None
        assert by_agent[second["agent_id"]]["status"] == "failed"
        assert by_agent[second["agent_id"]]["error"] == "off"
        assert {x["agent_name"] for x in log["texts"]} == {
            t.agent("g1", 0)["name"],
            t.agent("g1", 1)["name"],
        }
        async with ApiClient(srv.url, t.agent()["token"]) as api:
            r = await api.request("GET", f"/v1/admin/orders/{order['id']}/sms")
            assert r.status_code == 403


async def _all_sent(dsn: str | None, order_id: int) -> bool:
    rows = await outbox(dsn, order_id)
    return bool(rows) and all(r["status"] == "sent" for r in rows)


async def test_the_applicant_is_told_at_each_step(settings: Settings) -> None:
    async with GatewayServer() as gw, InProcessServer(sms_settings(settings, gw)) as srv:
        t = await team(srv.url, ADMIN_TOKEN, {"g1": 1})
        phone = "13812345678"
        await _applicant_steps(srv, t, phone)
        await until(lambda: len(gw.texts_to(phone)) == 4, what="four applicant texts")
        texts = [m["text"] for m in gw.texts_to(phone)]
        kinds = [m["kind"] for m in gw.texts_to(phone)]
        assert kinds == [
            "applicant_materials",
            "applicant_accepted",
            "applicant_replied",
            "applicant_rate",
        ]
        assert MATERIALS[3] in texts[0] and "补交" in texts[0]
        assert "已由代办员受理" in texts[1]
        assert "已办理：材料齐全，已办结" in texts[2]
        link = texts[3].split("评价：", 1)[1]
        assert link.startswith("https://bangban.example/app/#o=")
        token = link.split("&t=", 1)[1]
        async with ApiClient(srv.url, token) as api:  # the link's token tracks this order
            order_id = int(link.split("#o=", 1)[1].split("&", 1)[0])
            assert (await api.get_order(order_id))["status"] == "replied"
        async with srv.admin() as admin:
            console = await admin.request("GET", f"/v1/admin/sms/messages?to={phone}")
            assert [m["kind"] for m in console.json()["messages"]] == kinds


async def _applicant_steps(srv: InProcessServer, t: Team, phone: str) -> int:
    order = await claimed(t, item=ITEM, applicant={"name": "张三", "phone": phone})
    token = t.agent()["token"]
    supply_by = int(time.time() * 1000) + 3 * 86_400_000
    await ok(srv.url, token, order["id"], "accept", received=MATERIALS[:3], supply_by=supply_by)
    await ok(srv.url, token, order["id"], "supply", received=MATERIALS[3:])
    await ok(srv.url, token, order["id"], "reply", result="材料齐全，已办结")
    return int(order["id"])


async def test_applicant_texts_are_switched_by_setting(settings: Settings) -> None:
    async with GatewayServer() as gw:
        s = sms_settings(settings, gw, sms_applicant="replied")
        async with InProcessServer(s) as srv:
            t = await team(srv.url, ADMIN_TOKEN, {"g1": 1})
            phone = "13812345679"
            await _applicant_steps(srv, t, phone)
            await until(lambda: gw.texts_to(phone), what="the reply text")
            await asyncio.sleep(0.5)
            assert [m["kind"] for m in gw.texts_to(phone)] == ["applicant_replied"]


async def test_without_a_gateway_texts_go_to_the_log_and_the_console(settings: Settings) -> None:
    s = dataclasses.replace(settings, sms_interval=0.1)
    async with InProcessServer(s) as srv:
        t = await team(srv.url, ADMIN_TOKEN, {"g1": 1})
        order = await file(t)
        agent = t.agent()

        async def console() -> list[dict[str, Any]]:
            body = await get(srv.url, ADMIN_TOKEN, f"/v1/admin/sms/messages?to={agent['phone']}")
            return [m for m in body["messages"] if m["status"] == "sent"]

        (offer,) = await until(console, what="the offer in the console")
        code = code_of(offer["text"])
        async with srv.admin() as admin:
            r = await admin.request(
                "POST", "/v1/admin/sms/inbound", {"from": agent["phone"], "text": code}
            )
        assert r.status_code == 200 and r.json()["result"] == "won"
        stored = await get(srv.url, ADMIN_TOKEN, f"/v1/orders/{order['id']}")
        assert stored["claimed_by"] == agent["id"]
        replies = await until(lambda: _second(console), what="the reply in the console")
        assert "抢单成功" in replies[1]["text"]


async def _second(console: Any) -> list[dict[str, Any]] | None:
    found: list[dict[str, Any]] = await console()
    return found if len(found) >= 2 else None


async def test_widening_to_all_grids_texts_only_the_nearest_grids_by_default(
    settings: Settings,
) -> None:
    s = dataclasses.replace(settings, widen_after=2.0)
    async with (
        GatewayServer() as gw,
        InProcessServer(sms_settings(s, gw, sms_widen_grids=1)) as srv,
    ):
        t = await team(srv.url, ADMIN_TOKEN, {"g1": 1, "g2": 1})
        order = await file(t)
        await until(lambda: gw.texts_to(t.agent("g1")["phone"]), what="first offer")

        async def widened() -> bool:
            found = await get(srv.url, ADMIN_TOKEN, f"/v1/orders/{order['id']}")
            return bool(found["status"] == "widened")

        await until(widened, what="widened")
        await asyncio.sleep(1.0)
        assert gw.texts_to(t.agent("g2")["phone"]) == []  # g2 is not among the 1 nearest
        assert [r["step"] for r in await outbox(settings.database_url, order["id"])] == [0]


async def test_a_released_order_is_texted_afresh_but_never_to_who_released_it(
    settings: Settings,
) -> None:
    async with GatewayServer() as gw, InProcessServer(sms_settings(settings, gw)) as srv:
        t = await team(srv.url, ADMIN_TOKEN, {"g1": 2})
        quitter, other = t.agent("g1", 0), t.agent("g1", 1)
        order = await file(t)
        await until(lambda: gw.texts_to(other["phone"]), what="the first offer")
        await until(lambda: gw.texts_to(quitter["phone"]), what="the first offer")
        async with ApiClient(srv.url, quitter["token"]) as api:
            assert (await api.claim(order["id"]))["result"] == "won"
        await ok(srv.url, quitter["token"], order["id"], "release", reason="生病了")
        await until(lambda: len(gw.texts_to(other["phone"])) == 2, what="offered afresh")
        await asyncio.sleep(0.5)
        assert len(gw.texts_to(quitter["phone"])) == 1  # the first offer only
