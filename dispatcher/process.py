"""What one process needs of its machine: open files, an event loop, its data folder.

:func:`raise_open_files_limit` is the one place that lifts the open-files limit (the server,
the benchmarks and the load-test runner call it); :func:`run_event_loop` runs on uvloop when
it is there; :class:`DataFolderLock` keeps a second ``bangban serve`` off a data folder in use.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import resource
from collections.abc import Coroutine
from pathlib import Path
from typing import IO, Any, TypeVar

from dispatcher.exceptions import ConfigError

__all__ = [
    "DataFolderInUseError",
    "DataFolderLock",
    "raise_open_files_limit",
    "run_event_loop",
]

T = TypeVar("T")


def raise_open_files_limit() -> int:
    """Raise this process's open-files soft limit as far as the hard limit allows; return it.

    Each agent is a socket: the common default of 1,024 would refuse agents long before
    memory or CPU run out.  Children (servers, locust, bench workers) inherit the limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = [hard] if hard != resource.RLIM_INFINITY else [1 << 20, 65536]
    for target in wanted:
        if soft >= target:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # above the kernel's nr_open: try less, else keep ours
            continue
        soft = target
        break
    return soft


def run_event_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on uvloop when it is installed (no Windows build), else on asyncio's loop:
    ``bangban serve`` and the benchmark's processes alike."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


class DataFolderInUseError(ConfigError):
    """Another ``bangban serve`` holds the data folder (its pid and port are in the message)."""

    def __init__(self, folder: Path, holder: dict[str, object]) -> None:
        self.holder = holder
        pid, port = holder.get("pid", "?"), holder.get("port", "?")
        super().__init__(
            f"another bangban server is running on data folder {folder}"
            f" (pid {pid}, port {port}); stop it first (Ctrl-C in its terminal,"
            f" or kill {pid}), or give this one another --data-dir"
        )


class DataFolderLock:
    """An exclusive ``flock`` on ``<data folder>/lock``, which names the holder's pid and port.

    The kernel drops the lock when the holder exits, however it exits: a stale file never
    blocks anybody.  :meth:`acquire` refuses at once (no waiting) with
    :class:`DataFolderInUseError`.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "lock"
        self._file: IO[str] | None = None

    def acquire(self, port: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        f = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            try:
                holder = json.loads(f.read() or "{}")
            except ValueError:
                holder = {}
            f.close()
            raise DataFolderInUseError(self.folder, holder) from None
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "port": port}) + "\n")
        f.flush()
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the lock
            self._file = None

    def __enter__(self) -> DataFolderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
