"""The Postgres store on a real server: conditional writes, error translation, migrations."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

import geo
from dispatcher.core.ladder import default_schedule
from dispatcher.core.orders import Order, Status, new_order
from dispatcher.core.roster import Agent
from dispatcher.embedded import free_port
from dispatcher.exceptions import StoreUnavailableError, UnknownGridError
from dispatcher.store.store import Store
from tests.conftest import Services

NOW = 1_780_000_000_000


@pytest.fixture
async def store(clean: Services) -> AsyncIterator[Store]:
    s = await Store.connect(clean.database_url)
    try:
        yield s
    finally:
        await s.close()


async def _agents(store: Store, n: int) -> list[Agent]:
    await store.put_grid(geo.Grid(code="g1", name="网格一", level="grid"), [])
    return [
        await store.create_agent(f"代办员{i}", f"1390000{i:04d}", ["g1"], secrets.token_bytes(32))
        for i in range(n)
    ]


async def _order(store: Store) -> Order:
    draft = new_order(
        order_id=0,
        grid="g1",
        item=None,
        text="我要办理低保",
        item_class=None,
        created_at=NOW,
        schedule=default_schedule(600),
    )
    order, _capped = await store.insert_order(
        draft,
        applicant={"name": "张三", "phone": "13700000000"},
        tracking_digest=secrets.token_bytes(32),
        actor="test",
    )
    return order


async def test_concurrent_claims_record_exactly_one_winner(store: Store) -> None:
    agents = await _agents(store, 20)
    order = await _order(store)
    results = await asyncio.gather(*(store.claim_order(order.id, a.id, NOW + 1) for a in agents))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    stored = await store.get_order(order.id)
    assert stored is not None and stored.status is Status.CLAIMED
    assert stored.claimed_by == winners[0].claimed_by
    kinds = [e["kind"] for e in await store.order_events(order.id)]
    assert kinds == ["filed", "claimed"]


async def test_a_decision_is_recorded_only_on_the_version_it_was_made_on(store: Store) -> None:
    await _agents(store, 1)
    order = await _order(store)
    first, second = await asyncio.gather(
        *(
            store.record(
                order, {"version": order.version + 1}, kind="progress", at=NOW, actor=who,
                details={"note": who},
            )
            for who in ("a", "b")
        )
    )  # fmt: skip
    assert [first is None, second is None].count(True) == 1
    kinds = [e["kind"] for e in await store.order_events(order.id)]
    assert kinds == ["filed", "progress"]


async def test_an_agent_in_an_unknown_grid_is_refused_with_the_codes(store: Store) -> None:
    with pytest.raises(UnknownGridError) as caught:
        await store.create_agent("代办员", "13900000001", ["nowhere"], secrets.token_bytes(32))
    assert caught.value.codes == ["nowhere"]


async def test_an_unreachable_server_is_store_unavailable_not_a_driver_error() -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(StoreUnavailableError):
        await Store.connect(dsn, attempts=2)


async def test_migrations_are_applied_once(store: Store) -> None:
    assert await store.migrate() == []  # the session fixture applied them all


@pytest.mark.parametrize(
    ("item", "escalate_after", "cap"),
    [(None, None, 0), ("A1", 3_600.0, 0), ("A1", 3_600.0, 1)],
    ids=["free text", "catalogue item with a deadline", "at the open-order cap"],
)
async def test_the_order_insert_answers_is_the_order_recorded(
    store: Store, item: str | None, escalate_after: float | None, cap: int
) -> None:
    """insert_order builds the recorded order from the draft instead of reading it back:
    it must be exactly what Postgres now holds, capped or not, whatever the draft said about
    the fields the insert does not write."""
    await store.put_grid(geo.Grid(code="g1", name="网格一", level="grid"), [])
    if cap:
        await _order(store)  # the grid already has one open order: the next is capped
    draft = new_order(
        order_id=0,
        grid="g1",
        item=item,
        text="我要办理低保",
        item_class=2 if item else None,
        created_at=NOW + 5,
        schedule=default_schedule(600),
        escalate_after_s=escalate_after,
        item_name="低保申请" if item else None,
        required=("身份证", "户口本") if item else (),
        time_limit_days=5 if item else None,
    )
    draft = replace(draft, version=7, claimed_by=3, excluded=frozenset({4}), missing=("x",))
    order, capped = await store.insert_order(
        draft,
        applicant={"name": "张三", "phone": "13700000000"},
        tracking_digest=secrets.token_bytes(32),
        actor="test",
        open_cap=cap,
    )
    assert capped is bool(cap)
    assert order == await store.get_order(order.id)
    assert order.version == 1 and order.claimed_by is None and not order.excluded
