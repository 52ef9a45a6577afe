"""The protocol uvicorn runs for each websocket: its websockets-sansio one, with less kept.

Tens of thousands of agent connections sit idle for hours, so what each one keeps counts
(issue 16: ≤ 20 KiB per idle connection, uvicorn's own share was over 10 KiB).
:class:`LeanWebSocketProtocol` is uvicorn's ``WebSocketsSansIOProtocol`` with three things
changed, none of them in what goes over the wire:

- The queue of events for the app (``websocket.connect``, ``.receive``, ``.disconnect``) is an
  :class:`Inbox` instead of an :class:`asyncio.Queue`: uvicorn uses only ``put_nowait``,
  ``get`` and ``empty``, and a Queue allocates four deques of 760 bytes each.
- The "transport is writable" flag is a :class:`Flag` instead of an :class:`asyncio.Event`
  (one deque more).
- The handshake's request and response (their headers parsed into dicts of lists) are let go
  once the response is written: uvicorn reads them only until then, and the app has the
  request in its ASGI scope.

And one thing added: :meth:`LeanWebSocketProtocol.write_now`, a data frame written without
a coroutine when the transport takes it at once, so that a fan-out to a thousand agents
writes a thousand frames in one pass instead of waking a thousand writer tasks
(:class:`dispatcher.live.asgi.Writer`).
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import OPEN


class _Waiters:
    """The futures of coroutines waiting for something to change, made only while one waits."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] | None = None

    async def _sleep(self) -> None:
        """Until :meth:`_wake_all` (the caller re-checks what it waits for)."""
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        waiters = self._waiters
        waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in waiters:
                waiters.remove(waiter)

    def _wake_all(self) -> None:
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)


class Inbox(_Waiters):
    """A FIFO with ``put_nowait``, ``get``, ``empty`` and ``qsize``, as :class:`asyncio.Queue`
    has them (unbounded), holding no more than its items and the futures of readers waiting."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        super().__init__()
        self._items: list[Any] = []

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        self._wake_all()

    async def get(self) -> Any:
        """The oldest item, waiting for one if there is none (cancellation leaves it)."""
        while not self._items:
            await self._sleep()
        return self._items.pop(0)


class Flag(_Waiters):
    """``set``, ``clear``, ``is_set`` and ``wait``, as :class:`asyncio.Event` has them."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        super().__init__()
        self._set = False

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if not self._set:
            self._set = True
            self._wake_all()

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        while not self._set:
            await self._sleep()
        return True


def frame_bytes(data: bytes | str) -> bytes:
    """``data`` as one unmasked, unfragmented, uncompressed data frame (binary for bytes, text
    for str): what websockets' ``send_binary``/``send_text`` then ``data_to_send`` give a
    server connection without extensions (RFC 6455 section 5.2)."""
    if isinstance(data, str):
        payload, head = data.encode(), 0x81
    else:
        payload, head = data, 0x82
    n = len(payload)
    if n < 126:
        return bytes((head, n)) + payload
    if n < 0x10000:
        return struct.pack("!BBH", head, 126, n) + payload
    return struct.pack("!BBQ", head, 127, n) + payload


_last_frame: tuple[bytes | str | None, bytes] = (None, b"")
"""The last data :meth:`LeanWebSocketProtocol.write_now` framed, and its frame: a fan-out
writes one frame object to a thousand connections in a row, so it is framed once (``is``, and
the data is held here, so its identity cannot be reused while it is)."""


def _remember_frame(data: bytes | str) -> bytes:
    global _last_frame
    frame = frame_bytes(data)
    _last_frame = (data, frame)
    return frame


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol keeping less per connection (module docstring);
    ``uvicorn.Config(ws=LeanWebSocketProtocol)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]
        self.writable.set()

    def write_now(self, data: bytes | str) -> bool:
        """Write one data frame now, without awaiting, as ``send`` of ``websocket.send``
        would once nothing stands in its way: True when written, False when it cannot be
        (the handshake not done, a close sent, the transport not writable or closing: use
        ``send``).  Raises ``InvalidState`` when the connection is gone."""
        if (
            not self.handshake_complete
            or self.close_sent
            or self.initial_response is not None
            or not self.writable.is_set()
            or self.transport.is_closing()
        ):
            return False
        conn = self.conn
        if conn.extensions or conn.writes or conn.state is not OPEN:
            # permessage-deflate (the frame differs per connection), bytes websockets has not
            # handed over yet, or a state in which websockets must raise: its own path.
            if isinstance(data, bytes):
                conn.send_binary(data)
            else:
                conn.send_text(data.encode())
            self.transport.write(b"".join(conn.data_to_send()))
            return True
        cached = _last_frame
        if cached[0] is data:
            self.transport.write(cached[1])
        else:
            self.transport.write(_remember_frame(data))
        return True

    def start_keepalive(self) -> None:
        # Called right after the handshake response is written; nothing reads them after.
        self.__dict__.pop("request", None)
        self.__dict__.pop("response", None)
        super().start_keepalive()
