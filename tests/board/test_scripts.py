"""The Lua scripts against real Redis, and against the pure core's rules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from redis.exceptions import ResponseError

from dispatcher.board import scripts as rs
from dispatcher.board.board import Board
from dispatcher.board.connect import run_pipeline
from dispatcher.core.orders import ClaimOutcome, Order, Scope, Status, decide_claim, widen_deadline
from tests.conftest import Services

T0 = 1_700_000_000_000
HOLD = 10_000


@pytest.fixture
async def board(clean: Services) -> AsyncIterator[Board]:
    b = Board.from_url(clean.redis_url, hold_ms=HOLD, closed_ttl_ms=60_000)
    yield b
    await b.close()


def order(**kw: object) -> Order:
    base = Order(
        id=1,
        status=Status.OFFERED,
        grid="g1",
        item="A1",
        text=None,
        item_class=1,
        created_at=T0,
        widen_at=widen_deadline(T0, 600),
        scope=Scope.GRID,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


CASES = [
    (order(), 7, ["g1"]),
    (order(), 7, ["g2", "g3"]),
    (order(), 7, ["g3", "g1"]),
    (order(status=Status.WIDENED, scope=Scope.ALL, version=2), 7, ["g9"]),
    (order(status=Status.CLAIMED, claimed_by=9, version=2), 7, ["g1"]),
    (order(status=Status.CLAIMED, claimed_by=7, version=2), 7, ["g1"]),
    (order(status=Status.CANCELLED, version=2), 7, ["g1"]),
    # After the grab: every state with an agent is taken for others, won for it.
    (order(status=Status.ACCEPTED, claimed_by=9, version=3), 7, ["g1"]),
    (order(status=Status.REPLIED, claimed_by=7, version=4), 7, ["g1"]),
    (order(status=Status.CLOSED, claimed_by=9, version=5), 7, ["g1"]),
    (order(status=Status.CANCELLED, claimed_by=9, version=3), 7, ["g1"]),
    (order(status=Status.ESCALATED, version=2), 7, ["g1"]),
    # Released by 7: offered again, but never to 7.
    (order(version=3, excluded=frozenset({7})), 7, ["g1"]),
    (order(version=3, excluded=frozenset({7})), 8, ["g1"]),
    (order(status=Status.WIDENED, scope=Scope.ALL, version=4, excluded=frozenset({3, 7})), 7, []),
]


@pytest.mark.parametrize(("o", "agent", "grids"), CASES)
async def test_claim_script_agrees_with_core(
    board: Board, o: Order, agent: int, grids: list[str]
) -> None:
    """Whatever the pure rule says, the script says too ('hold' is the first step of 'won')."""
    await board.sync(o)
    got = await board.claim(o.id, agent, f"{agent}:r", grids, T0)
    expected = decide_claim(o, agent, grids)
    if o.is_open and expected is ClaimOutcome.WON:
        assert got == rs.HOLD
    else:
        assert got == expected.value


async def test_unknown_order(board: Board) -> None:
    assert await board.claim(404, 7, "7:r", ["g1"], T0) == "unknown_order"


async def test_one_hold_at_a_time(board: Board) -> None:
    await board.sync(order())
    assert await board.claim(1, 7, "7:a", ["g1"], T0) == rs.HOLD
    assert await board.claim(1, 8, "8:a", ["g1"], T0 + 1) == rs.HELD  # `taken`, told later
    assert await board.claim(1, 8, "8:a", ["g1"], T0 + 2) == "taken"  # as remembered
    assert await board.claim(1, 7, "7:b", ["g1"], T0 + 2) == rs.BUSY


async def test_stale_hold_is_taken_over(board: Board) -> None:
    """A holder that died (no answer within the hold lifetime) does not block the order."""
    await board.sync(order())
    assert await board.claim(1, 7, "7:a", ["g1"], T0) == rs.HOLD
    assert await board.claim(1, 8, "8:a", ["g1"], T0 + HOLD + 1) == rs.HOLD


async def test_released_hold_reopens(board: Board) -> None:
    await board.sync(order())
    assert await board.claim(1, 7, "7:a", ["g1"], T0) == rs.HOLD
    assert not await board.release_hold(1, 8, T0)  # not 8's hold
    assert await board.release_hold(1, 7, T0)
    assert await board.claim(1, 8, "8:a", ["g1"], T0) == rs.HOLD


async def test_answers_are_remembered_per_request(board: Board) -> None:
    await board.sync(order())
    assert await board.claim(1, 8, "8:x", ["g2"], T0) == "not_offered"
    # For an open order the script does not remember it (Redis may be behind): the claim flow
    # asks Postgres, and remembers the answer once Postgres agrees, through SYNC.
    await board.sync(order(), answer_field="8:x", answer="not_offered")
    await board.sync(order(status=Status.WIDENED, scope=Scope.ALL, version=2))
    assert await board.claim(1, 8, "8:x", ["g2"], T0) == "not_offered"  # same request
    assert await board.claim(1, 8, "8:y", ["g2"], T0) == rs.HOLD  # a new attempt


async def test_sync_never_goes_backwards(board: Board) -> None:
    assert await board.sync(order(status=Status.CLAIMED, claimed_by=3, version=3))
    assert not await board.sync(order(version=1))
    assert await board.claim(1, 7, "7:a", ["g1"], T0) == "taken"


async def test_closed_orders_expire_and_open_ones_do_not(board: Board) -> None:
    await board.sync(order())
    assert await board.redis.pttl(rs.order_key(1)) == -1
    await board.sync(order(status=Status.CLAIMED, claimed_by=3, version=2))
    assert 0 < await board.redis.pttl(rs.order_key(1)) <= 60_000
    # Released: open again, and kept again.
    await board.sync(order(version=3, excluded=frozenset({3})))
    assert await board.redis.pttl(rs.order_key(1)) == -1


async def test_a_late_older_close_neither_expires_the_order_nor_drops_its_holder(
    board: Board,
) -> None:
    """The announce of an older version (a claim, v2) arriving after a newer one (released
    and claimable again, v3, with a claim being recorded) changes nothing of the order."""
    await board.sync(order(version=3, excluded=frozenset({3})))
    assert await board.claim(1, 7, "7:a", ["g1"], T0) == rs.HOLD
    assert not await board.sync(order(status=Status.CLAIMED, claimed_by=3, version=2))
    assert await board.redis.pttl(rs.order_key(1)) == -1
    assert await board.redis.hget(rs.order_key(1), "holder") == b"7"


async def test_a_close_empties_the_holder_and_an_open_sync_runs_two_commands(
    board: Board,
) -> None:
    before = await board.redis.info("commandstats")
    await board.sync(order())
    after = await board.redis.info("commandstats")
    inside = {
        k: after[k]["calls"] - before.get(k, {"calls": 0})["calls"]
        for k in after
        if k not in ("cmdstat_info", "cmdstat_evalsha")
    }
    assert {k: v for k, v in inside.items() if v} == {"cmdstat_hmget": 1, "cmdstat_hset": 1}
    assert await board.claim(1, 7, "7:a", ["g1"], T0) == rs.HOLD
    await board.sync(order(status=Status.CLAIMED, claimed_by=7, version=2))
    assert await board.redis.hget(rs.order_key(1), "holder") == b""
    assert await board.claim(1, 8, "8:a", ["g1"], T0) == "taken"
    assert await board.release_hold(1, None, T0) is False


def test_an_orders_key_is_in_its_hash_tags_slot() -> None:
    from redis.crc import key_slot

    for oid in (1, 42, 10**12):
        assert key_slot(rs.order_key(oid).encode()) == key_slot(f"{{o:{oid}}}".encode())


async def test_answers_are_remembered_in_the_order_hash_and_expire_with_the_closed_order(
    board: Board,
) -> None:
    """A claim answer is remembered in the order's own hash: an open order's hash gets no
    expiry from it, a closed one's keeps the expiry SYNC gave it, and repeats get it again."""
    await board.sync(order())
    assert await board.claim(1, 7, "7:s:a", ["g1"], T0) == rs.HOLD
    assert await board.claim(1, 8, "8:s:b", ["g1"], T0) == rs.HELD  # remembered as `taken`
    assert await board.redis.hget(rs.order_key(1), "8:s:b") == b"taken"
    assert await board.redis.pttl(rs.order_key(1)) == -1  # open: never expires
    closed = order(status=Status.CLAIMED, claimed_by=7, version=2)
    await board.sync(closed, answer_field="7:s:a", answer="won")
    assert 0 < await board.redis.pttl(rs.order_key(1)) <= 60_000
    assert await board.claim(1, 7, "7:s:a", ["g1"], T0) == "won"
    assert await board.claim(1, 8, "8:s:b", ["g1"], T0) == "taken"
    await board.sync(closed, answer_field="9:s:c", answer="not_offered")  # an older version
    assert await board.redis.hget(rs.order_key(1), "9:s:c") == b"not_offered"
    assert await board.redis.hget(rs.order_key(1), "version") == b"2"


