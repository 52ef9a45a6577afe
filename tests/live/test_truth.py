"""The truth after an ambiguous claim (issue 11, defect 1).

A claim's write sent to Postgres whose connection is then lost can still commit.  It used to
be answered ``unavailable`` ("nothing was changed") while Postgres recorded the win.  Now the
server finds out what happened once Postgres answers again (it ends the backend that ran the
write, then reads the order) and answers the truth: ``pending`` while it cannot know, then the
final answer (``won`` if the claim committed).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from clients import AgentClient, ApiClient
from dispatcher.settings import Settings
from tests.proxy import Proxy
from tests.servers import InProcessServer
from tests.steps import Team, file, row, team


@dataclasses.dataclass
class Cut:
    proxy: Proxy
    srv: InProcessServer
    t: Team
    direct: asyncpg.Connection[asyncpg.Record]


@pytest.fixture
async def cut(settings: Settings) -> AsyncIterator[Cut]:
    """A server whose Postgres is behind a proxy the test cuts, and a direct connection."""
    assert settings.database_url
    proxy = Proxy(settings.database_url)
    await proxy.start()
    through = dataclasses.replace(settings, database_url=proxy.url, reconcile_interval=3600)
    direct = await asyncpg.connect(settings.database_url)
    try:
        async with InProcessServer(through) as srv:
            t = await team(srv.url, settings.admin_token or "", {"g1": 2})
            yield Cut(proxy, srv, t, direct)
    finally:
        await direct.close()
        await proxy.stop()


async def _claim_waits_on_lock(direct: asyncpg.Connection[asyncpg.Record]) -> None:
    """Until the server's claim statement is waiting for the row lock the test holds."""
    for _ in range(500):
        await direct.execute("SELECT pg_stat_clear_snapshot()")  # (read inside a transaction)
        waiting = await direct.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE '%claimed_by = $2%'"
        )
        if waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the claim never reached Postgres")


async def _locked(c: Cut, order_id: int) -> Any:
    tx = c.direct.transaction()
    await tx.start()
    await c.direct.execute("SELECT 1 FROM orders WHERE id = $1 FOR UPDATE", order_id)
    return tx


async def test_a_claim_that_commits_after_the_cut_is_won(cut: Cut) -> None:
    order = await file(cut.t)
    agent_row = cut.t.agent()
    async with AgentClient.connect(cut.srv.url, agent_row["token"]) as agent:
        tx = await _locked(cut, order["id"])
        rid = await agent.send_claim(order["id"])
        await _claim_waits_on_lock(cut.direct)
        await cut.proxy.cut()  # the answer is lost; the statement is in Postgres
        await tx.commit()  # ... and commits
        first = await agent.wait_claim(rid, timeout=15, final=False)
        assert first.result == "pending"  # the server cannot know yet, and says so
        cut.proxy.restore()
        final = await agent.wait_claim(rid, timeout=15)
        assert final.result == "won"
        assert (await row(cut.srv.settings.database_url, order["id"]))["claimed_by"] == agent_row[
            "id"
        ]
        # Redis heard it too: the same request again gets the remembered answer.
        assert (await agent.claim(order["id"], request_id=rid)).result == "won"
    other = cut.t.agent("g1", 1)
    async with ApiClient(cut.srv.url, other["token"]) as api:
        assert (await api.claim(order["id"]))["result"] == "taken"


async def test_a_claim_ended_before_it_committed_is_unavailable_then_won(cut: Cut) -> None:
    """The cut claim had not committed when Postgres answered again: the server ends it (so
    it can never commit later) and says ``unavailable``: nothing was recorded."""
    order = await file(cut.t)
    async with AgentClient.connect(cut.srv.url, cut.t.agent()["token"]) as agent:
        tx = await _locked(cut, order["id"])
        rid = await agent.send_claim(order["id"])
        await _claim_waits_on_lock(cut.direct)
        await cut.proxy.cut()
        assert (await agent.wait_claim(rid, timeout=15, final=False)).result == "pending"
        cut.proxy.restore()  # the claim still waits on the lock: the server ends it
        final = await agent.wait_claim(rid, timeout=15)
        await tx.commit()
        assert final.result == "unavailable"
        got = await row(cut.srv.settings.database_url, order["id"])
        assert got["status"] == "offered" and got["claimed_by"] is None
        assert (await agent.claim(order["id"], request_id=rid)).result == "won"


async def test_http_claim_across_a_cut_is_202_then_the_truth(cut: Cut) -> None:
    order = await file(cut.t)
    async with ApiClient(cut.srv.url, cut.t.agent()["token"]) as api:
        tx = await _locked(cut, order["id"])
        request = asyncio.create_task(
            api.request("POST", f"/v1/orders/{order['id']}/claim", {"request_id": "h1"})
        )
        await _claim_waits_on_lock(cut.direct)
        await cut.proxy.cut()
        await tx.commit()
        response = await request
        assert response.status_code == 202, response.text
        assert response.json()["result"] == "pending"
        cut.proxy.restore()
        for _ in range(100):  # a safe retry: the same request_id
            again = await api.request(
                "POST", f"/v1/orders/{order['id']}/claim", {"request_id": "h1"}
            )
            if again.status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert again.status_code == 200 and again.json()["result"] == "won"
