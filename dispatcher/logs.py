"""Logging: one short line per event, ``key=value`` context, quiet at info under load."""

from __future__ import annotations

import logging
import sys


def configure(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s", "%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Per-connection chatter from the server and drivers stays out of info.
    for noisy in ("uvicorn.access", "uvicorn.error", "websockets", "asyncio", "pgserver", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
