"""Tokens: made here, stored as SHA-256 digests, resolved to a :class:`Principal`.

A token is ``bb<k>_`` + 32 random bytes in URL-safe base64 (``k``: a admin, i intake, g agent,
t tracking), so a leaked token says what it is when found in a log.  Only digests are stored.
Resolved principals are cached per process for ``ttl`` seconds.  A revocation (a token
revoked, an agent deactivated) is published on Redis (``bb:auth``); every process's hub hears
it and calls :meth:`Authenticator.invalidate`, so it takes effect everywhere at once (and
within ``ttl`` even if a process missed it).  A tracking token lapses ``tracking_ttl`` seconds
after its order closed.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from dispatcher.core.roster import Principal, TokenKind
from dispatcher.exceptions import AuthError

if TYPE_CHECKING:  # the store imports this module to mint tokens
    from dispatcher.store.store import Store

_PREFIX = {
    TokenKind.ADMIN: "bba_",
    TokenKind.INTAKE: "bbi_",
    TokenKind.AGENT: "bbg_",
    TokenKind.TRACKING: "bbt_",
}
MAX_TOKEN_CHARS = 200


def new_token(kind: TokenKind) -> str:
    return _PREFIX[kind] + secrets.token_urlsafe(32)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


class Authenticator:
    """Resolves tokens to principals through the store, with a small positive cache."""

    def __init__(
        self,
        store: Store,
        *,
        ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 100_000,
        tracking_ttl: float = 30 * 86400.0,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.tracking_ttl = tracking_ttl
        self.clock = clock
        self.max_entries = max_entries
        self._cache: dict[bytes, tuple[float, Principal]] = {}

    async def resolve(self, token: str | None) -> Principal:
        """The principal for ``token``.  Raises :class:`AuthError` (401) when there is none.

        May raise ``StoreUnavailableError`` when Postgres is down and the token is not cached.
        """
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise AuthError("missing or malformed token", code="unauthorized")
        key = digest(token)
        now = self.clock()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        principal = await self.store.principal(key, self.tracking_ttl)
        if principal is None:
            raise AuthError("unknown or revoked token", code="unauthorized")
        if len(self._cache) >= self.max_entries:
            self._cache.clear()
        self._cache[key] = (now + self.ttl, principal)
        return principal

    def forget(self) -> None:
        self._cache.clear()

    def invalidate(self, token_id: int | None = None, agent_id: int | None = None) -> int:
        """Drop the cached principals of token ``token_id`` and of agent ``agent_id`` (both
        None: every one); returns how many were dropped."""
        if token_id is None and agent_id is None:
            dropped = len(self._cache)
            self._cache.clear()
            return dropped
        gone = [
            key
            for key, (_, who) in self._cache.items()
            if (token_id is not None and who.token_id == token_id)
            or (agent_id is not None and who.agent is not None and who.agent.id == agent_id)
        ]
        for key in gone:
            del self._cache[key]
        return len(gone)
