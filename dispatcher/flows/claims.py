"""The claim flow: Redis decides who may record a claim, Postgres records the one winner.

1. CLAIM (Lua, atomic) answers at once for everyone but one claimant, who gets a *hold*.
2. The holder's claim is recorded in Postgres by a conditional update that can never record a
   second winner, even if Redis had lost its data.
3. Only then is the holder told ``won``; Redis is synced and the change published, so every
   other agent who was shown the order gets ``withdrawn``.

An agent holds at most ``BANGBAN_MAX_HELD`` orders.  The agent's count lives under its own
key (another cluster slot than the order's).  On a single Redis server CLAIM reserves a place
there itself when it gives the hold (one script, both keys); on a cluster the claim first
reserves it (RESERVE, atomic on the agent's key).  The place becomes a holding once Postgres
recorded the win (in the same round trip that announces the win), and is given back
otherwise.  An agent with no place left still runs CLAIM, told so: it
answers ``limit_reached`` only where the claim could have been won (never ``taken`` turned
into ``limit_reached``), and ``won`` to the agent that already holds the order.

If Postgres is unreachable the hold is dropped and the claimant gets ``unavailable``: nothing
is half-recorded.  If Redis is unreachable the claimant gets ``unavailable`` too.  If the
process dies while holding, the hold expires (``hold_ms``) and the next claimant takes over;
whatever Postgres recorded meanwhile wins.

Only a claim that may get the hold needs the reservation, and under contention that is one
claim of each process (:mod:`dispatcher.flows.claim_cache`).  The first claim of an order in this
process runs in full; claims of it that arrive meanwhile ride in its CLAIM (CLAIM_MANY: each
decided right after it, as CLAIM would decide it then, but never given the hold).  Claims of
an order this process knows closed are decided by CLAIM_MANY too, together.  No hold, no
reservation, no agent's count is touched for them: they cannot make a winner nor exceed a
limit, and the answer is CLAIM's, after the same remembered answers, remembered in turn
(``limit_reached`` only ever comes from a reserved claim, for an order it could have won).
Where CLAIM_MANY finds the order open after all, the claim runs in full.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from dispatcher.board import scripts as rs
from dispatcher.context import Context
from dispatcher.core.limits import Windows
from dispatcher.core.orders import ClaimOutcome, decide_claim, withdrawn_reason
from dispatcher.core.roster import Agent
from dispatcher.exceptions import (
    RedisUnavailableError,
    StoreAmbiguousError,
    StoreUnavailableError,
)
from dispatcher.flows.claim_cache import Claimant, Flight
from dispatcher.flows.claim_truth import ambiguous, announce_win

log = logging.getLogger("bangban.claims")

HOLD_MS = 10_000
"""A hold older than this is presumed dead (longer than Postgres's 5 s command timeout)."""


def claim_wait(ctx: Context, agent: Agent) -> int:
    """0 when ``agent`` may claim now, else the ms until it may (``BANGBAN_CLAIM_RATE`` claims
    a minute on this process; a refused one is counted and costs no Redis call)."""
    windows = ctx.limits.get("claim")
    if windows is None:
        windows = ctx.limits["claim"] = Windows(ctx.settings.claim_rate)
    wait = windows.hit(agent.id, ctx.clock())
    if wait:
        ctx.metrics.claims_rate_limited.inc()
    return wait


def answer_field(agent_id: int, request_id: Any) -> str:
    return f"{agent_id}:{type(request_id).__name__[0]}:{request_id}"


async def claim(ctx: Context, agent: Agent, order_id: int, request_id: Any) -> ClaimOutcome:
    """Try to claim ``order_id`` for ``agent``.  Never raises for an expected outcome.

    Repeating a ``request_id`` gets the first answer again (except ``unavailable``, which is
    never remembered: the client should retry).
    """
    field = answer_field(agent.id, request_id)
    started = time.perf_counter()
    try:
        outcome = await _claim(ctx, agent, order_id, field)
        if outcome is ClaimOutcome.NOT_OFFERED:
            outcome = await _not_offered(ctx, agent, order_id, field)
    except (RedisUnavailableError, StoreUnavailableError) as exc:
        log.warning("claim unavailable order_id=%s agent_id=%s error=%s", order_id, agent.id, exc)
        failed = ctx.metrics.redis_errors if isinstance(exc, RedisUnavailableError) else None
        (failed or ctx.metrics.postgres_errors).inc()
        outcome = ClaimOutcome.UNAVAILABLE
    ctx.metrics.claims.labels(outcome.value).inc()
    ctx.metrics.claim_seconds.observe(time.perf_counter() - started)
    return outcome


async def _not_offered(ctx: Context, agent: Agent, order_id: int, field: str) -> ClaimOutcome:
    """Redis says the order is not offered to this agent: make sure Postgres agrees.

    Redis can be behind: a widening committed whose announce failed left the order grid-only
    in Redis while agents of other grids were shown it (through a snapshot from Postgres).
    If Postgres says the order is open to the agent (or held by it), Redis is brought up to it
    and the claim runs again; otherwise the answer stands and is remembered for repeats.
    """
    current = await ctx.store.get_order(order_id)
    if current is None:
        return ClaimOutcome.UNKNOWN_ORDER
    if decide_claim(current, agent.id, agent.grids) is not ClaimOutcome.WON:
        # Not the agent's to win (or hold): `not_offered` stands.  (An order taken since an
        # earlier `not_offered` of this request keeps that answer: the first answer again.)
        await ctx.board.sync(current, answer_field=field, answer=ClaimOutcome.NOT_OFFERED.value)
        return ClaimOutcome.NOT_OFFERED
    log.warning(
        "redis behind postgres order_id=%s version=%s: claim of agent_id=%s decided again",
        order_id,
        current.version,
        agent.id,
    )
    ctx.metrics.redis_behind.inc()
    await ctx.board.announce(current, reason=withdrawn_reason(current))
    ctx.hub.claimed.forget(order_id)
    return await _claim(ctx, agent, order_id, field)


async def _claim(ctx: Context, agent: Agent, order_id: int, field: str) -> ClaimOutcome:
    """Route the claim: in full (leading, or on its own), riding along, or in a batch."""
    known = ctx.hub.claimed
    mine: Claimant = (agent.id, field, agent.grids)
    if not known.is_closed(order_id):
        flight = known.flight(order_id)
        if flight is None:
            with known.leading(order_id) as flight:
                return await _contend(ctx, agent, order_id, field, flight)
        ride = flight.ride(mine)
        if ride is not None:  # decided in the leader's call, right after it
            answer = await ride  # (this claim's own future: cancelling it harms no other)
            if not answer:  # the leader did not take the hold (or failed): on our own
                return await _contend(ctx, agent, order_id, field)
            return await _told(ctx, order_id, answer)
        await flight.landed()  # the leader's CLAIM may show the order held
        if not known.is_closed(order_id):
            return await _contend(ctx, agent, order_id, field)

    def decide(claims: list[Claimant]) -> Awaitable[list[str]]:
        return ctx.board.claim_many(order_id, claims, ctx.clock())

    answer = await known.settle(order_id, mine, decide)
    if not answer:
        known.forget(order_id)  # open after all (released meanwhile), or unknown to Redis
        return await _contend(ctx, agent, order_id, field)
    return await _told(ctx, order_id, answer)


HELD_WAIT_S = 0.5
"""How long a claim that lost to a claim being recorded waits to hear the winner's outcome
before it answers ``taken`` anyway (the winner's process may have failed to announce)."""


async def _told(ctx: Context, order_id: int, answer: str) -> ClaimOutcome:
    """A final answer of CLAIM or CLAIM_MANY, as the claimant hears it.  ``held`` (another
    agent's claim is being recorded) is ``taken``, told once this process has heard the order
    closed (or open again), so that the winner hears ``won`` before the losers hear ``taken``,
    on every process."""
    if answer == rs.BUSY:
        return ClaimOutcome.UNAVAILABLE
    if answer == rs.HELD:
        await ctx.hub.claimed.outcome_heard(order_id, HELD_WAIT_S)
        return ClaimOutcome.TAKEN
    return ClaimOutcome(answer)


@dataclass(slots=True)
class _Place:
    """How the claim stands among its agent's held orders (``BANGBAN_MAX_HELD``)."""

    reserve: int | None
    """The limit, when CLAIM reserves the place itself (a single Redis server); None when
    RESERVE ran first (a cluster: the agent's key is in another slot)."""
    full: bool = False
    """RESERVE found no place left (CLAIM answers ``limit_reached`` where it could win)."""
    reserved: bool = False
    """A place was reserved for this claim: it becomes a holding, or is given back."""


async def _contend(
    ctx: Context, agent: Agent, order_id: int, field: str, flight: Flight | None = None
) -> ClaimOutcome:
    """The claim in full: reserve a place, CLAIM (with ``flight``'s riders), record a hold in
    Postgres, give the place back unless won.  On a single Redis server the place is reserved
    by CLAIM itself, and only when it gives the hold (one round trip, not three)."""
    now = ctx.clock()
    limit = ctx.settings.max_held
    spot = _Place(None if ctx.board.cluster else limit)
    if ctx.board.cluster:
        place = await ctx.board.reserve(agent.id, order_id, now, limit)
        spot.full, spot.reserved = place == "full", place == "ok"
    recorded = False
    try:
        outcome, recorded = await _decide(ctx, agent, order_id, field, now, flight, spot)
    finally:
        if spot.reserved and not recorded:
            # Give the place back; if Redis fails here the reservation lapses by itself.
            with contextlib.suppress(RedisUnavailableError):
                await ctx.board.set_held(agent.id, order_id, None, now=now, only_pending=True)
    if outcome in (ClaimOutcome.WON, ClaimOutcome.TAKEN):
        ctx.hub.claimed.note_closed(order_id)  # (also when Postgres decided, below)
    return outcome


async def _claim_once(
    ctx: Context, agent: Agent, order_id: int, field: str, now: int, spot: _Place
) -> str:
    """One CLAIM, reserving the place in it when ``spot`` says so."""
    if spot.reserve is None:
        return await ctx.board.claim(
            order_id, agent.id, field, agent.grids, now, at_limit=spot.full
        )
    result, place = await ctx.board.claim_reserving(
        order_id, agent.id, field, agent.grids, now, spot.reserve
    )
    spot.reserved = spot.reserved or place == "ok"
    return result


async def _decide(
    ctx: Context,
    agent: Agent,
    order_id: int,
    field: str,
    now: int,
    flight: Flight | None,
    spot: _Place,
) -> tuple[ClaimOutcome, bool]:
    """The claim's outcome, and whether this call recorded a new win in Postgres (or, for
    a write whose answer was lost, took over the reserved place: see :func:`_ambiguous`)."""
    riders = flight.board() if flight is not None else []
    if flight is not None and riders:
        claims = [(agent.id, field, agent.grids), *riders]
        answers = await ctx.board.claim_many(
            order_id, claims, now, lead=True, at_limit=spot.full, reserve=spot.reserve
        )
        if spot.reserve is not None and answers:
            spot.reserved = spot.reserved or answers.pop() == "ok"
        if len(answers) != len(claims):
            raise RedisUnavailableError("CLAIM_MANY answered the wrong number of claims")
        result = answers[0]
        flight.answer(answers[1:])
    else:
        result = await _claim_once(ctx, agent, order_id, field, now, spot)
    if result == ClaimOutcome.UNKNOWN_ORDER:
        # Redis may have lost or expired the order: Postgres remembers.
        stored = await ctx.store.get_order(order_id)
        if stored is None:
            return ClaimOutcome.UNKNOWN_ORDER, False
        await ctx.board.sync(stored)
        result = await _claim_once(ctx, agent, order_id, field, now, spot)
    if flight is not None:
        flight.holding = result == rs.HOLD  # losers to it are told once it is done
    if result in (rs.HOLD, rs.HELD, ClaimOutcome.TAKEN, ClaimOutcome.WON):
        # No other claim can get a hold now: claims waiting here go to CLAIM_MANY (`taken`).
        ctx.hub.claimed.note_closed(order_id)
    if result != rs.HOLD:
        return await _told(ctx, order_id, result), False

    try:
        won = await ctx.store.claim_order(order_id, agent.id, now)
    except StoreAmbiguousError as exc:
        log.warning("claim write lost its answer order_id=%s error=%s", order_id, exc)
        outcome = await ambiguous(ctx, agent, order_id, field, now, exc.backend, spot.reserved)
        return outcome, True
    except StoreUnavailableError:
        # Nothing recorded: let others try.  If Redis is down too, the hold simply expires.
        ctx.hub.claimed.forget(order_id)
        try:
            await ctx.board.release_hold(order_id, agent.id, now)
        except RedisUnavailableError:
            pass
        raise
    if won is not None:
        await announce_win(ctx, agent, won, field, now)
        return ClaimOutcome.WON, True

    # Postgres says the order is no longer open to this agent: Redis was behind (lost data, a
    # holder that died after recording, a change not yet synced).  Postgres is right; bring
    # Redis up to date and answer.
    current = await ctx.store.get_order(order_id)
    if current is None:
        return ClaimOutcome.UNKNOWN_ORDER, False
    outcome = decide_claim(current, agent.id, agent.grids, at_limit=spot.full)
    answer = "" if outcome is ClaimOutcome.LIMIT_REACHED else outcome.value
    await ctx.board.announce(
        current,
        reason=withdrawn_reason(current),
        answer_field=field if answer else "",
        answer=answer,
    )
    return outcome, False


async def claim_with_final(
    ctx: Context, agent: Agent, order_id: int, request_id: Any
) -> tuple[ClaimOutcome, asyncio.Task[ClaimOutcome] | None]:
    """As :func:`claim`; for a ``pending`` answer also the task that will end with the final
    one (None when there is none to wait for)."""
    outcome = await claim(ctx, agent, order_id, request_id)
    if outcome is ClaimOutcome.PENDING:
        return outcome, ctx.settling.get(answer_field(agent.id, request_id))
    return outcome, None
