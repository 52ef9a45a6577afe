"""Slow consumers are bounded for real: real clients that stop reading (small receive
buffers) are dropped within ``send_timeout`` while offers flow, counted, and their sockets
given back; an agent that reads keeps getting every offer."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import socket
import time
from urllib.parse import quote

from clients import AgentClient
from dispatcher.live import wire
from dispatcher.settings import Settings
from tests.servers import InProcessServer
from tests.steps import file, team

STALLED = 8
SEND_TIMEOUT = 1.5
BURST = 40


async def _stalled_client(port: int, token: str) -> socket.socket:
    """A websocket client that completes the handshake and then never reads again, with a
    4 KiB receive buffer (set before connecting, so the window is small from the start)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /v1/agent/ws?token={quote(token)}&encoding=json HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += await loop.sock_recv(sock, 1)  # byte by byte: leave the frames unread
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def _server(settings: Settings) -> InProcessServer:
    """The server without uvicorn's keepalive pings: their timeout (40 s) must not be what
    drops the stalled clients here."""
    srv = InProcessServer(settings)
    srv.server.config.ws_ping_interval = None
    return srv


async def _connected(srv: InProcessServer, n: int) -> None:
    """Wait until ``n`` agents are registered: the server answers 101 before it reads the
    token and registers the connection, so a stalled client's handshake is not enough."""
    deadline = time.monotonic() + 10
    while len(srv.ctx.hub.agents) < n:
        assert time.monotonic() < deadline, f"{len(srv.ctx.hub.agents)} of {n} agents connected"
        await asyncio.sleep(0.02)


def _dropped(srv: InProcessServer) -> float:
    return srv.ctx.metrics.dropped_slow._value.get()


async def test_clients_that_stop_reading_are_dropped_within_the_bound(settings: Settings) -> None:
    # Queue bounds far away, so that it is the blocked write that drops them.
    settings = dataclasses.replace(
        settings,
        send_timeout=SEND_TIMEOUT,
        send_queue=1_000_000,
        send_queue_bytes=1 << 30,
        reconcile_interval=60,
    )
    async with _server(settings) as srv:
        tm = await team(srv.url, settings.admin_token or "", {"g1": STALLED + 1})
        agents = tm.agents["g1"]
        stalled = [await _stalled_client(srv.port, a["token"]) for a in agents[:STALLED]]
        reader = await AgentClient.connect(srv.url, agents[STALLED]["token"])
        try:
            await _connected(srv, STALLED + 1)
            assert len(srv.ctx.hub.agents) == STALLED + 1
            filed: list[int] = []
            text = "请帮我办理" * 390  # ~6 KiB per offer in UTF-8
            started = time.monotonic()
            last_connected = started
            # Loopback send buffers grow to a few MiB before a write blocks: file in bursts.
            after_drop = 0
            while time.monotonic() - started < 90 and after_drop < 3:
                burst = await asyncio.gather(*(file(tm, text=text) for _ in range(BURST)))
                filed += [o["id"] for o in burst]
                if len(srv.ctx.hub.agents) > 1:
                    last_connected = time.monotonic()
                else:
                    after_drop += 1
            assert len(srv.ctx.hub.agents) == 1, "the stalled clients were never dropped"
            assert _dropped(srv) == STALLED
            # Offers kept flowing after the last was dropped; dropped within the bound of one
            # blocked write (plus the time it took to fill the buffers, which is the loop).
            assert last_connected - started < 90
            # The reading agent got every offer and is still connected.
            seen: set[int] = set()
            while not set(filed) <= seen:
                frame = await reader.recv(timeout=20)
                if isinstance(frame, wire.Offer):
                    seen.add(frame.order["id"])
            assert not reader.closed
        finally:
            await reader.close()
            for sock in stalled:
                sock.close()
    print(f"filed {len(filed)} orders; stalled dropped after {last_connected - started:.1f}s")


async def test_an_overflow_while_a_write_is_blocked_drops_at_once(settings: Settings) -> None:
    """The queue bound is checked while the writer is stuck, not only once it is free."""
    settings = dataclasses.replace(
        settings, send_timeout=3600, send_queue=64, reconcile_interval=60
    )
    async with _server(settings) as srv:
        tm = await team(srv.url, settings.admin_token or "", {"g1": 1})
        sock = await _stalled_client(srv.port, tm.agents["g1"][0]["token"])
        try:
            await _connected(srv, 1)
            for _ in range(100):
                await asyncio.gather(*(file(tm, text="请帮我办理" * 390) for _ in range(BURST)))
                if not srv.ctx.hub.agents:
                    break
            assert not srv.ctx.hub.agents and _dropped(srv) == 1
        finally:
            sock.close()


def test_the_outbox_bounds_bytes_as_well_as_frames() -> None:
    from dispatcher.live.outbox import Outbox, Payload

    outbox = Outbox("msgpack", limit=1000, byte_limit=64 * 1024)
    outbox.release()
    big = Payload.of(wire.Pong("x" * 100, 0))
    size = len(big.encoded("msgpack"))
    for _ in range(64 * 1024 // size):
        outbox.push(big)
    assert not outbox.overflowed and outbox.queued <= 64 * 1024
    outbox.push(big)
    assert outbox.overflowed
    fresh = Outbox("msgpack", limit=1000, byte_limit=64 * 1024)
    fresh.release()
    fresh.push(big)
    assert fresh.drain() and fresh.queued == 0
