"""The processes the benchmark runs against: Redis, Postgres, ``bangban serve``, the ceiling.

Redis and Postgres come from :class:`dispatcher.services.Backends` (the helper the tests and
the locust runner use too): ``REDIS_URL`` / ``DATABASE_URL`` when set, else embedded servers
in the bench's temporary folder; either way the bench files its orders into a database of its
own, created on entry and dropped on exit (``bench_backends``).  With ``REDIS_URL`` set, point
it at a Redis no server is using: the bench writes ``bb:*`` keys and publishes on
``bb:events`` like any Bangban server.

Every start is bounded by a timeout and every process started here is stopped on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import IO, Any, TypeVar

import asyncpg
import httpx

from dispatcher.embedded import free_port
from dispatcher.process import run_event_loop
from dispatcher.services import Backends, ServerProcess, with_database
from dispatcher.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def bench_backends(tmp: Path, settings: Settings) -> Backends:
    """Redis and a private Postgres database for one run, in ``tmp`` (``async with``).

    Redis keeps an append-only file, as ``bangban serve`` runs it for a user."""
    return Backends(settings, tmp, persist=False, redis_aof=True, private_database="bench")


class BenchServer(ServerProcess):
    """``bangban serve`` for a bench run, on ``backends``; other ``BANGBAN_*`` settings in
    the environment (``BANGBAN_PG_POOL``...) reach it."""

    def __init__(
        self,
        backends: Backends,
        admin_token: str,
        data_dir: Path,
        log: Path,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        # One intake token files the whole county's load and each bench agent claims far
        # more than a person would: the limits stay on (their cost counts) but this high they
        # never refuse.  The fan-out scenario files into one grid and nobody claims, so past
        # the open-order cap (1,000 by default) its orders went to the operators unoffered
        # and the bench waited for ever (`--orders 1500`): that cap too.  BANGBAN_* settings
        # from the environment win over these.
        limits = {
            "BANGBAN_FILING_RATE": "100000000",
            "BANGBAN_CLAIM_RATE": "100000000",
            "BANGBAN_GRID_OPEN_CAP": "1000000",
        }
        overrides = {
            **limits,
            **BenchServer.passed_settings(),
            "REDIS_URL": backends.redis_url,
            "DATABASE_URL": backends.database_url,
            "BANGBAN_ADMIN_TOKEN": admin_token,
            "BANGBAN_LOG_LEVEL": "warning",
            # Bench agents never finish an order; the default limit (5 held) would refuse them.
            "BANGBAN_MAX_HELD": "1000",
            "BANGBAN_DATA_DIR": str(data_dir),
            **(extra_env or {}),
        }
        super().__init__(ServerProcess.environment(overrides, inherit_settings=True), log)
        self.admin_token = admin_token

    @staticmethod
    def passed_settings() -> dict[str, str]:
        """The BANGBAN_* settings taken from the environment (the bench sets the others)."""
        own = {"BANGBAN_ADMIN_TOKEN", "BANGBAN_LOG_LEVEL", "BANGBAN_DATA_DIR"}
        return {k: v for k, v in os.environ.items() if k.startswith("BANGBAN_") and k not in own}

    def log_summary(self, samples: int = 8) -> dict[str, Any]:
        return log_summary(self.log, samples)


def log_summary(log: Path, samples: int = 8) -> dict[str, Any]:
    """Counts of a server log's warning/error lines, with a few distinct ones (digits
    masked, so one message with different ids counts once)."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return {}
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if not any(word in line for word in ("WARNING", "ERROR", "Traceback", "Error")):
            continue
        key = re.sub(r"\d+", "#", line.strip())[:240]
        counts[key] = counts.get(key, 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:samples]
    return {"lines": sum(counts.values()), "top": [{"count": n, "line": k} for k, n in top]}


