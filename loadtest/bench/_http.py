"""Filing orders for the benchmark: a lean keep-alive HTTP/1.1 client and the filer process.

Seeding uses :class:`clients.ApiClient`; the timed filings use :class:`HttpConnection`, a
bare keep-alive connection on asyncio streams, so that the time taken just before a request is
written is the time the request left (httpx spends a few hundred microseconds of CPU per
request, which on two cores is taken from the server).

:class:`FilerProcess` runs in its own process: ``concurrency`` connections each file orders
back to back (closed loop) into the given grids until a deadline, and send back when each
order was sent and answered (with several ports, connection ``i`` goes to ``port[i % n]``:
one per server process).  With ``rate`` the loop is open instead: filing ``k`` is due at
``start + k / rate`` whatever happened to the ones before (a slow server does not slow the
offered load down; it shows as filings sent late, counted in ``late``), with ``concurrency``
connections to carry them.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import multiprocessing.connection
import time
from collections.abc import Sequence
from typing import Any

ORDER_TEXT = "帮忙办理社保卡补办，周三上午在家"


class HttpError(RuntimeError):
    """An answer that was not the expected status, or a connection that broke."""


class HttpConnection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1; one request at a time."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host = host
        self.port = port
        self.head = (
            f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nAccept: application/json\r\n"
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def ensure_open(self) -> None:
        """Open, or reopen when the server closed it (uvicorn drops idle keep-alive
        connections after 5 s)."""
        if self.writer is not None and self.reader is not None:
            if not self.reader.at_eof() and not self.writer.is_closing():
                return
            await self.close()
        await self.open()

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
            self.writer = None

    def send_post(self, path: str, body: bytes) -> None:
        """Write a POST; the caller then awaits :meth:`read_answer`."""
        assert self.writer is not None
        self.writer.write(
            b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s"
            % (path.encode(), self.head, len(body), body)
        )

    async def read_answer(self) -> tuple[int, bytes]:
        """(status, body).  Raises HttpError when the connection broke or the answer was not
        a plain Content-Length one."""
        assert self.reader is not None
        try:
            status_line = await self.reader.readline()
            if not status_line:
                raise HttpError("connection closed by server")
            status = int(status_line.split(b" ", 2)[1])
            length = 0
            keep_alive = True
            while True:
                line = await self.reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    raise HttpError("chunked answers are not supported by the bench client")
                elif name == b"connection" and value.strip().lower() == b"close":
                    keep_alive = False
            body = await self.reader.readexactly(length) if length else b""
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            await self.close()
            raise HttpError(f"broken answer: {exc!r}") from exc
        if not keep_alive:
            await self.close()
        return status, body

    async def post_json(self, path: str, data: Any) -> tuple[int, Any]:
        await self.ensure_open()
        self.send_post(path, json.dumps(data, ensure_ascii=False).encode())
        status, body = await self.read_answer()
        return status, json.loads(body) if body else None


async def _file_until(
    host: str,
    port: int | Sequence[int],
    token: str,
    grids: Sequence[str],
    concurrency: int,
    stop_at: float,
    rate: float | None = None,
) -> dict[str, Any]:
    sent: dict[int, float] = {}
    filed: list[float] = []
    post_ms: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    counter = 0
    late = 0
    start = time.time()

    async def filer(index: int) -> None:
        nonlocal counter, late
        ports = [port] if isinstance(port, int) else list(port)
        conn = HttpConnection(host, ports[index % len(ports)], token)
        try:
            while time.time() < stop_at:
                counter += 1
                if rate is not None:
                    due = start + counter / rate
                    if due >= stop_at:
                        break
                    wait = due - time.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    elif wait < -0.01:
                        late += 1
                grid = grids[counter % len(grids)]  # round robin over the grids
                body = json.dumps({"grid": grid, "text": ORDER_TEXT}, ensure_ascii=False)
                try:
                    await conn.ensure_open()
                    t0 = time.time()
                    conn.send_post("/v1/orders", body.encode())
                    status, raw = await asyncio.wait_for(conn.read_answer(), 10)
                except (HttpError, OSError, TimeoutError) as exc:
                    errors.append(repr(exc)[:200])
                    await conn.close()
                    await asyncio.sleep(0.05)
                    continue
                done = time.time()
                statuses[status] = statuses.get(status, 0) + 1
                if status == 201:
                    sent[json.loads(raw)["id"]] = t0
                    filed.append(done)
                    post_ms.append((done - t0) * 1000)
                elif len(errors) < 50:
                    errors.append(f"HTTP {status}: {raw[:200]!r}")
        finally:
            await conn.close()

    await asyncio.gather(*(filer(i) for i in range(concurrency)))
    return {
        "sent": sent,
        "filed": filed,
        "post_ms": post_ms,
        "statuses": statuses,
        "errors": errors[:5],
        "error_count": len(errors),
        "late": late,
        "cpu_seconds": time.process_time(),
    }


def filer_main(
    pipe: multiprocessing.connection.Connection,
    host: str,
    port: int | Sequence[int],
    token: str,
    grids: Sequence[str],
    concurrency: int,
    stop_at: float,
    rate: float | None = None,
) -> None:
    """Entry point of the filer process: file until ``stop_at`` (time.time()), send results."""

    async def run() -> dict[str, Any]:
        return await _file_until(host, port, token, grids, concurrency, stop_at, rate)

    from dispatcher.process import run_event_loop

    pipe.send(run_event_loop(run()))
    pipe.close()


class FilerProcess:
    """The filer process, started at once; :meth:`result` waits for what it sends back."""

    def __init__(
        self,
        host: str,
        port: int | Sequence[int],
        token: str,
        grids: Sequence[str],
        concurrency: int,
        stop_at: float,
        rate: float | None = None,
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipe, child = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(
            target=filer_main,
            args=(child, host, port, token, list(grids), concurrency, stop_at, rate),
            daemon=True,
        )
        self.proc.start()
        child.close()
        self.stop_at = stop_at

    @property
    def pid(self) -> int | None:
        return self.proc.pid

    async def result(self) -> dict[str, Any]:
        def wait() -> dict[str, Any]:
            timeout = max(0.0, self.stop_at - time.time()) + 30
            if not self.pipe.poll(timeout):
                raise HttpError("filer process did not report")
            out: dict[str, Any] = self.pipe.recv()
            return out

        try:
            return await asyncio.to_thread(wait)
        finally:
            self.proc.join(10)
            if self.proc.is_alive():
                self.proc.terminate()
            self.pipe.close()
