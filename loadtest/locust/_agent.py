"""One agent's websocket under locust: offers in, claims out, statistics into locust's own.

The socket is ``websocket-client``'s (plain sockets, so it cooperates with the gevent
monkey-patching locust applies); frames are MessagePack and go through :mod:`dispatcher.live.wire`,
the one wire schema.  A reader greenlet per connection decodes frames as they arrive and
stamps them with the wall clock; :meth:`AgentSession.supervise`, called in a loop by the
locust user, (re)connects and drops the connection in reconnect waves.

Everything measured is fired as a locust ``request`` event of type ``WS`` (see the names
below), so it appears in the web UI, the CSV files and the HTML report.  Times compared with an
order's ``created_at`` / ``widen_at`` use this machine's wall clock: run locust on the
server's machine, or on one whose clock is synchronised with it.

Claims cut off by a dropped connection are sent again, with the same ``request_id``, as soon
as the agent is back: the server must answer them as it did (or would have) the first time.
When the test stops, ``quiet`` is set: no new claims, no more drops, and the locustfile waits
for the answers in flight, so the won log holds every win the server granted.
"""

from __future__ import annotations

import json
import logging
import random
import struct
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import IO, Any

import gevent
import gevent.event
import gevent.pool
import websocket
from locust.event import Events

from dispatcher.exceptions import FrameError
from dispatcher.live import wire
from loadtest.locust.scenarios import Behaviour, drops_in_wave

log = logging.getLogger("bangban.loadtest")

REQUEST_TYPE = "WS"

# Names of the statistics (the rows of locust's tables).
CONNECT = "connect (handshake→welcome)"
RECONNECT = "reconnect (handshake→welcome)"
OFFER_LATENCY = "offer latency (filed→received)"
OFFER_ON_CONNECT = "offer on connect (connected→received)"
WIDENED = "widened (deadline→received)"
WITHDRAWN = "withdrawn (shown→withdrawn)"
FILED_TO_WON = "order filed→won"
SKIPPED = "claim skipped (withdrawn while thinking)"
DROP = "drop (reconnect wave)"
ERRORS = "errors"


def claim_name(result: str, repeated: bool) -> str:
    """``claim won``, ``claim taken``, … (``(repeated)`` after a reconnect)."""
    return f"claim {result}" + (" (repeated)" if repeated else "")


# Claim answers that mean the server failed, not that the agent lost: locust failures.
FAILED_RESULTS = frozenset({wire.UNAVAILABLE, wire.UNKNOWN_ORDER})
RETRIES = 3
"""``unavailable`` means "try again" (PROTOCOL.md): the agent repeats the same request this
many times, RETRY_S apart, before counting a failure.  (Also the answer to a repeat that
arrives while the first attempt is still being recorded.)"""
RETRY_S = 0.2

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
"""No frame for this long (the server pings every 20 s) means the connection is dead."""
CLOSE_TIMEOUT = 1.0
MEMORY = 4096
"""Withdrawn orders remembered per agent, to drop a stale offer that arrives after them."""


def now_ms() -> float:
    return time.time() * 1000


class Reporter:
    """Fires locust ``request`` events of type ``WS``."""

    def __init__(self, events: Events) -> None:
        self._fire = events.request.fire

    def ok(self, name: str, ms: float, length: int = 0) -> None:
        self._fire(
            request_type=REQUEST_TYPE,
            name=name,
            response_time=max(ms, 0.0),
            response_length=length,
            exception=None,
            context={},
        )

    def fail(self, name: str, error: str, ms: float = 0.0) -> None:
        self._fire(
            request_type=REQUEST_TYPE,
            name=name,
            response_time=max(ms, 0.0),
            response_length=0,
            exception=Exception(error),
            context={},
        )


