"""Agent websocket client, and the socket machinery and errors shared by all clients.

:class:`AgentClient` speaks ``/v1/agent/ws`` (PROTOCOL.md) for agent apps, tests and load tests::

    async with AgentClient.connect("http://127.0.0.1:8000", token) as agent:
        order = await agent.wait_offer(order_id, timeout=5)
        result = await agent.claim(order_id)          # wire.ClaimResult; result.result == "won"

One reader task per connection reads every frame.  Answers to this client's own claims go to
the claim's waiter; every other frame goes, in arrival order, to an inbox read by
:meth:`FrameSocket.recv` and ``async for``.  The reader also keeps ``offers`` current, so
:meth:`AgentClient.wait_offer` sees an offer that arrived before it was called.

This module also holds :class:`FrameSocket` (the base of the agent and tracking clients) and
the websocket errors, with the client's root error :class:`ClientError`; see ``clients``.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
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
    "AgentClient",
    "ClientError",
    "Connecting",
    "ConnectionClosedError",
    "ConnectionRejectedError",
    "FrameRejectedError",
    "FrameSocket",
    "order_version",
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


# --- the agent ------------------------------------------------------------------------------


class AgentClient(FrameSocket[wire.ServerFrame]):
    """An agent's connection to ``/v1/agent/ws``.

    State kept by the reader:

    * ``welcome`` (and ``agent_id``, ``grids``): from the ``welcome`` frame, never in the inbox.
    * ``offers``: order id -> latest order map of every order currently offered; an offer
      whose ``version`` is not newer than one already seen for that order is stale and does
      not change it, a ``withdrawn`` removes the order.
    * answers to claims sent with :meth:`claim` / :meth:`send_claim` (``claim_result`` or an
      ``error`` frame carrying their ``request_id``) are kept for :meth:`wait_claim` and never
      reach the inbox.

    Every other frame, including every ``offer`` and ``withdrawn`` as received (stale ones too)
    and answers to frames sent with :meth:`send_raw`, goes to the inbox.
    """

    def __init__(self, ws: ClientConnection, encoding: wire.Encoding) -> None:
        self.offers: dict[int, dict[str, Any]] = {}
        self._seen: dict[int, dict[str, Any]] = {}  # latest offered version, even if withdrawn
        self._welcome: wire.Welcome | None = None
        self._pending: set[str] = set()  # request ids of claims whose answer is awaited
        self._answers: dict[str, wire.ClaimResult | wire.Error] = {}
        super().__init__(ws, encoding)

    @classmethod
    def connect(
        cls,
        url: str,
        token: str | None,
        *,
        encoding: wire.Encoding = "msgpack",
        open_timeout: float | None = 10,
    ) -> Connecting[Self]:
        """Connect to ``{url}/v1/agent/ws`` and wait for ``welcome``.

        ``url`` is the server's base URL (``http://`` or ``ws://``).  ``await`` the result, or
        use it as ``async with``.  ``token=None`` sends no token.  Raises ConnectionRejectedError
        (code 4401 for a bad token), TimeoutError after ``open_timeout`` seconds, or OSError /
        websockets' InvalidHandshake for transport failures.
        """
        uri = ws_url(url, "/v1/agent/ws", token, encoding)
        return Connecting(lambda: cls._open(uri, encoding, open_timeout))

    def _ready(self) -> bool:
        return self._welcome is not None

    def _handle(self, frame: wire.ServerFrame) -> wire.ServerFrame | None:
        if isinstance(frame, wire.Welcome):
            self._welcome = frame
            return None
        if (
            isinstance(frame, wire.ClaimResult | wire.Error)
            and isinstance(frame.request_id, str)
            and frame.request_id in self._pending
        ):
            # A repeated claim gets the same answer twice; the first one is kept, unless it was
            # `pending` (the final answer follows and replaces it).
            kept = self._answers.get(frame.request_id)
            if kept is None or (isinstance(kept, wire.ClaimResult) and kept.result == wire.PENDING):
                self._answers[frame.request_id] = frame
            return None
        if isinstance(frame, wire.Offer):
            order_id = frame.order.get("id")
            if isinstance(order_id, int):
                seen = self._seen.get(order_id)
                if seen is None or order_version(frame.order) > order_version(seen):
                    self._seen[order_id] = self.offers[order_id] = frame.order
        elif isinstance(frame, wire.Withdrawn):
            self.offers.pop(frame.order_id, None)
        return frame

    @property
    def welcome(self) -> wire.Welcome:
        if self._welcome is None:  # only before connect() has returned
            raise RuntimeError("not connected yet")
        return self._welcome

    @property
    def agent_id(self) -> int:
        return self.welcome.agent_id

    @property
    def grids(self) -> list[str]:
        return self.welcome.grids

    async def send_claim(self, order_id: int, request_id: str | None = None) -> str:
        """Send a ``claim`` frame and return its request id (a fresh uuid4 hex when None).

        The answer is kept until :meth:`wait_claim` collects it; call it once per request id.
        Sending the same request id again is a retry: the server repeats its answer."""
        rid = uuid.uuid4().hex if request_id is None else request_id
        self._pending.add(rid)  # before sending: the answer may arrive before send() returns
        try:
            await self.send_raw(
                wire.encode(wire.Claim(order_id=order_id, request_id=rid), self.encoding)
            )
        except BaseException:
            self._pending.discard(rid)
            raise
        return rid

    async def wait_claim(
        self, request_id: str, timeout: float | None = 10, *, final: bool = True
    ) -> wire.ClaimResult:
        """Wait for the answer to the claim sent with ``request_id`` and return it.

        With ``final`` (the default) a ``pending`` answer is waited past: the server sends the
        final answer later on the same connection (``final=False`` returns ``pending`` too).

        A lost claim is a normal result (``taken``, ``not_offered`` ...).  Raises
        FrameRejectedError when the server answered with an ``error`` frame, TimeoutError (the
        answer is then still kept, so waiting again may collect it), ConnectionClosedError,
        and KeyError for a request id that was never sent or was already collected."""
        if request_id not in self._pending:
            raise KeyError(request_id)

        def ready() -> wire.ClaimResult | wire.Error | None:
            got = self._answers.get(request_id)
            if got is None or (
                final and isinstance(got, wire.ClaimResult) and got.result == wire.PENDING
            ):
                return None
            return self._answers.pop(request_id)

        answer: wire.ClaimResult | wire.Error = await self._until(ready, timeout)
        if not (isinstance(answer, wire.ClaimResult) and answer.result == wire.PENDING):
            self._pending.discard(request_id)  # (after `pending`, the final answer is kept)
        if isinstance(answer, wire.Error):
            raise FrameRejectedError(answer.code, answer.message, answer.request_id)
        return answer

    async def claim(
        self,
        order_id: int,
        request_id: str | None = None,
        timeout: float | None = 10,
        *,
        final: bool = True,
    ) -> wire.ClaimResult:
        """Send a claim and wait for its answer: :meth:`send_claim` then :meth:`wait_claim`."""
        rid = await self.send_claim(order_id, request_id)
        return await self.wait_claim(rid, timeout, final=final)

    async def wait_offer(self, order_id: int, timeout: float | None = 10) -> dict[str, Any]:
        """Return the order map of the latest offer of ``order_id`` seen on this connection,
        waiting for one if none has arrived yet.  The offer may have been withdrawn since:
        ``order_id in agent.offers`` tells whether it is still open.  Raises TimeoutError or
        ConnectionClosedError."""
        return await self._until(lambda: self._seen.get(order_id), timeout)
