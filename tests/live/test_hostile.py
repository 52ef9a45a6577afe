"""No client can hurt another over the websocket: hostile frames get an ``error`` frame naming
the field, on their own connection, while honest agents race for the same orders."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter

import asyncpg
import pytest

from clients import AgentClient
from dispatcher.flows.claim_cache import Claimant, ClaimedOrders
from dispatcher.live import wire
from dispatcher.settings import Settings
from tests.steps import CrewFactory, file

HONEST = 200
HOSTILE = 10
ROUNDS = 4


def _hostile_frames(order_id: int, i: int) -> list[str]:
    """JSON text frames whose strings break the text rule (``\\ud800`` is a lone surrogate)."""
    return [
        json.dumps({"type": "claim", "order_id": order_id, "request_id": f"x{i}\ud800"}),
        json.dumps({"type": "claim", "order_id": order_id, "request_id": f"n{i}\x00"}),
        json.dumps({"type": "ping", "request_id": "\udfff"}),
    ]


async def _expect_refusals(client: AgentClient, count: int) -> list[wire.Error]:
    got: list[wire.Error] = []
    while len(got) < count:
        frame = await client.recv(timeout=20)
        if isinstance(frame, wire.Error):
            got.append(frame)
    return got


async def test_hostile_frames_during_a_200_agent_race(
    settings: Settings, crew: CrewFactory
) -> None:
    settings = dataclasses.replace(settings, reconcile_interval=60)
    async with crew({"g1": HONEST + HOSTILE}, reconcile_interval=60) as tm:
        agents = tm.agents["g1"]
        honest = await asyncio.gather(
            *(AgentClient.connect(tm.url, a["token"]) for a in agents[:HONEST])
        )
        hostile = await asyncio.gather(
            *(AgentClient.connect(tm.url, a["token"], encoding="json") for a in agents[HONEST:])
        )
        try:
            for _ in range(ROUNDS):
                order = await file(tm)
                oid = order["id"]

                async def attack(i: int, c: AgentClient, oid: int = oid) -> list[wire.Error]:
                    frames = _hostile_frames(oid, i)
                    for data in frames:
                        await c.send_raw(data)
                    return await _expect_refusals(c, len(frames))

                # Hostile claims land in the same flights and batches as the honest ones.
                results, refusals = await asyncio.gather(
                    asyncio.gather(*(c.claim(oid, timeout=30) for c in honest)),
                    asyncio.gather(*(attack(i, c) for i, c in enumerate(hostile))),
                )
                assert Counter(r.result for r in results) == {"won": 1, "taken": HONEST - 1}
                for errors in refusals:
                    assert [e.code for e in errors] == ["invalid_value"] * 3
                    assert [e.field for e in errors] == ["request_id"] * 3
            # Every connection, honest and hostile, is still open and answering.
            for c in [*honest, *hostile]:
                assert not c.closed, (c.close_code, c.close_reason)
            for c in hostile:
                await c.send_raw(json.dumps({"type": "ping", "request_id": "still-here"}))
                while not isinstance(frame := await c.recv(timeout=10), wire.Pong):
                    pass
                assert frame.request_id == "still-here"
        finally:
            await asyncio.gather(*(c.close() for c in [*honest, *hostile]))
    conn = await asyncpg.connect(settings.database_url)
    claimed = await conn.fetchval("SELECT count(*) FROM order_events WHERE kind = 'claimed'")
    await conn.close()
    assert claimed == ROUNDS


# --- the claim cache alone: a claim that cannot be sent to Redis fails on its own --------

BAD: Claimant = (9, "9:s:\ud800", ["g1"])


async def test_a_bad_rider_is_refused_in_its_own_task() -> None:
    known = ClaimedOrders()
    with known.leading(1) as flight:
        good = flight.ride((8, "8:s:a", ["g1"]))
        with pytest.raises(ValueError):
            flight.ride(BAD)
        with pytest.raises(ValueError):
            flight.ride((10, "10:s:b", ["g\udc00"]))
        assert flight.board() == [(8, "8:s:a", ["g1"])]
        flight.answer(["taken"])
    assert good is not None and good.result() == "taken"


async def test_a_bad_claim_never_joins_a_batch() -> None:
    known = ClaimedOrders()
    calls: list[list[Claimant]] = []

    async def decide(claims: list[Claimant]) -> list[str]:
        for _, answer_field, _grids in claims:
            answer_field.encode()  # as redis-py would: a bad member would fail everyone
        calls.append(list(claims))
        return ["taken"] * len(claims)

    async def bad() -> str:
        return await known.settle(1, BAD, decide)

    honest = [known.settle(1, (i, f"{i}:s:r", ["g1"]), decide) for i in range(5)]
    out = await asyncio.gather(*honest, bad(), return_exceptions=True)
    assert out[:5] == ["taken"] * 5
    assert isinstance(out[5], ValueError)
    assert all(BAD not in call for call in calls)
