"""Run one load-test scenario headless, then check consistency: one command per scenario.

    python -m loadtest.run SCENARIO [--users 200] [--spawn-rate R] [--duration 30s]
                           [--host URL [--admin-token T]] [--out DIR] [-- LOCUST ARGS...]

Without ``--host`` it starts everything itself: Redis (``REDIS_URL``, else an embedded
redis-server), a private Postgres database (on ``DATABASE_URL``'s server, else an embedded
PostgreSQL), and ``bangban serve`` on a free port with the scenario's widening deadline.  With
``--host`` it runs against that server; the consistency check then needs ``--redis-url`` and
``--database-url`` (or ``REDIS_URL`` / ``DATABASE_URL``) and is skipped without them.

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
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import redis

from dispatcher.board import scripts as rs
from dispatcher.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from dispatcher.settings import Settings
from loadtest.consistency import check
from loadtest.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"
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


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def raise_open_files() -> None:
    """Thousands of websockets need thousands of descriptors (inherited by the children)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@contextlib.contextmanager
def private_database(server_url: str) -> Iterator[str]:
    """A fresh database on ``server_url``'s server, dropped on exit."""
    name = f"bangban_loadtest_{os.getpid()}_{secrets.token_hex(3)}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(server_url, timeout=30)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(server_url, name)
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


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
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANGBAN_")}
    env.update(
        REDIS_URL=redis_url,
        DATABASE_URL=database_url,
        BANGBAN_ADMIN_TOKEN=token,
        BANGBAN_WIDEN_AFTER=str(widen_after),
        BANGBAN_MAX_HELD=str(max_held),
        BANGBAN_LOG_LEVEL="warning",
        PYTHONPATH=str(ROOT),
    )
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dispatcher", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(timeout=1) as http:
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"server exited: {log.read_text()[-2000:]}")
                try:
                    if http.get(url + "/v1/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"server did not start: {log.read_text()[-2000:]}")
                time.sleep(0.1)
        print(f"server: {url} (widen after {widen_after:g} s; log {log})", flush=True)
        yield url, token
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def backends(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """Redis and a private Postgres database; yields their URLs; stops what it started."""
    env = Settings.from_env()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bangban-lt-")))
        redis_url = env.redis_url
        if redis_url is None:
            redis_url = stack.enter_context(EmbeddedRedis(tmp / "redis", persist=False)).url
        else:
            ensure_empty_redis(redis_url, args.flush_redis)
        pg_url = env.database_url
        if pg_url is None:
            pg_url = stack.enter_context(EmbeddedPostgres(tmp / "pg")).url
        yield redis_url, stack.enter_context(private_database(pg_url))


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


def run_locust(args: argparse.Namespace, target: Target, out: Path, extra: list[str]) -> int:
    spawn_rate = args.spawn_rate or min(args.users, 100)
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "-u",
        str(args.users),
        "-r",
        str(spawn_rate),
        "-t",
        args.duration,
        "--host",
        target.url,
        "--scenario",
        args.scenario,
        "--won-log",
        str(out / "won.jsonl"),
        "--csv",
        str(out / "locust"),
        "--csv-full-history",
        "--html",
        str(out / "report.html"),
        *extra,
    ]
    env = {**os.environ, "BANGBAN_ADMIN_TOKEN": target.admin_token, "PYTHONPATH": str(ROOT)}
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.run",
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
    raise_open_files()

    with contextlib.ExitStack() as stack:
        if args.host:
            env = Settings.from_env()
            token = args.admin_token or env.admin_token
            if not token:
                parser.error("--host needs --admin-token (or BANGBAN_ADMIN_TOKEN)")
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
