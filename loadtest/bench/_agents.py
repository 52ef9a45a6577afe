"""Agent websockets for the benchmark: many connections per process, no task per socket.

Each connection is an :class:`asyncio.Protocol` driving websockets' sans-I/O
:class:`~websockets.client.ClientProtocol`.  Frames are handled inside ``data_received`` and
stamped with ``time.time()`` as they come off the socket, so a receive time is not delayed by
task scheduling, and the client side costs as little CPU as it can on a two-core machine where
it competes with the server.  Frames are decoded with :func:`dispatcher.live.wire.unpack` and claims
encoded with :func:`dispatcher.live.wire.encode`: the bench speaks the one wire schema.

:class:`AgentPool` (the orchestrator's side) starts worker processes and drives them over a
:class:`multiprocessing.connection.Connection`; every call is bounded by a timeout, and a
worker exits when its pipe closes, so an orchestrator that dies takes its workers with it.

What a worker records (returned and reset by :meth:`AgentPool.collect`):

- ``offers``: order id -> receive times, one per connection that got the offer;
- ``answers``: (order id, claim sent -> ``claim_result`` received in seconds, result);
- ``wins``: (order id, time the ``won`` answer arrived);
- ``taken``: (order id, time a ``taken`` answer arrived).

What a connection does with an offer depends on the pool's mode: ``observe`` only records it;
``claim_all`` claims every order once per connection (contention); ``claim_mine`` claims an
order only when ``order_id % group == slot``, where ``slot`` is the agent's index within its
grid (throughput: exactly one agent of the grid claims each order).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast
from urllib.parse import quote

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from dispatcher.exceptions import FrameError
from dispatcher.live import wire
from dispatcher.process import raise_open_files_limit, run_event_loop

OBSERVE = "observe"
CLAIM_ALL = "claim_all"
CLAIM_MINE = "claim_mine"
MODES = (OBSERVE, CLAIM_ALL, CLAIM_MINE)

PATH = "/v1/agent/ws"

T = TypeVar("T")


# --- worker side ----------------------------------------------------------------------------


class AgentSocket(asyncio.Protocol):
    """One agent connection.  ``welcomed`` resolves on the ``welcome`` frame."""

    def __init__(self, worker: Worker, uri: str, slot: int, deflate: bool) -> None:
        extensions = enable_client_permessage_deflate(None) if deflate else None
        self.proto = ClientProtocol(parse_uri(uri), extensions=extensions)
        self.worker = worker
        self.slot = slot
        self.transport: asyncio.Transport | None = None
        self.welcomed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.claimed: set[int] = set()  # orders this connection claimed (a repeat offer: skip)
        self.pending: dict[int, float] = {}  # request id -> time the claim was sent
        self._fragments: list[bytes] = []

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.proto.send_request(self.proto.connect())
        self.flush()

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.proto.receive_data(data)
        for event in self.proto.events_received():
            if isinstance(event, Frame):
                self._frame(event, now)
            elif isinstance(event, Response) and self.proto.handshake_exc is not None:
                self._not_welcomed(self.proto.handshake_exc)
        self.flush()  # pongs, the closing handshake, claims queued while handling

    def eof_received(self) -> bool | None:
        self.proto.receive_eof()
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._not_welcomed(ConnectionError("connection lost before welcome"))
        if not self.lost.done():
            self.lost.set_result(None)
        self.worker.sockets.discard(self)

    # frames

    def _frame(self, frame: Frame, now: float) -> None:
        if frame.opcode is Opcode.CLOSE:
            self._not_welcomed(ConnectionError(f"closed before welcome: {frame.data[2:]!r}"))
            return
        if frame.opcode not in (Opcode.BINARY, Opcode.TEXT, Opcode.CONT):
            return  # ping/pong: the protocol answers pings itself
        if not frame.fin:
            self._fragments.append(bytes(frame.data))
            return
        data = bytes(frame.data)
        if self._fragments:
            data = b"".join([*self._fragments, data])
            self._fragments.clear()
        self.worker.on_message(
            self, data if frame.opcode is not Opcode.TEXT else data.decode(), now
        )

    def _not_welcomed(self, exc: BaseException) -> None:
        if not self.welcomed.done():
            self.welcomed.set_exception(exc)

    def send(self, data: bytes) -> None:
        self.proto.send_binary(data)
        self.flush()

    def flush(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        for chunk in self.proto.data_to_send():
            if chunk:
                self.transport.write(chunk)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    def close(self) -> None:
        """Start the closing handshake; the server answers and drops the TCP connection."""
        if self.transport is None or self.transport.is_closing():
            return
        try:
            self.proto.send_close(1000)
        except Exception:  # already closing
            self.transport.close()
            return
        self.flush()


@dataclass
class Records:
    offers: dict[int, list[float]] = field(default_factory=dict)
    answers: list[tuple[int, float, str]] = field(default_factory=list)
    wins: list[tuple[int, float]] = field(default_factory=list)
    taken: list[tuple[int, float]] = field(default_factory=list)
    answered: dict[int, int] = field(default_factory=dict)  # order id -> answers (progress)
    withdrawn: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)


class Worker:
    """One worker process's connections and its command loop."""

    def __init__(self, pipe: multiprocessing.connection.Connection, worker_id: int) -> None:
        self.pipe = pipe
        self.worker_id = worker_id
        self.sockets: set[AgentSocket] = set()
        self.mode = OBSERVE
        self.group = 1
        self.rec = Records()
        self._next_rid = worker_id * 10**12

    # --- frames (hot path) -----------------------------------------------------------------

    def on_message(self, sock: AgentSocket, data: bytes | str, now: float) -> None:
        try:
            m = wire.unpack(data)
        except FrameError as exc:
            self._error(f"unparseable frame: {exc.message}")
            return
        kind = m["type"]
        rec = self.rec
        if kind == "offer":
            oid: int = m["order"]["id"]
            times = rec.offers.get(oid)
            if times is None:
                rec.offers[oid] = [now]
            else:
                times.append(now)
            mode = self.mode
            if mode == OBSERVE or oid in sock.claimed:
                return
            if mode == CLAIM_ALL or oid % self.group == sock.slot:
                sock.claimed.add(oid)
                self._next_rid += 1
                rid = self._next_rid
                sock.pending[rid] = time.time()
                frame = wire.encode(wire.Claim(oid, rid))
                assert isinstance(frame, bytes)  # msgpack encoding gives bytes
                sock.send(frame)
        elif kind == "claim_result":
            sent = sock.pending.pop(m["request_id"], None)
            oid = m["order_id"]
            result: str = m["result"]
            if sent is not None:
                rec.answers.append((oid, now - sent, result))
            rec.answered[oid] = rec.answered.get(oid, 0) + 1
            if result == wire.WON:
                rec.wins.append((oid, now))
            elif result == wire.TAKEN:
                rec.taken.append((oid, now))
        elif kind == "withdrawn":
            rec.withdrawn += 1
        elif kind == "welcome":
            if not sock.welcomed.done():
                sock.welcomed.set_result(None)
        elif kind == "error":
            self._error(f"error frame: {m.get('code')}: {m.get('message')}")

    def _error(self, text: str) -> None:
        self.rec.errors += 1
        if len(self.rec.error_samples) < 5:
            self.rec.error_samples.append(text)

    # --- commands --------------------------------------------------------------------------

    async def connect(
        self,
        host: str,
        port: int,
        agents: Sequence[tuple[str, int] | tuple[str, int, int]],
        deflate: bool,
        concurrency: int,
        timeout: float,
    ) -> dict[str, Any]:
        """Open one connection per (token, slot) and wait for each ``welcome``; an agent
        given as (token, slot, port) connects to that port instead of ``port``."""
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(concurrency)
        failures: list[str] = []
        started = time.monotonic()

        async def one(token: str, slot: int, to: int = port) -> None:
            uri = f"ws://{host}:{to}{PATH}?token={quote(token)}"
            sock = AgentSocket(self, uri, slot, deflate)
            async with gate:
                try:
                    async with asyncio.timeout(timeout):
                        await loop.create_connection(lambda: sock, host, to)
                        self.sockets.add(sock)
                        await sock.welcomed
                except Exception as exc:  # refused, timed out, closed before welcome
                    failures.append(repr(exc)[:200])
                    if not sock.welcomed.done():
                        sock.welcomed.cancel()  # nobody will wait for it any more
                    if sock.transport is not None:
                        sock.transport.abort()

        await asyncio.gather(*(one(*agent) for agent in agents))
        return {
            "connected": sum(
                1 for s in self.sockets if s.welcomed.done() and s.welcomed.exception() is None
            ),
            "failed": len(failures),
            "failures": failures[:3],
            "seconds": time.monotonic() - started,
        }

    async def set_mode(self, mode: str, group: int) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.mode, self.group = mode, max(1, group)
        self.rec = Records()

    async def progress(self, order_id: int) -> tuple[int, int]:
        """(connections that got the offer for ``order_id``, claim answers received for it)."""
        return len(self.rec.offers.get(order_id, ())), self.rec.answered.get(order_id, 0)

    async def collect(self) -> dict[str, Any]:
        rec, self.rec = self.rec, Records()
        return {
            "offers": rec.offers,
            "answers": rec.answers,
            "wins": rec.wins,
            "taken": rec.taken,
            "withdrawn": rec.withdrawn,
            "errors": rec.errors,
            "error_samples": rec.error_samples,
            "connections": len(self.sockets),
            "cpu_seconds": time.process_time(),
        }

    async def disconnect(self, timeout: float) -> int:
        socks = list(self.sockets)
        for sock in socks:
            sock.close()
        if socks:
            await asyncio.wait([s.lost for s in socks], timeout=timeout)
        for sock in list(self.sockets):
            if sock.transport is not None:
                sock.transport.abort()
        self.sockets.clear()
        return len(socks)

    async def serve(self) -> None:
        """Run commands from the pipe until ``exit`` or the pipe closes."""
        handlers: dict[str, Callable[..., Any]] = {
            "connect": self.connect,
            "mode": self.set_mode,
            "progress": self.progress,
            "collect": self.collect,
            "disconnect": self.disconnect,
        }
        loop = asyncio.get_running_loop()
        try:
            while True:
                # A thread waits on the pipe: loop.add_reader would make the socket
                # non-blocking (uvloop does), and then a large reply fails with EAGAIN.
                try:
                    command = await loop.run_in_executor(None, self.pipe.recv)
                except (EOFError, OSError):
                    break  # the orchestrator is gone
                if command[0] == "exit":
                    break
                name, args = command
                try:
                    result = await handlers[name](*args)
                except Exception as exc:
                    self.pipe.send(("error", f"{name}: {exc!r}"))
                else:
                    self.pipe.send(("ok", result))
        finally:
            await self.disconnect(2.0)


