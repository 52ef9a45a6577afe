"""Websocket endpoints: the agent's live offers and the applicant's order tracking.

Both follow the same shape: authenticate (close 4401 on a missing or unknown token, 4403 on
a token for something else), register an :class:`~dispatcher.hub.Outbox` with the hub (held),
read the snapshot from Postgres and queue it first, release live frames, then read client
frames until the client goes away while a writer task drains the outbox.  Registering before
reading the snapshot means no change can fall between the two (duplicates are allowed).

A bad frame gets an ``error`` frame and the connection stays open; a frame over 64 KiB is
refused by the transport with close code 1009 (uvicorn's ``ws_max_size``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from dispatcher import auth, claims, wire
from dispatcher.context import Context
from dispatcher.exceptions import AuthError, RedisUnavailableError, StoreUnavailableError
from dispatcher.hub import AgentLink, Outbox, Payload, TrackerLink
from dispatcher.roster import Principal, TokenKind

log = logging.getLogger("bangban.ws")

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TRY_AGAIN = 1013
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


async def _open(websocket: WebSocket) -> tuple[Context, Principal, wire.Encoding] | None:
    """Accept and authenticate.  Returns None after closing the socket on failure."""
    ctx: Context = websocket.app.state.ctx
    token = websocket.query_params.get("token") or auth.bearer(
        websocket.headers.get("authorization")
    )
    encoding = websocket.query_params.get("encoding", "msgpack")
    await websocket.accept()
    if encoding not in ("msgpack", "json"):
        await websocket.close(CLOSE_POLICY, "encoding must be msgpack or json")
        return None
    try:
        who = await ctx.auth.resolve(token)
    except AuthError:
        await websocket.close(CLOSE_UNAUTHORIZED, "missing or unknown token")
        return None
    except StoreUnavailableError:
        await websocket.close(CLOSE_TRY_AGAIN, "postgres unavailable; retry")
        return None
    return ctx, who, "json" if encoding == "json" else "msgpack"


async def _write(websocket: WebSocket, outbox: Outbox) -> None:
    """Drain ``outbox`` onto the socket until it fails or the outbox overflows."""
    try:
        while True:
            frames = await outbox.take()
            if outbox.overflowed:
                log.warning("connection dropped: client too slow to read")
                websocket.app.state.ctx.metrics.dropped_slow.inc()

                await websocket.close(CLOSE_TRY_AGAIN, "too slow; reconnect")
                return
            for data in frames:
                if isinstance(data, bytes):
                    await websocket.send_bytes(data)
                else:
                    await websocket.send_text(data)
    except Exception:  # the peer went away; the reader sees the disconnect and cleans up
        return


def _error(outbox: Outbox, err: wire.FrameError) -> None:
    outbox.push(Payload.of(wire.Error(err.code, err.message, err.request_id)))


async def agent_ws(websocket: WebSocket) -> None:
    opened = await _open(websocket)
    if opened is None:
        return
    ctx, who, encoding = opened
    agent = who.agent
    if agent is None:
        await websocket.close(CLOSE_FORBIDDEN, "an agent token is required")
        return
    outbox = Outbox(encoding, ctx.settings.send_queue)
    link = AgentLink(agent.id, frozenset(agent.grids), outbox)
    ctx.hub.add_agent(link)
    writer: asyncio.Task[None] | None = None
    try:
        try:
            snapshot = await ctx.store.open_orders_for(agent.grids, agent.id)
            held = await ctx.board.held_count(agent.id)
        except (StoreUnavailableError, RedisUnavailableError):
            await websocket.close(CLOSE_TRY_AGAIN, "postgres or redis unavailable; retry")
            return
        outbox.push(Payload.of(wire.Welcome(agent.id, list(agent.grids), ctx.clock())), first=True)
        ctx.hub.held[agent.id] = held
        outbox.push(Payload.of(wire.Held(held, ctx.settings.max_held)), first=True)
        at_limit = held >= ctx.settings.max_held
        for order in snapshot:
            outbox.push(Payload.of(wire.Offer(order.to_wire(), at_limit=at_limit)), first=True)
        outbox.release()
        writer = asyncio.create_task(_write(websocket, outbox))
        log.debug("agent connected agent_id=%s grids=%s", agent.id, ",".join(agent.grids))
        bucket = _Bucket()
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("bytes")
            if data is None:
                data = message.get("text") or ""
            try:
                if not bucket.take():
                    raise wire.FrameError(wire.RATE_LIMITED, "too many frames; slow down")
                frame = wire.decode_client(data)
            except wire.FrameError as err:
                _error(outbox, err)
                continue
            if isinstance(frame, wire.Claim):
                outcome = await claims.claim(ctx, agent, frame.order_id, frame.request_id)
                outbox.push(
                    Payload.of(wire.ClaimResult(frame.request_id, frame.order_id, outcome.value)),
                    first=True,
                )
            else:
                outbox.push(Payload.of(wire.Pong(frame.request_id, ctx.clock())), first=True)
    finally:
        ctx.hub.remove_agent(link)
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer


async def tracking_ws(websocket: WebSocket) -> None:
    opened = await _open(websocket)
    if opened is None:
        return
    ctx, who, encoding = opened
    raw = websocket.path_params["order_id"]
    order_id = int(raw) if raw.isdigit() and 0 < int(raw) < 2**63 else 0
    if who.kind is not TokenKind.ADMIN and not (
        who.kind is TokenKind.TRACKING and who.order_id == order_id
    ):
        await websocket.close(CLOSE_FORBIDDEN, "this token does not track this order")
        return
    outbox = Outbox(encoding, ctx.settings.send_queue)
    link = TrackerLink(order_id, outbox)
    ctx.hub.add_tracker(link)
    writer: asyncio.Task[None] | None = None
    try:
        try:
            order = await ctx.store.get_order(order_id)
            last = None if order is None else await ctx.store.last_event(order_id)
        except (StoreUnavailableError, RedisUnavailableError):
            await websocket.close(CLOSE_TRY_AGAIN, "postgres unavailable; retry")
            return
        if order is None:
            await websocket.close(CLOSE_FORBIDDEN, "no such order")
            return
        # The order as it is, with the step that made it so.
        outbox.push(Payload.of(wire.Status(order.to_wire(ctx.clock()), last)), first=True)
        outbox.release()
        writer = asyncio.create_task(_write(websocket, outbox))
        bucket = _Bucket()
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("bytes")
            if data is None:
                data = message.get("text") or ""
            try:
                if not bucket.take():
                    raise wire.FrameError(wire.RATE_LIMITED, "too many frames; slow down")
                frame = wire.decode_client(data)
            except wire.FrameError as err:
                _error(outbox, err)
                continue
            if isinstance(frame, wire.Ping):
                outbox.push(Payload.of(wire.Pong(frame.request_id, ctx.clock())), first=True)
            else:
                _error(
                    outbox,
                    wire.FrameError(
                        wire.FORBIDDEN,
                        "applicants cannot claim",
                        getattr(frame, "request_id", None),
                    ),
                )
    finally:
        ctx.hub.remove_tracker(link)
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer


routes = [
    WebSocketRoute("/v1/agent/ws", agent_ws),
    WebSocketRoute("/v1/orders/{order_id}/ws", tracking_ws),
]
