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
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from dispatcher import logs
from dispatcher.exceptions import ConfigError
from dispatcher.process import DataFolderLock, raise_open_files_limit, run_event_loop
from dispatcher.services import Backends
from dispatcher.settings import Settings

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import ASGIApp


def _backends(settings: Settings) -> Backends:
    """Embedded servers under the data folder for the URLs that are unset (kept between runs)."""
    return Backends(settings, settings.data_dir, announce=lambda line: print(line, flush=True))


def _with_urls(settings: Settings, backends: Backends) -> Settings:
    return dataclasses.replace(
        settings, redis_url=backends.redis_url, database_url=backends.database_url
    )


def _token_file(settings: Settings) -> Path:
    return settings.data_dir / "admin_token"


def _store_token(path: Path, token: str) -> None:
    """Write ``token`` to ``path``, readable by this user only (created so from the start)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    path.chmod(0o600)


def _admin_token(settings: Settings, *, remember: bool) -> tuple[Settings, str | None]:
    """For a local data folder: keep the generated admin token in it.  Also returns where the
    admin token comes from, to print instead of the token (a token is never printed: logs
    are read by more people than the operator)."""
    if settings.admin_token:
        return settings, "BANGBAN_ADMIN_TOKEN (not shown)"
    if not remember:
        return settings, None
    path = _token_file(settings)
    if path.exists():
        token = path.read_text().strip()
    else:
        from dispatcher import auth
        from dispatcher.core.roster import TokenKind

        token = auth.new_token(TokenKind.ADMIN)
        _store_token(path, token)
    return dataclasses.replace(settings, admin_token=token), f"stored in {path.resolve()}"


_DEFAULT_PUBLIC_URL = Settings().public_url


@contextlib.contextmanager
def demo_phones(
    settings: Settings, host: str, port: int, sms_port: int | None
) -> Iterator[Settings]:
    """The demo's SMS gateway (:mod:`dispatcher.sms_gateway`) in its own process, and settings
    that send texts to it; it posts replies and delivery reports back to the server."""
    import secrets
    import subprocess

    from dispatcher.embedded import free_port

    secret = secrets.token_urlsafe(16)
    sms_port = sms_port or free_port()
    base = f"http://{host}:{port}"
    command = [sys.executable, "-m", "dispatcher.sms_gateway", "--host", host]
    command += ["--port", str(sms_port), "--server", base, "--receipts"]
    # The secret goes by environment, not on the command line (where `ps` shows it).
    gateway = subprocess.Popen(command, env={**os.environ, "BANGBAN_SMS_SECRET": secret})
    try:
        yield dataclasses.replace(
            settings,
            sms_url=f"http://{host}:{sms_port}/send",
            sms_secret=secret,
            public_url=base if settings.public_url == _DEFAULT_PUBLIC_URL else settings.public_url,
        )
    finally:
        gateway.terminate()
        try:
            gateway.wait(5)
        except subprocess.TimeoutExpired:
            gateway.kill()


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


def uvicorn_config(
    app: ASGIApp, settings: Settings, host: str, port: int, *, graceful: int = 5
) -> uvicorn.Config:
    """How ``bangban serve`` runs the app (the tests' in-process servers run it the same way):
    websockets-sansio (:mod:`dispatcher.live.connection`), httptools, the loop the caller runs
    (uvloop for ``serve``)."""
    import uvicorn

    from dispatcher.live.connection import LeanWebSocketProtocol

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        ws=LeanWebSocketProtocol,  # websockets-sansio, keeping less per connection
        loop="none",
        http="httptools",
        ws_max_size=65536,
        ws_per_message_deflate=settings.ws_deflate,
        ws_ping_interval=settings.ws_ping_interval or None,
        ws_ping_timeout=20,
        lifespan="on",
        log_level="warning",
        log_config=None,  # uvicorn's loggers go to ours (stderr, and BANGBAN_LOG_FILE)
        access_log=False,
        timeout_graceful_shutdown=graceful,
        backlog=4096,
    )


async def _serve(
    settings: Settings,
    host: str,
    port: int,
    demo: bool,
    token_source: str | None = None,
    *,
    reuse_port: bool = False,
) -> None:
    import uvicorn

    raise_open_files_limit()

    from dispatcher.runtime import Started
    from dispatcher.web.app import create_app

    def started(info: Started) -> None:
        if info.generated_admin_token:
            # Generated by the server (none configured, none stored yet): kept in a file only
            # this user can read; the log says where, never what.
            path = _token_file(settings)
            _store_token(path, info.generated_admin_token)
            print(f"admin token: generated, stored in {path.resolve()}", flush=True)

    app = create_app(settings, on_started=started)
    config = uvicorn_config(app, settings, host, port)
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
        if token_source is not None:
            print(f"admin token: {token_source}", flush=True)
        if demo and settings.admin_token:
            from dispatcher import demo as demo_seed

            try:
                state = await asyncio.to_thread(
                    demo_seed.seed, base, settings.admin_token, settings.data_dir / "demo.json"
                )
            except ConfigError as exc:
                print(f"bangban: cannot seed the demo: {exc}", file=sys.stderr, flush=True)
                server.should_exit = True
                await task
                raise SystemExit(1) from None

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
            first = state["agents"][0]
            print("pages (the token after # stays in the browser):", flush=True)
            print(f"  agent app ({first['name']}): {base}/app/#token={first['token']}", flush=True)
            print(f"  intake page: {base}/file#token={state['intake_token']}", flush=True)
            if token_source is not None and token_source.startswith("stored in"):
                # The demo's own token, generated into its data folder: the console link
                # carries it.  A token from the environment is never printed.
                print(f"  console: {base}/console/#token={settings.admin_token}", flush=True)
            else:
                print(f"  console: {base}/console/#token=<the admin token>", flush=True)
            if "sample_order" in state:
                print(f"  applicant page: {state['sample_order']['tracking_url']}", flush=True)
            print(f"try: .venv/bin/python -m clients {base} <agent token> --grab", flush=True)
            if settings.sms_url:
                phones = settings.sms_url.removesuffix("/send")
                print(
                    f"demo phones (SMS to agents offline, reply with the code): {phones}/",
                    flush=True,
                )
    await task


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bangban", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the API (embedded Redis/Postgres if unset)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="seed the demo grids and agents")
    serve.add_argument("--data-dir", type=Path, help="embedded servers' data (BANGBAN_DATA_DIR)")
    serve.add_argument("--log-file", type=Path, help="also log to this file (BANGBAN_LOG_FILE)")
    serve.add_argument(
        "--sms-port", type=int, help="with --demo: the demo phones' port (default: a free one)"
    )
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
    if getattr(args, "log_file", None):
        settings = dataclasses.replace(settings, log_file=args.log_file)
    logs.configure(settings.log_level, settings.log_file)

    if args.command != "serve":
        from dispatcher import commands

        # These talk to Postgres only; running servers pick up new grids within
        # BANGBAN_RECONCILE_INTERVAL.
        with _backends(dataclasses.replace(settings, redis_url="unused")) as b:
            return commands.run(args, b.database_url)

    embedded = settings.redis_url is None or settings.database_url is None
    if not 1 <= args.workers <= 64:
        parser.error("--workers must be 1..64")
    if args.workers > 1 and args.demo:
        parser.error("--demo seeds through one process: run it once without --workers")
    with DataFolderLock(settings.data_dir) as lock:
        if embedded:  # one server per data folder: refuse before starting any embedded one
            try:
                lock.acquire(args.port)
            except ConfigError as exc:
                print(f"bangban: {exc}", file=sys.stderr, flush=True)
                return 1
        settings, token_source = _admin_token(settings, remember=embedded)
        with _backends(settings) as b, contextlib.ExitStack() as stack:
            s = _with_urls(settings, b)
            if args.workers > 1:
                from dispatcher import workers

                env = dict(os.environ)
                env.update(
                    REDIS_URL=s.redis_url or "",
                    DATABASE_URL=s.database_url or "",
                    BANGBAN_DATA_DIR=str(s.data_dir),
                )
                if s.admin_token:
                    env["BANGBAN_ADMIN_TOKEN"] = s.admin_token
                return workers.run(args.workers, args.host, args.port, env)
            if args.demo and s.sms_url is None:
                s = stack.enter_context(demo_phones(s, args.host, args.port, args.sms_port))
            try:
                run_event_loop(
                    _serve(
                        s,
                        args.host,
                        args.port,
                        args.demo,
                        token_source,
                        reuse_port=args.reuse_port,
                    )
                )
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
