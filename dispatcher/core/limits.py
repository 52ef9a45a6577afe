"""Abuse limits as plain arithmetic: fixed windows counted per key, with the clock passed in.

A grab script must not be able to hammer the claim path, nor an intake front end flood the
agents.  :class:`Windows` counts events per key in fixed windows (``window_ms`` long, aligned
to the clock) and says how long to wait once a key used up its ``limit``: the caller answers
``rate_limited`` with that as ``Retry-After``.  It remembers at most ``max_keys`` keys (the
oldest window is forgotten first), so a flood of keys cannot grow it without bound.
:class:`Shares` keeps this process's shares of limits counted for every process (in Redis).
"""

from __future__ import annotations


class Windows:
    """Fixed-window counters: ``hit`` returns 0 (allowed) or the ms until the next window."""

    __slots__ = ("_counts", "limit", "max_keys", "window_ms")

    def __init__(self, limit: int, window_ms: int = 60_000, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window_ms = window_ms
        self.max_keys = max_keys
        self._counts: dict[object, tuple[int, int]] = {}  # key -> (window start, count)

    def hit(self, key: object, now: int) -> int:
        """Count one event of ``key`` at ``now`` (ms); 0 if within the limit, else the ms to
        wait (the event is then not counted).  A ``limit`` of 0 means no limit."""
        if self.limit <= 0:
            return 0
        start = now - now % self.window_ms
        seen = self._counts.get(key)
        count = seen[1] if seen is not None and seen[0] == start else 0
        if count >= self.limit:
            return start + self.window_ms - now
        if seen is None and len(self._counts) >= self.max_keys:
            del self._counts[next(iter(self._counts))]
        self._counts[key] = (start, count + 1)
        return 0


class Shares:
    """This process's shares of limits counted for every process (in Redis: RATE), so that a
    busy key costs a round trip per share instead of one per event.

    A share is at most ``limit // 100`` events: a limit under 200 is counted exactly, one event
    at a time.  Otherwise a key's first share in a window is two events, and each share used up
    within its window asks for twice the last, up to that.  What another process's share
    leaves unused lapses with the window, so with P processes a key may be refused up to P % of
    its limit early, never late.  ``take`` spends from the share at hand; ``want`` says how
    much to ask for when it is spent; ``grant`` records what was granted.  At most
    ``max_keys`` keys are kept (the oldest first forgotten: its unused share lapses).
    """

    __slots__ = ("_held", "max_keys")

    def __init__(self, max_keys: int = 10_000) -> None:
        self.max_keys = max_keys
        self._held: dict[object, tuple[int, int, int]] = {}  # key -> (left, size, ends at ms)

    def take(self, key: object, now: int) -> bool:
        """Count one event of ``key`` at ``now`` against its share: False when there is none
        left (ask for one: :meth:`want`)."""
        held = self._held.get(key)
        if held is None or held[0] <= 0 or held[2] <= now:
            return False
        self._held[key] = (held[0] - 1, held[1], held[2])
        return True

    def want(self, key: object, limit: int, now: int) -> int:
        """The share to ask for: the first of a window, or twice the last (used up in its
        window), within ``limit // 100``."""
        most = limit // 100
        if most <= 1:
            return 1
        held = self._held.get(key)
        if held is None or held[2] <= now:
            return 2
        return min(most, 2 * held[1])

    def grant(self, key: object, granted: int, ends_at: int) -> None:
        """``granted`` events until ``ends_at`` (ms), the one that asked already counted."""
        if key not in self._held and len(self._held) >= self.max_keys:
            del self._held[next(iter(self._held))]
        self._held[key] = (granted - 1, granted, ends_at)
