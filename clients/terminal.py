"""The terminal agent app behind ``python -m clients``: frames as JSON lines, reconnecting.

When the connection drops (the server restarts, the network blinks) the app says so on
stderr and connects again after an exponential backoff with jitter (:class:`Backoff`); the
server's snapshot on connect then brings every order open to the agent again.  It stops for
good only when the server refuses the agent (a 4xxx close code or HTTP status, such as 4401
for a bad token) or closes for a reason a retry would only repeat (a protocol error).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections.abc import Callable
from typing import TextIO

from websockets.exceptions import InvalidHandshake

from clients.agent import AgentClient
from clients.framesocket import ClientError, ConnectionRejectedError
from dispatcher.live import wire

RETRY_CLOSE_CODES = frozenset({1000, 1001, 1006, 1011, 1012, 1013, 1014})
"""Close codes after which reconnecting may work: normal, going away (a server shutting
down), dropped, server error, service restart, try again later, bad gateway."""


class Backoff:
    """Delays before reconnect attempts: ``base * 2**attempt`` capped at ``cap`` seconds, of
    which a random half is waited ("equal jitter"), so clients dropped together by one
    restart do not come back together.  :meth:`reset` after a successful connection."""

    def __init__(
        self, base: float = 0.5, cap: float = 30.0, rng: Callable[[], float] = random.random
    ) -> None:
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._rng = rng

    def next(self) -> float:
        ceiling = min(self.cap, self.base * 2.0**self.attempt)
        self.attempt += 1
        return ceiling / 2 + self._rng() * ceiling / 2

    def reset(self) -> None:
        self.attempt = 0


def _line(frame: wire.ServerFrame) -> str:
    return json.dumps(wire.to_map(frame), ensure_ascii=False)


async def run(
    url: str,
    token: str,
    *,
    grab: bool = False,
    backoff: Backoff | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Print every frame of the agent's connection as a JSON line, reconnecting when it
    drops; with ``grab``, claim every offer.  Returns the exit code once the server refuses
    the agent (1) or closes for a reason a retry would repeat (0 for a normal close)."""
    backoff = backoff or Backoff()

    def say(text: str, to: TextIO) -> None:
        print(text, file=to, flush=True)

    connected_once = False
    while True:
        why: str
        try:
            agent = await AgentClient.connect(url, token)
        except ConnectionRejectedError as exc:
            if 4000 <= exc.code < 5000:
                say(f"refused: {exc}", err)
                return 1
            why = str(exc)
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            why = f"cannot connect: {exc or type(exc).__name__}"
        else:
            if connected_once:
                say("reconnected; the snapshot follows", err)
            connected_once = True
            backoff.reset()
            async with agent:
                say(_line(agent.welcome), out)
                async for frame in agent:
                    say(_line(frame), out)
                    if grab and isinstance(frame, wire.Offer) and frame.order["id"] in agent.offers:
                        try:
                            result = await agent.claim(frame.order["id"])
                        except (ClientError, TimeoutError) as exc:  # dropped meanwhile...
                            say(f"claim {frame.order['id']}: {exc}", err)
                        else:
                            say(_line(result), out)
            code, reason = agent.close_code, agent.close_reason
            if code not in RETRY_CLOSE_CODES:
                say(f"closed: {code} {reason}", err)
                return 1 if code is not None and 4000 <= code < 5000 else 0
            why = f"connection closed ({code}{': ' + reason if reason else ''})"
        delay = backoff.next()
        say(f"{why}; reconnecting in {delay:.1f} s (attempt {backoff.attempt})", err)
        await asyncio.sleep(delay)
