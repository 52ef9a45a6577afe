"""Load-test tools: short locust runs against a real server, the consistency checker, the plans."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import random
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from clients import ApiClient
from dispatcher.board import scripts as rs
from dispatcher.settings import Settings
from loadtest.locust import consistency as c
from loadtest.locust.run import locust_command, locust_env, seconds
from loadtest.locust.scenarios import SCENARIOS, drops_in_wave, parse_range, plan
from tests.servers import ROOT, InProcessServer, ProcessServer
from tests.steps import CrewFactory

# --- locust against a real server -----------------------------------------------------------


def _locust(url: str, admin_token: str, out: Path, scenario: str, *args: str) -> str:
    """Run locust headless in its own process; return its output.  Asserts exit code 0."""
    done = subprocess.run(
        locust_command(url, scenario, out, *args),
        env=locust_env(admin_token),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return output


def _stats(out: Path) -> dict[str, dict[str, str]]:
    with (out / "locust_stats.csv").open(newline="", encoding="utf-8") as f:
        return {row["Name"]: row for row in csv.DictReader(f)}


async def _run(settings: Settings, tmp_path: Path, scenario: str, *args: str) -> c.Report:
    """A locust run against ``bangban serve``; then the check, once the server has stopped."""
    assert settings.admin_token and settings.redis_url and settings.database_url
    async with ProcessServer(settings, log=tmp_path / "server.log") as srv:
        await asyncio.to_thread(_locust, srv.url, settings.admin_token, tmp_path, scenario, *args)
    stats = _stats(tmp_path)
    assert stats["Aggregated"]["Failure Count"] == "0", stats["Aggregated"]
    assert (tmp_path / "report.html").stat().st_size > 0
    return await c.check(
        tmp_path / "won.jsonl", settings.redis_url, settings.database_url, settle=2
    )


async def test_contention_smoke(settings: Settings, tmp_path: Path) -> None:
    """200 agents in one grid race every order for 6 s (2 s of it spawning them, then about a
    dozen orders): no failure, exactly one winner each."""
    report = await _run(
        settings, tmp_path, "contention", "-u", "200", "-r", "100", "-t", "6s", "--order-rate", "3"
    )
    assert report.ok, report.verdict()
    stats = _stats(tmp_path)
    won = int(stats["claim won"]["Request Count"])
    assert won > 0 and report.wins_logged == won
    assert int(stats["claim taken"]["Request Count"]) > won  # everybody else lost the race
    assert int(stats["offer latency (filed→received)"]["Request Count"]) > 0
    # Locust waits for the answers in flight when it stops: every win reached its agent.
    assert report.claimed_not_seen == 0
    assert report.orders_won_in_log == report.by_status.get("claimed")


async def test_reconnect_storm_smoke(settings: Settings, tmp_path: Path) -> None:
    """Agents drop and reconnect in waves while orders flow: no failure, still consistent."""
    report = await _run(
        settings,
        tmp_path,
        "reconnect-storm",
        *("-u", "60", "-r", "60", "-t", "7s", "--wave-interval", "2", "--grab-probability", "0.5"),
    )
    assert report.ok, report.verdict()
    stats = _stats(tmp_path)
    assert int(stats["drop (reconnect wave)"]["Request Count"]) > 0
    assert int(stats["reconnect (handshake→welcome)"]["Request Count"]) > 0
    assert report.wins_logged > 0


# --- the consistency checker ----------------------------------------------------------------


def self_keys(finished: Finished) -> rs.Keys:
    """The key names of the server that made ``finished`` (its settings' namespace)."""
    return rs.Keys(finished.settings.key_namespace)


@dataclass
class Finished:
    """A finished run: orders ``mine`` (won by a) and ``theirs`` (won by c), ``open1`` and
    ``open2`` still offered; the won log names both wins."""

    settings: Settings
    log: Path
    agents: dict[str, int]
    orders: dict[str, int]

    def log_won(self, order_id: int, agent_id: int, request_id: str = "r") -> None:
        record = {"order_id": order_id, "agent_id": agent_id, "request_id": request_id, "at": 1}
        with self.log.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    async def check(self) -> c.Report:
        s = self.settings
        assert s.redis_url and s.database_url
        return await c.check(self.log, s.redis_url, s.database_url)

    async def redis(self, *command: Any) -> None:
        assert self.settings.redis_url
        client = aioredis.Redis.from_url(self.settings.redis_url)
        try:
            await client.execute_command(*command)
        finally:
            await client.aclose()


@pytest.fixture
async def finished(settings: Settings, crew: CrewFactory, tmp_path: Path) -> Finished:
    # A server of our own, stopped before the test tampers with Redis: a running one would
    # repair the tampering (the reconciler), which is what the checker must catch.
    async with crew({"g1": 2, "g2": 1}) as c:
        a, b = c.agents["g1"]
        (cc,) = c.agents["g2"]
        async with ApiClient(c.url, c.intake) as api:
            where = {"mine": "g1", "theirs": "g2", "open1": "g1", "open2": "g1"}
            orders = {
                name: (await api.file_order(grid=grid, text=name))["id"]
                for name, grid in where.items()
            }
        for agent, order in ((a, "mine"), (cc, "theirs")):
            async with ApiClient(c.url, agent["token"]) as client:
                assert (await client.claim(orders[order]))["result"] == "won"
    run = Finished(
        settings, tmp_path / "won.jsonl", {"a": a["id"], "b": b["id"], "c": cc["id"]}, orders
    )
    run.log_won(orders["mine"], a["id"])
    run.log_won(orders["theirs"], cc["id"])
    return run


async def test_consistent_run_passes(finished: Finished) -> None:
    report = await finished.check()
    assert report.ok, report.verdict()
    assert report.wins_logged == 2 and report.orders_won_in_log == 2
    assert report.by_status == {"claimed": 2, "offered": 2}
    assert report.redis_orders == 4 and report.scheduled == 2
    assert "PASS" in report.verdict()


async def test_two_winners_in_the_log_are_reported(finished: Finished) -> None:
    finished.log_won(finished.orders["mine"], finished.agents["b"])
    report = await finished.check()
    assert set(report.kinds()) == {c.TWO_WINNERS_LOG, c.WON_NOT_IN_PG}
    assert all(v.order_id == finished.orders["mine"] for v in report.violations)
    assert "FAIL" in report.verdict()


async def test_a_won_missing_from_postgres_is_reported(finished: Finished) -> None:
    finished.log_won(finished.orders["open1"], finished.agents["a"])
    finished.log_won(987654, finished.agents["a"])
    report = await finished.check()
    assert report.kinds() == {c.WON_NOT_IN_PG: 2}


async def test_a_second_winner_in_postgres_is_reported(finished: Finished) -> None:
    assert finished.settings.database_url
    conn = await asyncpg.connect(finished.settings.database_url)
    try:
        await conn.execute(
            "INSERT INTO order_events (order_id, at, kind, actor)"
            " VALUES ($1, now(), 'claimed', $2)",
            finished.orders["mine"],
            f"agent:{finished.agents['b']}",
        )
    finally:
        await conn.close()
    report = await finished.check()
    assert report.kinds() == {c.TWO_WINNERS_PG: 1}


@pytest.mark.parametrize(
    ("order", "field", "value"),
    [("mine", "claimed_by", "999"), ("open1", "status", "claimed"), ("theirs", "version", "1")],
)
async def test_redis_disagreeing_with_postgres_is_reported(
    finished: Finished, order: str, field: str, value: str
) -> None:
    await finished.redis("HSET", self_keys(finished).order(finished.orders[order]), field, value)
    report = await finished.check()
    assert report.kinds()[c.DISAGREE] == 1
    assert report.violations[0].order_id == finished.orders[order]


async def test_an_order_redis_has_and_postgres_lacks_is_reported(finished: Finished) -> None:
    await finished.redis(
        "HSET", self_keys(finished).order(424242), "status", "offered", "version", "1"
    )
    report = await finished.check()
    assert report.kinds() == {c.NOT_IN_PG: 1}


async def test_an_open_order_missing_from_redis_is_reported(finished: Finished) -> None:
    await finished.redis("DEL", self_keys(finished).order(finished.orders["open1"]))
    report = await finished.check()
    assert report.kinds() == {c.OPEN_NOT_IN_REDIS: 1}


async def test_an_offered_order_off_the_widening_schedule_is_reported(finished: Finished) -> None:
    await finished.redis(
        "ZREM",
        self_keys(finished).of(rs.DUE),
        rs.due_member(rs.WIDEN, finished.orders["open2"]),
    )
    report = await finished.check()
    assert report.kinds() == {c.NOT_SCHEDULED: 1}


async def test_an_unreadable_won_log_line_is_reported(finished: Finished) -> None:
    with finished.log.open("a", encoding="utf-8") as f:
        f.write('{"order_id": 1\n')
    report = await finished.check()
    assert report.kinds() == {c.BAD_LOG_LINE: 1}


def _cli(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)


async def test_consistency_cli_exit_codes(finished: Finished) -> None:
    """``python -m loadtest.locust.consistency`` prints the verdict, exits 0, then 1 on a fault."""
    s = finished.settings
    assert s.redis_url and s.database_url
    cmd = [
        sys.executable,
        "-m",
        "loadtest.locust.consistency",
        str(finished.log),
        "--redis-url",
        s.redis_url,
        "--database-url",
        s.database_url,
        "--settle",
        "0",
    ]
    run = await asyncio.to_thread(_cli, cmd)
    assert run.returncode == 0 and "consistency: PASS" in run.stdout, run.stdout + run.stderr
    finished.log_won(finished.orders["open2"], finished.agents["b"])
    run = await asyncio.to_thread(_cli, cmd)
    assert run.returncode == 1 and c.WON_NOT_IN_PG in run.stdout, run.stdout + run.stderr


# --- scenarios (pure) -----------------------------------------------------------------------


def test_contention_puts_every_agent_in_one_grid() -> None:
    p = plan(SCENARIOS["contention"], 300, "x-")
    assert len(p.grids) == 1 and {p.agent_grid(i).code for i in range(400)} == {"x-contention"}
    assert SCENARIOS["contention"].behaviour.grab_probability == 1


def test_county_staffs_villages_with_their_teams_and_weights_orders_by_them() -> None:
    p = plan(SCENARIOS["county"], 200, "x-")
    codes = [p.agent_grid(i).code for i in range(200)]
    assert set(codes) == set(p.order_grids) == {g.code for g in p.grids}
    assert sum(p.order_weights) == 200  # the demo roster's team sizes, all staffed in full
    assert all(code.startswith("x-") for code in codes)
    whole = plan(SCENARIOS["county"], 934)
    assert len(whole.grids) == 400  # the demo roster staffs every village
    rng = random.Random(7)
    drawn = {p.order_grid(rng) for _ in range(5000)}
    assert drawn == set(p.order_grids)


def test_reconnect_storm_blocks_and_waves() -> None:
    p = plan(SCENARIOS["reconnect-storm"], 95)
    assert len(p.grids) == 10 and p.agent_grid(95) == p.grids[5]
    dropped = sum(drops_in_wave(3, i, 0.5) for i in range(2000))
    assert 850 < dropped < 1150
    assert drops_in_wave(3, 17, 0.5) == drops_in_wave(3, 17, 0.5)


def test_option_parsing() -> None:
    assert parse_range("200-1500") == (200, 1500) and parse_range("0") == (0, 0)
    with pytest.raises(ValueError):
        parse_range("9-1")
    assert (seconds("30s"), seconds("2m"), seconds("1h30m"), seconds("45")) == (30, 120, 5400, 45)
    with pytest.raises(ValueError):
        seconds("soon")


# --- against an existing server: a namespace of its own, no silent leftovers -------------


def _runner(server: InProcessServer, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "loadtest.locust", "contention", "--host", server.url, *args]
    cmd += ["--users", "6", "--duration", "3s", "--out", str(out)]
    # The consistency check afterwards reads REDIS_URL / DATABASE_URL: the server's own (with
    # the URLs set for the suite, its database is a private one on that Postgres).
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": server.settings.redis_url,
        "DATABASE_URL": server.settings.database_url,
    }
    return subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=90, check=False
    )


async def test_a_run_against_an_existing_server_refuses_without_allow_leftovers(
    server: InProcessServer, tmp_path: Path
) -> None:
    token = server.settings.admin_token
    assert token
    refused = await asyncio.to_thread(_runner, server, tmp_path, "--admin-token", token)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "has no delete in its admin API" in refused.stderr
    assert "1 grids (codes lt" in refused.stderr and "5 agents named lt" in refused.stderr
    async with server.admin() as admin:
        assert (await admin.list_agents())["agents"] == []
        assert (await admin.list_grids())["grids"] == []

    ran = await asyncio.to_thread(
        _runner, server, tmp_path, "--admin-token", token, "--allow-leftovers"
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    prefix = re.search(r"grids \(codes (lt[0-9a-f]{6}-)\*\)", ran.stdout)
    assert prefix, ran.stdout
    async with server.admin() as admin:
        agents = (await admin.list_agents())["agents"]
        grids = (await admin.list_grids())["grids"]
    # Everything the run left carries the prefix it announced: one namespace, findable.
    assert len(agents) == 5 and all(a["name"].startswith(prefix.group(1)) for a in agents)
    assert [g["code"] for g in grids] == [prefix.group(1) + "contention"]
