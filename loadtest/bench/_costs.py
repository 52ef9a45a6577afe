"""What one order costs: server CPU, Postgres CPU and Redis commands over a measured window.

- CPU comes from ``/proc/<pid>/stat`` (``utime + stime``, in clock ticks): for the server,
  the given pids (one per ``bangban serve`` process, or the bare server); for Postgres, the
  embedded postmaster and every process whose parent it is (backends, WAL writer,
  checkpointer...), or, for a Postgres given by URL, every process named ``postgres`` on this
  machine.  A process that exits inside the window is missed; one that starts counts from 0.
- Redis commands come from ``INFO commandstats`` before and after: the total of ``calls``
  over every command except the ``INFO`` calls the meter makes itself (commands run inside a
  script count, as Redis counts them, besides the ``EVALSHA`` itself).

Without ``/proc`` (not Linux) the CPU figures are None.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

PROC = Path("/proc")
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3 onwards)."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of ``pid`` in seconds, or None when it is gone."""
    fields = _stat(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15 of stat(5)


def children(parent: int) -> list[int]:
    out = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == parent:
                out.append(int(entry.name))
    return out


def named(name: str) -> list[int]:
    out = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


async def redis_calls(client: aioredis.Redis) -> dict[str, int]:
    """``INFO commandstats``: calls per command (lower case), ``info`` left out."""
    info: dict[str, Any] = await client.info("commandstats")
    out: dict[str, int] = {}
    for key, value in info.items():
        name = key.removeprefix("cmdstat_").lower()
        if name != "info" and isinstance(value, dict):
            out[name] = int(value.get("calls", 0))
    return out


@dataclass(frozen=True)
class Snapshot:
    server: dict[int, float]
    postgres: dict[int, float]
    redis: dict[str, int]


class CostMeter:
    """Snapshots of the server's and Postgres's CPU and Redis's command counts."""

    def __init__(self, redis_url: str, server_pids: list[int], postgres_root: int | None) -> None:
        self.client = aioredis.Redis.from_url(redis_url)
        self.server_pids = server_pids
        self.postgres_root = postgres_root
        self.proc = PROC.is_dir()

    async def close(self) -> None:
        await self.client.aclose()

    def _postgres_pids(self) -> list[int]:
        if self.postgres_root is None:
            return named("postgres")
        return [self.postgres_root, *children(self.postgres_root)]

    def _cpu(self, pids: list[int]) -> dict[int, float]:
        out = {}
        for pid in pids:
            seconds = cpu_seconds(pid)
            if seconds is not None:
                out[pid] = seconds
        return out

    async def snapshot(self) -> Snapshot:
        redis = await redis_calls(self.client)
        if not self.proc:
            return Snapshot({}, {}, redis)
        return Snapshot(self._cpu(self.server_pids), self._cpu(self._postgres_pids()), redis)

    def per_order(self, before: Snapshot, after: Snapshot, orders: int) -> dict[str, Any]:
        """``server_cpu_ms_per_order`` (all server processes together, and per process),
        ``postgres_cpu_ms_per_order``, ``redis_commands_per_order`` (and by command)."""

        def used(a: dict[int, float], b: dict[int, float]) -> dict[int, float]:
            return {pid: cpu - a.get(pid, 0.0) for pid, cpu in b.items()}

        server = used(before.server, after.server)
        postgres = used(before.postgres, after.postgres)
        calls = {k: v - before.redis.get(k, 0) for k, v in after.redis.items()}
        calls = {k: v for k, v in calls.items() if v > 0}
        total = sum(calls.values())

        def per(value: float, scale: float = 1000.0) -> float | None:
            return round(scale * value / orders, 3) if orders and self.proc else None

        return {
            "orders": orders,
            "server_cpu_ms_per_order": per(sum(server.values())),
            "server_cpu_ms_per_order_by_process": [
                per(server.get(pid, 0.0)) for pid in self.server_pids
            ],
            "postgres_cpu_ms_per_order": per(sum(postgres.values())),
            "redis_commands_per_order": round(total / orders, 2) if orders else None,
            "redis_commands_per_order_by_name": {
                k: round(v / orders, 2)
                for k, v in sorted(calls.items(), key=lambda kv: -kv[1])
                if orders and round(v / orders, 2) > 0
            },
            "server_cpu_s": round(sum(server.values()), 3),
            "postgres_cpu_s": round(sum(postgres.values()), 3),
            "redis_commands": total,
        }