@pytest.mark.parametrize(("o", "agent", "grids"), CASES)
async def test_claim_script_at_the_limit_agrees_with_core(
    board: Board, o: Order, agent: int, grids: list[str]
) -> None:
    """An agent at its limit: `limit_reached` only where it could have won an open order."""
    await board.sync(o)
    got = await board.claim(o.id, agent, f"{agent}:r", grids, T0, at_limit=True)
    assert got == decide_claim(o, agent, grids, at_limit=True).value


async def test_limit_reached_is_not_remembered(board: Board) -> None:
    await board.sync(order())
    assert await board.claim(1, 7, "7:a", ["g1"], T0, at_limit=True) == "limit_reached"
    assert await board.claim(1, 7, "7:a", ["g1"], T0) == rs.HOLD  # a place came free


async def test_reserve_counts_holdings_and_live_reservations(board: Board) -> None:
    assert await board.reserve(7, 1, T0, 2) == "ok"
    assert await board.reserve(7, 1, T0 + 1, 2) == "already"  # (at T0: the same call repeated)
    assert await board.reserve(7, 2, T0, 2) == "ok"
    assert await board.reserve(7, 3, T0, 2) == "full"
    assert await board.set_held(7, 1, T0, now=T0) == 1  # won: a holding
    assert await board.set_held(7, 2, None, now=T0, only_pending=True) == 1  # lost: given back
    assert await board.set_held(7, 1, None, now=T0, only_pending=True) == 1  # a holding stays
    assert await board.reserve(7, 3, T0, 2) == "ok"
    # A reservation whose claim died lapses after the hold lifetime.
    assert await board.reserve(7, 4, T0 + HOLD + 1, 2) == "ok"
    assert await board.held_count(7) == 1
    assert await board.set_held(7, 1, None, now=T0) == 0  # it left the agent: a tombstone
    assert await board.redis.hget(rs.held_key(7), "1") == f"d:{T0}".encode()
    assert await board.reserve(7, 1, T0 + 1, 2) == "ok"  # a tombstone holds no place


