"""Agent websocket client.

:class:`AgentClient` speaks ``/v1/agent/ws`` (PROTOCOL.md) for agent apps, tests and load tests::

    async with AgentClient.connect("http://127.0.0.1:8000", token) as agent:
        order = await agent.wait_offer(order_id, timeout=5)
        result = await agent.claim(order_id)          # wire.ClaimResult; result.result == "won"

One reader task per connection reads every frame (:class:`clients.framesocket.FrameSocket`).
Answers to this client's own claims go to the claim's waiter; every other frame goes, in
arrival order, to the inbox.  The reader also keeps ``offers`` current, so
:meth:`AgentClient.wait_offer` sees an offer that arrived before it was called.
"""

from __future__ import annotations

import uuid
from typing import Any, Self

from websockets.asyncio.client import ClientConnection

from clients.framesocket import (
    Connecting,
    FrameRejectedError,
    FrameSocket,
    order_version,
    ws_url,
)
from dispatcher.live import wire

__all__ = ["AgentClient"]


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
