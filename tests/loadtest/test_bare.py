"""The bare server (``loadtest.bench.bare``) speaks the part of Bangban's protocol the bench's
clients use, refuses what it should, and does its durable steps: one winner, ``won`` after
Postgres has the claim, ``withdrawn`` to the others, the trail in its own tables.

Real Redis and Postgres (the session's), the server as a child process, as the bench runs it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from dispatcher.live import wire
from loadtest.bench._services import BareProcess, private_database
from loadtest.bench.bare import agent_token
from tests.conftest import Services

SECRET = "bare_test-secret"


@pytest.fixture
async def bare(clean: Services) -> AsyncIterator[tuple[BareProcess, str]]:
    async with private_database(clean.database_url, "baretest") as db:
        async with BareProcess(clean.redis_url, db, SECRET, clean.tmp / "bare.log") as proc:
            yield proc, db


async def _frame(ws: ClientConnection) -> dict[str, Any]:
    return wire.unpack(await asyncio.wait_for(ws.recv(), 5))


async def _agent(port: int, agent_id: int, grid: str) -> ClientConnection:
    uri = f"ws://127.0.0.1:{port}/v1/agent/ws?token={agent_token(SECRET, agent_id, grid)}"
    ws = await connect(uri, open_timeout=5)
    welcome = await _frame(ws)
    assert welcome["type"] == "welcome" and welcome["agent_id"] == agent_id
    assert welcome["grids"] == [grid]
    return ws


async def test_filing_refuses_bad_tokens_and_bodies(bare: tuple[BareProcess, str]) -> None:
    proc, _ = bare
    async with httpx.AsyncClient(base_url=proc.url, timeout=5) as http:
        good = {"Authorization": f"Bearer {SECRET}"}
        r = await http.post("/v1/orders", json={"grid": "G", "text": "x"})
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"
        r = await http.post(
            "/v1/orders", json={"grid": "G", "text": "x"}, headers={"Authorization": "Bearer no"}
        )
        assert r.status_code == 401
        r = await http.post("/v1/orders", content=b"{", headers=good)
        assert r.status_code == 400 and r.json()["error"] == "invalid_json"
        r = await http.post("/v1/orders", json={"grid": "G"}, headers=good)
        assert r.status_code == 422 and r.json()["error"] == "invalid_value"
        r = await http.get("/v1/orders", headers=good)
        assert r.status_code == 405
        assert (await http.get("/v1/elsewhere")).status_code == 404


async def test_agent_with_a_wrong_token_is_closed_4401(bare: tuple[BareProcess, str]) -> None:
    proc, _ = bare
    for token in ("nope.1.G", f"{SECRET}.x.G", f"{SECRET}.1."):
        uri = f"ws://127.0.0.1:{proc.port}/v1/agent/ws?token={token}"
        with pytest.raises(Exception) as caught:
            async with connect(uri, open_timeout=5) as ws:
                await ws.recv()
        closed = caught.value
        code = closed.rcvd.code if isinstance(closed, ConnectionClosed) and closed.rcvd else None
        assert code == 4401 or "403" in str(closed), repr(closed)


async def test_one_winner_won_after_commit_withdrawn_to_the_others(
    bare: tuple[BareProcess, str],
) -> None:
    proc, db = bare
    a, b, other_grid = (
        await _agent(proc.port, 1, "G1"),
        await _agent(proc.port, 2, "G1"),
        await _agent(proc.port, 3, "G2"),
    )
    try:
        async with httpx.AsyncClient(base_url=proc.url, timeout=5) as http:
            r = await http.post(
                "/v1/orders",
                content=json.dumps({"grid": "G1", "text": "办社保卡"}).encode(),
                headers={"Authorization": f"Bearer {SECRET}"},
            )
        assert r.status_code == 201, r.text
        order = r.json()
        oid = order["id"]
        for ws in (a, b):
            offer = await _frame(ws)
            assert offer["type"] == "offer" and offer["order"]["id"] == oid

        await a.send(wire.encode(wire.Claim(oid, "ra")))
        won = await _frame(a)
        assert won == {"type": "claim_result", "request_id": "ra", "order_id": oid, "result": "won"}
        conn = await asyncpg.connect(db)
        try:
            # `won` arrived: Postgres has the claim and the trail.
            row = await conn.fetchrow("SELECT status, agent FROM bare_orders WHERE id = $1", oid)
            assert row is not None and (row["status"], row["agent"]) == ("claimed", 1)
            kinds = await conn.fetch(
                "SELECT kind FROM bare_events WHERE order_id = $1 ORDER BY id", oid
            )
            assert [k["kind"] for k in kinds] == ["filed", "claimed"]
        finally:
            await conn.close()
        withdrawn = await _frame(b)
        assert withdrawn == {"type": "withdrawn", "order_id": oid, "reason": "claimed"}

        await b.send(wire.encode(wire.Claim(oid, 7)))
        assert (await _frame(b))["result"] == "taken"
        await other_grid.send(wire.encode(wire.Claim(oid, 8)))
        assert (await _frame(other_grid))["result"] == "not_offered"
        await other_grid.send(wire.encode(wire.Claim(10**9, 9)))
        assert (await _frame(other_grid))["result"] == "unknown_order"

        await a.send(b"\xc1 not msgpack")
        error = await _frame(a)
        assert error["type"] == "error" and error["code"] == wire.BAD_FRAME
        await a.send(wire.pack({"type": "claim", "order_id": "x", "request_id": 1}, "msgpack"))
        error = await _frame(a)
        assert error["code"] == wire.INVALID_VALUE and error["request_id"] == 1
        await a.send(wire.encode(wire.Ping("p")))
        assert (await _frame(a))["type"] == "pong"
    finally:
        for ws in (a, b, other_grid):
            await ws.close()
