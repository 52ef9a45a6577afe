"""How many agents one server process holds: memory per idle connection, and the most agents
connected while p99 offer latency stays within 100 ms under a steady stream of orders.

Run ``python -m loadtest.bench.capacity`` (``make capacity``); ``--help`` lists the knobs.  Like
:mod:`loadtest.bench` it starts Redis and Postgres (embedded unless ``REDIS_URL`` /
``DATABASE_URL`` are set), one ``bangban serve`` process on a free port, seeds through the
admin API, and holds the agents' websockets in separate worker processes.

The county: ``--grids`` grids (400, about the demo county's villages); agent ``k`` is in grid
``k % grids`` with slot ``k // grids`` there.  Agents are added in ``--steps`` (cumulative
totals, multiples of ``--grids``).  At each step:

1. **Idle.** Connect the new agents, wait ``--settle`` seconds, read the server process's
   memory from ``/proc/PID/status`` (``VmRSS``; ``RssAnon``, its private heap).  Memory per
   idle connection is the growth of ``RssAnon`` from the first step, divided by the
   connections added, and also the least-squares slope over all steps.
2. **Load.** File orders at ``--rate`` a second (open loop: filing ``k`` is due at
   ``k / rate`` whatever the server did with the ones before), round-robin over the grids, for
   ``--warmup`` + ``--duration`` seconds.  In each grid the agent whose slot is
   ``order_id % per-grid`` claims the order, so every order is offered to its grid's agents,
   claimed once, and withdrawn from the others.  Offer latency: from just before the POST is
   written to the offer arriving, for every agent that got it, over the orders filed after the
   warm-up.

A step passes when offer p99 ≤ ``--p99-ms``, every expected offer arrived, the filer kept its
rate (at least 95 % of the due filings sent, answered 201), and every agent connected.  The run
stops at the first step that does not pass.  Figures go to stdout and ``--out`` (JSON).
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

from clients import ApiClient
from dispatcher.process import raise_open_files_limit
from dispatcher.settings import Settings
from loadtest.bench._agents import CLAIM_MINE, AgentPool
from loadtest.bench._http import FilerProcess
from loadtest.bench._report import summary
from loadtest.bench._services import BenchServer, CpuMeter, bench_backends, run_in_tmp

RESULTS = Path(__file__).resolve().parent.parent / "results"
FIRST_PHONE = 13_200_000_000
IMPORT_CHUNK = 2000


def log(message: str) -> None:
    print(f"· {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Options:
    steps: tuple[int, ...]
    grids: int
    rate: float
    duration: float
    warmup: float
    settle: float
    p99_ms: float
    workers: int
    filers: int
    deflate: bool
    out: Path | None
    max_seconds: float


def parse_args(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(
        prog="python -m loadtest.bench.capacity",
        description="Agents one server process holds at p99 offer latency <= 100 ms, "
        "and memory per idle agent connection.",
    )
    p.add_argument("--steps", default="400,2000,4800,7600,10000,12400,15200")
    p.add_argument("--grids", type=int, default=400)
    p.add_argument("--rate", type=float, default=50.0, help="orders filed per second")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per step")
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before that")
    p.add_argument("--settle", type=float, default=5.0, help="idle seconds before memory")
    p.add_argument("--p99-ms", type=float, default=100.0)
    p.add_argument("--workers", type=int, default=2, help="client worker processes")
    p.add_argument("--filers", type=int, default=8, help="filer HTTP connections")
    p.add_argument(
        "--compression",
        choices=("none", "deflate"),
        default="none",
        help="clients offer permessage-deflate (browsers do; the server accepts it only with "
        "BANGBAN_WS_DEFLATE=true)",
    )
    p.add_argument("--out", default=str(RESULTS / "capacity.json"), help="JSON ('' for none)")
    p.add_argument("--max-seconds", type=float, default=1800.0, help="give up after this")
    a = p.parse_args(argv)
    try:
        steps = tuple(int(s) for s in a.steps.split(","))
    except ValueError:
        p.error("--steps must be comma-separated integers")
    if not steps or any(s <= 0 or s % a.grids for s in steps) or list(steps) != sorted(steps):
        p.error(f"--steps must be increasing positive multiples of --grids ({a.grids})")
    if a.rate <= 0 or a.duration <= 0 or a.workers < 1 or a.filers < 1:
        p.error("--rate, --duration, --workers and --filers must be positive")
    return Options(
        steps, a.grids, a.rate, a.duration, a.warmup, a.settle, a.p99_ms, a.workers, a.filers,
        a.compression == "deflate", Path(a.out) if a.out else None, a.max_seconds,
    )  # fmt: skip


def grid_code(i: int) -> str:
    return f"CAP-{i:04d}"


def gc_pauses(metrics_text: str) -> dict[str, dict[str, float]]:
    """Per GC generation: passes, seconds in all, and passes over 0.1 s, from ``/metrics``."""
    out: dict[str, dict[str, float]] = {}
    for line in metrics_text.splitlines():
        if not line.startswith("bangban_gc_pause_seconds"):
            continue
        name, _, value = line.rpartition(" ")
        gen = name.split('generation="')[1].split('"')[0]
        row = out.setdefault(gen, {"passes": 0, "seconds": 0.0, "over_100ms": 0})
        if name.startswith("bangban_gc_pause_seconds_count"):
            row["passes"] = float(value)
            row["over_100ms"] += float(value)
        elif name.startswith("bangban_gc_pause_seconds_sum"):
            row["seconds"] = float(value)
        elif name.startswith("bangban_gc_pause_seconds_bucket") and 'le="0.1"' in name:
            row["over_100ms"] -= float(value)
    return out


def gc_delta(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    return {
        gen: {k: round(v - before.get(gen, {}).get(k, 0), 3) for k, v in row.items()}
        for gen, row in after.items()
    }


def memory(pid: int) -> dict[str, int]:
    """The process's ``VmRSS`` and ``RssAnon`` in KiB, and the kernel's TCP buffer pages."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon"):
            out[key] = int(value.split()[0])
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/net/sockstat").read_text().splitlines():
            if line.startswith("TCP:"):
                fields = line.split()
                out["tcp_mem_pages"] = int(fields[fields.index("mem") + 1])
    return out


