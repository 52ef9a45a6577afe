"""Abuse limits as plain arithmetic: fixed windows counted per key, with the clock passed in.

A grab script must not be able to hammer the claim path, nor an intake front end flood the
agents.  :class:`Windows` counts events per key in fixed windows (``window_ms`` long, aligned
to the clock) and says how long to wait once a key used up its ``limit``: the caller answers
``rate_limited`` with that as ``Retry-After``.  It remembers at most ``max_keys`` keys (the
oldest window is forgotten first), so a flood of keys cannot grow it without bound.
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
