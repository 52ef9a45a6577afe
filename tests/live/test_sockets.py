"""Websocket plumbing: the on-demand writer, raw-ASGI serving, compression, unknown paths."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from dispatcher.live import wire
from dispatcher.live.asgi import AsgiSocket, Message, Writer
from dispatcher.live.outbox import Outbox, Payload
from dispatcher.metrics import Metrics
from dispatcher.settings import Settings
from tests.servers import InProcessServer, roster

# --- the writer, against an ASGI send we control ----------------------------------------------


class _Peer:
    """An ASGI ``send`` that records messages and can be made to block (a full socket)."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.open = asyncio.Event()
        self.open.set()

    async def send(self, message: Message) -> None:
        await self.open.wait()
        self.sent.append(message)

    async def receive(self) -> Message:
        return {"type": "websocket.connect"}

    def data(self) -> list[Any]:
        return [wire.unpack(m["bytes"])["request_id"] for m in self.sent if "bytes" in m]


def _pong(n: int) -> Payload:
    return Payload.of(wire.Pong(n, 0))


def _writer(limit: int = 100) -> tuple[_Peer, Outbox, Writer, Metrics]:
    peer = _Peer()
    outbox = Outbox("msgpack", limit)
    metrics = Metrics()
    socket = AsgiSocket({"type": "websocket"}, peer.receive, peer.send)
    return peer, outbox, Writer(socket, outbox, metrics), metrics


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_the_writer_runs_only_while_frames_wait() -> None:
    peer, outbox, writer, _ = _writer()
    outbox.release()
    assert writer._task is None
    outbox.push(_pong(1))
    assert writer._task is not None
    await _settle()
    assert writer._task is None  # idle again: no task held
    assert peer.data() == [1]


async def test_frames_pushed_during_a_write_follow_in_order() -> None:
    peer, outbox, writer, _ = _writer()
    outbox.release()
    peer.open.clear()  # the socket is full: the first write waits
    outbox.push(_pong(1))
    await _settle()
    for n in (2, 3, 4):
        outbox.push(_pong(n))
    peer.open.set()
    await _settle()
    assert peer.data() == [1, 2, 3, 4]
    assert writer._task is None


async def test_held_frames_wait_for_release_behind_the_first_ones() -> None:
    peer, outbox, _, _ = _writer()
    outbox.push(_pong(10))  # live, before the snapshot is read: held
    outbox.push(_pong(1), first=True)
    await _settle()
    assert peer.data() == [1]
    outbox.release()
    await _settle()
    assert peer.data() == [1, 10]


async def test_a_client_that_stops_reading_is_closed_with_1013() -> None:
    peer, outbox, writer, metrics = _writer(limit=3)
    outbox.release()
    peer.open.clear()
    for n in range(10):  # more than the limit while the socket is full
        outbox.push(_pong(n))
    peer.open.set()
    await _settle()
    closes = [m for m in peer.sent if m["type"] == "websocket.close"]
    assert closes == [{"type": "websocket.close", "code": 1013, "reason": "too slow; reconnect"}]
    assert metrics.dropped_slow._value.get() == 1
    outbox.push(_pong(99))  # nothing more is written after the close
    await _settle()
    assert 99 not in peer.data()
    await writer.stop()


async def test_stop_ends_a_write_in_progress() -> None:
    peer, outbox, writer, _ = _writer()
    outbox.release()
    peer.open.clear()
    outbox.push(_pong(1))
    await _settle()
    await asyncio.wait_for(writer.stop(), 1)
    assert writer._task is None
    outbox.push(_pong(2))
    assert writer._task is None


def test_query_parameters_and_headers_are_read_from_the_scope() -> None:
    scope = {
        "type": "websocket",
        "query_string": b"token=bba_x%2By&encoding=json&empty=",
        "headers": [(b"authorization", b"Bearer abc"), (b"host", b"h")],
    }
    sock = AsgiSocket(scope, _Peer().receive, _Peer().send)
    assert sock.param("token") == "bba_x+y"
    assert sock.param("encoding") == "json"
    assert sock.param("empty") == ""
    assert sock.param("missing") is None
    assert sock.header(b"authorization") == "Bearer abc"
    assert sock.header(b"cookie") is None


# --- against a real server ----------------------------------------------------------------------


async def _agent_token(server: InProcessServer) -> str:
    async with server.admin() as admin:
        token: str = (await roster(admin, {"g1": 1}))["g1"][0]["token"]
    return token


def _ws_url(server: InProcessServer, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


async def test_compression_is_declined_unless_enabled(settings: Settings) -> None:
    token = ""
    for enabled in (False, True):
        async with InProcessServer(dataclasses.replace(settings, ws_deflate=enabled)) as server:
            token = token or await _agent_token(server)
            url = _ws_url(server, f"/v1/agent/ws?token={token}")
            async with ws_connect(url, compression="deflate") as ws:
                welcome = wire.unpack(await ws.recv())
                assert welcome["type"] == "welcome"
                assert bool(ws.protocol.extensions) is enabled


async def test_a_token_in_the_authorization_header_is_accepted(server: InProcessServer) -> None:
    token = await _agent_token(server)
    url = _ws_url(server, "/v1/agent/ws")
    async with ws_connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        assert wire.unpack(await ws.recv())["type"] == "welcome"


@pytest.mark.parametrize("path", ["/v1/agent/wss", "/v1/nothing/ws", "/v1/orders/1/2/ws"])
async def test_an_unknown_websocket_path_is_refused(server: InProcessServer, path: str) -> None:
    with pytest.raises(InvalidStatus) as caught:
        async with ws_connect(_ws_url(server, path)):
            pass
    assert caught.value.response.status_code == 403


async def test_many_connections_leave_no_writer_tasks_behind(server: InProcessServer) -> None:
    token = await _agent_token(server)
    url = _ws_url(server, f"/v1/agent/ws?token={token}")
    sockets = [await ws_connect(url) for _ in range(20)]

    def server_tasks(name: str) -> int:
        return sum(1 for t in asyncio.all_tasks() if name in t.get_coro().__qualname__)

    try:
        for ws in sockets:
            assert wire.unpack(await ws.recv())["type"] == "welcome"
        await asyncio.sleep(0.05)
        # uvicorn's task per connection runs the endpoint; no writer idles beside it.
        assert server_tasks("run_asgi") == len(sockets)
        assert server_tasks("Writer._drain") == 0
    finally:
        for ws in sockets:
            await ws.close()
