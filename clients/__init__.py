"""Bangban clients: the agent and applicant websockets and the HTTP API (PROTOCOL.md, v1).

Frames are the classes of :mod:`dispatcher.live.wire`, the one wire schema.

Errors (expected outcomes such as a lost claim are values, not errors)::

    ClientError                    root of every error raised here
    ├── ConnectionRejectedError    websocket refused before it was ready (code 4401: bad token)
    ├── ConnectionClosedError      websocket closed (code 1009: frame too large)
    ├── FrameRejectedError         an ``error`` frame answered one of our frames
    └── ApiError                   non-2xx HTTP answer (status, code, message)

Timeouts raise the built-in :class:`TimeoutError`; transport failures raise the exceptions of
websockets, httpx or :class:`OSError` unwrapped.
"""

from __future__ import annotations

from clients.agent import AgentClient
from clients.api import ApiClient, ApiError
from clients.applicant import TrackingClient
from clients.framesocket import (
    ClientError,
    Connecting,
    ConnectionClosedError,
    ConnectionRejectedError,
    FrameRejectedError,
)

__all__ = [
    "AgentClient",
    "ApiClient",
    "ApiError",
    "ClientError",
    "Connecting",
    "ConnectionClosedError",
    "ConnectionRejectedError",
    "FrameRejectedError",
    "TrackingClient",
]
