"""Run one load-test scenario headless, then check consistency: one command per scenario.

    python -m loadtest.locust SCENARIO [--users 200] [--spawn-rate R] [--duration 30s]
                           [--host URL [--admin-token T]] [--out DIR] [-- LOCUST ARGS...]

Without ``--host`` it starts everything itself: Redis (``REDIS_URL``, else an embedded
redis-server), a private Postgres database (on ``DATABASE_URL``'s server, else an embedded
PostgreSQL), and ``bangban serve`` on a free port with the scenario's widening deadline.  With
``--host`` it runs against that server; the consistency check then needs ``--redis-url`` and
``--database-url`` (or ``REDIS_URL`` / ``DATABASE_URL``) and is skipped without them.  A run
against an existing server puts everything it makes under one random prefix (grid codes,
agent and token names: ``lt<hex>-``), but the admin API has no delete, so it refuses (exit 2,
saying what would stay) unless ``--allow-leftovers`` is given.

Writes into ``loadtest/results/runs/<scenario>/`` (or ``--out``): ``locust_stats.csv``,
``locust_stats_history.csv``, ``locust_failures.csv``, ``locust_exceptions.csv``,
``report.html``, ``won.jsonl``, ``consistency.json`` and, for a server it started,
``server.log``.  Exits 0 when locust recorded no failure and the check passed, 1 when the check
failed, else locust's exit code (1: failures; 2: locust could not run the test).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from dispatcher.board import scripts as rs
from dispatcher.process import raise_open_files_limit
from dispatcher.services import Backends, ServerProcess
from dispatcher.settings import Settings
from loadtest.locust.consistency import check
from loadtest.locust.scenarios import SCENARIOS, plan

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
RESULTS = ROOT / "loadtest" / "results" / "runs"
OUTPUTS = (
    "locust_stats.csv",
    "locust_stats_history.csv",
    "locust_failures.csv",
    "locust_exceptions.csv",
    "report.html",
    "won.jsonl",
    "consistency.json",
    "server.log",
)
START_TIMEOUT = 60.0
SETTLE = 3.0
"""Seconds the check may re-read Redis and Postgres while they disagree (claims in flight)."""


@dataclass(frozen=True)
class Target:
    url: str
    admin_token: str
    redis_url: str | None
    database_url: str | None


def ensure_empty_redis(url: str, flush: bool) -> None:
    """A new database numbers orders from 1 again: old ``bb:`` keys would collide."""
    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        if next(iter(client.scan_iter(match=rs.PREFIX + "*", count=1000)), None) is None:
            return
        if not flush:
            raise SystemExit(
                f"Redis at {url} has {rs.PREFIX}* keys: point REDIS_URL at a spare database"
                " (redis://host:6379/9) or pass --flush-redis"
            )
        client.flushdb()
    finally:
        client.close()


@contextlib.contextmanager
def serve(
    redis_url: str, database_url: str, widen_after: float, max_held: int, log: Path
) -> Iterator[tuple[str, str]]:
    """``bangban serve`` on a free port; yields (url, admin token); stops it on exit.

    Load-test agents never finish an order, so ``max_held`` (``BANGBAN_MAX_HELD``) is set
    high by default: the limit would otherwise end every agent's part in the race after a
    few wins.
    """
    token = "bba_loadtest-" + secrets.token_urlsafe(12)
    overrides = {
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "BANGBAN_ADMIN_TOKEN": token,
        "BANGBAN_WIDEN_AFTER": str(widen_after),
        "BANGBAN_MAX_HELD": str(max_held),
        "BANGBAN_LOG_LEVEL": "warning",
    }
    log.unlink(missing_ok=True)
    env = ServerProcess.environment(overrides, inherit_settings=False)
    server = ServerProcess(env, log, start_timeout=START_TIMEOUT)
    try:
        server.start_blocking()
    except (RuntimeError, TimeoutError) as exc:
        raise SystemExit(str(exc)) from None
    try:
        print(f"server: {server.url} (widen after {widen_after:g} s; log {log})", flush=True)
        yield server.url, token
    finally:
        server.stop_blocking()


@contextlib.contextmanager
def backends(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """Redis and a private Postgres database; yields their URLs; stops what it started."""
    settings = Settings.from_env()
    if settings.redis_url is not None:
        ensure_empty_redis(settings.redis_url, args.flush_redis)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bangban-lt-")))
        b = stack.enter_context(Backends(settings, tmp, persist=False, private_database="loadtest"))
        yield b.redis_url, b.database_url


def leftovers(args: argparse.Namespace, prefix: str, intake_users: int) -> str:
    """What a run against an existing server leaves there: the admin API has no delete."""
    scenario = SCENARIOS[args.scenario]
    agents = max(args.users - intake_users, 1)
    layout = plan(scenario, agents, prefix)
    return (
        f"{len(layout.grids)} grids (codes {prefix}*), {agents} agents named"
        f" {prefix}压测代办员<n> with their tokens, an intake token named"
        f" '{prefix}loadtest {scenario.name}', and every order the run files"
        f" (about {scenario.order_rate:g}/s for {args.duration}, unless --order-rate says"
        " otherwise), with its events"
    )


def seconds(timespan: str) -> int:
    """Locust's run-time syntax: ``90``, ``30s``, ``2m``, ``1h30m``.  Raises ValueError.

    (Parsed here: importing locust would monkey-patch this process with gevent.)
    """
    if timespan.isdigit():
        return int(timespan)
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", timespan.strip())
    if not timespan.strip() or m is None:
        raise ValueError(f"{timespan!r} is not a duration such as 30s, 2m or 1h30m")
    h, mins, s = (int(g or 0) for g in m.groups())
    return h * 3600 + mins * 60 + s


def locust_command(host: str, scenario: str, out: Path, *args: str) -> list[str]:
    """locust, headless, running ``scenario`` against ``host``; reports and the won log go
    into ``out``.  ``args`` go to locust (users, run time, the locustfile's options)."""
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--host",
        host,
        "--scenario",
        scenario,
        "--won-log",
        str(out / "won.jsonl"),
        "--csv",
        str(out / "locust"),
        "--html",
        str(out / "report.html"),
        *args,
    ]


