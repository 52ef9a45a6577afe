"""The socket machinery and errors shared by the websocket clients.

:class:`FrameSocket` is the base of :class:`clients.agent.AgentClient` and
:class:`clients.applicant.TrackingClient`: one reader task per connection reads every frame;
frames the subclass does not keep for itself go, in arrival order, to an inbox read by
:meth:`FrameSocket.recv` and ``async for``.  :class:`Connecting` is what ``connect`` returns
(await it or use it as ``async with``).  Also here: the client's root error
:class:`ClientError` and the websocket errors (see ``clients``), and :func:`ws_url`.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Coroutine, Generator
from types import TracebackType
from typing import Any, Generic, Self, TypeVar
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from dispatcher.exceptions import FrameError
from dispatcher.live import wire

__all__ = [
    "ClientError",
    "Connecting",
    "ConnectionClosedError",
    "ConnectionRejectedError",
    "FrameRejectedError",
    "FrameSocket",
    "order_version",
    "ws_url",
]

T = TypeVar("T")
F = TypeVar("F", bound=wire.ServerFrame)
C = TypeVar("C", bound="FrameSocket[Any]")

ABNORMAL_CLOSURE = 1006  # RFC 6455: the connection dropped without a close frame
PROTOCOL_ERROR = 1002


# --- errors ---------------------------------------------------------------------------------


class ClientError(Exception):
    """Root of every error raised by :mod:`clients` (transport errors of websockets/httpx and
    :class:`TimeoutError` pass through unwrapped)."""


class ConnectionRejectedError(ClientError):
    """The server refused a websocket before it was ready (before ``welcome`` / first status).

    ``code`` is the close code the server sent (4401 for a missing or wrong token).  When the
    server refused the HTTP upgrade instead, ``status`` is the HTTP status and ``code`` is
    ``4000 + status`` for a 4xx status (so a bad token is 4401 either way), 1011 for a 5xx.
    """

    def __init__(self, code: int, reason: str = "", status: int | None = None) -> None:
        super().__init__(f"connection rejected ({code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason
        self.status = status


class ConnectionClosedError(ClientError):
    """The websocket is closed: raised by ``recv`` once the inbox is drained, and by waits and
    sends on a closed connection.  ``code`` is the close code (1009 after a too-large frame,
    1006 when the connection dropped)."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"connection closed ({code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


class FrameRejectedError(ClientError):
    """The server answered one of our frames (a claim) with an ``error`` frame.

    ``code`` is the stable error code (``invalid_value``, ``rate_limited``, ``forbidden`` ...).
    A lost claim is *not* an error: it is a ``claim_result`` such as ``taken``.
    """

    def __init__(self, code: str, message: str, request_id: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id


# --- the shared socket ----------------------------------------------------------------------


def ws_url(url: str, path: str, token: str | None, encoding: wire.Encoding) -> str:
    """``url`` (``http(s)://`` or ``ws(s)://``, no trailing path) + ``path`` + query."""
    base = url.rstrip("/")
    if base.startswith("http"):  # http:// -> ws://, https:// -> wss://
        base = "ws" + base[len("http") :]
    query: dict[str, str] = {}
    if token is not None:
        query["token"] = token
    if encoding == "json":
        query["encoding"] = "json"
    return f"{base}{path}?{urlencode(query)}" if query else f"{base}{path}"


def order_version(order: dict[str, Any]) -> int:
    """An order map's ``version`` (-1 when missing): the order of its offers and statuses."""
    version = order.get("version")
    return version if isinstance(version, int) else -1


def _code_for_status(status: int) -> int:
    return 4000 + status if 400 <= status < 500 else 1011


class Connecting(Generic[C]):
    """What ``XClient.connect(...)`` returns: ``await`` it for a connected client (which you
    must ``close()``), or use it as ``async with`` to have the client closed on exit."""

    def __init__(self, opener: Callable[[], Coroutine[Any, Any, C]]) -> None:
        self._opener = opener
        self._client: C | None = None

    def __await__(self) -> Generator[Any, None, C]:
        return self._opener().__await__()

    async def __aenter__(self) -> C:
        self._client = await self._opener()
        return self._client

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.close()


class FrameSocket(Generic[F]):
    """A websocket whose reader task decodes server frames into an inbox.

    Subclasses implement :meth:`_handle` (keep state, consume frames that are not for the
    inbox) and :meth:`_ready` (the connection is usable: welcome seen, first status seen).
    Use ``connect()`` of a subclass; the constructor takes an already open websocket.
    """

    def __init__(self, ws: ClientConnection, encoding: wire.Encoding) -> None:
        self.encoding: wire.Encoding = encoding
        self._ws = ws
        self._inbox: collections.deque[F] = collections.deque()
        self._changed = asyncio.Event()
        self._closed = False
        self._close_code: int | None = None
        self._close_reason = ""
        self._reader = asyncio.create_task(self._read(), name=f"{type(self).__name__}.reader")

    # subclass hooks

    def _handle(self, frame: wire.ServerFrame) -> F | None:
        """Update state for ``frame``; return it for the inbox, or None when consumed."""
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    # opening

    @classmethod
    async def _open(cls, uri: str, encoding: wire.Encoding, open_timeout: float | None) -> Self:
        client: Self | None = None
        try:
            async with asyncio.timeout(open_timeout):
                try:
                    # No compression: frames are small, and per-connection zlib state costs
                    # ~100 KiB each in load tests; it also keeps frame-size tests exact.
                    ws = await ws_connect(uri, open_timeout=None, compression=None)
                except InvalidStatus as exc:
                    status = exc.response.status_code
                    reason = exc.response.body.decode(errors="replace") if exc.response.body else ""
                    raise ConnectionRejectedError(
                        _code_for_status(status), reason, status
                    ) from None
                client = opened = cls(ws, encoding)
                await opened._until(lambda: True if opened._ready() else None, None)
        except ConnectionClosedError as exc:
            raise ConnectionRejectedError(exc.code or ABNORMAL_CLOSURE, exc.reason) from None
        except BaseException:
            if client is not None:
                client._ws.transport.abort()  # sync: safe under cancellation; the reader ends
            raise
        return client

    # reading

    async def _read(self) -> None:
        try:
            while True:
                data = await self._ws.recv()
                try:
                    frame = wire.decode_server(data)
                except FrameError as exc:
                    if exc.code == wire.UNKNOWN_TYPE:
                        continue  # PROTOCOL.md: the server may add frame types
                    # A server bug: fail loudly rather than guess.  recv() then raises
                    # ConnectionClosedError carrying this reason.
                    self._close_reason = f"server sent a bad frame: {exc}"
                    await self._ws.close(PROTOCOL_ERROR, "bad frame")
                    continue
                queued = self._handle(frame)
                if queued is not None:
                    self._inbox.append(queued)
                self._notify()
        except ConnectionClosed as exc:
            if exc.rcvd is not None:
                self._close_code = exc.rcvd.code
                self._close_reason = self._close_reason or exc.rcvd.reason
            else:
                self._close_code = ABNORMAL_CLOSURE
        except Exception as exc:
            # A bug in this client: drop the connection (nobody would read it) and let the task
            # fail, so close() re-raises it and an unclosed client logs it.
            self._close_code, self._close_reason = ABNORMAL_CLOSURE, f"reader failed: {exc!r}"
            self._ws.transport.abort()
            raise
        finally:
            self._closed = True
            self._notify()

    def _notify(self) -> None:
        # Wake every waiter of _until(); each re-checks its condition and waits again.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _until(self, check: Callable[[], T | None], timeout: float | None) -> T:
        """Wait until ``check()`` returns a value (not None) and return it.

        Raises TimeoutError after ``timeout`` seconds, ConnectionClosedError once the
        connection is closed and ``check()`` still has nothing."""
        async with asyncio.timeout(timeout):
            while True:
                value = check()
                if value is not None:
                    return value
                if self._closed:
                    raise ConnectionClosedError(self._close_code, self._close_reason)
                await self._changed.wait()

    # public API

    async def recv(self, timeout: float | None = None) -> F:
        """The next inbox frame, waiting up to ``timeout`` seconds (None: forever).

        Raises TimeoutError, or ConnectionClosedError once the connection is closed and every
        frame received before the close has been returned."""
        return await self._until(lambda: self._inbox.popleft() if self._inbox else None, timeout)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> F:
        """``async for`` yields inbox frames and ends when the connection closes (for any
        reason: check ``close_code``)."""
        try:
            return await self.recv()
        except ConnectionClosedError:
            raise StopAsyncIteration from None

    async def send_raw(self, data: bytes | str) -> None:
        """Send one websocket message as is: bytes as a binary frame, str as a text frame.
        For tests of bad input.  Raises ConnectionClosedError when closed."""
        try:
            await self._ws.send(data)
        except ConnectionClosed:
            # The reader records the close code; wait for it so the error carries it.
            await asyncio.shield(self._reader)
            raise ConnectionClosedError(self._close_code, self._close_reason) from None

    async def wait_closed(self, timeout: float | None = None) -> int:
        """Wait until the connection is closed (by either side) and return the close code."""
        await self._until(lambda: True if self._closed else None, timeout)
        # The reader always sets a code before marking the connection closed.
        return self._close_code if self._close_code is not None else ABNORMAL_CLOSURE

    async def close(self) -> None:
        """Close the connection (idempotent) and wait for the reader.  Frames still in the
        inbox remain readable by ``recv``."""
        await self._ws.close()
        await self._reader

    @property
    def closed(self) -> bool:
        """True once the connection is closed and the reader has stopped."""
        return self._closed

    @property
    def close_code(self) -> int | None:
        """The close code received from the server (e.g. 1009, 4401), None while open."""
        return self._close_code

    @property
    def close_reason(self) -> str:
        return self._close_reason

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