class WonLog:
    """Every ``won`` answer received, one JSON line each, written and flushed at once.

    Greenlets write whole lines without yielding (file writes do not switch), so lines
    never interleave.
    """

    def __init__(self, file: IO[str]) -> None:
        self._file = file
        self.count = 0

    def write(self, order_id: int, agent_id: int, request_id: str, at: int) -> None:
        record = {"order_id": order_id, "agent_id": agent_id, "request_id": request_id, "at": at}
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()
        self.count += 1


@dataclass(slots=True)
class _Shown:
    version: int
    status: str
    created_at: int
    at: float  # ms, when this connection showed it


@dataclass(slots=True)
class _Pending:
    order_id: int
    created_at: int
    sent: float  # perf_counter seconds of the first send
    repeated: bool = False
    retries: int = 0


class AgentSession:
    """One agent: its connection, what it is shown, its claims in flight.

    Call :meth:`supervise` in a loop and :meth:`close` at the end; nothing else is needed.
    """

    def __init__(
        self,
        *,
        url: str,
        token: str,
        agent_id: int,
        index: int,
        behaviour: Behaviour,
        reporter: Reporter,
        won_log: WonLog,
        waves_from: float,
        quiet: gevent.event.Event,
    ) -> None:
        base = url.rstrip("/").replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        self.url = base + "/v1/agent/ws"
        self.token = token
        self.agent_id = agent_id
        self.index = index
        self.behaviour = behaviour
        self.report = reporter
        self.won_log = won_log
        self.rng = random.Random(index)
        self.ws: websocket.WebSocket | None = None
        self.connected_ms = 0.0
        self.connections = 0
        self.failures = 0
        self.reconnect_at = 0.0  # monotonic; when to try again while disconnected
        self.waves_from = waves_from  # monotonic start of the wave clock, shared by all agents
        self.wave = self._wave_index(time.monotonic())
        self.shown: dict[int, _Shown] = {}
        self.versions: dict[int, int] = {}  # latest version seen, across connections
        self.decided: dict[int, str] = {}  # order -> status at which the agent decided
        self.gone: OrderedDict[int, None] = OrderedDict()
        self.pending: dict[str, _Pending] = {}
        self.tasks = gevent.pool.Group()
        self.reader: gevent.Greenlet | None = None
        self.wake = gevent.event.Event()
        self.closing = False
        self.dropping = False
        self.quiet = quiet  # set when the test stops: no new claims, no more drops

    # --- connection ------------------------------------------------------------------------

    def connect(self) -> bool:
        """Open the websocket and read ``welcome``.  Reports the handshake; never raises."""
        name = RECONNECT if self.connections else CONNECT
        self.connected_ms = now_ms()
        started = time.perf_counter()
        ws: websocket.WebSocket | None = None
        try:
            ws = websocket.create_connection(
                self.url,
                timeout=CONNECT_TIMEOUT,
                header=[f"Authorization: Bearer {self.token}"],
                enable_multithread=True,
                skip_utf8_validation=True,
            )
            opcode, frame = ws.recv_data_frame()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                raise ConnectionError(f"closed before welcome: {_close_code(frame.data)}")
            first = wire.decode_server(frame.data)
            if not isinstance(first, wire.Welcome):
                raise ConnectionError(f"first frame was {first.type!r}, not 'welcome'")
        except (OSError, websocket.WebSocketException, FrameError, ConnectionError) as exc:
            if ws is not None:
                ws.shutdown()
            self.failures += 1
            backoff = min(5.0, 0.25 * 2**self.failures)
            self.reconnect_at = time.monotonic() + self.rng.uniform(backoff / 2, backoff)
            self.report.fail(name, f"{type(exc).__name__}: {exc}", _since(started))
            return False
        self.report.ok(name, _since(started), len(frame.data))
        ws.settimeout(READ_TIMEOUT)
        self.failures = 0
        self.connections += 1
        self.ws = ws
        self.dropping = False
        self.reader = gevent.spawn(self._read, ws)
        for rid, claim in list(self.pending.items()):
            # Cut off by the last drop: ask again with the same request id.
            claim.repeated = True
            self._send_claim(rid, claim.order_id)
        return True

    def supervise(self) -> None:
        """Reconnect when due, drop in reconnect waves; sleep until the next thing is due."""
        now = time.monotonic()
        if self.ws is None and now >= self.reconnect_at and not self.closing:
            self.connect()
        wait = 1.0
        b = self.behaviour
        if b.wave_interval_s > 0:
            wave = self._wave_index(now)
            if wave > self.wave:
                self.wave = wave
                dropping = drops_in_wave(wave, self.index, b.wave_fraction)
                if self.ws is not None and dropping and not self.quiet.is_set():
                    self.drop()
                    self.reconnect_at = now + b.reconnect_s(self.rng)
            next_wave = self.waves_from + (self.wave + 1) * b.wave_interval_s
            wait = min(wait, next_wave - now)
        if self.ws is None:
            wait = min(wait, self.reconnect_at - now)
        self.wake.clear()
        if wait > 0:
            self.wake.wait(wait)

    def _wave_index(self, now: float) -> int:
        interval = self.behaviour.wave_interval_s
        return int((now - self.waves_from) // interval) if interval > 0 else 0

    def drop(self) -> None:
        """Lose the connection abruptly (no close frame), as a phone losing signal does."""
        ws = self.ws
        if ws is None:
            return
        self.dropping = True
        ws.abort()  # wakes the reader, which then closes the socket
        if self.reader is not None:
            self.reader.join(CLOSE_TIMEOUT)
        ws.shutdown()
        self.ws = None
        self.report.ok(DROP, 0)

    def close(self) -> None:
        """End the session: close the connection cleanly and stop every greenlet."""
        self.closing = True
        ws = self.ws
        if ws is not None:
            self.dropping = True
            try:
                ws.send_close(websocket.STATUS_NORMAL)
            except (OSError, websocket.WebSocketException):
                pass
            if self.reader is not None:
                self.reader.join(CLOSE_TIMEOUT)
            ws.abort()
            ws.shutdown()
            self.ws = None
        if self.reader is not None:
            self.reader.kill(block=True, timeout=CLOSE_TIMEOUT)
        self.tasks.kill(block=True, timeout=CLOSE_TIMEOUT)

    def _lost(self, ws: websocket.WebSocket, why: str) -> None:
        """The reader's connection ended.  Unexpected ends are errors; reconnect soon."""
        if self.ws is ws:
            self.ws = None
        ws.shutdown()
        self.shown.clear()
        if not (self.dropping or self.closing):
            self.report.fail(ERRORS, f"connection lost: {why}")
            self.reconnect_at = time.monotonic() + self.rng.uniform(0, 0.5)
        self.wake.set()

    # --- frames ----------------------------------------------------------------------------

    def _read(self, ws: websocket.WebSocket) -> None:
        while True:
            try:
                opcode, frame = ws.recv_data_frame()
            except (OSError, websocket.WebSocketException, struct.error) as exc:
                self._lost(ws, f"{type(exc).__name__}: {exc}")
                return
            at = now_ms()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                self._lost(ws, f"closed by server: {_close_code(frame.data)}")
                return
            try:
                self._handle(wire.decode_server(frame.data), at)
            except FrameError as exc:
                self.report.fail(ERRORS, f"bad frame from server: {exc.code}: {exc.message}")
            except Exception as exc:  # a bug here must show in the report, not end the reader
                log.exception("frame handler failed")
                self.report.fail(ERRORS, f"client: {type(exc).__name__}: {exc}")

    def _handle(self, frame: wire.ServerFrame, at: float) -> None:
        if isinstance(frame, wire.Offer):
            self._offer(frame.order, at)
        elif isinstance(frame, wire.ClaimResult):
            self._answer(frame, at)
        elif isinstance(frame, wire.Withdrawn):
            shown = self.shown.pop(frame.order_id, None)
            self.gone[frame.order_id] = None
            if len(self.gone) > MEMORY:
                self.gone.popitem(last=False)
            self.versions.pop(frame.order_id, None)
            self.decided.pop(frame.order_id, None)
            if shown is not None:
                self.report.ok(WITHDRAWN, at - shown.at)
        elif isinstance(frame, wire.Error):
            self.report.fail(ERRORS, f"error frame {frame.code}: {frame.message}")

    def _offer(self, order: dict[str, Any], at: float) -> None:
        oid, version, status = int(order["id"]), int(order["version"]), str(order["status"])
        if oid in self.gone or version < self.versions.get(oid, 0):
            return  # stale: withdrawn already, or an older version than one shown
        new_version = version > self.versions.get(oid, 0)
        self.versions[oid] = version
        created_at = int(order["created_at"])
        self.shown[oid] = _Shown(version, status, created_at, at)
        if status == "widened" and new_version and int(order["widen_at"]) >= self.connected_ms:
            self.report.ok(WIDENED, at - int(order["widen_at"]))
        elif created_at >= self.connected_ms and new_version:
            self.report.ok(OFFER_LATENCY, at - created_at)
        else:
            self.report.ok(OFFER_ON_CONNECT, at - self.connected_ms)
        if self.decided.get(oid) == status:
            return  # decided already (this offer is a repeat after a reconnect)
        self.decided[oid] = status
        if self.rng.random() >= self.behaviour.grab_probability:
            return
        think = self.behaviour.think_s(self.rng)
        if think <= 0:
            self._claim(oid, created_at)
        else:
            self.tasks.add(gevent.spawn_later(think, self._claim, oid, created_at))

    def _claim(self, order_id: int, created_at: int) -> None:
        if self.quiet.is_set():
            return
        if order_id not in self.shown or self.ws is None:
            self.report.ok(SKIPPED, 0)
            return
        rid = uuid.uuid4().hex
        self.pending[rid] = _Pending(order_id, created_at, time.perf_counter())
        self._send_claim(rid, order_id)

    def _send_claim(self, rid: str, order_id: int) -> None:
        ws = self.ws
        if ws is None:
            return  # sent again after the reconnect
        try:
            ws.send_binary(_as_bytes(wire.encode(wire.Claim(order_id, rid))))
        except (OSError, websocket.WebSocketException):
            pass  # the reader sees the connection end; the claim is sent again on reconnect

    def _answer(self, frame: wire.ClaimResult, at: float) -> None:
        rid = str(frame.request_id)
        claim = self.pending.pop(rid, None)
        if claim is None:
            return  # answered already (a repeat crossed the first answer)
        name = claim_name(frame.result, claim.repeated)
        ms = _since(claim.sent)
        if frame.result == wire.UNAVAILABLE and claim.retries < RETRIES:
            claim.retries += 1
            self.pending[rid] = claim
            self.report.ok(name + " (will retry)", ms)
            self.tasks.add(gevent.spawn_later(RETRY_S, self._send_claim, rid, claim.order_id))
            return
        if frame.result in FAILED_RESULTS:
            self.report.fail(name, f"claim answered {frame.result}", ms)
            return
        self.report.ok(name, ms)
        if frame.result == wire.WON:
            self.won_log.write(frame.order_id, self.agent_id, rid, int(at))
            self.report.ok(FILED_TO_WON, at - claim.created_at)


def _since(perf_start: float) -> float:
    return (time.perf_counter() - perf_start) * 1000


def _as_bytes(data: bytes | str) -> bytes:
    return data if isinstance(data, bytes) else data.encode()


def _close_code(data: bytes) -> str:
    if len(data) < 2:
        return "no close code"
    code = struct.unpack("!H", data[:2])[0]
    reason = data[2:].decode("utf-8", "replace")
    return f"{code} {reason}".strip()
