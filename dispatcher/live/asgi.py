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

from dispatcher.live.connection import LeanWebSocketProtocol
from dispatcher.live.outbox import Outbox
from dispatcher.metrics import Metrics

log = logging.getLogger("bangban.ws")

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CLOSE_TRY_AGAIN = 1013


class AsgiSocket:
    """The few websocket operations the endpoints use, over the ASGI callables."""

    __slots__ = ("_now", "_receive", "_send", "scope")

    def __init__(self, scope: Message, receive: Receive, send: Send) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        protocol = getattr(send, "__self__", None)  # uvicorn hands the protocol's own send
        self._now: Callable[[bytes | str], bool] | None = (
            protocol.write_now if isinstance(protocol, LeanWebSocketProtocol) else None
        )

    def write_now(self, data: bytes | str) -> bool:
        """Write a frame without awaiting when the socket takes it at once (see
        :meth:`LeanWebSocketProtocol.write_now`); False: :meth:`send` it."""
        return self._now is not None and self._now(data)

    @property
    def direct_writer(self) -> Callable[[bytes | str], bool] | None:
        """:meth:`write_now` itself, for an outbox to call without this layer (None when the
        server is not uvicorn with :class:`LeanWebSocketProtocol`)."""
        return self._now

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

    def abort(self) -> bool:
        """Drop the TCP connection now, whatever is buffered.  True if it could be done.

        ASGI has no abort, and uvicorn's ``websocket.close`` first waits until the transport is
        writable again, which for a client that stopped reading is never; its close timer then
        calls ``transport.close()``, which waits for the buffer to drain, again never.  So the
        connection of such a client is aborted through uvicorn's protocol object (the owner of
        ``send``), the one way to give its memory and file descriptor back."""
        transport = getattr(getattr(self._send, "__self__", None), "transport", None)
        abort = getattr(transport, "abort", None)
        if abort is None:
            return False
        abort()
        return True


CLOSE_GRACE = 2.0
"""Seconds a dropped slow client has to read its close frame before the socket is aborted."""