def worker_main(pipe: multiprocessing.connection.Connection, worker_id: int) -> None:
    """Entry point of a worker process."""
    raise_open_files_limit()

    async def run() -> None:
        await Worker(pipe, worker_id).serve()

    run_event_loop(run())


# --- orchestrator side ----------------------------------------------------------------------


class WorkerError(RuntimeError):
    """A worker answered a command with an error, or did not answer in time."""


class AgentPool:
    """``workers`` processes holding agent connections; commands go to all of them."""

    def __init__(self, workers: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipes: list[multiprocessing.connection.Connection] = []
        self.procs: list[multiprocessing.process.BaseProcess] = []
        for i in range(workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child, i + 1), daemon=True)
            proc.start()
            child.close()
            self.pipes.append(parent)
            self.procs.append(proc)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.pid is not None]

    def _call_one(
        self, pipe: multiprocessing.connection.Connection, command: tuple[Any, ...], timeout: float
    ) -> Any:
        if not pipe.poll(timeout):
            raise WorkerError(f"worker did not answer {command[0]!r} within {timeout:.0f} s")
        status, value = pipe.recv()
        if status != "ok":
            raise WorkerError(str(value))
        return value

    async def call(
        self, name: str, per_worker_args: Sequence[tuple[Any, ...]], timeout: float
    ) -> list[Any]:
        for pipe, args in zip(self.pipes, per_worker_args, strict=True):
            pipe.send((name, args))
        return list(
            await asyncio.gather(
                *(asyncio.to_thread(self._call_one, pipe, (name,), timeout) for pipe in self.pipes)
            )
        )

    async def broadcast(self, name: str, args: tuple[Any, ...], timeout: float) -> list[Any]:
        return await self.call(name, [args] * len(self.pipes), timeout)

    async def connect(
        self,
        host: str,
        port: int | Sequence[int],
        agents: Sequence[tuple[str, int]],
        *,
        deflate: bool,
        concurrency: int = 64,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Spread ``agents`` (token, slot) round-robin over the workers and connect them;
        with several ports (server processes), agent ``k`` goes to ``port[k % len(port)]``."""
        n = len(self.pipes)
        ports = [port] if isinstance(port, int) else list(port)
        placed = [(t, s, ports[k % len(ports)]) for k, (t, s) in enumerate(agents)]
        shares = [placed[i::n] for i in range(n)]
        port = ports[0]
        args = [(host, port, share, deflate, concurrency, timeout) for share in shares]
        answers = await self.call("connect", args, timeout * (1 + len(agents) // 500) + 30)
        return {
            "connected": sum(a["connected"] for a in answers),
            "failed": sum(a["failed"] for a in answers),
            "failures": [f for a in answers for f in a["failures"]][:3],
            "seconds": max(a["seconds"] for a in answers),
        }

    async def set_mode(self, mode: str, group: int = 1) -> None:
        await self.broadcast("mode", (mode, group), 10)

    async def progress(self, order_id: int) -> tuple[int, int]:
        answers = await self.broadcast("progress", (order_id,), 10)
        return sum(a[0] for a in answers), sum(a[1] for a in answers)

    async def wait_for(
        self, order_id: int, *, offers: int = 0, answers: int = 0, timeout: float = 5.0
    ) -> bool:
        """Poll until ``offers`` connections got the order and ``answers`` claim answers came
        back; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got_offers, got_answers = await self.progress(order_id)
            if got_offers >= offers and got_answers >= answers:
                return True
            await asyncio.sleep(0.01)
        return False

    async def collect(self) -> Collected:
        return Collected.merge(await self.broadcast("collect", (), 60))

    async def disconnect(self) -> None:
        await self.broadcast("disconnect", (5.0,), 30)

    def close(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(("exit", ()))
            except OSError:
                pass
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
        for pipe in self.pipes:
            pipe.close()


@dataclass
class Collected:
    """What all workers recorded since the last mode change or collect."""

    offers: dict[int, list[float]]
    answers: list[tuple[int, float, str]]
    wins: list[tuple[int, float]]
    taken: list[tuple[int, float]]
    withdrawn: int
    errors: int
    error_samples: list[str]
    worker_cpu_seconds: float

    @classmethod
    def merge(cls, parts: Sequence[dict[str, Any]]) -> Collected:
        offers: dict[int, list[float]] = {}
        for part in parts:
            for oid, times in part["offers"].items():
                offers.setdefault(oid, []).extend(times)
        return cls(
            offers=offers,
            answers=[a for part in parts for a in part["answers"]],
            wins=[w for part in parts for w in part["wins"]],
            taken=[t for part in parts for t in part["taken"]],
            withdrawn=sum(p["withdrawn"] for p in parts),
            errors=sum(p["errors"] for p in parts),
            error_samples=[s for p in parts for s in p["error_samples"]][:5],
            worker_cpu_seconds=sum(p["cpu_seconds"] for p in parts),
        )
