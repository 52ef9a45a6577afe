"""Logging: one short line per event, ``key=value`` context, quiet at info under load."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def configure(level: str = "info", file: Path | None = None) -> None:
    """Log to stderr and, when ``file`` is given, append the same lines (with the date) to it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s", "%H:%M:%S")
    )
    handlers: list[logging.Handler] = [handler]
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(file, encoding="utf-8")
        to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        handlers.append(to_file)
    root = logging.getLogger()
    for old in root.handlers:
        old.close()
    root.handlers[:] = handlers
    root.setLevel(level.upper())
    # Per-connection chatter from the server and drivers stays out of info.
    for noisy in ("uvicorn.access", "uvicorn.error", "websockets", "asyncio", "pgserver", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
