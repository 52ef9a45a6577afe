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
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class Inbox:
    """A FIFO with ``put_nowait``, ``get`` and ``empty``, as :class:`asyncio.Queue` has them
    (unbounded), holding no more than its items and the futures of readers waiting."""

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiters: list[asyncio.Future[None]] | None = None

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        _wake(self._waiters)
        self._waiters = None

    async def get(self) -> Any:
        """The oldest item, waiting for one if there is none (cancellation leaves it)."""
        while not self._items:
            await _wait(self, "_waiters")
        return self._items.pop(0)


class Flag:
    """``set``, ``clear``, ``is_set`` and ``wait``, as :class:`asyncio.Event` has them."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if not self._set:
            self._set = True
            _wake(self._waiters)
            self._waiters = None

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        while not self._set:
            await _wait(self, "_waiters")
        return True


def _wake(waiters: list[asyncio.Future[None]] | None) -> None:
    for waiter in waiters or ():
        if not waiter.done():
            waiter.set_result(None)


async def _wait(owner: Inbox | Flag, slot: str) -> None:
    """Wait until ``owner`` wakes its waiters (they re-check what they wait for)."""
    waiter = asyncio.get_running_loop().create_future()
    waiters: list[asyncio.Future[None]] | None = getattr(owner, slot)
    if waiters is None:
        waiters = []
        setattr(owner, slot, waiters)
    waiters.append(waiter)
    try:
        await waiter
    finally:
        if waiter in waiters:
            waiters.remove(waiter)


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol keeping less per connection (module docstring);
    ``uvicorn.Config(ws=LeanWebSocketProtocol)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]
        self.writable.set()

    def start_keepalive(self) -> None:
        # Called right after the handshake response is written; nothing reads them after.
        self.__dict__.pop("request", None)
        self.__dict__.pop("response", None)
        super().start_keepalive()