async def test_reconcile_held_agrees_with_postgres(board: Board) -> None:
    await board.set_held(7, 1, T0, now=T0)  # Postgres no longer has it (marked before the read)
    await board.set_held(7, 2, T0 + 50, now=T0 + 50)  # marked after the read: just committed
    await board.set_held(7, 6, T0, now=T0)
    await board.set_held(7, 6, None, now=T0 + 40)  # left after the read; Postgres still lists it
    await board.reserve(8, 5, T0, 5)  # a live reservation of another agent
    counts = await board.reconcile_held({7: [3, 6], 9: [4]}, T0 + 10, T0 + 20)
    assert counts == {7: 2, 9: 1}
    held = await board.redis.hgetall(rs.held_key(7))
    assert held == {
        b"2": f"h:{T0 + 50}".encode(),
        b"3": f"h:{T0 + 10}".encode(),
        b"6": b"d:" + str(T0 + 40).encode(),
    }
    # The next pass, reading Postgres after the tombstone, clears it.
    assert await board.reconcile_held({7: [2, 3]}, T0 + 60, T0 + 70) == {}
    assert sorted(await board.redis.hkeys(rs.held_key(7))) == [b"2", b"3"]
    # A reservation in flight is left alone (it lapses by itself if its claim died).
    assert await board.reserve(8, 5, T0 + 30, 5) == "already"


