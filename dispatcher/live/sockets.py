"""Websocket endpoints: the agent's live offers and the applicant's order tracking.

Both follow the same shape: authenticate (close 4401 on a missing or unknown token, 4403 on
a token for something else), register an :class:`~dispatcher.live.hub.Outbox` with the hub (held),
read the snapshot from Postgres and queue it first, release live frames, then read client
frames until the client goes away; the outbox's :class:`~dispatcher.live.asgi.Writer` writes
frames as they come.  Registering before reading the snapshot means no change can fall
between the two (duplicates are allowed).

They are served straight from ASGI (:func:`serve`, called by ``dispatcher.web.app.App``), not
through Starlette's router: see :mod:`dispatcher.live.asgi` for why.

A bad frame gets an ``error`` frame and the connection stays open; a frame over 64 KiB is
refused by the transport with close code 1009 (uvicorn's ``ws_max_size``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence

from dispatcher import auth
from dispatcher.context import Context
from dispatcher.core.orders import ClaimOutcome, Order
from dispatcher.core.roster import Agent, Principal, TokenKind
from dispatcher.core.validate import ascii_id
from dispatcher.exceptions import (
    AuthError,
    FrameError,
    RedisUnavailableError,
    StoreUnavailableError,
)
from dispatcher.flows import claims, fairplay
from dispatcher.live import wire
from dispatcher.live.asgi import AsgiSocket, Message, Receive, Send, Writer
from dispatcher.live.hub import AgentLink, TrackerLink
from dispatcher.live.lanes import Lanes
from dispatcher.live.outbox import Outbox, Payload

log = logging.getLogger("bangban.ws")

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TRY_AGAIN = 1013
CLOSE_RESTART = 1012  # the process is draining: reconnect (to another process)
CLOSE_POLICY = 1008

FRAMES_PER_SECOND = 50.0
FRAME_BURST = 100.0


class _Bucket:
    """Token bucket: a client may send ``FRAME_BURST`` frames at once, then 50 a second."""

    __slots__ = ("at", "tokens")

    def __init__(self) -> None:
        self.tokens = FRAME_BURST
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(FRAME_BURST, self.tokens + (now - self.at) * FRAMES_PER_SECOND)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


async def _open(ctx: Context, socket: AsgiSocket) -> tuple[Principal, Outbox, Writer] | None:
    """Accept and authenticate.  Returns None after closing the socket on failure."""
    token = socket.param("token") or auth.bearer(socket.header(b"authorization"))
    encoding = socket.param("encoding") or "msgpack"
    await socket.accept()
    if ctx.draining.is_set():
        await socket.close(CLOSE_RESTART, "service restart; reconnect")
        return None
    if encoding not in ("msgpack", "json"):
        await socket.close(CLOSE_POLICY, "encoding must be msgpack or json")
        return None
    try:
        who = await ctx.auth.resolve(token)
    except AuthError:
        await socket.close(CLOSE_UNAUTHORIZED, "missing or unknown token")
        return None
    except StoreUnavailableError:
        await socket.close(CLOSE_TRY_AGAIN, "postgres unavailable; retry")
        return None
    chosen: wire.Encoding = "json" if encoding == "json" else "msgpack"
    outbox = Outbox(chosen, ctx.settings.send_queue, ctx.settings.send_queue_bytes)
    return who, outbox, Writer(socket, outbox, ctx.metrics, ctx.settings.send_timeout)


def _error(outbox: Outbox, err: FrameError) -> None:
    outbox.push(Payload.of(wire.Error(err.code, err.message, err.request_id, err.field)))


async def _frames(socket: AsgiSocket, outbox: Outbox) -> AsyncGenerator[wire.ClientFrame, None]:
    """The client's frames until it goes away; a bad or excess frame is answered with an
    ``error`` frame and skipped."""
    bucket = _Bucket()
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes")
        if data is None:
            data = message.get("text") or ""
        try:
            if not bucket.take():
                raise FrameError(wire.RATE_LIMITED, "too many frames; slow down")
            yield wire.decode_client(data)
        except FrameError as err:
            _error(outbox, err)


SNAPSHOT_CHUNK = 256
"""Snapshot offers queued at a time: the next chunk waits until these are written."""


def snapshot_order(orders: Sequence[Order], grids: Sequence[str]) -> list[Order]:
    """The order an agent app needs its snapshot in: its own grids' orders first, then the
    widened ones from elsewhere, each newest first."""
    own = frozenset(grids)
    return sorted(orders, key=lambda o: (o.grid not in own, -o.id))


async def _send_snapshot(
    ctx: Context,
    link: AgentLink,
    writer: Writer,
    orders: Sequence[Order],
    at_limit: bool,
) -> None:
    """Queue the connect-time snapshot in chunks, each after the last was written, so that it
    is paced by the client's reading (and by ``send_timeout``), never by the live queue bound:
    an agent with 10,000 open orders gets them all.  Ends with ``snapshot_done``.  Live frames
    wait (held, within the bound) until the outbox is released after it."""
    outbox = link.outbox
    ordered = snapshot_order(orders, sorted(link.grids))
    for start in range(0, len(ordered), SNAPSHOT_CHUNK):
        now = ctx.clock()
        for order in ordered[start : start + SNAPSHOT_CHUNK]:
            ctx.hub.fairplay.offered(link, order.id, order.grid, now)
            outbox.push(Payload.of(wire.Offer(order.to_wire(), at_limit=at_limit)), first=True)
        await writer.flushed()
        if writer.closed:
            return
    outbox.push(Payload.of(wire.SnapshotDone(len(ordered))), first=True)


def _final_answer(
    outbox: Outbox, frame: wire.Claim
) -> Callable[[asyncio.Task[ClaimOutcome]], None]:
    """Send the final answer of a claim answered ``pending``, once it is known."""

    def send(task: asyncio.Task[ClaimOutcome]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        outcome = task.result()
        if outcome is not ClaimOutcome.PENDING:
            result = wire.ClaimResult(frame.request_id, frame.order_id, outcome.value)
            outbox.push(Payload.of(result), first=True)

    return send


class _CloseOnDrain:
    """When the process drains: let the connection's claims in flight finish and their answers
    be written, then close with 1012 so that the client reconnects (to another process).

    Registered in ``ctx.on_drain`` while the connection is open (:meth:`open`, :meth:`done`);
    the task exists only once the drain has begun, and :meth:`done` cancels it."""

    __slots__ = ("ctx", "lanes", "socket", "task", "writer")

    def __init__(
        self, ctx: Context, socket: AsgiSocket, writer: Writer, lanes: Lanes | None = None
    ) -> None:
        self.ctx, self.socket, self.writer, self.lanes = ctx, socket, writer, lanes
        self.task: asyncio.Task[None] | None = None

    def open(self) -> _CloseOnDrain:
        self.ctx.on_drain.add(self)
        if self.ctx.draining.is_set():  # drained before we registered: close now
            self()
        return self

    def __call__(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._close())

    async def _close(self) -> None:
        if self.lanes is not None:
            await self.lanes.drain()
        await self.writer.flush()
        with contextlib.suppress(Exception):  # the peer may be gone already
            await self.socket.close(CLOSE_RESTART, "service restart; reconnect")

    def done(self) -> None:
        self.ctx.on_drain.discard(self)
        if self.task is not None:
            self.task.cancel()


def _claim_work(
    ctx: Context, agent: Agent, link: AgentLink, frame: wire.Claim
) -> Callable[[], Awaitable[None]]:
    """One claim frame's work: the per-agent rate limit, the claim timed for fair play, the
    answer (and, for ``pending``, the final answer later).  A failure is confined to this
    frame: the connection (and every other) goes on, and the client is told under its
    request id."""
    outbox, rid = link.outbox, frame.request_id

    async def work() -> None:
        try:
            if wait := claims.claim_wait(ctx, agent):
                message = f"too many claims; retry in {wait / 1000:.1f} s"
                _error(outbox, FrameError(wire.RATE_LIMITED, message, rid))
                return
            outcome = await fairplay.timed_claim(ctx, agent, frame.order_id, rid, (link,))
            if outcome is None:
                _error(outbox, FrameError(wire.TOO_FAST, fairplay.TOO_FAST_MESSAGE, rid))
                return
            result = wire.ClaimResult(rid, frame.order_id, outcome.value)
            outbox.push(Payload.of(result), first=True)
            if outcome is ClaimOutcome.PENDING:
                final = ctx.settling.get(claims.answer_field(agent.id, rid))
                if final is not None:
                    final.add_done_callback(_final_answer(outbox, frame))
        except Exception:
            log.exception("frame failed agent_id=%s type=%s", agent.id, frame.type)
            _error(outbox, FrameError(wire.INTERNAL, "this frame failed; retry", rid))

    return work


async def agent_ws(ctx: Context, socket: AsgiSocket) -> None:
    opened = await _open(ctx, socket)
    if opened is None:
        return
    who, outbox, writer = opened
    agent = who.agent
    if agent is None:
        await socket.close(CLOSE_FORBIDDEN, "an agent token is required")
        return
    link = AgentLink(agent.id, frozenset(agent.grids), outbox, token_id=who.token_id)
    ctx.hub.add_agent(link)
    try:
        try:
            snapshot = await ctx.store.open_orders_for(agent.grids, agent.id)
            held = await ctx.board.held_count(agent.id)
        except (StoreUnavailableError, RedisUnavailableError):
            await socket.close(CLOSE_TRY_AGAIN, "postgres or redis unavailable; retry")
            return
        outbox.push(Payload.of(wire.Welcome(agent.id, list(agent.grids), ctx.clock())), first=True)
        ctx.hub.held[agent.id] = held
        outbox.push(Payload.of(wire.Held(held, ctx.settings.max_held)), first=True)
        at_limit = held >= ctx.settings.max_held
        await _send_snapshot(ctx, link, writer, snapshot, at_limit)
        outbox.release()
        log.debug("agent connected agent_id=%s grids=%s", agent.id, ",".join(agent.grids))
        lanes = Lanes()
        closer = _CloseOnDrain(ctx, socket, writer, lanes).open()
        try:
            async with contextlib.aclosing(_frames(socket, outbox)) as frames:
                async for frame in frames:
                    if isinstance(frame, wire.Claim):
                        # Claims of different orders run concurrently, of one order in order.
                        await lanes.submit(frame.order_id, _claim_work(ctx, agent, link, frame))
                    else:
                        pong = wire.Pong(frame.request_id, ctx.clock())
                        outbox.push(Payload.of(pong), first=True)
        finally:
            closer.done()
            await lanes.drain()  # claims in flight finish (their answers may still be sent)
    finally:
        ctx.hub.remove_agent(link)
        await writer.stop()


async def tracking_ws(ctx: Context, socket: AsgiSocket, raw_order_id: str) -> None:
    opened = await _open(ctx, socket)
    if opened is None:
        return
    who, outbox, writer = opened
    order_id = ascii_id(raw_order_id)  # ASCII digits only: "²".isdigit() but int("²") fails
    if order_id is None:
        await socket.close(CLOSE_POLICY, "the order id must be a positive number in ASCII digits")
        return
    if who.kind is not TokenKind.ADMIN and not (
        who.kind is TokenKind.TRACKING and who.order_id == order_id
    ):
        await socket.close(CLOSE_FORBIDDEN, "this token does not track this order")
        return
    link = TrackerLink(order_id, outbox, who.token_id)
    ctx.hub.add_tracker(link)
    try:
        try:
            order = await ctx.store.get_order(order_id)
            last = None if order is None else await ctx.store.last_event(order_id)
        except (StoreUnavailableError, RedisUnavailableError):
            await socket.close(CLOSE_TRY_AGAIN, "postgres unavailable; retry")
            return
        if order is None:
            await socket.close(CLOSE_FORBIDDEN, "no such order")
            return
        # The order as it is, with the step that made it so.
        outbox.push(Payload.of(wire.StatusChange(order.to_wire(ctx.clock()), last)), first=True)
        outbox.release()
        closer = _CloseOnDrain(ctx, socket, writer).open()
        try:
            async with contextlib.aclosing(_frames(socket, outbox)) as frames:
                async for frame in frames:
                    if isinstance(frame, wire.Ping):
                        pong = wire.Pong(frame.request_id, ctx.clock())
                        outbox.push(Payload.of(pong), first=True)
                    else:
                        refusal = FrameError(
                            wire.FORBIDDEN,
                            "applicants cannot claim",
                            getattr(frame, "request_id", None),
                        )
                        _error(outbox, refusal)
        finally:
            closer.done()

    finally:
        ctx.hub.remove_tracker(link)
        await writer.stop()


AGENT_PATH = "/v1/agent/ws"
TRACKING_PATH = re.compile(r"/v1/orders/([^/]+)/ws")


async def serve(ctx: Context, scope: Message, receive: Receive, send: Send) -> bool:
    """Serve ``scope`` if it is one of our websocket paths; False (nothing done) if not."""
    path: str = scope["path"]
    if path == AGENT_PATH:
        await agent_ws(ctx, AsgiSocket(scope, receive, send))
        return True
    match = TRACKING_PATH.fullmatch(path)
    if match is not None:
        await tracking_ws(ctx, AsgiSocket(scope, receive, send), match.group(1))
        return True
    return False
