"""The fresh-machine path: `bangban serve --demo` on embedded Redis and Postgres."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from clients import AgentClient, ApiClient
from dispatcher.embedded import free_port
from dispatcher.store import migrate
from tests.servers import ROOT


def _env() -> dict[str, str]:
    """The environment of a new user: no URLs, no settings; embedded servers."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "DATABASE_URL") and not k.startswith("BANGBAN_")
    }
    env["PYTHONPATH"] = str(ROOT)
    return env


def _bangban(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``bangban ARGS`` run to its end in ``workdir``."""
    return subprocess.run(
        [sys.executable, "-m", "dispatcher", *args],
        env=_env(),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """A folder to run ``bangban`` in.  As root the embedded cluster lives outside the data
    folder (``.bangban/pg`` links to it): remove it with the folder."""
    yield tmp_path
    for link in tmp_path.glob("**/pg"):
        if link.is_symlink():
            shutil.rmtree(link.resolve(), ignore_errors=True)


async def _serve(
    workdir: Path, port: int, *args: str, until: str = "try:"
) -> tuple[subprocess.Popen[str], list[str]]:
    """``bangban serve --demo`` run in ``workdir`` as `make run` runs it: the default, relative
    data folder ``.bangban``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatcher", "serve", "--port", str(port), *(args or ["--demo"])],
        env=_env(),
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
        if line.startswith(until):
            return proc, lines


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)  # what Ctrl-C does
    code = proc.wait(30)
    if proc.stdout is not None:
        proc.stdout.close()
    return code


async def test_serve_demo_on_embedded_servers_then_reuse_the_data(workdir: Path) -> None:
    tmp_path = workdir
    port = free_port()
    proc, lines = await _serve(tmp_path, port)
    try:
        text = "".join(lines)
        assert "embedded redis" in text and "embedded postgres" in text
        # Where the embedded servers log, on the first screen.
        assert "(log: .bangban/redis/redis.log)" in text and "(log: .bangban/pg/log)" in text
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
        # The four pages, each with its demo token in the fragment.
        for page in ("app/", "file", "console/", r"t/\d+"):
            assert re.search(rf"{url}/{page}#token=\S+", text), page
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/app/")).status_code == 200
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
    # The data kept, the demo's tokens lost (a checkout made again at the same path, as root,
    # finds the old cluster): a clear refusal saying what to do, not a traceback.
    (tmp_path / ".bangban" / "demo.json").unlink()
    lost = await asyncio.to_thread(_bangban, tmp_path, "serve", "--demo", "--port", str(port))
    assert lost.returncode == 1, lost.stdout + lost.stderr
    assert "bangban: cannot seed the demo: the database already holds the demo's agents" in (
        lost.stderr
    )
    assert "make clean" in lost.stderr and "Traceback" not in lost.stderr


async def test_a_second_server_on_the_same_data_folder_is_refused_at_once(workdir: Path) -> None:
    """The second ``bangban serve`` names the running one (pid, port) and exits 1 before it
    starts an embedded server; the first goes on serving."""
    port = free_port()
    first, _ = await _serve(workdir, port, "--data-dir", "d", until="bangban serving on")
    try:
        t = time.monotonic()
        second = await asyncio.to_thread(_bangban, workdir, "serve", "--data-dir", "d")
        took = time.monotonic() - t
        assert second.returncode == 1, second.stdout + second.stderr
        assert f"another bangban server is running on data folder d (pid {first.pid}," in (
            second.stderr
        )
        assert f"port {port})" in second.stderr
        assert "embedded" not in second.stdout + second.stderr  # no Redis/Postgres started
        assert took < 30, took  # it did not wait for anything (a loaded machine is slow)
        async with httpx.AsyncClient() as http:
            r = await http.get(f"http://127.0.0.1:{port}/v1/healthz", timeout=5)
        assert r.status_code == 200 and first.poll() is None
    finally:
        assert _stop(first) == 0
    # The lock goes with the process: the next server starts.
    again, _ = await _serve(workdir, port, "--data-dir", "d", until="bangban serving on")
    assert _stop(again) == 0


async def test_log_file_gets_the_server_log_and_no_tokens(workdir: Path) -> None:
    port = free_port()
    log = workdir / "logs" / "bangban.log"
    proc, lines = await _serve(workdir, port, "--demo", "--log-file", str(log), until="try:")
    assert _stop(proc) == 0
    text = log.read_text()
    assert "INFO bangban.app migrations applied" in text, text
    tokens = re.findall(r"token: (\S+)", "".join(lines))
    assert tokens and not any(t in text for t in tokens)


async def test_migrate_says_what_it_applied_then_up_to_date(workdir: Path) -> None:
    names = [name for _, name, _ in migrate.available()]
    first = await asyncio.to_thread(_bangban, workdir, "migrate", "--data-dir", "d")
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"migrations: applied {len(names)}: {', '.join(names)}\n" in first.stdout
    assert "up to date" not in first.stdout
    again = await asyncio.to_thread(_bangban, workdir, "migrate", "--data-dir", "d")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"migrations: up to date ({len(names)} applied before)" in again.stdout
    assert "applied" not in again.stdout.replace("applied before", "")
