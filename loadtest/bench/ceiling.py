"""The ceiling: a bare ``websockets`` server that only broadcasts, for the fan-out comparison.

``python -m loadtest.bench.ceiling --port P`` serves two websocket paths:

- ``/v1/agent/ws``: an agent; it gets a ``welcome`` frame (from :mod:`dispatcher.live.wire`) on
  connect and then whatever is broadcast;
- ``/trigger``: every message received here is sent as is to every connected agent with
  :func:`websockets.asyncio.server.broadcast`.

No authentication, no Redis, no Postgres, no per-connection queue: what is left is the cost of
the websockets library writing one frame to N sockets from one Python process, which no server
built on it can beat.  It runs on uvloop like ``bangban serve``, prints ``ready <port>`` once
listening, and stops on SIGTERM/SIGINT or after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time

from websockets.asyncio.server import ServerConnection, broadcast, serve

from dispatcher.live import wire
from dispatcher.process import raise_open_files_limit, run_event_loop

AGENT_PATH = "/v1/agent/ws"
TRIGGER_PATH = "/trigger"


async def run(host: str, port: int, deflate: bool, max_seconds: float) -> None:
    agents: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        path = ws.request.path.split("?", 1)[0] if ws.request is not None else ""
        if path == TRIGGER_PATH:
            async for message in ws:
                broadcast(agents, message)
            return
        if path != AGENT_PATH:
            await ws.close(4404, "no such path")
            return
        agents.add(ws)
        try:
            await ws.send(wire.encode(wire.Welcome(0, [], int(time.time() * 1000))))
            async for _ in ws:  # agents send nothing here; drain whatever comes
                pass
        finally:
            agents.discard(ws)

    loop = asyncio.get_running_loop()
    stop: asyncio.Future[None] = loop.create_future()

    def on_signal() -> None:
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    async with serve(
        handler,
        host,
        port,
        compression="deflate" if deflate else None,
        max_size=wire.MAX_FRAME_BYTES,
        backlog=4096,
    ):
        print(f"ready {port}", flush=True)
        try:
            await asyncio.wait_for(stop, max_seconds)
        except TimeoutError:
            pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench.ceiling", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args(argv)
    raise_open_files_limit()
    run_event_loop(run(args.host, args.port, args.deflate, args.max_seconds))


if __name__ == "__main__":
    main()
