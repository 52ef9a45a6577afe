"""How many agents one machine holds: memory per idle connection, and the most agents
connected while p99 offer latency stays within 100 ms under a steady stream of orders.

Run ``python -m loadtest.bench.capacity`` (``make capacity``); ``--help`` lists the knobs.  Like
:mod:`loadtest.bench` it starts Redis and Postgres (embedded unless ``REDIS_URL`` /
``DATABASE_URL`` are set), ``--processes`` ``bangban serve`` processes (one by default) on free
ports of the one Redis and Postgres, seeds through the admin API, and holds the agents'
websockets in separate worker processes.

**Per-process limits.**  Every agent is a socket in a server process and one in a client worker,
and a process may hold at most its open-files limit (``ulimit -Hn``; this machine: 20,000).
Agents go round-robin over the server processes, and over the workers; ``--workers auto``
starts enough workers that none holds more than its limit allows (``LIMIT_HEADROOM`` left for
everything else).  Each server process listens on its own port, and all connections to one
port share the machine's ephemeral port range (``ip_local_port_range``).  The run prints the
plan; a step that needs more than a limit allows is still tried, and when it fails the report
names the limit (``stopped_because``), not the server.

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
stops at the first step that does not pass (with ``--keep-going``, only at one whose agents
failed to connect).  Figures go to stdout and ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import math
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
LIMIT_HEADROOM = 250
"""Open files a process needs besides its agent sockets (pools, pipes, logs, listeners)."""


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
    workers: int | None  # None: enough for the open-files limit (--workers auto)
    filers: int
    deflate: bool
    out: Path | None
    max_seconds: float
    processes: int = 1
    keep_going: bool = False


def parse_args(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(
        prog="python -m loadtest.bench.capacity",
        description="Agents one machine holds (over --processes server processes) at p99 "
        "offer latency <= 100 ms, and memory per idle agent connection.",
    )
    p.add_argument("--steps", default="400,2000,4800,7600,10000,12400,15200")
    p.add_argument("--grids", type=int, default=400)
    p.add_argument("--rate", type=float, default=50.0, help="orders filed per second")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per step")
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before that")
    p.add_argument("--settle", type=float, default=5.0, help="idle seconds before memory")
    p.add_argument("--p99-ms", type=float, default=100.0)
    p.add_argument(
        "--workers",
        default="auto",
        help="client worker processes; auto: at least 2, and enough that none holds more "
        "sockets than its open-files limit allows",
    )
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        help="bangban serve processes on the one Redis and Postgres (agents round-robin)",
    )
    p.add_argument("--filers", type=int, default=8, help="filer HTTP connections")
    p.add_argument(
        "--compression",
        choices=("none", "deflate"),
        default="none",
        help="clients offer permessage-deflate (browsers do; the server accepts it only with "
        "BANGBAN_WS_DEFLATE=true)",
    )
    p.add_argument(
        "--keep-going",
        action="store_true",
        help="go on after a step that misses the latency criterion (a busy machine); a step "
        "whose agents fail to connect still ends the run",
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
    workers = None if a.workers == "auto" else int(a.workers) if a.workers.isdigit() else 0
    if a.rate <= 0 or a.duration <= 0 or workers == 0 or a.filers < 1 or a.processes < 1:
        p.error("--rate, --duration, --workers (or auto), --processes, --filers must be positive")
    return Options(
        steps, a.grids, a.rate, a.duration, a.warmup, a.settle, a.p99_ms, workers, a.filers,
        a.compression == "deflate", Path(a.out) if a.out else None, a.max_seconds, a.processes,
        a.keep_going,
    )  # fmt: skip


@dataclass(frozen=True)
class Limits:
    """What this machine allows one process and one server port."""

    open_files: int  # per process, as raised (children inherit it)
    local_ports: int  # ephemeral ports: connections from 127.0.0.1 to one server port

    @classmethod
    def here(cls) -> Limits:
        ports = 28_232  # Linux's default 32768-60999
        with contextlib.suppress(OSError, ValueError):
            lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
            ports = int(hi) - int(lo) + 1
        return cls(raise_open_files_limit(), ports)

    @property
    def sockets_per_process(self) -> int:
        return max(1, self.open_files - LIMIT_HEADROOM)

    def workers_for(self, agents: int) -> int:
        """Client workers needed so that none holds more than its share of the limit."""
        return max(2, math.ceil(agents / self.sockets_per_process))

    def exceeded(self, agents: int, processes: int, workers: int) -> str | None:
        """Which limit ``agents`` connections over ``processes`` servers and ``workers``
        clients would pass (round-robin shares), or None."""
        per_server, per_worker = math.ceil(agents / processes), math.ceil(agents / workers)
        room = self.sockets_per_process
        if per_server > room:
            return (
                f"server open-file limit: {per_server} agents per server process, "
                f"{self.open_files} open files per process (more --processes)"
            )
        if per_worker > room:
            return (
                f"client open-file limit: {per_worker} agents per client worker, "
                f"{self.open_files} open files per process (more --workers)"
            )
        if per_server > self.local_ports:
            return (
                f"local ports: {per_server} connections to one server port, "
                f"{self.local_ports} ephemeral ports (more --processes)"
            )
        return None

    def as_dict(self, processes: int, workers: int) -> dict[str, int]:
        return {
            "open_files_per_process": self.open_files,
            "sockets_per_process": self.sockets_per_process,
            "local_ports": self.local_ports,
            "server_processes": processes,
            "client_workers": workers,
        }


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


def memory(pids: Sequence[int]) -> dict[str, Any]:
    """``VmRSS`` and ``RssAnon`` in KiB summed over the processes (``by_process`` when more
    than one), and the kernel's TCP buffer pages (the whole machine's)."""
    out: dict[str, Any] = {"VmRSS": 0, "RssAnon": 0}
    each: list[dict[str, int]] = []
    for pid in pids:
        own: dict[str, int] = {}
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                own[key] = int(value.split()[0])
                out[key] += own[key]
        each.append(own)
    if len(each) > 1:
        out["by_process"] = each
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


async def scrape_gc(servers: Sequence[BenchServer]) -> dict[str, dict[str, float]]:
    """GC passes of every server process, summed per generation."""
    out: dict[str, dict[str, float]] = {}
    for server in servers:
        # A client per call here and per step below: a keep-alive connection left idle through
        # a load phase can be closed by the server just as the next request goes out.
        async with ApiClient(server.url, server.admin_token, timeout=60) as admin:
            response = await admin.request("GET", "/metrics")
        response.raise_for_status()
        for gen, row in gc_pauses(response.text).items():
            total = out.setdefault(gen, dict.fromkeys(row, 0.0))
            for k, v in row.items():
                total[k] += v
    return out


async def load(
    pool: AgentPool,
    servers: Sequence[BenchServer],
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
    ports = [s.port for s in servers]
    filer = FilerProcess("127.0.0.1", ports, intake, codes, opts.filers, end, opts.rate)
    await asyncio.sleep(max(0.0, start - time.time()))
    before, gc_before = meter.snapshot(), await scrape_gc(servers)
    await asyncio.sleep(max(0.0, end - time.time()))
    after, gc_after = meter.snapshot(), await scrape_gc(servers)
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
    limits = Limits.here()
    workers = opts.workers or limits.workers_for(opts.steps[-1])
    log(
        f"plan: {opts.processes} server process(es), {workers} client worker(s); "
        f"{limits.open_files} open files per process, {limits.local_ports} local ports"
    )
    if over := limits.exceeded(opts.steps[-1], opts.processes, workers):
        log(f"warning: {opts.steps[-1]} agents pass the {over}")
    steps: list[dict[str, Any]] = []
    result: dict[str, Any] = {"steps": steps, "limits": limits.as_dict(opts.processes, workers)}
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
        servers: list[BenchServer] = []
        for k in range(opts.processes):
            log(f"starting bangban serve #{k + 1}")
            suffix = "" if k == 0 else str(k)
            server = BenchServer(
                backends,
                admin_token,
                tmp / f"data{suffix}",
                tmp / f"server{suffix}.log",
                extra_env={"BANGBAN_METRICS_TOKEN": admin_token},
            )
            servers.append(await stack.enter_async_context(server))
        pids = [s.pid for s in servers if s.pid is not None]
        ports = [s.port for s in servers]
        pool = AgentPool(workers)
        stack.callback(pool.close)
        meter = CpuMeter.for_run(backends, pids[0], pool.pids)
        meter.roots["server"] = pids
        url = servers[0].url
        async with ApiClient(url, admin_token, timeout=120) as admin:
            for i in range(opts.grids):
                await admin.create_grid(grid_code(i), f"容量网格 {i}")
            intake = (await admin.create_token("intake", "capacity"))["token"]
        seeded = 0
        for target in opts.steps:
            t = time.monotonic()
            async with ApiClient(url, admin_token, timeout=120) as admin:
                tokens = await seed_agents(admin, seeded, target, opts.grids)
            agents = [(tok, (seeded + j) // opts.grids) for j, tok in enumerate(tokens)]
            # Agent k goes to server k % processes, whatever step it joins in.
            turn = seeded % len(ports)
            conn = await pool.connect(
                "127.0.0.1", ports[turn:] + ports[:turn], agents, deflate=opts.deflate
            )
            seeded = target

            connected = conn["connected"]  # every welcomed connection the workers hold

            log(f"{connected} agents connected ({time.monotonic() - t:.0f} s with seeding)")
            await asyncio.sleep(opts.settle)
            idle = memory(pids)
            step: dict[str, Any] = {"agents": connected, "target": target, "failed": conn["failed"]}
            step["idle"] = idle
            steps.append(step)
            over = limits.exceeded(target, opts.processes, workers)
            if over is not None:
                step["over_limit"] = over
            if conn["failed"] or connected != target:
                step["failures"] = conn["failures"]
                step["passes"] = False
                step["stopped_because"] = blame(over, conn["failures"])
                log(f"{conn['failed']} agents failed to connect, e.g. {conn['failures'][:1]}")
                log(f"stopped by: {step['stopped_because']}")
                break
            log(f"load: {opts.rate:g} orders/s for {opts.warmup:g}+{opts.duration:g} s")
            step["load"] = await load(pool, servers, intake, target, opts, meter)

            step["after_load"] = memory(pids)
            step["passes"] = step["load"]["passes"]
            for server in servers:
                server.check_alive()
            log(f"{connected} agents: offer {step['load']['offer_ms']}, gc {step['load']['gc']}")

            if not step["passes"]:
                step["stopped_because"] = "server: " + LOAD_CRITERION
                if not opts.keep_going:
                    break
        await pool.disconnect()
        result["server_log"] = servers[0].log_summary()
        if len(servers) > 1:
            result["server_logs"] = [s.log_summary() for s in servers]
    result["summary"] = summarise(steps, opts)
    return result


LOAD_CRITERION = "offer p99, an offer missing, or the filing rate (see load)"
EMFILE = ("Too many open files", "Errno 24")


def blame(over: str | None, failures: Sequence[str]) -> str:
    """Why agents failed to connect: a per-process or port limit the step passes (or a client
    that ran out of descriptors), else the server."""
    if over is not None:
        return over
    if any(word in f for f in failures for word in EMFILE):
        return "client open-file limit (a worker ran out of descriptors)"
    return "server: agents failed to connect"


def summarise(steps: list[dict[str, Any]], opts: Options) -> dict[str, Any]:
    passing = [s["agents"] for s in steps if s.get("passes")]
    failed = [s for s in steps if not s.get("passes")]
    base = steps[0]
    growth = [
        (s["idle"]["RssAnon"] - base["idle"]["RssAnon"]) / (s["agents"] - base["agents"])
        for s in steps[1:]
        if s["agents"] > base["agents"]
    ]
    fit = slope([(s["agents"], s["idle"]["RssAnon"]) for s in steps])
    last = failed[0] if failed else steps[-1]
    return {
        "largest_passing_agents": max(passing, default=0),
        "stopped_by": None if last.get("passes") else last["target"],
        "stopped_because": last.get("stopped_because"),
        "processes": opts.processes,
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
    lim = result["limits"]
    lines.append(
        f"largest passing: {sm['largest_passing_agents']} agents on {lim['server_processes']} "
        f"server process(es), {lim['client_workers']} client worker(s); memory per idle "
        f"connection: {sm['kib_per_idle_connection']} KiB (fit "
        f"{sm['kib_per_idle_connection_fit']} KiB)"
    )
    if sm["stopped_because"]:
        lines.append(f"stopped at {sm['stopped_by']} agents by {sm['stopped_because']}")
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
