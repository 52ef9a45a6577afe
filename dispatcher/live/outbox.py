"""What waits to be written to one connection: frames encoded once, queued with a bound.

A :class:`Payload` is one frame, encoded at most once per encoding whatever the number of
connections it goes to; an :class:`Outbox` is one connection's queue of them, bounded by frames
and bytes (``BANGBAN_SEND_QUEUE``, ``BANGBAN_SEND_QUEUE_BYTES``): past the bound the connection
is kicked (1013) rather than let a client that stopped reading hold memory for ever.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack

from dispatcher.live import wire


class Payload:
    """One frame map, encoded at most once per encoding however many connections get it."""

    __slots__ = ("_json", "_msgpack", "map")

    def __init__(self, frame_map: dict[str, Any]) -> None:
        self.map = frame_map
        self._msgpack: bytes | None = None
        self._json: str | None = None

    @classmethod
    def of(cls, frame: wire.Frame) -> Payload:
        return cls(wire.to_map(frame))

    def encoded(self, encoding: wire.Encoding) -> bytes | str:
        if encoding == "msgpack":
            if self._msgpack is None:
                self._msgpack = msgpack.packb(self.map, use_bin_type=True)
            return self._msgpack
        if self._json is None:
            self._json = str(wire.pack(self.map, "json"))
        return self._json


def _nobody() -> None:
    pass


class Outbox:
    """Frames waiting to be written to one websocket.

    Starts *held*: frames pushed before :meth:`release` wait behind the ones pushed with
    ``first=True`` (the welcome and the snapshot), so a connection never sees a live change
    before the snapshot it supersedes.  :attr:`wake` is called whenever frames become ready
    to write (or the outbox overflows); the connection's writer sets it.
    """

    __slots__ = (
        "_held",
        "_queue",
        "byte_limit",
        "direct",
        "encoding",
        "kicked",
        "limit",
        "overflowed",
        "queued",
        "wake",
    )

    def __init__(
        self, encoding: wire.Encoding, limit: int, byte_limit: int = 4 * 1024 * 1024
    ) -> None:
        self.encoding: wire.Encoding = encoding
        self.limit = limit
        self.byte_limit = byte_limit
        self.queued = 0
        """Bytes (characters for json) waiting in this outbox, not yet taken by the writer."""
        self.overflowed = False
        self.kicked: tuple[int, str] | None = None
        """Close the connection with this (code, reason): its token was revoked."""
        self.wake: Callable[[], None] = _nobody
        self.direct: Callable[[bytes | str], bool] | None = None
        """Set by the writer while it is idle: writes one frame to the socket now if the socket
        takes it at once (True), so that a frame with nothing queued before it skips the queue
        (a fan-out pushes one frame to a thousand outboxes in a row).  None: queue it."""
        self._queue: list[bytes | str] = []
        self._held: list[bytes | str] | None = []

    def push(self, payload: Payload, *, first: bool = False) -> None:
        data = payload.encoded(self.encoding)
        direct = self.direct
        if direct is not None and not self._queue and (first or self._held is None):
            try:
                if direct(data):
                    return
            except Exception:  # the peer went away: queue it, and the writer finds out
                self.direct = None
        target = self._queue if first or self._held is None else self._held
        if len(target) >= self.limit or self.queued + len(data) > self.byte_limit:
            self.overflowed = True
            self.direct = None
            self.wake()
            return
        target.append(data)
        self.queued += len(data)
        if target is self._queue:
            self.wake()

    def kick(self, code: int, reason: str) -> None:
        """Have the writer close the connection with ``code`` (e.g. 4401), frames or not."""
        self.kicked = (code, reason)
        self.direct = None
        self.wake()

    def release(self) -> None:
        """Let live frames through, after everything pushed with ``first=True``."""
        if self._held is not None:
            self._queue.extend(self._held)
            self._held = None
            if self._queue:
                self.wake()

    def drain(self) -> list[bytes | str]:
        """The frames ready to write, oldest first, now removed; [] once overflowed."""
        if self.overflowed or not self._queue:
            return []
        items, self._queue = self._queue, []
        self.queued = sum(len(d) for d in self._held) if self._held else 0
        return items