async def seed_agents(admin: ApiClient, start: int, stop: int, grids: int) -> list[str]:
    """Agents ``start..stop-1`` (agent ``k`` in grid ``k % grids``) via the roster import."""
    tokens: list[str] = []
    for lo in range(start, stop, IMPORT_CHUNK):
        hi = min(stop, lo + IMPORT_CHUNK)
        rows = [f"容量{k},{FIRST_PHONE + k},{grid_code(k % grids)}" for k in range(lo, hi)]
        created = await admin.import_agents("name,phone,grids\n" + "\n".join(rows) + "\n")
        tokens += [a["token"] for a in created]
    return tokens


async def scrape_gc(url: str, token: str) -> dict[str, dict[str, float]]:
    # A client per call here and per step below: a keep-alive connection left idle through a
    # load phase can be closed by the server just as the next request goes out.
    async with ApiClient(url, token, timeout=60) as admin:
        response = await admin.request("GET", "/metrics")
    response.raise_for_status()
    return gc_pauses(response.text)


async def load(
    pool: AgentPool,
    server: BenchServer,
    intake: str,
    agents: int,
    opts: Options,
    meter: CpuMeter,
) -> dict[str, Any]:
    """One load phase at ``agents`` connected; its figures and whether it passes."""
    per_grid = agents // opts.grids
    await pool.set_mode(CLAIM_MINE, per_grid)
    origin = time.time()
    start, end = origin + opts.warmup, origin + opts.warmup + opts.duration
    codes = [grid_code(i) for i in range(opts.grids)]
    filer = FilerProcess("127.0.0.1", server.port, intake, codes, opts.filers, end, opts.rate)
    await asyncio.sleep(max(0.0, start - time.time()))
    before, gc_before = meter.snapshot(), await scrape_gc(server.url, server.admin_token)
    await asyncio.sleep(max(0.0, end - time.time()))
    after, gc_after = meter.snapshot(), await scrape_gc(server.url, server.admin_token)
    filed = await filer.result()
    await asyncio.sleep(2.0)  # offers of the last filings arrive
    rec = await pool.collect()
    sent = {oid: t0 for oid, t0 in filed["sent"].items() if start <= t0 < end}
    latencies = [(t - t0) * 1000 for oid, t0 in sent.items() for t in rec.offers.get(oid, ())]
    missing = sum(max(0, per_grid - len(rec.offers.get(oid, ()))) for oid in sent)
    due = int(opts.duration * opts.rate)
    won = {oid for oid, _ in rec.wins if oid in sent}
    offer = summary(latencies)
    kept_rate = len(sent) >= 0.95 * due
    p99 = offer["p99"]
    return {
        "per_grid": per_grid,
        "filed": len(sent),
        "filed_due": due,
        "filed_late": filed["late"],
        "http_statuses": filed["statuses"],
        "offer_ms": offer,
        "offers_missing": missing,
        "won": len(won),
        "client_errors": rec.errors,
        "client_error_samples": rec.error_samples[:2],
        "cpu_percent": CpuMeter.usage(before, after),
        "gc": gc_delta(gc_before, gc_after),
        "passes": bool(
            p99 is not None and p99 <= opts.p99_ms and missing == 0 and kept_rate
            and filed["error_count"] == 0
        ),
    }  # fmt: skip


