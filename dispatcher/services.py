"""The services a Bangban server runs on, and the server itself as a child process.

:class:`Backends` is the one answer to "a URL if given, else embedded servers, and (for tests,
benchmarks and load tests) a private database": ``bangban serve``, ``tests/conftest.py``, the
benchmarks and the locust runner all use it, as a context manager (``with`` or ``async with``).
:class:`ServerProcess` is ``bangban serve`` in a child process, which tests, benchmarks and
the locust runner start.  What one process needs of its machine (descriptors, an event loop,
its data folder to itself) is in :mod:`dispatcher.process`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from dispatcher.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from dispatcher.settings import Settings

__all__ = ["Backends", "ServerProcess"]


def with_database(url: str, name: str) -> str:
    """``url`` with its database replaced by ``name``."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


async def _admin_sql(server_url: str, sql: str) -> str:
    conn = await asyncpg.connect(server_url, timeout=30)
    try:
        await conn.execute(sql)
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


class Backends:
    """Redis and Postgres for one server, test session, benchmark or load test.

    Each URL comes from ``settings`` when set (``REDIS_URL`` / ``DATABASE_URL``), else an
    embedded server is started under ``folder`` (``redis/``, ``pg/``; their logs are
    ``redis/redis.log`` and ``pg/log``).  With ``private_database="bench"`` a database of
    its own (``bangban_bench_<pid>_<random>``) is created on that Postgres on entry and
    dropped on exit, and :attr:`database_url` names it.  ``persist=False`` (throwaway
    folders): Redis keeps no append-only file unless ``redis_aof`` (a benchmark measures Redis
    as ``bangban serve`` runs it), and a root process's Postgres cluster is deleted on exit.
    ``announce`` is told each embedded server's URL.

    Use ``with Backends(...) as b`` before an event loop runs (``bangban serve``), or
    ``async with`` inside one (the embedded servers then start in a thread).
    """

    def __init__(
        self,
        settings: Settings,
        folder: Path,
        *,
        persist: bool = True,
        redis_aof: bool | None = None,
        private_database: str | None = None,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self.folder = folder
        self.persist = persist
        self.redis_aof = persist if redis_aof is None else redis_aof
        self.redis_url = settings.redis_url or ""
        self.server_url = settings.database_url or ""
        """The Postgres server's URL (its own database); :attr:`database_url` is ours."""
        self.database_url = self.server_url
        self.postgres_version = "?"
        self.embedded: list[str] = []
        self.redis: EmbeddedRedis | None = None
        self.postgres: EmbeddedPostgres | None = None
        self._db_name = (
            f"bangban_{private_database}_{os.getpid()}_{secrets.token_hex(3)}"
            if private_database
            else None
        )
        self._db_created = False
        self._announce = announce or (lambda _line: None)

    # --- the embedded servers (blocking) ---------------------------------------------------

    def _start_servers(self) -> None:
        if not self.redis_url:
            self.redis = EmbeddedRedis(self.folder / "redis", persist=self.redis_aof)
            self.redis_url = self.redis.start()
            self.embedded.append("redis")
            log = self.folder / "redis" / "redis.log"
            self._announce(f"embedded redis: {self.redis_url} (log: {log})")
        if not self.server_url:
            self.postgres = EmbeddedPostgres(self.folder / "pg", persist=self.persist)
            self.server_url = self.database_url = self.postgres.start()
            self.embedded.append("postgres")
            log = self.folder / "pg" / "log"
            self._announce(f"embedded postgres: {self.server_url} (log: {log})")

    def _stop_servers(self) -> None:
        try:
            if self.postgres is not None:
                self.postgres.stop()
        finally:
            if self.redis is not None:
                self.redis.stop()

    # --- the private database --------------------------------------------------------------

    async def _create_database(self) -> None:
        if self._db_name is None:
            return
        self.postgres_version = await _admin_sql(
            self.server_url, f'CREATE DATABASE "{self._db_name}"'
        )
        self._db_created = True
        self.database_url = with_database(self.server_url, self._db_name)

    async def _drop_database(self) -> None:
        if self._db_created:
            self._db_created = False
            await _admin_sql(
                self.server_url, f'DROP DATABASE IF EXISTS "{self._db_name}" WITH (FORCE)'
            )

    # --- pids, for CPU figures -------------------------------------------------------------

    @property
    def postgres_pid(self) -> int | None:
        """The embedded postmaster's pid, else None (Postgres given by URL)."""
        return None if self.postgres is None else self.postgres.pid

    @property
    def redis_pid(self) -> int | None:
        if self.redis is not None and self.redis.process is not None:
            return self.redis.process.pid
        return None

    # --- context managers ------------------------------------------------------------------

    def __enter__(self) -> Backends:
        try:
            self._start_servers()
            asyncio.run(self._create_database())
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._db_created:
                asyncio.run(self._drop_database())
        finally:
            self._stop_servers()

    async def __aenter__(self) -> Backends:
        try:
            await asyncio.to_thread(self._start_servers)
            await self._create_database()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self._drop_database()
        finally:
            await asyncio.to_thread(self._stop_servers)


CHECKOUT = Path(__file__).resolve().parent.parent
"""The folder holding the ``dispatcher`` package: a child server runs this very code."""


class ServerProcess:
    """``bangban serve`` in a child process, as a user runs it, on a free loopback port: what
    tests, benchmarks and the load-test runner start.  ``with`` or ``async with``; every wait
    is bounded and the process is stopped on exit.

    ``env`` is the child's whole environment (see :meth:`environment`); its output goes to
    ``log``.  :meth:`start` may be called again after :meth:`stop`: the port stays the same,
    as for a server that restarts.
    """

    def __init__(self, env: Mapping[str, str], log: Path, *, start_timeout: float = 60) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(env)
        self.log = log
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def environment(overrides: Mapping[str, str], *, inherit_settings: bool) -> dict[str, str]:
        """This process's environment with ``overrides``, and ``PYTHONPATH`` naming the
        checkout.  ``inherit_settings=False`` drops every ``BANGBAN_*`` variable first (the
        caller sets what it means); True lets them reach the server (a benchmark run with
        ``BANGBAN_PG_POOL=...``)."""
        env = {
            k: v for k, v in os.environ.items() if inherit_settings or not k.startswith("BANGBAN_")
        }
        paths = (str(CHECKOUT), os.environ.get("PYTHONPATH"))
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        env.update(overrides)
        return env

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def check_alive(self) -> None:
        """Raise RuntimeError when the server has exited (crashed, killed from outside)."""
        code = None if self.proc is None else self.proc.poll()
        if code is not None:
            how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
            raise RuntimeError(f"bangban serve stopped ({how}):\n{self.tail()}")

    def start_blocking(self) -> None:
        """Start the server and wait until ``/v1/healthz`` answers 200.  Raises
        RuntimeError when it exits meanwhile, TimeoutError after ``start_timeout``."""
        command = [sys.executable, "-m", "dispatcher", "serve", "--port", str(self.port)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                command, env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=CHECKOUT
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
            raise TimeoutError(
                f"bangban serve not healthy within {self.start_timeout:.0f} s:\n{self.tail()}"
            )
        except BaseException:
            self.stop_blocking()
            raise

    def stop_blocking(self) -> None:
        """SIGTERM (a graceful shutdown), then SIGKILL after 15 s."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    async def start(self) -> None:
        await asyncio.to_thread(self.start_blocking)

    async def stop(self) -> None:
        await asyncio.to_thread(self.stop_blocking)

    def __enter__(self) -> Self:
        self.start_blocking()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_blocking()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
