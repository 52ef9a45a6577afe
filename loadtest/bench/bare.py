"""The bare server: the durable steps of one order on Bangban's stack, and nothing else.

``python -m loadtest.bench.bare --port P`` (started by the bench, never used in production) is
the honest floor for what our stack can do per order.  It runs on the same libraries with the
same settings as ``bangban serve``: a plain ASGI app on uvicorn (websockets-sansio, httptools,
uvloop, the very :func:`dispatcher.cli.uvicorn_config`), an asyncpg pool of 10 configured as
:class:`dispatcher.store.store.Store` configures it, redis-py asyncio (hiredis) on a blocking
pool configured as :class:`dispatcher.board.board.Board` configures it, msgpack frames from
:mod:`dispatcher.live.wire`.  Per order it does exactly:

1. ``POST /v1/orders`` (intake token): ONE Postgres statement inserting the order and its
   ``filed`` event; ONE Redis pipeline (``HSET`` the order hash, ``ZADD`` its deadline to the
   schedule, ``PUBLISH`` the filing); the ``offer`` frame, encoded once, written to every
   connected agent of the order's grid; then the 201 with the order.  The order map is
   Bangban's own (:meth:`dispatcher.core.orders.Order.to_wire` of a freshly filed order), so
   the frames are as large as Bangban's and the clients do the same work per frame.
2. A ``claim`` frame: ONE ``EVALSHA`` of the claim script (``HMGET`` + ``HSET``: one winner);
   for the winner ONE conditional ``UPDATE`` of the order with its ``claimed`` event, then
   ``won`` (after the commit), ``PUBLISH`` of the claim, ``withdrawn`` to the grid's other
   agents; a loser gets ``taken`` at once.

Enough of Bangban's protocol for the bench's clients: ``GET /v1/healthz``; ``POST
/v1/orders`` with ``Authorization: Bearer <intake token>`` and ``{"grid", "text"}``; the
agent websocket ``/v1/agent/ws?token=<agent token>`` answering ``welcome``, ``claim`` ->
``claim_result``, ``ping`` -> ``pong``, a bad frame -> ``error``.  Authentication is a fixed
check: the intake token is ``BARE_TOKEN``; an agent token is ``BARE_TOKEN.<agent id>.<grid>``
(see :func:`agent_token`), so nothing is looked up.  Its tables (``bare_orders``,
``bare_events``) are created at start in the database it is given (the bench gives it one of
its own); its Redis keys start with ``bare:``.

Configuration from the environment: ``REDIS_URL``, ``DATABASE_URL``, ``BARE_TOKEN``.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from dispatcher.core.orders import default_schedule, new_order
from dispatcher.exceptions import FrameError
from dispatcher.live import wire

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SCHEMA = """
CREATE TABLE IF NOT EXISTS bare_orders (
    id bigserial PRIMARY KEY,
    grid text NOT NULL,
    text text NOT NULL,
    status text NOT NULL DEFAULT 'open',
    agent bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    claimed_at timestamptz
);
CREATE TABLE IF NOT EXISTS bare_events (
    id bigserial PRIMARY KEY,
    order_id bigint NOT NULL,
    kind text NOT NULL,
    agent bigint,
    at timestamptz NOT NULL DEFAULT now()
);
"""

FILE_SQL = """
WITH o AS (INSERT INTO bare_orders (grid, text) VALUES ($1, $2) RETURNING id, created_at)
INSERT INTO bare_events (order_id, kind, at) SELECT id, 'filed', created_at FROM o
RETURNING order_id, at
"""

CLAIM_SQL = """
WITH u AS (
    UPDATE bare_orders SET status = 'claimed', agent = $2, claimed_at = now()
    WHERE id = $1 AND status = 'open' RETURNING id
)
INSERT INTO bare_events (order_id, kind, agent) SELECT id, 'claimed', $2 FROM u
RETURNING order_id
"""

CLAIM_LUA = """
local v = redis.call('HMGET', KEYS[1], 'status', 'grid')
if not v[1] then return 'unknown_order' end
if v[2] ~= ARGV[2] then return 'not_offered' end
if v[1] ~= 'open' then return 'taken' end
redis.call('HSET', KEYS[1], 'status', 'claimed', 'agent', ARGV[1])
return 'won'
"""

CHANNEL = "bare:events"
SCHEDULE = "bare:schedule"
OFFER_TTL_MS = 15 * 60 * 1000
SCHEDULE_RUNGS = default_schedule(600.0)
"""Bangban's default widening ladder (``BANGBAN_WIDEN_AFTER`` 600 s), for the order map."""
MAX_BODY = 64 * 1024