class CeilingProcess:
    """``python -m loadtest.bench.ceiling`` in a subprocess (``async with``)."""

    def __init__(self, deflate: bool, log: Path) -> None:
        self.port = free_port()
        self.deflate = deflate
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    async def __aenter__(self) -> CeilingProcess:
        command = [sys.executable, "-m", "loadtest.bench.ceiling", "--port", str(self.port)]
        if self.deflate:
            command.append("--deflate")
        with self.log.open("ab") as err:
            self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, cwd=ROOT)
        stdout: IO[bytes] | None = self.proc.stdout
        assert stdout is not None
        try:
            line = await asyncio.wait_for(asyncio.to_thread(stdout.readline), 30)
        except BaseException:
            await self.__aexit__()
            raise
        if not line.startswith(b"ready"):
            await self.__aexit__()
            raise RuntimeError(f"ceiling server did not start: {line!r}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                await asyncio.to_thread(proc.wait, 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait, 5)
        if proc.stdout is not None:
            proc.stdout.close()


class CpuMeter:
    """CPU seconds used by groups of processes, to say where the time went in a scenario.

    A group is a set of pids (for the embedded Postgres: the postmaster with its backends),
    or, for Redis/Postgres given by URL, every process of that name on the machine.
    ``other`` is what the machine spent beyond the groups: anything else running on it during
    the scenario.  Uses psutil (installed with locust, the loadtest extra); without it every
    figure is None.
    """

    def __init__(self) -> None:
        self.roots: dict[str, list[int]] = {}  # group -> pids, counted alone
        self.trees: set[str] = set()  # groups whose pids count with their descendants
        self.by_name: dict[str, str] = {}  # group -> process name prefix
        try:
            import psutil  # type: ignore[import-untyped, unused-ignore]
        except ImportError:
            self._psutil: Any = None
        else:
            self._psutil = psutil

    @classmethod
    def for_run(cls, backends: Backends, server_pid: int, client_pids: list[int]) -> CpuMeter:
        """Groups ``server``, ``clients``, ``bench`` (this process), ``postgres``, ``redis``."""
        meter = cls()
        meter.roots = {"server": [server_pid], "clients": client_pids, "bench": [os.getpid()]}
        for group, pid in (("postgres", backends.postgres_pid), ("redis", backends.redis_pid)):
            if pid is not None:
                meter.roots[group] = [pid]
                meter.trees.add(group)
            else:  # given by URL: count every such process on this machine
                meter.by_name[group] = "postgres" if group == "postgres" else "redis-server"
        return meter

    def snapshot(self) -> dict[str, Any] | None:
        """CPU seconds by group and pid, and the machine's busy seconds, at this moment."""

        ps = self._psutil
        if ps is None:
            return None
        groups: dict[str, dict[int, float]] = {}
        for group, pids in self.roots.items():
            procs = []
            for pid in pids:
                try:
                    root = ps.Process(pid)
                    procs.append(root)
                    if group in self.trees:
                        procs += root.children(recursive=True)
                except ps.Error:
                    continue
            groups[group] = self._times(procs)
        for group, prefix in self.by_name.items():
            named = [
                p for p in ps.process_iter(["name"]) if (p.info["name"] or "").startswith(prefix)
            ]
            groups[group] = self._times(named)
        m = ps.cpu_times()
        busy = m.user + m.system + m.nice + m.irq + m.softirq
        return {"groups": groups, "machine_busy": busy, "wall": time.monotonic()}

    def _times(self, procs: list[Any]) -> dict[int, float]:
        out: dict[int, float] = {}
        for proc in procs:
            try:
                t = proc.cpu_times()
            except self._psutil.Error:
                continue
            out[proc.pid] = t.user + t.system
        return out

    @staticmethod
    def usage(
        before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> dict[str, float] | None:
        """Per group: percent of one core used between two snapshots (a process that exited
        in between is missed; one that started counts from zero)."""
        if before is None or after is None:
            return None
        wall = after["wall"] - before["wall"]
        if wall <= 0:
            return None
        out: dict[str, float] = {}
        for group, pids in after["groups"].items():
            old = before["groups"].get(group, {})
            used = sum(cpu - old.get(pid, 0.0) for pid, cpu in pids.items())
            out[group] = round(100 * used / wall, 1)
        busy = 100 * (after["machine_busy"] - before["machine_busy"]) / wall
        out["other"] = round(max(0.0, busy - sum(out.values())), 1)
        out["machine_busy"] = round(busy, 1)
        return out


def run_in_tmp(
    name: str, max_seconds: float, run: Callable[[Path], Coroutine[Any, Any, T]]
) -> T | None:
    """``run(folder)`` on the event loop in a fresh temporary folder, for at most
    ``max_seconds``; None, after saying why on stderr, when it timed out or raised
    RuntimeError (a server died, clients could not connect)."""

    async def bounded(tmp: Path) -> T:
        async with asyncio.timeout(max_seconds):
            return await run(tmp)

    with tempfile.TemporaryDirectory(prefix=f"bangban-{name}-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            return run_event_loop(bounded(tmp))
        except TimeoutError:
            print(f"{name}: gave up after --max-seconds {max_seconds:g}", file=sys.stderr)
        except RuntimeError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
    return None


class BareProcess(ServerProcess):
    """``python -m loadtest.bench.bare`` (the bare same-stack server) on ``redis_url`` and
    ``database_url`` (a database of its own: :func:`private_database`), with the fixed
    ``token``; ``async with``, like :class:`BenchServer`.  ``BANGBAN_*`` settings in the
    environment reach it as they reach ``bangban serve`` (the uvicorn ones apply)."""

    def __init__(self, redis_url: str, database_url: str, token: str, log: Path) -> None:
        overrides = {
            "REDIS_URL": redis_url,
            "DATABASE_URL": database_url,
            "BARE_TOKEN": token,
            "BANGBAN_LOG_LEVEL": "warning",
        }
        super().__init__(ServerProcess.environment(overrides, inherit_settings=True), log)
        self.token = token

    def start_blocking(self) -> None:
        command = [sys.executable, "-m", "loadtest.bench.bare", "--port", str(self.port)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                command, env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
            )
        try:
            deadline = time.monotonic() + self.start_timeout
            with httpx.Client(timeout=1) as http:
                while time.monotonic() < deadline:
                    self.check_alive()
                    try:
                        if http.get(self.url + "/v1/healthz").status_code == 200:
                            return
                    except httpx.TransportError:  # not listening yet
                        pass
                    time.sleep(0.1)
            raise TimeoutError(f"bare server not healthy in time:\n{self.tail()}")
        except BaseException:
            self.stop_blocking()
            raise


@contextlib.asynccontextmanager
async def private_database(server_url: str, name: str) -> AsyncIterator[str]:
    """A database of its own on the Postgres at ``server_url`` for the duration; its URL."""
    db = f"bangban_{name}_{os.getpid()}_{secrets.token_hex(3)}"
    conn = await asyncpg.connect(server_url, timeout=30)
    try:
        await conn.execute(f'CREATE DATABASE "{db}"')
    finally:
        await conn.close()
    try:
        yield with_database(server_url, db)
    finally:
        conn = await asyncpg.connect(server_url, timeout=30)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        finally:
            await conn.close()
