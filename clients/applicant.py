"""Applicant tracking client: follows one order over ``/v1/orders/{id}/ws`` (PROTOCOL.md)::

    async with TrackingClient.connect("http://127.0.0.1:8000", order_id, tracking_token) as t:
        order = await t.wait_status("claimed", timeout=5)

The server sends a ``status`` frame with the full order on connect and after every change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Self

from websockets.asyncio.client import ClientConnection

from clients.framesocket import Connecting, FrameSocket, order_version, ws_url
from dispatcher.live import wire

__all__ = ["TrackingClient"]

OrderPredicate = Callable[[dict[str, Any]], bool]


class TrackingClient(FrameSocket[wire.StatusChange]):
    """An applicant's view of one order.

    The inbox (``recv``, ``async for``) holds every ``status`` frame as received, starting with
    the one sent on connect.  Frames of other types are ignored (the server may add types).
    ``order`` is the latest order map by ``version``; ``history`` every distinct version seen.
    """

    def __init__(self, ws: ClientConnection, encoding: wire.Encoding) -> None:
        self._versions: dict[int, dict[str, Any]] = {}
        self._order: dict[str, Any] | None = None
        super().__init__(ws, encoding)

    @classmethod
    def connect(
        cls,
        url: str,
        order_id: int,
        token: str | None,
        *,
        encoding: wire.Encoding = "msgpack",
        open_timeout: float | None = 10,
    ) -> Connecting[Self]:
        """Connect to ``{url}/v1/orders/{order_id}/ws`` with the order's tracking token and wait
        for the first ``status`` frame (which stays in the inbox).

        ``await`` the result, or use it as ``async with``.  Raises ConnectionRejectedError (code
        4401 for a bad token), TimeoutError after ``open_timeout`` seconds, or OSError /
        websockets' InvalidHandshake for transport failures.
        """
        uri = ws_url(url, f"/v1/orders/{order_id}/ws", token, encoding)
        return Connecting(lambda: cls._open(uri, encoding, open_timeout))

    def _ready(self) -> bool:
        return self._order is not None

    def _handle(self, frame: wire.ServerFrame) -> wire.StatusChange | None:
        if not isinstance(frame, wire.StatusChange):
            return None
        order = frame.order
        self._versions.setdefault(order_version(order), order)
        if self._order is None or order_version(order) > order_version(self._order):
            self._order = order
        return frame

    @property
    def order(self) -> dict[str, Any]:
        """The latest order map by ``version``."""
        if self._order is None:  # only before connect() has returned
            raise RuntimeError("not connected yet")
        return self._order

    @property
    def history(self) -> list[dict[str, Any]]:
        """Every distinct version of the order seen on this connection, oldest first."""
        return [self._versions[v] for v in sorted(self._versions)]

    async def wait_status(
        self, want: str | OrderPredicate, timeout: float | None = 10
    ) -> dict[str, Any]:
        """Return the oldest order version seen on this connection whose ``status`` equals
        ``want`` (or for which ``want(order)`` is true), waiting for one if needed.

        Versions seen before the call count, so a status that was passed through quickly is
        not missed.  Raises TimeoutError or ConnectionClosedError."""
        test: OrderPredicate
        if isinstance(want, str):
            status = want

            def test(order: dict[str, Any]) -> bool:
                return order.get("status") == status
        else:
            test = want

        def first_match() -> dict[str, Any] | None:
            return next((order for order in self.history if test(order)), None)

        return await self._until(first_match, timeout)
