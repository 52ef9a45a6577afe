"""The claim flow: Redis decides who may record a claim, Postgres records the one winner.

1. CLAIM (Lua, atomic) answers at once for everyone but one claimant, who gets a *hold*.
2. The holder's claim is recorded in Postgres by a conditional update that can never record a
   second winner, even if Redis had lost its data.
3. Only then is the holder told ``won``; Redis is synced and the change published, so every
   other agent who was shown the order gets ``withdrawn``.

An agent holds at most ``BANGBAN_MAX_HELD`` orders.  The agent's count lives under its own
key (another cluster slot than the order's), so before step 1 the claim reserves a place there
(RESERVE, atomic on the agent's key); the place becomes a holding once Postgres recorded the
win, and is given back otherwise.  An agent with no place left still runs CLAIM, told so: it
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
from typing import Any

from dispatcher.board import scripts as rs
from dispatcher.context import Context
from dispatcher.core.lifecycle import trail_entry
from dispatcher.core.limits import Windows
from dispatcher.core.orders import ClaimOutcome, Order, decide_claim, withdrawn_reason
from dispatcher.core.roster import Agent
from dispatcher.exceptions import (
    RedisUnavailableError,
    StoreAmbiguousError,
    StoreUnavailableError,
)
from dispatcher.flows.claim_cache import Claimant, Flight

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
            return ClaimOutcome.UNAVAILABLE if answer == rs.BUSY else ClaimOutcome(answer)
        await asyncio.wait([flight.done])  # the leader's CLAIM may show the order held
        if not known.is_closed(order_id):
            return await _contend(ctx, agent, order_id, field)

    def decide(claims: list[Claimant]) -> Awaitable[list[str]]:
        return ctx.board.claim_many(order_id, claims, ctx.clock())

    answer = await known.settle(order_id, mine, decide)
    if not answer:
        known.forget(order_id)  # open after all (released meanwhile), or unknown to Redis
        return await _contend(ctx, agent, order_id, field)
    return ClaimOutcome.UNAVAILABLE if answer == rs.BUSY else ClaimOutcome(answer)


async def _contend(
    ctx: Context, agent: Agent, order_id: int, field: str, flight: Flight | None = None
) -> ClaimOutcome:
    """The claim in full: reserve a place, CLAIM (with ``flight``'s riders), record a hold in
    Postgres, give the place back unless won."""
    now = ctx.clock()
    place = await ctx.board.reserve(agent.id, order_id, now, ctx.settings.max_held)
    recorded = False
    try:
        full = place == "full"
        outcome, recorded = await _decide(
            ctx, agent, order_id, field, now, full, flight, reserved=place == "ok"
        )
    finally:
        if place == "ok" and not recorded:
            # Give the place back; if Redis fails here the reservation lapses by itself.
            with contextlib.suppress(RedisUnavailableError):
                await ctx.board.set_held(agent.id, order_id, None, now=now, only_pending=True)
    if outcome in (ClaimOutcome.WON, ClaimOutcome.TAKEN):
        ctx.hub.claimed.note_closed(order_id)  # (also when Postgres decided, below)
    return outcome


async def _decide(
    ctx: Context,
    agent: Agent,
    order_id: int,
    field: str,
    now: int,
    full: bool,
    flight: Flight | None,
    *,
    reserved: bool = False,
) -> tuple[ClaimOutcome, bool]:
    """The claim's outcome, and whether this call recorded a new win in Postgres (or, for
    a write whose answer was lost, took over the reserved place: see :func:`_ambiguous`)."""
    riders = flight.board() if flight is not None else []
    if flight is not None and riders:
        claims = [(agent.id, field, agent.grids), *riders]
        answers = await ctx.board.claim_many(order_id, claims, now, lead=True, at_limit=full)
        if len(answers) != len(claims):
            raise RedisUnavailableError("CLAIM_MANY answered the wrong number of claims")
        result = answers[0]
        flight.answer(answers[1:])
    else:
        result = await ctx.board.claim(order_id, agent.id, field, agent.grids, now, at_limit=full)
    if result == ClaimOutcome.UNKNOWN_ORDER:
        # Redis may have lost or expired the order: Postgres remembers.
        stored = await ctx.store.get_order(order_id)
        if stored is None:
            return ClaimOutcome.UNKNOWN_ORDER, False
        await ctx.board.sync(stored)
        result = await ctx.board.claim(order_id, agent.id, field, agent.grids, now, at_limit=full)
    if result in (rs.HOLD, ClaimOutcome.TAKEN, ClaimOutcome.WON):
        # No other claim can get a hold now: claims waiting here go to CLAIM_MANY (`taken`).
        ctx.hub.claimed.note_closed(order_id)
    if result == rs.BUSY:
        return ClaimOutcome.UNAVAILABLE, False
    if result != rs.HOLD:
        return ClaimOutcome(result), False

    try:
        won = await ctx.store.claim_order(order_id, agent.id, now)
    except StoreAmbiguousError as exc:
        log.warning("claim write lost its answer order_id=%s error=%s", order_id, exc)
        return await _ambiguous(ctx, agent, order_id, field, now, exc.backend, reserved), True
    except StoreUnavailableError:
        # Nothing recorded: let others try.  If Redis is down too, the hold simply expires.
        ctx.hub.claimed.forget(order_id)
        try:
            await ctx.board.release_hold(order_id, agent.id, now)
        except RedisUnavailableError:
            pass
        raise
    if won is not None:
        await _won(ctx, agent, won, field, now)
        return ClaimOutcome.WON, True

    # Postgres says the order is no longer open to this agent: Redis was behind (lost data, a
    # holder that died after recording, a change not yet synced).  Postgres is right; bring
    # Redis up to date and answer.
    current = await ctx.store.get_order(order_id)
    if current is None:
        return ClaimOutcome.UNKNOWN_ORDER, False
    outcome = decide_claim(current, agent.id, agent.grids, at_limit=full)
    answer = "" if outcome is ClaimOutcome.LIMIT_REACHED else outcome.value
    await ctx.board.announce(
        current,
        reason=withdrawn_reason(current),
        answer_field=field if answer else "",
        answer=answer,
    )
    return outcome, False


async def _won(ctx: Context, agent: Agent, won: Order, field: str, now: int) -> None:
    """Postgres recorded ``agent`` as the winner: hold it, tell everyone."""
    log.debug("claim won order_id=%s agent_id=%s", won.id, agent.id)
    try:
        held = await ctx.board.set_held(agent.id, won.id, now, now=now)
        await ctx.board.announce(
            won,
            reason=withdrawn_reason(won),
            answer_field=field,
            answer=ClaimOutcome.WON,
            event=trail_entry("claimed", now),
            held={agent.id: held},
        )
    except RedisUnavailableError:
        # The win is durable; the repairs (or the reconciler) bring Redis and the other
        # agents up to date.
        log.warning("claim announce failed order_id=%s; repaired later", won.id)
        ctx.repairs.note(won.id)


# --- the truth after an ambiguous write ------------------------------------------------------

SETTLE_WAIT_S = 1.0
"""How long a claim whose write lost its answer tries to find out before answering
``pending`` (on top of the write's own timeout)."""
SETTLE_GIVE_UP_S = 600.0
"""How long a ``pending`` claim keeps trying to find out in the background; after that the
client's retry with the same ``request_id`` finds out (docs/PROTOCOL.md)."""


async def _ambiguous(
    ctx: Context,
    agent: Agent,
    order_id: int,
    field: str,
    now: int,
    backend: int,
    reserved: bool,
) -> ClaimOutcome:
    """The claim's write was sent and its answer lost (a timeout, a lost connection): it may
    have committed, or may still.  Find out what Postgres recorded and answer that: ``won``
    if the claim committed; ``taken``, ``not_offered`` or ``unavailable`` (nothing recorded:
    retry) if it did not.  If Postgres does not answer within :data:`SETTLE_WAIT_S`, answer
    ``pending`` and go on finding out in the background (:attr:`Context.settling`); the
    agent's socket gets the final answer as another ``claim_result``.

    The hold stays in Redis meanwhile (it lapses after ``HOLD_MS``; Postgres never records a
    second winner whatever Redis says), and so does the reserved place, which the resolution
    turns into a holding or gives back."""
    ctx.metrics.postgres_errors.inc()
    deadline = time.monotonic() + SETTLE_WAIT_S
    while True:
        try:
            return await _resolve(ctx, agent, order_id, field, now, backend, reserved)
        except StoreUnavailableError:
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.1)
    task = asyncio.create_task(
        _settle_later(ctx, agent, order_id, field, now, backend, reserved),
        name=f"settle-claim-{order_id}",
    )
    ctx.settling[field] = task
    task.add_done_callback(lambda _t: ctx.settling.pop(field, None))
    return ClaimOutcome.PENDING


