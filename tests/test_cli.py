"""The fresh-machine path: `bangban serve --demo` on embedded Redis and Postgres."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from clients import AgentClient, ApiClient
from dispatcher.embedded import free_port
from tests.servers import ROOT


async def _serve(workdir: Path, port: int) -> tuple[subprocess.Popen[str], list[str]]:
    """``bangban serve --demo`` run in ``workdir`` as `make run` runs it: the default, relative
    data folder ``.bangban``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "DATABASE_URL") and not k.startswith("BANGBAN_")
    }
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dispatcher",
            "serve",
            "--demo",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=workdir,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    while True:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 90)
        assert line, "server exited:\n" + "".join(lines)
        lines.append(line)
        if line.startswith("try:"):
            return proc, lines


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)  # what Ctrl-C does
    code = proc.wait(30)
    if proc.stdout is not None:
        proc.stdout.close()
    return code


async def test_serve_demo_on_embedded_servers_then_reuse_the_data(tmp_path: Path) -> None:
    port = free_port()
    proc, lines = await _serve(tmp_path, port)
    try:
        text = "".join(lines)
        assert "embedded redis" in text and "embedded postgres" in text
        intake = re.search(r"intake token: (\S+)", text)
        agent = re.search(r"agent (\d+) .* grids=(\S+) token: (\S+)", text)
        assert intake and agent
        url = f"http://127.0.0.1:{port}"
        async with (
            AgentClient.connect(url, agent.group(3)) as client,
            ApiClient(url, intake.group(1)) as api,
        ):
            order = await api.file_order(grid=agent.group(2).split(",")[0], text="我要办理低保")
            await client.wait_offer(order["id"], timeout=5)
    finally:
        assert _stop(proc) == 0
    # Ctrl-C stopped everything it started: a second run reuses the data and the tokens.
    proc, again = await _serve(tmp_path, port)
    try:
        assert re.search(r"intake token: (\S+)", "".join(again)).group(1) == intake.group(1)  # type: ignore[union-attr]
        async with ApiClient(url, intake.group(1)) as api:
            second = await api.file_order(grid=agent.group(2).split(",")[0], text="再来一单")
        assert second["id"] == order["id"] + 1
    finally:
        assert _stop(proc) == 0
