"""One websocket served straight from ASGI, and the writer that drains its outbox.

The websocket endpoints are where thousands of connections sit for hours, so they are served
without Starlette's routing and middleware (``dispatcher.web.app.App`` hands them here): each of
those layers is a coroutine, with closures, kept alive for the life of the connection, and
every frame sent passes through them.  With 2,000 agents connected through Starlette a
connection was 135 objects the garbage collector tracks (19 of them coroutines).

A connection's writer is a task that exists only while frames wait: :meth:`Writer.wake`
starts it when the outbox gets a frame, and it ends once the outbox is empty.  An idle
connection holds no writer task at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from dispatcher.live.hub import Outbox
from dispatcher.metrics import Metrics

log = logging.getLogger("bangban.ws")

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CLOSE_TRY_AGAIN = 1013


class AsgiSocket:
    """The few websocket operations the endpoints use, over the ASGI callables."""

    __slots__ = ("_receive", "_send", "scope")

    def __init__(self, scope: Message, receive: Receive, send: Send) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send

    def param(self, name: str) -> str | None:
        """A query parameter (the first of that name), or None."""
        raw: bytes = self.scope.get("query_string", b"")
        for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
            if key == name:
                return value
        return None

    def header(self, name: bytes) -> str | None:
        """A request header (``name`` lower-case), or None."""
        for key, value in self.scope.get("headers", ()):
            if key == name:
                return bytes(value).decode("latin-1")
        return None

    async def accept(self) -> None:
        message = await self._receive()  # "websocket.connect" comes first
        if message["type"] != "websocket.connect":
            raise ConnectionError(f"expected websocket.connect, got {message['type']}")
        await self._send({"type": "websocket.accept"})

    async def receive(self) -> Message:
        return await self._receive()

    async def send(self, data: bytes | str) -> None:
        if isinstance(data, bytes):
            await self._send({"type": "websocket.send", "bytes": data})
        else:
            await self._send({"type": "websocket.send", "text": data})

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason})


class Writer:
    """Drains one outbox onto its socket from a task started on demand."""

    __slots__ = ("_metrics", "_outbox", "_socket", "_task", "closed")

    def __init__(self, socket: AsgiSocket, outbox: Outbox, metrics: Metrics) -> None:
        self._socket = socket
        self._outbox = outbox
        self._metrics = metrics
        self._task: asyncio.Task[None] | None = None
        self.closed = False
        outbox.wake = self.wake

    def wake(self) -> None:
        """Frames are waiting: start the task unless it runs (it then takes them too)."""
        if self._task is None and not self.closed:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        outbox = self._outbox
        try:
            while not self.closed:
                if outbox.overflowed:
                    self.closed = True
                    log.warning("connection dropped: client too slow to read")
                    self._metrics.dropped_slow.inc()
                    await self._socket.close(CLOSE_TRY_AGAIN, "too slow; reconnect")
                    return
                frames = outbox.drain()
                if not frames:
                    return  # no await since the check: a push now starts a new task
                for data in frames:
                    await self._socket.send(data)
        except Exception:  # the peer went away; the reader sees the disconnect and cleans up
            self.closed = True
        finally:
            self._task = None

    async def flush(self) -> None:
        """Wait until every frame pushed so far is written (or the connection failed)."""
        while (task := self._task) is not None:
            await asyncio.wait([task])

    async def stop(self) -> None:
        """No more writing (the connection is ending); waits for a write in progress."""
        self.closed = True
        task = self._task
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # we are being cancelled ourselves
