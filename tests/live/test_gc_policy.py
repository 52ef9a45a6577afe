"""The collector policy: rounds collect what is new, freeze the rest; full passes thaw first."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from dispatcher.live import gc_policy


class _Node:
    """An object that can sit in a reference cycle."""

    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> tuple[_Node, weakref.ref[_Node]]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return a, weakref.ref(a)


@pytest.fixture(autouse=True)
def _thawed() -> Iterator[None]:
    yield
    gc.unfreeze()  # give the test process's objects back to the collector


def test_a_round_collects_garbage_then_freezes_survivors() -> None:
    gc.unfreeze()
    kept, _ = _cycle()
    gone, gone_ref = _cycle()
    del gone
    assert gone_ref() is not None  # a cycle: reference counting alone never frees it
    collected = gc_policy.freeze_round(full=False)
    assert gone_ref() is None
    assert collected >= 2 and gc.get_freeze_count() > 0
    assert not any(o is kept for o in gc.get_objects())  # frozen: no pass scans it


def test_a_cycle_dropped_after_freezing_waits_for_the_full_pass() -> None:
    gc.unfreeze()
    node, ref = _cycle()
    gc_policy.freeze_round(full=False)
    del node
    gc_policy.freeze_round(full=False)
    gc.collect()
    assert ref() is not None  # frozen: ordinary rounds and automatic passes skip it
    gc_policy.freeze_round(full=True)
    assert ref() is None


def test_frozen_objects_are_still_freed_by_reference_counting() -> None:
    gc.unfreeze()
    node = _Node()
    ref = weakref.ref(node)
    gc_policy.freeze_round(full=False)
    del node
    assert ref() is None


async def test_run_does_a_full_pass_once_full_every_has_passed() -> None:
    gc.unfreeze()
    now = [0.0]
    task = asyncio.create_task(gc_policy.run(0.01, 100.0, monotonic=lambda: now[0]))
    try:
        node, ref = _cycle()
        await asyncio.sleep(0.05)  # a few rounds: node is frozen
        del node
        await asyncio.sleep(0.05)
        assert ref() is not None  # not yet time for a full pass
        now[0] = 100.0
        for _ in range(100):
            if ref() is None:
                break
            await asyncio.sleep(0.01)
        assert ref() is None
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
