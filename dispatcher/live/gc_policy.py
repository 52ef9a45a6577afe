"""Garbage collection for a process that holds thousands of long-lived connections.

CPython's cycle collector stops the event loop for as long as it scans, and a full pass scans
every tracked object.  An agent connection is about 135 tracked objects (coroutines of the
ASGI stack, the websocket protocol, its outbox), so with 10,000 agents connected a full pass
scanned about 1.7 million objects and stopped every offer for about a second, twice in 30 s
of filing at 50 orders/s (``python -m loadtest.bench.capacity``).  Connections live for
hours: scanning them again and again finds nothing.

So every ``interval`` seconds :func:`run` collects what is not frozen (what was created since
the last round and survived: cheap in steady state) and then freezes the survivors
(:func:`gc.freeze`), which later passes, automatic or not, skip.  Frozen objects are still
freed by reference counting as soon as nothing uses them; only a reference *cycle* among
frozen objects would be missed.  A closed agent connection leaves none under uvloop, which
``bangban serve`` runs on (measured: no cyclic garbage after closing 2,000 connections; the
plain asyncio loop leaves 6 objects per connection in a transport cycle).  For whatever else
does, every ``full_every`` seconds a round unfreezes everything and runs one full pass: one
long pause, at a time of the operator's choosing.

Every pass is timed by the ``bangban_gc_pause_seconds`` metric (see :mod:`dispatcher.metrics`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger("bangban.gc")


def freeze_round(*, full: bool) -> int:
    """Collect, then freeze the survivors; returns how many objects that pass collected.

    ``full`` first unfreezes everything, so that the pass scans the whole heap.  (Not
    :func:`gc.get_freeze_count` here: it walks every frozen object, about 0.1 s a call with
    7,600 agents connected.)
    """
    if full:
        gc.unfreeze()
    collected = gc.collect()
    gc.freeze()
    return collected


async def run(
    interval: float, full_every: float, monotonic: Callable[[], float] = time.monotonic
) -> None:
    """Forever: a round every ``interval`` seconds, a full one every ``full_every`` (0: never)."""
    last_full = monotonic()
    while True:
        await asyncio.sleep(interval)
        full = full_every > 0 and monotonic() - last_full >= full_every
        started = time.perf_counter()
        collected = freeze_round(full=full)
        if full:
            last_full = monotonic()
            log.info(
                "gc full pass collected=%d pause_ms=%.0f",
                collected,
                (time.perf_counter() - started) * 1000,
            )
