"""The ``bangban`` command: ``serve``, ``migrate``, ``demo``.

``serve`` starts embedded Redis and Postgres under ``--data-dir`` when ``REDIS_URL`` /
``DATABASE_URL`` are unset, applies pending migrations, and serves the API with uvicorn
(websockets-sansio protocol, uvloop).  Ctrl-C stops the server and everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import sys
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

from dispatcher import logs
from dispatcher.settings import Settings


@contextlib.contextmanager
def services(settings: Settings, *, persist: bool = True) -> Iterator[Settings]:
    """Settings with Redis and Postgres URLs, starting embedded servers for missing ones."""
    from dispatcher.embedded import EmbeddedPostgres, EmbeddedRedis

    with contextlib.ExitStack() as stack:
        if settings.redis_url is None:
            redis = stack.enter_context(EmbeddedRedis(settings.data_dir / "redis", persist=persist))
            settings = dataclasses.replace(settings, redis_url=redis.url)
            print(f"embedded redis: {redis.url}", flush=True)
        if settings.database_url is None:
            pg = stack.enter_context(EmbeddedPostgres(settings.data_dir / "pg"))
            settings = dataclasses.replace(settings, database_url=pg.url)
            print(f"embedded postgres: {pg.url}", flush=True)
        yield settings


def _admin_token(settings: Settings, *, remember: bool) -> Settings:
    """For a local data folder: keep the generated admin token in it, so it can be printed."""
    if settings.admin_token or not remember:
        return settings
    path = settings.data_dir / "admin_token"
    if path.exists():
        token = path.read_text().strip()
    else:
        from dispatcher import auth
        from dispatcher.core.roster import TokenKind

        token = auth.new_token(TokenKind.ADMIN)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(token + "\n")
        path.chmod(0o600)
    return dataclasses.replace(settings, admin_token=token)


def raise_open_files_limit() -> int:
    """Raise this process's open-file limit to its hard limit (each agent is a socket; the
    common default of 1,024 would refuse agents long before memory or CPU run out)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # above the kernel's nr_open: keep what we have
            pass
    return soft


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket that other processes may bind too (``SO_REUSEPORT``): the kernel
    spreads new connections over them (``--workers``)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


async def _serve(
    settings: Settings, host: str, port: int, demo: bool, *, reuse_port: bool = False
) -> None:
    import uvicorn

    raise_open_files_limit()

    from dispatcher.web.app import Started, create_app

    def started(info: Started) -> None:
        if info.generated_admin_token:
            print(f"admin token (generated, shown once): {info.generated_admin_token}", flush=True)

    app = create_app(settings, on_started=started)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ws="websockets-sansio",
        loop="none",
        http="httptools",
        ws_max_size=65536,
        ws_per_message_deflate=settings.ws_deflate,
        ws_ping_interval=20,
        ws_ping_timeout=20,
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
        backlog=4096,
    )
    server = uvicorn.Server(config)
    # Ctrl-C / SIGTERM ask uvicorn to shut down gracefully (the lifespan closes every pool and
    # task); uvicorn's own handlers would re-raise the signal afterwards and cancel the
    # shutdown half way.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    loop = asyncio.get_running_loop()
    draining: list[asyncio.Task[None]] = []

    async def drain_then_exit() -> None:
        from dispatcher.live.drain import drain

        ctx = getattr(app.state, "ctx", None)
        if ctx is not None and server.started:
            await drain(ctx)
        server.should_exit = True

    def on_signal() -> None:
        if draining:  # a second signal: stop now
            server.should_exit = True
            return
        draining.append(asyncio.create_task(drain_then_exit()))

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    sockets = [reuse_port_socket(host, port)] if reuse_port else None
    task = asyncio.create_task(server.serve(sockets=sockets))
    while not server.started and not task.done():  # noqa: ASYNC110 (uvicorn exposes a flag)
        await asyncio.sleep(0.05)
    if server.started:
        base = f"http://{host}:{port}"
        print(
            f"bangban serving on {base}  (agent websocket: ws://{host}:{port}/v1/agent/ws)",
            flush=True,
        )
        if settings.admin_token:
            print(f"admin token: {settings.admin_token}", flush=True)
        if demo and settings.admin_token:
            from dispatcher import demo as demo_seed

            state = await asyncio.to_thread(
                demo_seed.seed, base, settings.admin_token, settings.data_dir / "demo.json"
            )

            print(f"intake token: {state['intake_token']}", flush=True)
            print(
                f"demo county: {state['grids']['grids']} grids,"
                f" {len(state['agents'])} agents; all tokens in"
                f" {settings.data_dir / 'demo.json'}",
                flush=True,
            )
            for agent in state["agents"][: demo_seed.SHOWN_AGENTS]:
                print(
                    f"agent {agent['id']} {agent['name']} grids={','.join(agent['grids'])}"
                    f" token: {agent['token']}",
                    flush=True,
                )
            print(f"try: .venv/bin/python -m clients {base} <agent token> --grab", flush=True)
    await task


