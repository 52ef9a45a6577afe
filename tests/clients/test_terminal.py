"""``python -m clients``: the terminal agent app outlives a server restart."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from clients import ApiClient
from clients.terminal import Backoff
from dispatcher.settings import Settings
from tests.servers import ROOT, ProcessServer, intake_token, roster


def test_backoff_doubles_to_its_cap_with_jitter_and_resets() -> None:
    lows = Backoff(base=0.5, cap=4, rng=lambda: 0.0)
    assert [lows.next() for _ in range(6)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    highs = Backoff(base=0.5, cap=4, rng=lambda: 1.0)
    assert [highs.next() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    highs.reset()
    assert highs.next() == 0.5 and highs.attempt == 1


class Lines:
    """A pipe read line by line in a thread, so a test can wait for a line with a deadline."""

    def __init__(self, pipe: IO[str]) -> None:
        self.pipe = pipe
        self.seen: list[str] = []

    async def until(self, want: Any, seconds: float = 60) -> str:
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"not seen in {seconds} s; got:\n" + "".join(self.seen[-20:])
            line = await asyncio.wait_for(asyncio.to_thread(self.pipe.readline), left)
            assert line, "the client exited:\n" + "".join(self.seen[-20:])
            self.seen.append(line)
            if want(line):
                return line


def _offer_of(order_id: int) -> Any:
    def match(line: str) -> bool:
        frame = json.loads(line)
        return bool(frame.get("type") == "offer" and frame["order"]["id"] == order_id)

    return match


async def test_the_agent_app_reconnects_after_a_restart_and_gets_the_snapshot(
    settings: Settings, tmp_path: Path
) -> None:
    server = ProcessServer(settings, log=tmp_path / "server.log")
    await server.start()
    client: subprocess.Popen[str] | None = None
    try:
        async with ApiClient(server.url, settings.admin_token) as admin:
            agent = (await roster(admin, {"g1": 1}))["g1"][0]
            intake = await intake_token(admin)
        async with ApiClient(server.url, intake) as api:
            before = await api.file_order(grid="g1", text="filed before the restart")
        client = subprocess.Popen(
            [sys.executable, "-m", "clients", server.url, agent["token"]],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert client.stdout is not None and client.stderr is not None
        out, err = Lines(client.stdout), Lines(client.stderr)
        await out.until(lambda line: json.loads(line)["type"] == "welcome")
        await out.until(_offer_of(before["id"]))

        await server.stop()
        await err.until(lambda line: "reconnecting in" in line)
        assert client.poll() is None  # still running, waiting to reconnect
        await server.start()  # the same port
        await err.until(lambda line: "reconnected" in line)
        await out.until(lambda line: json.loads(line)["type"] == "welcome")
        await out.until(_offer_of(before["id"]))  # the snapshot, again
        async with ApiClient(server.url, intake) as api:
            after = await api.file_order(grid="g1", text="filed after the restart")
        await out.until(_offer_of(after["id"]))  # and live offers
    finally:
        if client is not None:
            client.terminate()
            client.wait(10)
            for pipe in (client.stdout, client.stderr):
                if pipe is not None:
                    pipe.close()
        await server.stop()