async def _resolve(
    ctx: Context,
    agent: Agent,
    order_id: int,
    field: str,
    now: int,
    backend: int,
    reserved: bool,
) -> ClaimOutcome:
    """Once the backend that ran the write has ended, read what it recorded and act on it.
    Raises StoreUnavailableError while Postgres cannot tell."""
    await ctx.store.settle_backend(backend)
    current = await ctx.store.get_order(order_id)
    if current is None:
        return ClaimOutcome.UNKNOWN_ORDER
    if current.claimed_by == agent.id and not current.is_open:
        log.warning("claim found recorded after all order_id=%s agent_id=%s", order_id, agent.id)
        await _won(ctx, agent, current, field, now)
        return ClaimOutcome.WON
    # Not recorded: let others try, give the place back, and say what is true now.
    ctx.hub.claimed.forget(order_id)
    with contextlib.suppress(RedisUnavailableError):
        await ctx.board.release_hold(order_id, agent.id, now)
        if reserved:
            await ctx.board.set_held(agent.id, order_id, None, now=now, only_pending=True)
    outcome = decide_claim(current, agent.id, agent.grids)
    if outcome in (ClaimOutcome.TAKEN, ClaimOutcome.NOT_OFFERED):
        return outcome
    return ClaimOutcome.UNAVAILABLE  # open to the agent, nothing recorded: retry


async def _settle_later(
    ctx: Context,
    agent: Agent,
    order_id: int,
    field: str,
    now: int,
    backend: int,
    reserved: bool,
) -> ClaimOutcome:
    delay = 0.1
    give_up = time.monotonic() + SETTLE_GIVE_UP_S
    while True:
        try:
            outcome = await _resolve(ctx, agent, order_id, field, now, backend, reserved)
        except StoreUnavailableError:
            if time.monotonic() >= give_up:
                log.error("claim still pending order_id=%s: left to retries", order_id)
                return ClaimOutcome.PENDING
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
            continue
        ctx.metrics.claims.labels(outcome.value).inc()
        log.info("pending claim settled order_id=%s outcome=%s", order_id, outcome.value)
        return outcome


async def claim_with_final(
    ctx: Context, agent: Agent, order_id: int, request_id: Any
) -> tuple[ClaimOutcome, asyncio.Task[ClaimOutcome] | None]:
    """As :func:`claim`; for a ``pending`` answer also the task that will end with the final
    one (None when there is none to wait for)."""
    outcome = await claim(ctx, agent, order_id, request_id)
    if outcome is ClaimOutcome.PENDING:
        return outcome, ctx.settling.get(answer_field(agent.id, request_id))
    return outcome, None
