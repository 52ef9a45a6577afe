"""The server's exception tree: every exception class of the package is defined here.

::

    DispatchError                 root: anything the server raises on purpose
    ├── ConfigError               a setting is missing or malformed (start-up only)
    │   ├── CatalogError          a catalogue item or file is malformed (core/catalog.py; an
    │   │                         admin endpoint answers it with 422 naming the field)
    │   └── CalendarError         the working-day calendar file is malformed (core/workdays.py)
    ├── RequestError              the caller sent something we refuse; carries code + HTTP status
    │   ├── AuthError             401: no token, or a token we do not know
    │   ├── ForbiddenError        403: a known token acting on something not its own
    │   ├── NotFoundError         404
    │   ├── ConflictError         409
    │   └── RateLimitedError      429 rate_limited, with Retry-After
    ├── FrameError                a websocket frame we refuse (live/wire.py); answered with an
    │                             ``error`` frame, the connection stays open
    ├── StoreError                Postgres could not do what was asked
    │   ├── StoreUnavailableError Postgres is unreachable or timed out: retry later (503)
    │   ├── StoreConflictError    an integrity constraint refused the change (SQLSTATE 23)
    │   ├── StoreAmbiguousError   a write was sent, then its connection was lost or timed
    │   │                         out: it may have been recorded (find out before answering)
    │   └── UnknownGridError      a grid code given for an agent or an order does not exist
    └── RedisUnavailableError     Redis is unreachable or timed out: nothing was decided (503)

One more class lives outside the tree on purpose: ``core.refusals.Invalid`` (and its
``Unknown``) is raised inside the pure rules and caught by ``core.workflow.decide``, which
returns it as a refusal value; it never leaves the core.

Expected outcomes are values, not exceptions: a lost claim is ``ClaimOutcome.TAKEN``, an
order already widened is simply not widened again, and a workflow action refused is a
``refusals.Refusal`` until the shell turns it into a RequestError.  Raw asyncpg and redis
exceptions never reach an endpoint: the store and the Redis gateway translate them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class DispatchError(Exception):
    """Root of every exception the server raises on purpose."""


class ConfigError(DispatchError):
    """A setting is missing or malformed."""


class CatalogError(ConfigError):
    """An item or the catalogue file is malformed.  ``field`` names the fault.

    In a file the field is prefixed with the item's position: ``items[3].materials[1]``.  An
    admin endpoint maps this to HTTP 422 ``invalid_value`` with ``details.field``.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class CalendarError(ConfigError):
    """The calendar file is malformed.  ``field`` points at the fault (``holidays[2].end``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"calendar {field}: {message}")
        self.field = field
        self.message = message


class RequestError(DispatchError):
    """The request is refused.  ``code`` is stable; ``message`` is for people."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details


class AuthError(RequestError):
    status = 401
    code = "unauthorized"


class ForbiddenError(RequestError):
    status = 403
    code = "forbidden"


class NotFoundError(RequestError):
    status = 404
    code = "not_found"


class ConflictError(RequestError):
    status = 409
    code = "conflict"


class FrameError(DispatchError):
    """A frame from a client could not be accepted.

    ``code`` is one of the stable frame error codes of :mod:`dispatcher.live.wire`;
    ``request_id`` is the bad frame's ``request_id`` when it had a readable one, so the client
    can match the error to its attempt.
    It never leaves the connection handler, which answers it with an ``error`` frame and keeps
    the connection open.
    """

    def __init__(
        self, code: str, message: str, request_id: Any = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id
        self.field = field


class StoreError(DispatchError):
    """Postgres refused or failed an operation."""


class StoreUnavailableError(StoreError):
    """Postgres is unreachable or timed out; nothing was recorded.  Retry later."""


class StoreAmbiguousError(StoreError):
    """A write was sent and then its connection was lost or timed out: Postgres may have
    recorded it, or may still.  ``backend`` is the server process that ran it: once that
    process has ended (``Store.settle_backend``), reading the data tells what happened."""

    def __init__(self, message: str, backend: int) -> None:
        super().__init__(message)
        self.backend = backend


class RedisUnavailableError(DispatchError):
    """Redis is unreachable or timed out; nothing was decided.  Retry later."""


class StoreConflictError(StoreError):
    """An integrity constraint refused the change (SQLSTATE class 23)."""

    def __init__(self, message: str, constraint: str | None) -> None:
        super().__init__(message)
        self.constraint = constraint


class UnknownGridError(StoreError):
    """A grid code given for an agent or an order does not exist."""

    def __init__(self, codes: Sequence[str]) -> None:
        super().__init__(f"unknown grid(s): {', '.join(codes)}")
        self.codes = list(codes)


class RateLimitedError(RequestError):
    """Too many requests: 429 ``rate_limited``; ``retry_after`` (seconds) goes in the
    ``Retry-After`` header."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: float, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after