def locust_env(admin_token: str) -> dict[str, str]:
    """The environment locust runs in: the admin token (never on its command line)."""
    return {**os.environ, "BANGBAN_ADMIN_TOKEN": admin_token, "PYTHONPATH": str(ROOT)}


def run_locust(args: argparse.Namespace, target: Target, out: Path, extra: list[str]) -> int:
    spawn_rate = args.spawn_rate or min(args.users, 100)
    cmd = locust_command(
        target.url,
        args.scenario,
        out,
        *("-u", str(args.users), "-r", str(spawn_rate), "-t", args.duration),
        "--csv-full-history",
        *extra,
    )
    env = locust_env(target.admin_token)
    print("locust: " + " ".join(cmd[2:]), flush=True)
    timeout = seconds(args.duration) + 120
    try:
        return subprocess.run(cmd, env=env, cwd=ROOT, timeout=timeout, check=False).returncode
    except subprocess.TimeoutExpired:
        print(f"locust did not finish within {timeout} s", file=sys.stderr)
        return 2


def consistency(target: Target, out: Path) -> bool | None:
    """Run the check; None when it cannot (no Redis/Postgres URLs for a foreign server)."""
    if not target.redis_url or not target.database_url:
        print("consistency: skipped (give --redis-url and --database-url)", flush=True)
        return None
    report = asyncio.run(
        check(out / "won.jsonl", target.redis_url, target.database_url, settle=SETTLE)
    )
    print(report.verdict(), flush=True)
    (out / "consistency.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    return report.ok


def _extra_option(extra: list[str], name: str) -> str | None:
    """The last value of ``name`` among the arguments passed through to locust."""
    value = None
    for i, arg in enumerate(extra):
        if arg == name and i + 1 < len(extra):
            value = extra[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.locust",
        description=__doc__.splitlines()[0],
        epilog="Arguments after -- go to locust, e.g. -- --order-rate 5 --think-ms 0-200",
    )
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--users", "-u", type=int, default=200, help="locust users (200)")
    parser.add_argument("--spawn-rate", "-r", type=float, help="users started per second")
    parser.add_argument("--duration", "-t", default="30s", help="run time, e.g. 30s, 2m (30s)")
    parser.add_argument("--host", help="an existing server (default: start one)")
    parser.add_argument("--admin-token", help="its admin token (default: BANGBAN_ADMIN_TOKEN)")
    parser.add_argument("--redis-url", help="its Redis, for the check (default: REDIS_URL)")
    parser.add_argument("--database-url", help="its Postgres (default: DATABASE_URL)")
    parser.add_argument("--widen-after", type=float, help="seconds, for a server started here")
    parser.add_argument(
        "--max-held", type=int, default=1000, help="BANGBAN_MAX_HELD, for a server started here"
    )
    parser.add_argument(
        "--allow-leftovers",
        action="store_true",
        help="with --host: run although the run's grids, agents, tokens and orders stay there",
    )
    parser.add_argument("--flush-redis", action="store_true", help="empty REDIS_URL's database")
    parser.add_argument("--out", type=Path, help="default: loadtest/results/runs/<scenario>")
    args = parser.parse_args(argv)
    try:
        seconds(args.duration)
    except ValueError as exc:
        parser.error(str(exc))

    out: Path = args.out or RESULTS / args.scenario
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        (out / name).unlink(missing_ok=True)
    raise_open_files_limit()

    with contextlib.ExitStack() as stack:
        if args.host:
            env = Settings.from_env()
            token = args.admin_token or env.admin_token
            if not token:
                parser.error("--host needs --admin-token (or BANGBAN_ADMIN_TOKEN)")
            # Everything this run makes carries one prefix: the run's own namespace there.
            prefix = _extra_option(extra, "--grid-prefix") or f"lt{secrets.token_hex(3)}-"
            extra = ["--grid-prefix", prefix, *extra]
            shown = "" if prefix == "none" else prefix
            left = leftovers(args, shown, int(_extra_option(extra, "--intake-users") or 1))
            if not args.allow_leftovers:
                print(
                    f"refused: {args.host} has no delete in its admin API, so this run would"
                    f" leave there for good: {left}.  Run without --host (a server and"
                    " database of its own, removed afterwards), or pass --allow-leftovers.",
                    file=sys.stderr,
                    flush=True,
                )
                return 2
            print(f"leaving on {args.host}: {left}", flush=True)
            target = Target(
                args.host,
                token,
                args.redis_url or env.redis_url,
                args.database_url or env.database_url,
            )
            code = run_locust(args, target, out, extra)
        else:
            redis_url, database_url = stack.enter_context(backends(args))
            widen_after = args.widen_after or SCENARIOS[args.scenario].widen_after
            # The check runs once the server has stopped: nothing is then in flight.
            server = serve(redis_url, database_url, widen_after, args.max_held, out / "server.log")
            with server as (url, token):
                target = Target(url, token, redis_url, database_url)
                code = run_locust(args, target, out, extra)
        ok = consistency(target, out)
    print(f"reports: {out}", flush=True)
    if code != 0:
        return code
    return 1 if ok is False else 0


if __name__ == "__main__":
    sys.exit(main())
