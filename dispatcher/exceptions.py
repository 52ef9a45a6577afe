"""The server's exception tree.

::

    DispatchError                 root: anything the server raises on purpose
    ├── ConfigError               a setting is missing or malformed (start-up only)
    │   ├── CatalogError          a catalogue item or file is malformed (catalog.py; an admin
    │   │                         endpoint answers it with 422 naming the field)
    │   └── CalendarError         the working-day calendar file is malformed (workdays.py)
    ├── RequestError              the caller sent something we refuse; carries code + HTTP status
    │   ├── AuthError             401: no token, or a token we do not know
    │   ├── ForbiddenError        403: a known token acting on something not its own
    │   ├── NotFoundError         404
    │   └── ConflictError         409
    └── StoreError                Postgres could not do what was asked
        ├── StoreUnavailableError Postgres is unreachable or timed out: retry later (503)
        └── StoreAmbiguousError   a write was sent, then its connection was lost or timed
                                  out: it may have been recorded (find out before answering)

Expected outcomes are values, not exceptions: a lost claim is ``ClaimOutcome.TAKEN``, an
order already widened is simply not widened again, and a workflow action refused is a
``refusals.Refusal`` until the shell turns it into a RequestError.  Raw asyncpg and redis
exceptions never reach an endpoint: the store and the Redis gateway translate them.
"""

from __future__ import annotations

from typing import Any


class DispatchError(Exception):
    """Root of every exception the server raises on purpose."""


class ConfigError(DispatchError):
    """A setting is missing or malformed."""


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
