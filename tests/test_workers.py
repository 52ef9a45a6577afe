"""``bangban serve --workers N`` (issue 11): N peers on one port, restarted when one dies, and a
rolling restart (SIGHUP) under light load that loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from clients import AgentClient
from clients.framesocket import ClientError
from dispatcher.embedded import free_port
from dispatcher.live import wire
from dispatcher.settings import Settings
from tests.servers import ROOT
from tests.steps import Team, team


class Workers:
    def __init__(self, settings: Settings, log: Path, count: int = 2) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.count = count
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("BANGBAN_")}
        env.update(
            REDIS_URL=s.redis_url or "",
            DATABASE_URL=s.database_url or "",
            BANGBAN_ADMIN_TOKEN=s.admin_token or "",
            BANGBAN_RECONCILE_INTERVAL="1",
            BANGBAN_MAX_HELD="1000",
            PYTHONPATH=str(ROOT),
        )
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "dispatcher", "serve", "--port", str(self.port)),
                    *("--workers", str(self.count)),
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        await self.until_pids(self.count, timeout=60)

    def children(self) -> set[int]:
        assert self.proc is not None
        raw = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        return {int(p) for p in raw.split()}

    async def answering(self, tries: int = 40) -> set[int]:
        """The worker pids that answered healthy, over ``tries`` new connections."""
        seen: set[int] = set()
        for _ in range(tries):
            with contextlib.suppress(httpx.HTTPError):
                async with httpx.AsyncClient() as http:
                    r = await http.get(self.url + "/v1/healthz", timeout=2)
                if r.status_code == 200:
                    seen.add(int(r.headers["x-bangban-worker"]))
        return seen

    async def until_pids(self, n: int, timeout: float, avoid: set[int] = frozenset()) -> set[int]:  # type: ignore[assignment]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-3000:]
            pids = await self.answering(10)
            if len(pids) >= n and not (pids & avoid) and pids <= self.children():
                return pids
            await asyncio.sleep(0.2)
        raise AssertionError(f"not {n} workers answering: {self.log.read_text()[-3000:]}")

    async def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(self.proc.wait, 60)
        return code


@pytest.fixture
async def workers(settings: Settings, tmp_path: Path) -> AsyncIterator[Workers]:
    w = Workers(settings, tmp_path / "workers.log")
    await w.start()
    try:
        yield w
    finally:
        # The workers first: once the master is gone they are no longer its children, and
        # /proc no longer lists them (a failed test used to leave them serving).
        leftover = _leftover(w)
        if w.proc is not None and w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()
        for pid in leftover:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _leftover(w: Workers) -> set[int]:
    try:
        return w.children()
    except OSError:
        return set()


async def test_two_workers_serve_one_port_and_a_dead_one_is_replaced(workers: Workers) -> None:
    pids = await workers.answering()
    assert len(pids) == 2 and pids == workers.children()
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    again = await workers.until_pids(2, timeout=30, avoid={victim})
    assert victim not in again and len(again) == 2
    assert await workers.stop() == 0
    assert not _leftover(workers)


# --- a rolling restart under light load ------------------------------------------------------


class Load:
    """Filings every 50 ms (retried with their Idempotency-Key), agents that claim every
    offer they see and reconnect when closed."""

    def __init__(self, url: str, t: Team) -> None:
        self.url = url
        self.t = t
        self.stop = asyncio.Event()
        self.filed: dict[str, int] = {}  # idempotency key -> order id (201)
        self.answers: list[tuple[int, int, str]] = []  # (order, agent, result)
        self.gaps: list[float] = []  # seconds from a close to the next welcome
        self.closes: list[int] = []
        self.filing_retries = 0

    async def intake(self) -> None:
        headers = {"Authorization": f"Bearer {self.t.intake}"}
        while not self.stop.is_set():
            key = uuid.uuid4().hex
            while True:  # the same request until it is answered 201
                try:
                    async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
                        r = await http.post(
                            "/v1/orders",
                            json={"grid": "g1", "text": "load"},
                            headers={**headers, "Idempotency-Key": key},
                        )
                    if r.status_code == 201:
                        self.filed[key] = r.json()["id"]
                        break
                except httpx.HTTPError:
                    pass
                self.filing_retries += 1
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.05)

    async def agent(self, token: str) -> None:
        closed_at: float | None = None
        owed: dict[str, int] = {}  # claims sent whose answer a closed connection took away
        while not self.stop.is_set():
            try:
                async with AgentClient.connect(self.url, token) as agent:
                    if closed_at is not None:
                        self.gaps.append(time.monotonic() - closed_at)
                        closed_at = None
                    for rid, oid in list(owed.items()):
                        await self._claim(agent, oid, rid)
                        del owed[rid]
                    while not self.stop.is_set():
                        try:
                            frame = await agent.recv(timeout=0.2)
                        except TimeoutError:
                            continue
                        if isinstance(frame, wire.Offer):
                            rid = uuid.uuid4().hex
                            owed[rid] = frame.order["id"]
                            await self._claim(agent, frame.order["id"], rid)
                            del owed[rid]
            except (ClientError, OSError) as exc:
                code = getattr(exc, "code", None)
                if isinstance(code, int):
                    self.closes.append(code)
                closed_at = closed_at or time.monotonic()
                await asyncio.sleep(0.05)

    async def _claim(self, agent: AgentClient, order_id: int, rid: str) -> None:
        result = (await agent.claim(order_id, request_id=rid, timeout=15)).result
        self.answers.append((order_id, agent.agent_id, result))


async def test_a_rolling_restart_under_light_load_loses_nothing(
    workers: Workers, settings: Settings
) -> None:
    t = await team(workers.url, settings.admin_token or "", {"g1": 4})
    load = Load(workers.url, t)
    tasks = [asyncio.create_task(load.intake())]
    tasks += [asyncio.create_task(load.agent(a["token"])) for a in t.agents["g1"]]
    await asyncio.sleep(1.5)
    before = await workers.answering()
    assert workers.proc is not None
    workers.proc.send_signal(signal.SIGHUP)
    after = await workers.until_pids(2, timeout=60, avoid=before)
    await asyncio.sleep(1.5)  # load on the new workers
    load.stop.set()
    await asyncio.gather(*tasks)

    assert len(load.filed) >= 10, "the load did not run"
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = {r["id"]: r for r in await conn.fetch("SELECT id, status, claimed_by FROM orders")}
        keys = await conn.fetch(
            "SELECT key, order_id FROM filing_keys WHERE key NOT LIKE 'server:%'"
        )
    finally:
        await conn.close()
    # Every 201 is in Postgres exactly once, under its key; nothing else was filed.
    assert {k["key"]: k["order_id"] for k in keys} == load.filed
    assert set(rows) == set(load.filed.values())
    # Every `won` is recorded for that agent, one winner per order; no false `unavailable`.
    won: dict[int, set[int]] = {}
    for order_id, agent_id, result in load.answers:
        assert result in ("won", "taken"), (order_id, result)
        if result == "won":
            won.setdefault(order_id, set()).add(agent_id)
    for order_id, agents in won.items():
        assert len(agents) == 1 and rows[order_id]["claimed_by"] in agents
    # Every agent closed by a draining worker (1012) was back within 2 s.
    assert 1012 in load.closes
    assert load.gaps and max(load.gaps) < 2.0, load.gaps
    assert not (before & after)
    # Nothing left behind: every order filed was offered and claimed.
    assert all(r["status"] == "claimed" for r in rows.values()), [
        r["id"] for r in rows.values() if r["status"] != "claimed"
    ]
    assert await workers.stop() == 0