def order_key(order_id: int) -> str:
    return f"bare:o:{order_id}"


def agent_token(secret: str, agent_id: int, grid: str) -> str:
    """The token agent ``agent_id`` of ``grid`` connects with."""
    return f"{secret}.{agent_id}.{grid}"


async def _no_reset(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    return None


class Agent:
    """One connected agent: its id, grid and the ASGI ``send`` of its websocket."""

    __slots__ = ("agent_id", "grid", "send")

    def __init__(self, agent_id: int, grid: str, send: Send) -> None:
        self.agent_id = agent_id
        self.grid = grid
        self.send = send


class Bare:
    """The ASGI app (``lifespan``, ``http``, ``websocket``)."""

    def __init__(self, redis_url: str, database_url: str, token: str) -> None:
        self.redis_url = redis_url
        self.database_url = database_url
        self.token = token
        self.bearer = f"Bearer {token}".encode()
        self.grids: dict[str, set[Agent]] = {}
        self.pool: asyncpg.Pool | None = None
        self.redis: aioredis.Redis | None = None
        self.claim_sha = ""

    # --- lifespan --------------------------------------------------------------------------

    async def startup(self) -> None:
        self.pool = await asyncpg.create_pool(
            self.database_url,
            min_size=2,
            max_size=10,
            command_timeout=5,
            max_inactive_connection_lifetime=60,
            reset=_no_reset,
        )
        async with self.pool.acquire() as conn:
            await conn.execute(SCHEMA)
        pool = aioredis.BlockingConnectionPool.from_url(
            self.redis_url,
            max_connections=64,
            timeout=5,
            socket_timeout=5,
            socket_connect_timeout=5,
            health_check_interval=10,
        )
        self.redis = aioredis.Redis.from_pool(pool)
        self.claim_sha = await self.redis.script_load(CLAIM_LUA)

    async def shutdown(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
        if self.pool is not None:
            await self.pool.close()

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "websocket":
            await self.websocket(scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    try:
                        await self.startup()
                    except Exception as exc:
                        await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                        return
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.shutdown()
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    # --- HTTP ------------------------------------------------------------------------------

    async def http(self, scope: Message, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/v1/healthz" and method == "GET":
            await _answer(send, 200, {"status": "ok"})
            return
        if path != "/v1/orders":
            await _answer(send, 404, {"error": "not_found", "message": "no such path"})
            return
        if method != "POST":
            await _answer(send, 405, {"error": "method_not_allowed", "message": "POST only"})
            return
        auth = dict(scope["headers"]).get(b"authorization", b"")
        if not hmac.compare_digest(auth, self.bearer):
            await _answer(send, 401, {"error": "unauthorized", "message": "bad or no token"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > MAX_BODY:
                await _answer(send, 413, {"error": "too_large", "message": "body too large"})
                return
            if not message.get("more_body"):
                break
        try:
            data = json.loads(body)
        except ValueError:
            await _answer(send, 400, {"error": "invalid_json", "message": "body is not JSON"})
            return
        grid = data.get("grid") if isinstance(data, dict) else None
        text = data.get("text") if isinstance(data, dict) else None
        if not isinstance(grid, str) or not grid or not isinstance(text, str) or not text:
            await _answer(
                send, 422, {"error": "invalid_value", "message": "grid and text are required"}
            )
            return
        order = await self.file(grid, text)
        await _answer(send, 201, order)

    async def file(self, grid: str, text: str) -> dict[str, Any]:
        assert self.pool is not None and self.redis is not None
        row = await self.pool.fetchrow(FILE_SQL, grid, text)
        assert row is not None
        oid: int = row["order_id"]
        created = int(row["at"].timestamp() * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(order_key(oid), mapping={"status": "open", "grid": grid})
            pipe.zadd(SCHEDULE, {str(oid): created + OFFER_TTL_MS})
            pipe.publish(CHANNEL, wire.pack({"kind": "filed", "order": oid}, "msgpack"))
            await pipe.execute()
        # The order map Bangban offers (and answers the 201 with) for a freshly filed order:
        # the same fields, so the same frame size and the same work for the clients.
        order = new_order(
            order_id=oid,
            grid=grid,
            item=None,
            text=text,
            item_class=None,
            created_at=created,
            schedule=SCHEDULE_RUNGS,
        ).to_wire()
        frame = wire.encode(wire.Offer(order))
        for agent in list(self.grids.get(grid, ())):
            await _send_frame(agent, frame)
        return order

    # --- the agent websocket ---------------------------------------------------------------

    def _agent(self, scope: Message) -> tuple[int, str] | None:
        tokens = parse_qs(scope.get("query_string", b"").decode()).get("token", [])
        if len(tokens) != 1:
            return None
        secret, _, rest = tokens[0].partition(".")
        agent_id, _, grid = rest.partition(".")
        if not hmac.compare_digest(secret.encode(), self.token.encode()):
            return None
        if not agent_id.isdigit() or not grid:
            return None
        return int(agent_id), grid

    async def websocket(self, scope: Message, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if scope["path"] != "/v1/agent/ws":
            await send({"type": "websocket.close", "code": 4404, "reason": "no such path"})
            return
        who = self._agent(scope)
        if who is None:
            await send({"type": "websocket.close", "code": 4401, "reason": "unauthorized"})
            return
        await send({"type": "websocket.accept"})
        agent = Agent(who[0], who[1], send)
        now = int(time.time() * 1000)
        await _send_frame(agent, wire.encode(wire.Welcome(agent.agent_id, [agent.grid], now)))
        self.grids.setdefault(agent.grid, set()).add(agent)
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                data = message.get("bytes")
                if data is None:
                    data = message.get("text", "")
                await self.frame(agent, data)
        finally:
            self.grids[agent.grid].discard(agent)

    async def frame(self, agent: Agent, data: bytes | str) -> None:
        try:
            frame = wire.decode_client(data)
        except FrameError as exc:
            error = wire.Error(exc.code, exc.message, exc.request_id)
            await _send_frame(agent, wire.encode(error))
            return
        if isinstance(frame, wire.Ping):
            pong = wire.Pong(frame.request_id, int(time.time() * 1000))
            await _send_frame(agent, wire.encode(pong))
            return
        await self.claim(agent, frame)

    async def claim(self, agent: Agent, claim: wire.Claim) -> None:
        assert self.pool is not None and self.redis is not None
        oid = claim.order_id
        args = (order_key(oid), agent.agent_id, agent.grid)
        try:
            raw = await self.redis.evalsha(self.claim_sha, 1, *args)
        except NoScriptError:
            self.claim_sha = await self.redis.script_load(CLAIM_LUA)
            raw = await self.redis.evalsha(self.claim_sha, 1, *args)
        result = raw.decode() if isinstance(raw, bytes) else str(raw)
        if result == wire.WON:
            row = await self.pool.fetchval(CLAIM_SQL, oid, agent.agent_id)
            if row is None:  # Redis said open, Postgres disagrees: never answer `won`
                result = wire.UNAVAILABLE
        await _send_frame(agent, wire.encode(wire.ClaimResult(claim.request_id, oid, result)))
        if result != wire.WON:
            return
        await self.redis.publish(
            CHANNEL,
            wire.pack({"kind": "claimed", "order": oid, "agent": agent.agent_id}, "msgpack"),
        )
        withdrawn = wire.encode(wire.Withdrawn(oid, "claimed"))
        for other in list(self.grids.get(agent.grid, ())):
            if other is not agent:
                await _send_frame(other, withdrawn)


async def _send_frame(agent: Agent, frame: bytes | str) -> None:
    message: Message = {"type": "websocket.send"}
    message["bytes" if isinstance(frame, bytes) else "text"] = frame
    try:
        await agent.send(message)
    except Exception:  # the connection went away meanwhile; its receive loop ends it
        return


async def _answer(send: Send, status: int, body: dict[str, Any]) -> None:
    raw = json.dumps(body, ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(raw))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    from dispatcher.cli import uvicorn_config
    from dispatcher.process import raise_open_files_limit, run_event_loop
    from dispatcher.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m loadtest.bench.bare", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    missing = [k for k in ("REDIS_URL", "DATABASE_URL", "BARE_TOKEN") if not os.environ.get(k)]
    if missing:
        parser.error(f"set {', '.join(missing)}")
    raise_open_files_limit()
    app = Bare(os.environ["REDIS_URL"], os.environ["DATABASE_URL"], os.environ["BARE_TOKEN"])
    config = uvicorn_config(app, Settings.from_env(), args.host, args.port)
    run_event_loop(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