def test_the_held_key_is_one_slot_of_its_own() -> None:
    from redis.crc import key_slot

    assert rs.held_key(7).startswith("bb:{a:7}")
    assert key_slot(rs.held_key(7).encode()) == key_slot(b"{a:7}")


# --- CLAIM_MANY: the same rule, for many claims in one call ------------------------------


@pytest.mark.parametrize(("o", "agent", "grids"), CASES)
async def test_claim_many_agrees_with_claim(
    board: Board, o: Order, agent: int, grids: list[str]
) -> None:
    """Without a hold, CLAIM_MANY answers what CLAIM answers, except that where CLAIM would
    hold it leaves the claim undecided ('').  Its first claim, leading, answers exactly as
    CLAIM (at the limit too); both remember what they answered for the other."""
    await board.sync(o)
    expected = await board.claim(o.id, agent, f"{agent}:claim", grids, T0)
    await board.release_hold(o.id, agent, T0)
    assert await board.claim_many(o.id, [(agent, f"{agent}:many", grids)], T0) == [
        "" if expected == rs.HOLD else expected
    ]
    assert await board.claim_many(o.id, [(agent, f"{agent}:lead", grids)], T0, lead=True) == [
        expected
    ]
    await board.release_hold(o.id, agent, T0)
    limit = await board.claim(o.id, agent, f"{agent}:limit", grids, T0, at_limit=True)
    many = await board.claim_many(
        o.id, [(agent, f"{agent}:limit2", grids)], T0, lead=True, at_limit=True
    )
    assert many == [limit]
    if expected != rs.HOLD:  # a final answer: repeats get it from either script
        for field in (f"{agent}:claim", f"{agent}:many"):
            assert await board.claim_many(o.id, [(agent, field, grids)], T0 + 1) == [expected]
            assert await board.claim(o.id, agent, field, grids, T0 + 1) == expected


async def test_claim_many_decides_riders_after_the_leader(board: Board) -> None:
    """In order, as CLAIM one after another: the leader holds, the others see the hold."""
    await board.sync(order())
    answers = await board.claim_many(
        1,
        [(7, "7:a", ["g1"]), (8, "8:a", ["g1"]), (9, "9:a", ["g2"]), (7, "7:b", ["g1"])],
        T0,
        lead=True,
    )
    assert answers == [rs.HOLD, rs.HELD, "not_offered", rs.BUSY]
    assert await board.redis.hget(rs.order_key(1), "holder") == b"7"
    # Remembered as CLAIM remembers (held as taken; busy is not: the claim may be retried).
    assert await board.claim(1, 8, "8:a", ["g1"], T0 + HOLD + 1) == "taken"
    # (not_offered for an open order is not remembered: Redis may be behind, Postgres decides)
    assert await board.claim(1, 9, "9:a", ["g2"], T0 + HOLD + 1) == "not_offered"
    assert await board.claim(1, 7, "7:b", ["g1"], T0 + HOLD + 1) == rs.HOLD


async def test_claim_many_takes_no_hold_for_riders(board: Board) -> None:
    """A leader that cannot hold (at its limit) leaves the riders undecided: they run CLAIM."""
    await board.sync(order())
    answers = await board.claim_many(
        1, [(7, "7:a", ["g1"]), (8, "8:a", ["g1"])], T0, lead=True, at_limit=True
    )
    assert answers == ["limit_reached", ""]
    assert await board.claim_many(1, [(8, "8:a", ["g1"]), (9, "9:a", ["g1"])], T0) == ["", ""]
    assert await board.redis.hget(rs.order_key(1), "holder") is None
    fields = await board.redis.hkeys(rs.order_key(1))
    assert not [f for f in fields if b":" in f]  # nothing final, nothing remembered
    assert await board.claim(1, 8, "8:a", ["g1"], T0) == rs.HOLD


