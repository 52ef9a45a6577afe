"""One connection's frames, handled concurrently where they are independent.

An agent's frames used to be handled one at a time, so one claim stuck on a cut Postgres held
up that agent's next claims by the whole timeout (head-of-line blocking).  :class:`Lanes`
runs each frame's work in the *lane* of what it is about (a claim: its order id): lanes run
concurrently, and the work of one lane runs in arrival order, so two claims of one order are
decided one after the other, as the agent sent them, while a claim of another order goes by.

At most ``limit`` pieces of work are in flight per connection; past that :meth:`Lanes.submit`
waits, so the connection's reader stops reading (backpressure on top of the frame rate limit).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger("bangban.ws")

IN_FLIGHT = 32
"""Frames one connection may have in flight at once."""


class Lanes:
    """Concurrent lanes of work for one connection (see the module docstring).  One reader
    submits (the connection's), so one future stands for the room it may wait for: a
    semaphore's checks cost more, per frame, than the rest of the submission."""

    __slots__ = ("_limit", "_room", "_tails", "_tasks")

    def __init__(self, limit: int = IN_FLIGHT) -> None:
        self._limit = limit
        self._room: asyncio.Future[None] | None = None
        """While the reader waits for room: done when a piece of work ends."""
        self._tails: dict[Hashable, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    async def submit(self, lane: Hashable, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` after the work already in ``lane``; returns once it is queued (waits
        while ``limit`` pieces are in flight)."""
        while len(self._tasks) >= self._limit:
            self._room = asyncio.get_running_loop().create_future()
            await self._room  # (cancelled with the reader: the future is its alone)
        before = self._tails.get(lane)
        task = asyncio.create_task(self._run(before, work))
        self._tails[lane] = task
        self._tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            if self._tails.get(lane) is finished:
                del self._tails[lane]
            if self._room is not None and not self._room.done():
                self._room.set_result(None)

        task.add_done_callback(done)

    @staticmethod
    async def _run(before: asyncio.Task[None] | None, work: Callable[[], Awaitable[None]]) -> None:
        if before is not None:
            await asyncio.wait([before])  # in order within the lane, whatever became of it
        try:
            await work()
        except Exception:  # one frame's failure must not end the others
            log.exception("frame handling crashed")

    async def drain(self) -> None:
        """Wait until everything submitted has finished."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))
