"""``bangban serve --workers N``: N full server processes on one port, kept running.

The supervisor (this module, in the parent process) starts N workers: each is ``bangban
serve`` in a process of its own, listening on the same port with ``SO_REUSEPORT`` (the kernel
spreads new connections over them), a full peer with its own pub/sub listener, sweeper,
reconciler and repairs (they coordinate through Redis and Postgres as separate machines do).
It does not proxy anything.

- A worker that dies is started again (after 0.5 s, doubling up to 10 s while it keeps dying
  within 30 s of its start).
- SIGTERM / SIGINT: every worker drains (:mod:`dispatcher.live.drain`: claims in flight
  finish, sockets close with 1012) and exits; then the supervisor exits.
- SIGHUP: a rolling restart, one worker at a time: start its successor, wait until it is
  healthy, then drain and stop the old one, so the port never goes unserved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence

import httpx

log = logging.getLogger("bangban.workers")

WORKER_HEADER = "x-bangban-worker"
"""``/v1/healthz`` names the process that answered (its pid) in this header."""

STOP_WAIT_S = 30.0
"""How long a draining worker may take before it is killed."""


class Supervisor:
    """Runs ``count`` workers of ``command`` (argv) with ``env`` (see the module docstring)."""

    def __init__(
        self,
        count: int,
        command: Sequence[str],
        env: dict[str, str],
        health_url: str,
    ) -> None:
        self.count = count
        self.command = list(command)
        self.env = env
        self.health_url = health_url
        self.workers: list[asyncio.subprocess.Process | None] = [None] * count
        self.stopping = False
        self._restart = asyncio.Event()
        self._watchers: list[asyncio.Task[None]] = []

    async def _spawn(self, slot: int) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            *self.command, env={**self.env, "BANGBAN_WORKER": str(slot)}
        )
        log.warning("worker started slot=%d pid=%d", slot, proc.pid)
        return proc

    async def _healthy(self, proc: asyncio.subprocess.Process, timeout: float = 60) -> bool:
        """Until ``proc`` itself answers healthy on the shared port (each try on a new
        connection, which the kernel gives to any worker), or exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.returncode is None:
            with contextlib.suppress(httpx.HTTPError):
                async with httpx.AsyncClient() as http:
                    r = await http.get(self.health_url, timeout=2)
                if r.status_code == 200 and r.headers.get(WORKER_HEADER) == str(proc.pid):
                    return True
            await asyncio.sleep(0.05)
        return False

    async def _watch(self, slot: int) -> None:
        """Keep slot ``slot`` running until the supervisor stops."""
        backoff = 0.5
        proc = await self._spawn(slot)
        self.workers[slot] = proc
        while True:
            started = time.monotonic()
            code = await proc.wait()
            if self.stopping:
                return
            current = self.workers[slot]
            if current is not None and current is not proc:
                proc = current  # replaced by a rolling restart: watch the successor
                continue
            log.error("worker died slot=%d pid=%d code=%s; restarting", slot, proc.pid, code)
            backoff = 0.5 if time.monotonic() - started > 30 else min(backoff * 2, 10.0)
            await asyncio.sleep(backoff)
            if self.stopping:
                return
            proc = await self._spawn(slot)
            self.workers[slot] = proc

    async def _stop(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STOP_WAIT_S)
        except TimeoutError:
            log.error("worker did not drain in time pid=%d; killing it", proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def rolling_restart(self) -> None:
        """Replace each worker in turn: the successor healthy first, then the old one drains."""
        for slot in range(self.count):
            if self.stopping:
                return
            old = self.workers[slot]
            new = await self._spawn(slot)
            if not await self._healthy(new):
                log.error("successor not healthy slot=%d; rolling restart stopped", slot)
                await self._stop(new)
                return
            self.workers[slot] = new
            if old is not None:
                await self._stop(old)
            log.warning("worker replaced slot=%d pid=%d", slot, new.pid)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()

        def stop() -> None:
            self.stopping = True
            done.set()

        loop.add_signal_handler(signal.SIGTERM, stop)
        loop.add_signal_handler(signal.SIGINT, stop)
        loop.add_signal_handler(signal.SIGHUP, self._restart.set)
        self._watchers = [asyncio.create_task(self._watch(i)) for i in range(self.count)]
        while not done.is_set():
            waiters = [asyncio.create_task(self._restart.wait()), asyncio.create_task(done.wait())]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
            if self._restart.is_set() and not done.is_set():
                self._restart.clear()
                log.warning("rolling restart")
                await self.rolling_restart()
        log.warning("stopping workers")
        await asyncio.gather(*(self._stop(p) for p in self.workers if p is not None))
        for task in self._watchers:
            task.cancel()
        return 0


def worker_command(host: str, port: int) -> list[str]:
    """The argv of one worker: this same program, serving on a shared port."""
    return [
        sys.executable,
        *("-m", "dispatcher", "serve", "--host", host, "--port", str(port), "--reuse-port"),
    ]


def run(count: int, host: str, port: int, env: dict[str, str]) -> int:
    """Run the supervisor until SIGTERM/SIGINT (blocks)."""
    supervisor = Supervisor(
        count, worker_command(host, port), env, f"http://{host}:{port}/v1/healthz"
    )
    print(f"bangban supervisor pid={os.getpid()}: {count} workers on {host}:{port}", flush=True)
    return asyncio.run(supervisor.run())
