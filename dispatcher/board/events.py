"""The change events the board publishes on ``bb:<ns>:events`` for every server process's
fan-out (:mod:`dispatcher.live.hub` reads them).

An event is one msgpack map (:func:`change_event`).  When the board publishes it from a
script that also counted the agent's held orders (SET_HELD, on a single Redis server), a
second msgpack object follows it in the same message: ``[[agent, count]]``, the counts the
map would otherwise carry under ``held`` (:func:`read_event` merges them).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import msgpack

from dispatcher.core.orders import Order


def change_event(
    order: Order,
    *,
    reason: str | None = None,
    event: Mapping[str, Any] | None = None,
    notify: Iterable[int] = (),
    held: Mapping[int, int] | None = None,
) -> bytes:
    """The pub/sub payload announcing ``order``'s new state to every server process.

    ``reason``: why agents shown the order must drop it (``withdrawn``); ``event``: the trail
    entry of the change, for the applicant's ``status`` frame; ``notify``: agents to send the
    order to as an ``update`` (its agent, before and after); ``held``: agent id → how many
    orders it holds now; ``excluded``: agents an open order is not offered to.
    """
    at = time.time_ns() // 1_000_000
    payload = {
        "order": order.to_wire(at),
        "reason": reason,
        "at": at,
        "event": None if event is None else dict(event),
        "excluded": sorted(order.excluded),
        "notify": sorted(set(notify)),
        "held": [[agent, count] for agent, count in (held or {}).items()],
    }
    packed: bytes = msgpack.packb(payload)
    return packed


def read_event(data: bytes) -> dict[str, Any]:
    """Decode one published event (with the held counts a script appended, if any)."""
    try:
        event: dict[str, Any] = msgpack.unpackb(data, raw=False)
    except msgpack.ExtraData as more:
        event = more.unpacked
        event["held"] = [*(event.get("held") or ()), *msgpack.unpackb(more.extra, raw=False)]
    return event