def _run(coro: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # uvloop is an optional speed-up (no Windows build)
        asyncio.run(coro)
        return
    uvloop.run(coro)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bangban", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the API (embedded Redis/Postgres if unset)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="seed the demo grids and agents")
    serve.add_argument("--data-dir", type=Path, help="embedded servers' data (BANGBAN_DATA_DIR)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="N server processes on one port (SO_REUSEPORT), restarted if one dies;"
        " SIGHUP restarts them one at a time",
    )
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    for name, text in (("migrate", "apply pending migrations and exit"),):
        sub.add_parser(name, help=text).add_argument("--data-dir", type=Path)
    grids = sub.add_parser("grids", help="grid files").add_subparsers(dest="action", required=True)
    grids_import = grids.add_parser("import", help="replace the grids with a GeoJSON file")
    grids_import.add_argument("file", type=Path)
    grids_import.add_argument("--data-dir", type=Path)
    agents = sub.add_parser("agents", help="agent rosters").add_subparsers(
        dest="action", required=True
    )
    agents_import = agents.add_parser("import", help="create the agents of a CSV roster")
    agents_import.add_argument("file", type=Path)
    agents_import.add_argument(
        "--tokens-out",
        type=Path,
        required=True,
        help="CSV file to write the new agents' tokens to (shown once)",
    )
    agents_import.add_argument("--data-dir", type=Path)
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    if getattr(args, "data_dir", None):
        settings = dataclasses.replace(settings, data_dir=args.data_dir)
    logs.configure(settings.log_level)

    if args.command != "serve":
        from dispatcher import commands

        # These talk to Postgres only; running servers pick up new grids within
        # BANGBAN_RECONCILE_INTERVAL.
        with services(dataclasses.replace(settings, redis_url="unused")) as s:
            assert s.database_url is not None
            return commands.run(args, s.database_url)

    embedded = settings.redis_url is None or settings.database_url is None
    settings = _admin_token(settings, remember=embedded)
    if not 1 <= args.workers <= 64:
        parser.error("--workers must be 1..64")
    if args.workers > 1 and args.demo:
        parser.error("--demo seeds through one process: run it once without --workers")
    with services(settings) as s:
        if args.workers > 1:
            from dispatcher import workers

            env = {k: v for k, v in os.environ.items()}
            env.update(
                REDIS_URL=s.redis_url or "",
                DATABASE_URL=s.database_url or "",
                BANGBAN_DATA_DIR=str(s.data_dir),
            )
            if s.admin_token:
                env["BANGBAN_ADMIN_TOKEN"] = s.admin_token
            return workers.run(args.workers, args.host, args.port, env)
        try:
            _run(_serve(s, args.host, args.port, args.demo, reuse_port=args.reuse_port))
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