async def test_claim_many_on_an_unknown_order(board: Board) -> None:
    """Redis does not know the order: the leader hears `unknown_order` (then Postgres is
    asked), the others are left undecided; a remembered answer still comes first."""
    many = [(7, "7:a", ["g1"]), (8, "8:a", ["g1"])]
    assert await board.claim_many(404, many, T0, lead=True) == ["unknown_order", ""]
    assert await board.claim_many(404, many, T0) == ["", ""]
    await board.redis.hset(rs.order_key(404), "8:a", "taken")
    assert await board.claim_many(404, many, T0) == ["", "taken"]


async def test_rate_counts_a_fixed_window_with_one_command_per_allowed_event(
    board: Board,
) -> None:
    """RATE: the limit's events pass, the next ones wait for the window's end (the ms left),
    the window's end lets them through again, and a counter that lost its expiry starts a
    new window instead of refusing for ever."""
    key = board.keys.rate("test:1")
    assert [await board.rate("test:1", 2, 400) for _ in range(2)] == [(1, 0), (1, 0)]
    refused = [await board.rate("test:1", 2, 400) for _ in range(3)]
    assert all(granted == 0 and 0 < left <= 400 for granted, left in refused)
    raw = board.redis
    before = await raw.info("commandstats")
    assert await board.rate("test:other", 5, 400) == (1, 0)
    await board.rate("test:other", 5, 400)
    after = await raw.info("commandstats")
    calls = {k: after[k]["calls"] - before.get(k, {"calls": 0})["calls"] for k in after}
    # Two events: two INCRBY and one PEXPIRE (the window's first); no PTTL, no SET.
    assert (calls.get("cmdstat_incrby"), calls.get("cmdstat_pexpire")) == (2, 1)
    assert calls.get("cmdstat_pttl", 0) == 0 and calls.get("cmdstat_set", 0) == 0
    await raw.persist(key)  # a counter at its limit without expiry
    assert await board.rate("test:1", 2, 400) == (1, 0)
    assert 0 < await raw.pttl(key) <= 400
    await raw.pexpire(key, 1)
    await asyncio.sleep(0.05)
    assert await board.rate("test:1", 2, 400) == (1, 0)


async def test_rate_grants_shares_of_the_limit_and_never_more_than_it(board: Board) -> None:
    """RATE with a share wanted: granted whole while the limit allows, in part at its edge,
    then refused; a share of more than one says the ms left (the share lapses then)."""
    granted, left = await board.rate("test:share", 10, 5_000, 4)
    assert granted == 4 and 4_000 < left <= 5_000  # the window's first share
    granted, left = await board.rate("test:share", 10, 5_000, 4)
    assert granted == 4 and 0 < left <= 5_000
    assert (await board.rate("test:share", 10, 5_000, 4))[0] == 2  # the limit's last two
    granted, left = await board.rate("test:share", 10, 5_000, 4)
    assert granted == 0 and 0 < left <= 5_000
    assert (await board.rate("test:share", 10, 5_000, 1))[0] == 0
    await board.redis.persist(board.keys.rate("test:share"))  # lost its expiry: a new window
    assert await board.rate("test:share", 10, 5_000, 3) == (3, 5_000)


async def test_a_batch_reads_every_reply_and_raises_the_first_error(board: Board) -> None:
    """run_pipeline on a single server (straight onto a pooled connection): the commands
    after an error reply still ran, the first error is raised (as redis-py's pipeline raises
    it), and the connection is in step for the next command."""

    def fill(pipe: Any) -> None:
        pipe.set("bb:test:k1", "v")
        pipe.incr("bb:test:k1")  # not a number: an error reply
        pipe.zadd("bb:test:z", {"7": 5})
        pipe.set("bb:test:k2", "w")

    with pytest.raises(ResponseError, match="not an integer"):
        await run_pipeline(board.redis, fill, ())
    assert await board.redis.get("bb:test:k2") == b"w"
    assert await board.redis.zscore("bb:test:z", "7") == 5
    assert await board.rate("test:after", 5, 1_000) == (1, 0)  # a script call, same pool
