"""What a process knows about claims (dispatcher.flows.claim_cache): routing only, never an answer.

The first tests drive :class:`ClaimedOrders` alone; the rest run claims against real Redis
and Postgres and check that the cheap routes answer what the full claim would, keep one
winner, keep repeats stable, and recover when what the process knew is stale.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from clients import AgentClient, ApiClient
from dispatcher.core.orders import decide_claim
from dispatcher.core.roster import Agent
from dispatcher.exceptions import RedisUnavailableError
from dispatcher.flows import claims
from dispatcher.flows.claim_cache import Claimant, ClaimedOrders
from dispatcher.settings import Settings
from tests.servers import InProcessServer, ProcessServer
from tests.steps import CrewFactory, Team, claimed, file, ok, team

# --- the knowledge alone ---------------------------------------------------------------


def test_events_open_and_close_orders_newest_first() -> None:
    known = ClaimedOrders()
    known.learn(1, "claimed", 2)
    assert known.is_closed(1)
    known.learn(1, "offered", 1)  # an older event, heard late
    assert known.is_closed(1)
    known.learn(1, "offered", 3)  # released
    assert not known.is_closed(1)
    known.note_closed(2)  # from a claim's own answer: no version
    known.learn(2, "widened", 1)
    assert not known.is_closed(2)
    for status in ("accepted", "cancelled", "escalated", "closed"):
        known.learn(3, status, 4)
        assert known.is_closed(3)


def test_the_oldest_is_forgotten_first() -> None:
    known = ClaimedOrders(capacity=3)
    for order_id in range(1, 6):
        known.note_closed(order_id)
    assert [known.is_closed(i) for i in range(1, 6)] == [False, False, True, True, True]


async def test_riders_are_answered_by_the_leader_or_left_undecided() -> None:
    known = ClaimedOrders()
    with known.leading(1) as flight:
        assert known.flight(1) is flight
        first, second = flight.ride((8, "8:a", ["g1"])), flight.ride((9, "9:a", ["g1"]))
        assert flight.board() == [(8, "8:a", ["g1"]), (9, "9:a", ["g1"])]
        assert flight.ride((10, "10:a", ["g1"])) is None  # too late: wait for `done`
        flight.answer(["taken", "not_offered"])
        known.note_closed(1)
        assert flight.done.done()  # those waiting go on before the leader is done
    assert first is not None and second is not None
    assert (first.result(), second.result()) == ("taken", "not_offered")
    assert known.flight(1) is None

    with pytest.raises(RuntimeError), known.leading(2) as failing:
        rider = failing.ride((8, "8:b", ["g1"]))
        raise RuntimeError("the leader failed before its CLAIM")
    assert rider is not None and rider.result() == ""  # undecided: it runs in full
    assert failing.done.done()

    few = ClaimedOrders(batch_limit=2)
    with few.leading(3) as flight:
        assert flight.ride((8, "8:c", ["g1"])) and flight.ride((9, "9:c", ["g1"]))
        assert flight.ride((10, "10:c", ["g1"])) is None  # full: the next call takes it


async def test_claims_arriving_together_share_one_call() -> None:
    known = ClaimedOrders()
    calls: list[list[Claimant]] = []
    release = asyncio.Event()

    async def decide(batch: list[Claimant]) -> list[str]:
        calls.append(list(batch))
        await release.wait()
        return [f"answer-{agent}" for agent, _, _ in batch]

    first = [
        asyncio.create_task(known.settle(1, (agent, f"{agent}:r", ["g1"]), decide))
        for agent in range(5)
    ]
    await asyncio.sleep(0.01)
    later = [  # while the first call runs: one more call, after it
        asyncio.create_task(known.settle(1, (agent, f"{agent}:r", ["g1"]), decide))
        for agent in range(5, 8)
    ]
    await asyncio.sleep(0.01)
    assert [len(c) for c in calls] == [5]
    release.set()
    answers = await asyncio.gather(*first, *later)
    assert answers == [f"answer-{agent}" for agent in range(8)]
    assert [len(c) for c in calls] == [5, 3]
    assert (known.batches, known.settled) == (2, 8)


async def test_a_failed_call_makes_every_claim_of_it_unavailable() -> None:
    known = ClaimedOrders()

    async def decide(batch: list[Claimant]) -> list[str]:
        await asyncio.sleep(0)
        raise RedisUnavailableError("redis: connection refused")

    results = await asyncio.gather(
        *(known.settle(1, (a, f"{a}:r", ["g1"]), decide) for a in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(r, RedisUnavailableError) for r in results)


async def test_a_claim_that_goes_away_leaves_the_others_their_answers() -> None:
    """A waiting claim cancelled: the call goes on.  The claim making the call cancelled: the
    others are left undecided (they run in full on their own)."""
    known = ClaimedOrders()
    release = asyncio.Event()

    async def decide(batch: list[Claimant]) -> list[str]:
        await release.wait()
        return ["taken"] * len(batch)

    def settle(agent: int) -> asyncio.Task[str]:
        return asyncio.create_task(known.settle(1, (agent, f"{agent}:r", ["g1"]), decide))

    runner, gone, stays = settle(1), settle(2), settle(3)
    await asyncio.sleep(0.01)  # all three in the call
    gone.cancel()
    release.set()
    assert await runner == await stays == "taken"
    with pytest.raises(asyncio.CancelledError):
        await gone

    release.clear()
    runner, stays = settle(4), settle(5)
    await asyncio.sleep(0.01)
    runner.cancel()
    assert await stays == ""
    with pytest.raises(asyncio.CancelledError):
        await runner


# --- claims through a server -----------------------------------------------------------


async def _agent(srv: InProcessServer, token: str) -> Agent:
    who = await srv.ctx.auth.resolve(token)
    assert who.agent is not None
    return who.agent


async def _claim(srv: InProcessServer, agent: Agent, order_id: int, rid: str) -> str:
    return (await claims.claim(srv.ctx, agent, order_id, rid)).value


async def _closed_path(srv: InProcessServer, order_id: int, seconds: float = 5) -> None:
    """Wait until the server routes claims of ``order_id`` as closed (its event arrived)."""
    for _ in range(int(seconds / 0.01)):
        if srv.ctx.hub.claimed.is_closed(order_id):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"order {order_id} never heard closed")


async def _open_path(srv: InProcessServer, order_id: int, seconds: float = 5) -> None:
    for _ in range(int(seconds / 0.01)):
        if not srv.ctx.hub.claimed.is_closed(order_id):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"order {order_id} never heard open again")


@pytest.fixture
async def t(server: InProcessServer) -> Team:
    return await team(server.url, server.settings.admin_token or "", {"g1": 4, "g2": 1})


async def test_cheap_answers_agree_with_the_full_claim(server: InProcessServer, t: Team) -> None:
    """Claims of an order known claimed skip the reservation and answer what CLAIM would:
    remembered answers first (the winner's, an earlier `not_offered`), then the rule."""
    a, b, c = [await _agent(server, t.agent("g1", i)["token"]) for i in range(3)]
    other = await _agent(server, t.agent("g2")["token"])
    order = await file(t)
    oid = order["id"]
    assert await _claim(server, other, oid, "o1") == "not_offered"  # remembered
    assert await _claim(server, a, oid, "a1") == "won"
    await _closed_path(server, oid)
    before = server.ctx.hub.claimed.settled
    asked = [(b, "b1"), (c, "c1"), (other, "o1"), (other, "o2"), (a, "a1"), (a, "a2")]
    got = [await _claim(server, agent, oid, rid) for agent, rid in asked]
    assert got == ["taken", "taken", "not_offered", "taken", "won", "won"]
    assert server.ctx.hub.claimed.settled == before + len(asked)  # none ran in full
    # What the rule says on Postgres's order, for the requests not asked before.
    stored = await server.ctx.store.get_order(oid)
    for (agent, rid), answer in zip(asked, got, strict=True):
        if rid not in ("o1", "a1"):
            assert decide_claim(stored, agent.id, agent.grids).value == answer
    # And every one of them is remembered: the full claim repeats it.
    for (agent, rid), answer in zip(asked, got, strict=True):
        field = claims.answer_field(agent.id, rid)
        assert await server.ctx.board.claim(oid, agent.id, field, agent.grids, 1) == answer


async def test_riders_are_decided_right_after_the_leader(server: InProcessServer, t: Team) -> None:
    """Claims arriving while the first runs in full ride in its CLAIM (or, arriving once it
    was sent, are decided after it): one winner, the rest answered as CLAIM would answer them
    one after another, none reserving a place.  The leader's own second request hears
    `unavailable` while the first is being recorded, or `won` once it is (the agent holds
    the order): which, depends on when it arrives."""
    a, b, c = [await _agent(server, t.agent("g1", i)["token"]) for i in range(3)]
    other = await _agent(server, t.agent("g2")["token"])
    order = await file(t)
    got = await asyncio.gather(
        _claim(server, a, order["id"], "a1"),  # first: leads
        _claim(server, b, order["id"], "b1"),
        _claim(server, other, order["id"], "o1"),
        _claim(server, a, order["id"], "a2"),  # its own first request holds the order
        _claim(server, c, order["id"], "c1"),
    )
    assert got[:3] == ["won", "taken", "not_offered"] and got[4] == "taken"
    assert got[3] in ("unavailable", "won")
    for agent in (b, c, other):
        assert await server.ctx.board.held_count(agent.id) == 0
        assert not await server.ctx.board.redis.exists(server.ctx.board.keys.held(agent.id))


async def test_a_leader_at_its_limit_leaves_the_order_to_a_rider(crew: CrewFactory) -> None:
    """The first claimant holds all it may: `limit_reached` for it, never `taken` for the
    one riding along, who runs in full and wins."""
    async with crew(max_held=1) as tm:
        busy, free = [await _agent(tm.server, tm.agent("g1", i)["token"]) for i in range(2)]
        await claimed(tm, tm.agent("g1", 0))
        order = await file(tm)
        got = await asyncio.gather(
            _claim(tm.server, busy, order["id"], "x1"), _claim(tm.server, free, order["id"], "y1")
        )
        assert got == ["limit_reached", "won"]
        # Known claimed now: the agent at its limit hears `taken`, not `limit_reached`.
        await _closed_path(tm.server, order["id"])
        assert await _claim(tm.server, busy, order["id"], "x2") == "taken"
        assert await tm.server.ctx.board.held_count(busy.id) == 1


async def test_a_released_order_is_won_again_through_a_process_that_knew_it_claimed(
    server: InProcessServer, t: Team
) -> None:
    """Stale knowledge costs one call, never an answer: the claim then runs in full."""
    a, b, c = [await _agent(server, t.agent("g1", i)["token"]) for i in range(3)]
    known = server.ctx.hub.claimed
    first = await file(t)
    assert await _claim(server, a, first["id"], "a1") == "won"
    await _closed_path(server, first["id"])
    assert await _claim(server, c, first["id"], "c1") == "taken"  # routed as closed
    await ok(t.url, t.agent("g1", 0)["token"], first["id"], "release", reason="临时外出")
    await _open_path(server, first["id"])  # the release event reopened it here
    assert await _claim(server, b, first["id"], "b1") == "won"
    # A repeat keeps its answer although the order was open meanwhile.
    assert await _claim(server, c, first["id"], "c1") == "taken"
    assert await _claim(server, a, first["id"], "a1") == "won"  # its first answer, as ever

    # The same, with the release not heard yet (an event lost or late).
    second = await claimed(t, t.agent("g1", 1))
    await _closed_path(server, second["id"])
    await ok(t.url, t.agent("g1", 1)["token"], second["id"], "release", reason="临时外出")
    await _open_path(server, second["id"])
    known.note_closed(second["id"], 10**9)  # as if the release event had not arrived
    assert await _claim(server, c, second["id"], "c2") == "won"
    assert await _claim(server, a, second["id"], "a2") == "taken"
    conn = await asyncpg.connect(server.settings.database_url)
    rows = await conn.fetch(
        "SELECT id, claimed_by FROM orders WHERE id = ANY($1::bigint[]) ORDER BY id",
        [first["id"], second["id"]],
    )
    await conn.close()
    assert [r["claimed_by"] for r in rows] == [b.id, c.id]


async def test_losers_in_one_process_cost_no_script_of_their_own(
    settings: Settings, crew: CrewFactory
) -> None:
    """80 agents on one process claim each order at once over websockets: one `won`, and the
    79 losers are decided in the leader's call or shared calls, never reserving a place."""
    settings = dataclasses.replace(settings, reconcile_interval=60)
    async with crew({"g1": 80}, reconcile_interval=60) as tm:
        clients = await asyncio.gather(
            *(AgentClient.connect(tm.url, a["token"]) for a in tm.agents["g1"])
        )
        r = aioredis.Redis.from_url(settings.redis_url)
        try:
            for round_ in range(4):  # the first loads the scripts into Redis
                order = await file(tm)
                known = tm.server.ctx.hub.claimed
                scripts = await _evalsha_calls(r)
                batches = known.batches
                results = await asyncio.gather(*(c.claim(order["id"]) for c in clients))
                assert Counter(x.result for x in results) == {"won": 1, "taken": 79}
                # The leader: RESERVE, CLAIM, SET_HELD, SYNC; the rest: shared calls only.
                spent = await _evalsha_calls(r) - scripts
                assert round_ == 0 or spent <= 4 + known.batches - batches, spent
        finally:
            await asyncio.gather(*(c.close() for c in clients))
            await r.aclose()


async def _evalsha_calls(r: aioredis.Redis) -> int:
    stats: dict[str, Any] = await r.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_two_processes_one_winner_and_releases_heard(
    settings: Settings, tmp_path: Path
) -> None:
    """Agents on two server processes race for the same orders: one winner per order in
    Postgres; a release through one process reopens the order for the other."""
    settings = dataclasses.replace(settings, reconcile_interval=0.5)
    async with (
        InProcessServer(settings) as here,
        ProcessServer(settings, log=tmp_path / "other.log") as there,
    ):
        tm = await team(here.url, settings.admin_token or "", {"g1": 40})
        agents = tm.agents["g1"]
        clients = await asyncio.gather(
            *(
                AgentClient.connect(here.url if i % 2 else there.url, a["token"])
                for i, a in enumerate(agents)
            )
        )
        try:
            winners: dict[int, int] = {}
            for _ in range(5):
                order = await file(tm)
                results = await asyncio.gather(*(c.claim(order["id"]) for c in clients))
                assert Counter(x.result for x in results) == {"won": 1, "taken": 39}
                (winner,) = [
                    c.agent_id for c, x in zip(clients, results, strict=True) if x.result == "won"
                ]
                winners[order["id"]] = winner
            # Released through the other process; claimed again through this one, which
            # knew the order claimed.
            oid, winner = next(iter(winners.items()))
            token = next(a["token"] for a in agents if a["id"] == winner)
            await _closed_path(here, oid)
            async with ApiClient(there.url, token) as api:
                r = await api.request("POST", f"/v1/orders/{oid}/release", {"reason": "外出"})
                assert r.status_code == 200, r.text
            takers = [c for c in clients if c.agent_id != winner]
            again = await asyncio.gather(*(c.claim(oid) for c in takers))
            assert Counter(x.result for x in again) == {"won": 1, "taken": len(takers) - 1}
            (winners[oid],) = [
                c.agent_id for c, x in zip(takers, again, strict=True) if x.result == "won"
            ]
        finally:
            await asyncio.gather(*(c.close() for c in clients))
    conn = await asyncpg.connect(settings.database_url)
    rows = await conn.fetch("SELECT id, claimed_by FROM orders")
    events = await conn.fetch(
        "SELECT order_id, count(*) AS n FROM order_events WHERE kind = 'claimed' GROUP BY 1"
    )
    await conn.close()
    assert {r["id"]: r["claimed_by"] for r in rows} == winners
    assert sum(e["n"] for e in events) == len(winners) + 1  # one order was claimed twice