def slope(points: Sequence[tuple[int, int]]) -> float | None:
    """Least-squares KiB per connection over (connections, KiB) points."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return None if sxx == 0 else sum((x - mx) * (y - my) for x, y in points) / sxx


async def run(opts: Options, tmp: Path) -> dict[str, Any]:
    nofile = raise_open_files_limit()
    if nofile < opts.steps[-1] + 500:
        log(f"warning: open-file limit {nofile} is below the {opts.steps[-1]} sockets asked for")
    steps: list[dict[str, Any]] = []
    result: dict[str, Any] = {"steps": steps}
    async with contextlib.AsyncExitStack() as stack:
        log("starting Redis and Postgres")
        backends = await stack.enter_async_context(bench_backends(tmp, Settings.from_env()))
        result["meta"] = {
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "backends": sorted(backends.embedded) or "REDIS_URL / DATABASE_URL",
            "server_settings_from_env": BenchServer.passed_settings(),
        }
        admin_token = "bba_cap-" + secrets.token_urlsafe(16)
        log("starting bangban serve")
        server = await stack.enter_async_context(
            BenchServer(
                backends,
                admin_token,
                tmp / "data",
                tmp / "server.log",
                extra_env={"BANGBAN_METRICS_TOKEN": admin_token},
            )
        )
        pool = AgentPool(opts.workers)
        stack.callback(pool.close)
        assert server.pid is not None
        meter = CpuMeter.for_run(backends, server.pid, pool.pids)
        async with ApiClient(server.url, admin_token, timeout=120) as admin:
            for i in range(opts.grids):
                await admin.create_grid(grid_code(i), f"容量网格 {i}")
            intake = (await admin.create_token("intake", "capacity"))["token"]
        seeded = 0
        for target in opts.steps:
            t = time.monotonic()
            async with ApiClient(server.url, admin_token, timeout=120) as admin:
                tokens = await seed_agents(admin, seeded, target, opts.grids)
            agents = [(tok, (seeded + j) // opts.grids) for j, tok in enumerate(tokens)]
            seeded = target
            conn = await pool.connect("127.0.0.1", server.port, agents, deflate=opts.deflate)

            connected = conn["connected"]  # every welcomed connection the workers hold

            log(f"{connected} agents connected ({time.monotonic() - t:.0f} s with seeding)")
            await asyncio.sleep(opts.settle)
            idle = memory(server.pid)
            step: dict[str, Any] = {"agents": connected, "failed": conn["failed"], "idle": idle}
            steps.append(step)
            if conn["failed"] or connected != target:
                step["failures"] = conn["failures"]
                step["passes"] = False
                log(f"{conn['failed']} agents failed to connect, e.g. {conn['failures'][:1]}")
                break
            log(f"load: {opts.rate:g} orders/s for {opts.warmup:g}+{opts.duration:g} s")
            step["load"] = await load(pool, server, intake, target, opts, meter)

            step["after_load"] = memory(server.pid)
            step["passes"] = step["load"]["passes"]
            server.check_alive()
            log(f"{connected} agents: offer {step['load']['offer_ms']}, gc {step['load']['gc']}")

            if not step["passes"]:
                break
        await pool.disconnect()
        result["server_log"] = server.log_summary()
    result["summary"] = summarise(steps, opts)
    return result


def summarise(steps: list[dict[str, Any]], opts: Options) -> dict[str, Any]:
    passing = [s["agents"] for s in steps if s.get("passes")]
    base = steps[0]
    growth = [
        (s["idle"]["RssAnon"] - base["idle"]["RssAnon"]) / (s["agents"] - base["agents"])
        for s in steps[1:]
        if s["agents"] > base["agents"]
    ]
    fit = slope([(s["agents"], s["idle"]["RssAnon"]) for s in steps])
    return {
        "largest_passing_agents": max(passing, default=0),
        "stopped_by": None if steps[-1].get("passes") else steps[-1]["agents"],
        "kib_per_idle_connection": round(growth[-1], 1) if growth else None,
        "kib_per_idle_connection_fit": None if fit is None else round(fit, 1),
        "criterion": f"offer p99 <= {opts.p99_ms:g} ms at {opts.rate:g} orders/s, no offer "
        "missing, filing rate kept, every agent connected",
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{'agents':>7} {'RSS MiB':>8} {'anon MiB':>9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'max ms':>7} {'filed':>6} {'miss':>5} {'server%':>8}  pass"
    ]
    for s in result["steps"]:
        ld = s.get("load", {})
        off = ld.get("offer_ms", {})
        cpu = (ld.get("cpu_percent") or {}).get("server")

        def f(v: Any) -> str:
            return "-" if v is None else f"{v:.1f}"

        lines.append(
            f"{s['agents']:>7} {s['idle']['VmRSS'] / 1024:>8.1f} "
            f"{s['idle']['RssAnon'] / 1024:>9.1f} {f(off.get('p50')):>7} {f(off.get('p99')):>7} "
            f"{f(off.get('max')):>7} {ld.get('filed', '-'):>6} {ld.get('offers_missing', '-'):>5} "
            f"{f(cpu):>8}  {'yes' if s.get('passes') else 'NO'}"
        )
    sm = result["summary"]
    lines.append(
        f"largest passing: {sm['largest_passing_agents']} agents; memory per idle connection: "
        f"{sm['kib_per_idle_connection']} KiB (fit {sm['kib_per_idle_connection_fit']} KiB)"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)

    result = run_in_tmp("capacity", opts.max_seconds, lambda tmp: run(opts, tmp))
    if result is None:
        return 1
    result["options"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()}
    print(table(result), flush=True)
    if opts.out is not None:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print(f"figures: {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
