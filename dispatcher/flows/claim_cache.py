"""What this process knows about claims: orders no claim can hold any more, claims in flight.

Under contention a thousand agents claim one order within milliseconds and all but one lose.
Run in full, each loser costs a Redis round trip of its own (on a cluster three: RESERVE,
CLAIM, giving the place back).
:class:`ClaimedOrders` lets :mod:`dispatcher.flows.claims` spend them only on claims that may win:

- **Flights.**  While one claim for an order runs in full here (the *leader*), further claims
  for it do not.  Those that arrive before its CLAIM is sent *ride* along: they are decided
  right after it, in the same call (CLAIM_MANY).  Those that arrive later wait until the
  order is noted closed (or the leader is done).
- **Winner first.**  A claim that loses to the leader's hold (CLAIM says ``held``) is told
  ``taken`` once the leader is done, so after the winner's own answer; a hold of another
  process is waited for until its change event is heard (:meth:`ClaimedOrders.outcome_heard`).
- **Closed orders.**  The orders this process has heard are not open to a new hold: from its
  own claims (``hold``, ``won``, ``taken``) and from every change event the hub receives (an
  event that shows the order open again drops it).  A claim for such an order needs no
  reservation: it is decided by CLAIM_MANY, which takes no hold.
- **Batches.**  Those claims share one CLAIM_MANY call per order, one call at a time per
  order: the next call takes every claim that arrived meanwhile.

What is known here routes claims; it never answers one.  Every answer is still decided in
Redis by the one claim rule, after the answers remembered for repeated requests, and is
remembered there in turn.  A stale entry (the order was released and this process has not
heard yet) costs one call: CLAIM_MANY leaves the claim undecided (``''``), and it runs in
full.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator, Sequence

from dispatcher.core.orders import OPEN_STATUSES
from dispatcher.exceptions import RedisUnavailableError

Claimant = tuple[int, str, Sequence[str]]
"""(agent id, answer field, the agent's grids): one claim, as CLAIM_MANY takes it."""


def admit(claim: Claimant) -> Claimant:
    """Check that ``claim`` can be sent to Redis, in the claimant's own task, before it joins a
    call shared with others: a claim that cannot be encoded fails alone, never the call (and
    so never the leader or the other riders).  Raises ``ValueError``."""
    _, answer_field, grids = claim
    answer_field.encode()  # UnicodeEncodeError is a ValueError
    for grid in grids:
        grid.encode()
    return claim


Decide = Callable[[list[Claimant]], Awaitable[list[str]]]
"""Runs CLAIM_MANY without a hold: one answer per claim, in order (``''``: undecided)."""


class Flight:
    """A claim of one order running in full here, and the claims riding along with it."""

    __slots__ = ("boarded", "done", "holding", "limit", "waiting")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = loop.create_future()
        """Set once the order is noted closed or the leader is done; it never raises."""
        self.waiting: list[tuple[Claimant, asyncio.Future[str]]] | None = []
        self.boarded: list[tuple[Claimant, asyncio.Future[str]]] = []
        self.holding = False
        """The leader holds the order: claims that lost to it are told once it is done."""

    def ride(self, claim: Claimant) -> asyncio.Future[str] | None:
        """Have ``claim`` decided in the leader's call: a future of its answer (``''``:
        undecided, run it in full).  None when too late (or too many): wait for
        :attr:`done` instead."""
        if self.waiting is None or len(self.waiting) >= self.limit:
            return None
        admit(claim)
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.waiting.append((claim, answer))
        return answer

    def board(self) -> list[Claimant]:
        """For the leader, as it sends its CLAIM: the riders, to be decided after it, in
        order, and then given their answers with :meth:`answer`."""
        self.boarded, self.waiting = self.waiting or [], None
        return [claim for claim, _ in self.boarded]

    def answer(self, answers: Sequence[str]) -> None:
        for (_, future), answer in zip(self.boarded, answers, strict=True):
            if not future.done():
                future.set_result(answer)

    async def landed(self) -> None:
        """Wait until :attr:`done` is set (a waiter cancelled never cancels it): a future and
        a callback each, not ``asyncio.wait``'s sets and callbacks, for the hundreds of claims
        that wait on one flight."""
        if self.done.done():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake(_: object) -> None:
            if not waiter.done():
                waiter.set_result(None)

        self.done.add_done_callback(wake)
        await waiter

    def end(self) -> None:
        """Riders not answered (the leader failed) get ``''``; waiters go on."""
        for _, future in [*(self.waiting or ()), *self.boarded]:
            if not future.done():
                future.set_result("")
        self.waiting = None
        if not self.done.done():
            self.done.set_result(None)


class _Batch:
    """Claims to decide in one CLAIM_MANY call, each with the future of its answer (None:
    the call failed)."""

    __slots__ = ("answers", "claims", "done")

    def __init__(self) -> None:
        self.claims: list[Claimant] = []
        self.answers: list[asyncio.Future[str | None]] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def add(self, claim: Claimant) -> asyncio.Future[str | None]:
        admit(claim)
        answer: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self.claims.append(claim)
        self.answers.append(answer)
        return answer

    def finish(self, answers: Sequence[str | None]) -> None:
        for future, answer in zip(self.answers, answers, strict=True):
            if not future.done():
                future.set_result(answer)
        self.done.set_result(None)


class ClaimedOrders:
    """Closed orders (a bounded set, oldest forgotten first) and the claims in flight."""

    def __init__(self, capacity: int = 10_000, batch_limit: int = 1000) -> None:
        """``capacity``: closed orders remembered; ``batch_limit``: claims per CLAIM_MANY
        call (riders, or a batch), which bounds the time one call keeps Redis busy."""
        self.capacity = capacity
        self.batch_limit = batch_limit
        self._closed: dict[int, int] = {}  # order id -> the newest closed version heard (0: own)
        self._flights: dict[int, Flight] = {}
        self._gathering: dict[int, _Batch] = {}
        self._running: dict[int, asyncio.Future[None]] = {}
        self._hearing: dict[int, asyncio.Future[None]] = {}  # claims waiting for an outcome
        self.batches = 0
        """CLAIM_MANY calls made without a leader (for tests and profiling)."""
        self.settled = 0
        """Claims those calls carried."""

    # --- closed orders -------------------------------------------------------------------

    def learn(self, order_id: int, status: str, version: int) -> None:
        """An order's state as a change event tells it (events may arrive out of order)."""
        flight = self._flights.get(order_id)
        if flight is None or not flight.holding:  # (else the leader tells, when done)
            self._heard(order_id)
        if status not in OPEN_STATUSES:
            self.note_closed(order_id, version)
        elif self._closed.get(order_id, -1) <= version:  # not older than what we know
            self._closed.pop(order_id, None)

    def note_closed(self, order_id: int, version: int = 0) -> None:
        """The order is closed, or held (being recorded for someone), at ``version`` (0:
        unknown).  Claims waiting for a flight of it go on at once."""
        flight = self._flights.get(order_id)
        if flight is not None and not flight.done.done():
            flight.done.set_result(None)
        known = self._closed.get(order_id)
        if known is None:
            if len(self._closed) >= self.capacity:
                del self._closed[next(iter(self._closed))]
            self._closed[order_id] = version
        elif version > known:
            self._closed[order_id] = version

    def _heard(self, order_id: int) -> None:
        hearing = self._hearing.pop(order_id, None)
        if hearing is not None and not hearing.done():
            hearing.set_result(None)

    def _heard_by(self, order_id: int, hearing: asyncio.Future[None]) -> None:
        """The wait's timer: told or not, the waiters go on."""
        if self._hearing.get(order_id) is hearing:
            self._heard(order_id)

    async def outcome_heard(self, order_id: int, timeout: float) -> None:
        """Wait until the outcome of the claim that holds ``order_id`` is told: by its leader
        here once it is done (so after the winner's answer), or for a holder on another
        process by a change event heard (won, or released); at most ``timeout`` seconds."""
        if self._closed.get(order_id, 0) > 0:
            return  # heard closed already
        hearing = self._hearing.get(order_id)
        if hearing is None:
            # One future and one timer per order, however many claims wait on it.
            loop = asyncio.get_running_loop()
            hearing = self._hearing[order_id] = loop.create_future()
            loop.call_later(timeout, self._heard_by, order_id, hearing)
        await asyncio.shield(hearing)  # (a waiter cancelled leaves the others waiting)

    def forget(self, order_id: int) -> None:
        self._closed.pop(order_id, None)

    def is_closed(self, order_id: int) -> bool:
        return order_id in self._closed

    # --- claims in flight ----------------------------------------------------------------

    def flight(self, order_id: int) -> Flight | None:
        """The claim of ``order_id`` running in full here, if any."""
        return self._flights.get(order_id)

    @contextlib.contextmanager
    def leading(self, order_id: int) -> Iterator[Flight]:
        """Run a claim of ``order_id`` in full as the block, others riding along.  The leader
        must :meth:`Flight.board` the riders into its CLAIM and answer them, and note what
        its outcome tells (:meth:`note_closed`, :meth:`forget`) before the block ends."""
        flight = self._flights[order_id] = Flight(self.batch_limit)
        try:
            yield flight
        finally:
            if self._flights.get(order_id) is flight:
                del self._flights[order_id]
            flight.end()
            self._heard(order_id)  # claims that lost to it: after its own answer

    # --- batches -------------------------------------------------------------------------

    async def settle(self, order_id: int, claim: Claimant, decide: Decide) -> str:
        """``claim``'s answer from CLAIM_MANY (``''``: undecided), in one call with the other
        claims for ``order_id`` that arrive meanwhile.  Raises ``RedisUnavailableError``."""
        batch = self._gathering.get(order_id)
        if batch is not None and len(batch.claims) < self.batch_limit:
            answer = await batch.add(claim)  # its own future: cancelling it harms no other
        else:
            answer = await self._run(order_id, claim, decide)
        if answer is None:
            raise RedisUnavailableError("the claims decided with this one failed")
        return answer

    async def _run(self, order_id: int, claim: Claimant, decide: Decide) -> str | None:
        batch = self._gathering[order_id] = _Batch()
        mine = batch.add(claim)
        answers: Sequence[str | None] | None = None
        try:
            previous = self._running.get(order_id)
            if previous is None:
                await asyncio.sleep(0)  # claims woken together join this call
            else:
                await asyncio.wait([previous])  # one call per order at a time
            if self._gathering.get(order_id) is batch:
                del self._gathering[order_id]  # closed: later claims start the next batch
            self._running[order_id] = batch.done
            got = await decide(batch.claims)
            if len(got) != len(batch.claims):
                raise RedisUnavailableError("CLAIM_MANY answered the wrong number of claims")
            answers = got
            self.batches += 1
            self.settled += len(batch.claims)
        except asyncio.CancelledError:
            answers = [""] * len(batch.claims)  # this claim went away: the others go on alone
            raise
        finally:
            if self._gathering.get(order_id) is batch:
                del self._gathering[order_id]
            if self._running.get(order_id) is batch.done:
                del self._running[order_id]
            # Failed: every claim of the batch answers `unavailable`.
            batch.finish(answers or [None] * len(batch.claims))
        return mine.result()