class Writer:
    """Drains one outbox onto its socket from a task started on demand.

    Slow clients are bounded three ways: the outbox's frames and bytes (it overflows), and the
    time one write may stay blocked (``send_timeout``: the client's receive window and our
    buffers are full).  Past any of them the connection is dropped and counted in
    ``slow_connections_dropped_total``: closed with 1013 and a reason when the close frame can
    still be written, aborted when the writer is stuck (a close frame could not be queued, and
    a client that does not read would not read it).  An overflow while a write is blocked
    drops the connection at once.

    The time bound costs one timer per batch of frames, not one per frame: the timer re-arms
    itself from the last write that went through (``_progress``).
    """

    __slots__ = (
        "_closed",
        "_flushed",
        "_metrics",
        "_outbox",
        "_progress",
        "_socket",
        "_task",
        "_watch",
        "_writing",
        "send_timeout",
    )

    def __init__(
        self, socket: AsgiSocket, outbox: Outbox, metrics: Metrics, send_timeout: float = 10.0
    ) -> None:
        self._socket = socket
        self._outbox = outbox
        self._metrics = metrics
        self.send_timeout = send_timeout
        self._task: asyncio.Task[None] | None = None
        self._watch: asyncio.TimerHandle | None = None
        self._progress = 0.0
        self._writing = False
        self._flushed: asyncio.Future[None] | None = None
        self._closed = False
        outbox.wake = self.wake
        outbox.direct = socket.direct_writer

    @property
    def closed(self) -> bool:
        """No more writing: the peer is gone or the connection is being dropped.  The outbox
        then stops writing straight to the socket too."""
        return self._closed

    @closed.setter
    def closed(self, value: bool) -> None:
        self._closed = value
        if value:
            self._outbox.direct = None

    async def flushed(self) -> None:
        """Wait until every frame queued so far has been handed to the transport (which
        blocks while the client does not read): flow control for the snapshot.  Returns at
        once when the connection is being dropped."""
        if self._task is None or self.closed:
            return
        if self._flushed is None:
            self._flushed = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._flushed)

    def wake(self) -> None:
        """Frames are waiting: write them now if the socket takes them at once, else start
        the task unless it runs (it then takes them too)."""
        if self._task is None and not self.closed:
            rest = self._write_now()
            if rest is not None:
                self._outbox.direct = None  # frames wait: the next ones queue behind them
                self._task = asyncio.get_running_loop().create_task(self._drain(rest))
        elif self._writing and self._outbox.overflowed and not self.closed:
            # We run, so the writer is suspended, and in a write only when it is blocked.
            self._abort("too slow; reconnect")

    def _write_now(self) -> list[bytes | str] | None:
        """The frames queued, written without a task while the socket takes them at once (no
        write blocked: nothing for the time bound to watch).  Returns None when all were
        written (or the peer is gone), else the frames the task must send: all of them, or
        those left when the transport stopped taking more."""
        outbox = self._outbox
        if outbox.kicked is not None or outbox.overflowed:
            return []
        frames = outbox.drain()
        try:
            for i, data in enumerate(frames):
                if not self._socket.write_now(data):
                    return frames[i:]
        except Exception:  # the peer went away; the reader sees the disconnect and cleans up
            self.closed = True
        return None

    async def _drain(self, first: list[bytes | str] | None = None) -> None:
        """Write ``first`` (frames :meth:`_write_now` could not), then what the outbox gets."""
        outbox = self._outbox
        loop = asyncio.get_running_loop()
        frames = first
        try:
            while not self.closed:
                if not frames:
                    if outbox.kicked is not None:
                        self.closed = True
                        await self._socket.close(*outbox.kicked)
                        return
                    if outbox.overflowed:
                        await self._drop("too slow; reconnect")
                        return
                    frames = outbox.drain()
                    if not frames:
                        return  # no await since the check: a push now starts a new task
                self._writing = True
                self._progress = loop.time()
                if self._watch is None:
                    self._watch = loop.call_at(self._progress + self.send_timeout, self._check)
                for data in frames:
                    await self._socket.send(data)
                    self._progress = loop.time()
                frames = None
                self._writing = False
        except Exception:  # the peer went away; the reader sees the disconnect and cleans up
            self.closed = True
        finally:
            self._writing = False
            self._task = None
            if not self.closed:
                self._outbox.direct = self._socket.direct_writer
            if self._flushed is not None:
                if not self._flushed.done():
                    self._flushed.set_result(None)
                self._flushed = None
            if self._watch is not None:
                self._watch.cancel()
                self._watch = None

    def _check(self) -> None:
        """The timer: drop the connection if its current write has been blocked too long."""
        self._watch = None
        if not self._writing or self.closed:
            return
        loop = asyncio.get_running_loop()
        due = self._progress + self.send_timeout
        if loop.time() < due:
            self._watch = loop.call_at(due, self._check)
            return
        self._abort("not reading; reconnect")

    def _count(self, reason: str) -> None:
        self.closed = True
        log.warning("connection dropped: client too slow to read reason=%r", reason)
        self._metrics.dropped_slow.inc()

    def _abort(self, reason: str) -> None:
        """The writer is stuck in a write: abort the connection (the blocked write then fails,
        the reader sees the disconnect, and the handler cleans up)."""
        self._count(reason)
        if not self._socket.abort() and self._task is not None:
            self._task.cancel()  # not uvicorn: at least stop writing

    async def _drop(self, reason: str) -> None:
        self._count(reason)
        try:
            async with asyncio.timeout(CLOSE_GRACE):
                await self._socket.close(CLOSE_TRY_AGAIN, reason)
        except TimeoutError:
            self._socket.abort()  # the close frame cannot even be queued
            return
        except Exception:  # gone already
            return
        # Queued; a client that does not read will not answer it either.
        asyncio.get_running_loop().call_later(CLOSE_GRACE, self._socket.abort)

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
