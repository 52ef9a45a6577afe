"""Idempotent filing and the truth after a lost answer (issue 11, defect 1).

8 of 10 filings answered 503 across a Postgres cut were recorded, offered and claimed, and an
intake that retried filed duplicates.  Now ``Idempotency-Key`` makes a retried ``POST
/v1/orders`` return the first order, and an insert whose answer was lost is answered with
what Postgres recorded: 201, 503 (not recorded), or 202 while it cannot tell.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from dispatcher.settings import Settings
from tests.proxy import Proxy
from tests.servers import InProcessServer
from tests.steps import CrewFactory, Team, team

BODY = {"grid": "g1", "text": "补办身份证"}


async def _post(t: Team, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {t.intake}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    async with httpx.AsyncClient(base_url=t.url, timeout=30) as http:
        return await http.post("/v1/orders", json=body, headers=headers)


async def _count(dsn: str | None) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        n: int = await conn.fetchval("SELECT count(*) FROM orders")
        return n
    finally:
        await conn.close()


async def test_a_retry_with_the_same_key_gets_the_first_order(crew: CrewFactory) -> None:
    async with crew({"g1": 1}) as t:
        first = await _post(t, BODY, "k-1")
        again = await _post(t, BODY, "k-1")
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.json()["id"] == first.json()["id"]
        assert again.headers["Idempotency-Replayed"] == "true"
        assert "Idempotency-Replayed" not in first.headers
        # Both tracking tokens track the order.
        for answer in (first, again):
            async with httpx.AsyncClient(base_url=t.url) as http:
                r = await http.get(
                    f"/v1/orders/{first.json()['id']}",
                    headers={"Authorization": f"Bearer {answer.json()['tracking_token']}"},
                )
            assert r.status_code == 200
        other = await _post(t, BODY, "k-2")
        assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
        assert await _count(t.server.settings.database_url) == 2


async def test_a_key_reused_for_another_body_or_malformed_is_refused(
    crew: CrewFactory,
) -> None:
    async with crew({"g1": 1}) as t:
        assert (await _post(t, BODY, "k-1")).status_code == 201
        reused = await _post(t, {**BODY, "text": "另一件事"}, "k-1")
        assert reused.status_code == 422
        assert reused.json()["error"]["code"] == "idempotency_key_reused"
        bad = await _post(t, BODY, "has space")
        assert (
            bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "Idempotency-Key"
        )
        assert await _count(t.server.settings.database_url) == 1


async def test_concurrent_retries_file_one_order(crew: CrewFactory) -> None:
    async with crew({"g1": 1}) as t:
        answers = await asyncio.gather(*(_post(t, BODY, "same") for _ in range(8)))
        assert {a.status_code for a in answers} == {201}
        assert len({a.json()["id"] for a in answers}) == 1
        assert await _count(t.server.settings.database_url) == 1


# --- across a cut of Postgres ----------------------------------------------------------------


@dataclasses.dataclass
class Cut:
    proxy: Proxy
    srv: InProcessServer
    t: Team
    direct: asyncpg.Connection[asyncpg.Record]
    dsn: str


@pytest.fixture
async def cut(settings: Settings) -> AsyncIterator[Cut]:
    assert settings.database_url
    proxy = Proxy(settings.database_url)
    await proxy.start()
    through = dataclasses.replace(settings, database_url=proxy.url, reconcile_interval=3600)
    direct = await asyncpg.connect(settings.database_url)
    try:
        async with InProcessServer(through) as srv:
            t = await team(srv.url, settings.admin_token or "", {"g1": 1})
            yield Cut(proxy, srv, t, direct, settings.database_url)
    finally:
        await direct.close()
        await proxy.stop()


async def _inserts_waiting(direct: asyncpg.Connection[asyncpg.Record], n: int = 1) -> None:
    for _ in range(500):
        await direct.execute("SELECT pg_stat_clear_snapshot()")
        waiting = await direct.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE '%INSERT INTO orders%'"
        )
        if waiting >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the filing never reached Postgres")


async def _table_locked(c: Cut) -> Any:
    """Inserts into orders wait until the returned transaction ends."""
    tx = c.direct.transaction()
    await tx.start()
    await c.direct.execute("LOCK TABLE orders IN SHARE MODE")
    return tx


@pytest.mark.parametrize("client_key", [True, False], ids=["client-key", "server-key"])
async def test_a_filing_that_commits_after_the_cut_is_found_by_its_key(
    cut: Cut, client_key: bool
) -> None:
    tx = await _table_locked(cut)
    posting = asyncio.create_task(_post(cut.t, BODY, "k-cut" if client_key else None))
    await _inserts_waiting(cut.direct)
    await cut.proxy.cut()  # the answer is lost; the insert is in Postgres
    await tx.commit()  # ... and commits
    pending = await posting
    assert pending.status_code == 202, pending.text
    key = pending.json()["idempotency_key"]
    assert pending.headers["Idempotency-Key"] == key
    if client_key:
        assert key == "k-cut"
    cut.proxy.restore()
    for _ in range(100):
        again = await _post(cut.t, BODY, key)
        if again.status_code != 503:
            break
        await asyncio.sleep(0.1)
    assert again.status_code == 201, again.text
    assert await _count(cut.dsn) == 1
    assert again.json()["id"] == await cut.direct.fetchval("SELECT id FROM orders")


async def test_a_filing_ended_before_it_committed_is_503_and_not_recorded(cut: Cut) -> None:
    tx = await _table_locked(cut)
    posting = asyncio.create_task(_post(cut.t, BODY, "k-lost"))
    await _inserts_waiting(cut.direct)
    await cut.proxy.cut()
    await asyncio.sleep(0.2)
    cut.proxy.restore()  # within the server's second: it ends the waiting insert, then looks
    answer = await posting
    await tx.commit()
    assert answer.status_code == 503, answer.text
    assert await _count(cut.dsn) == 0  # the truth: nothing was recorded
    assert (await _post(cut.t, BODY, "k-lost")).status_code == 201
    assert await _count(cut.dsn) == 1


async def test_a_retry_racing_the_lost_insert_files_once(cut: Cut) -> None:
    """The retry arrives while the first insert, its client gone, still waits in Postgres:
    both wait on the same lock, the first commits, the retry gets the first's order."""
    tx = await _table_locked(cut)
    posting = asyncio.create_task(_post(cut.t, BODY, "k-race"))
    await _inserts_waiting(cut.direct)
    await cut.proxy.cut()
    assert (await posting).status_code == 202
    # Let the server's own check pass first (it would end the waiting insert), then a retry.
    cut.proxy.restore()
    retry = asyncio.create_task(_post(cut.t, BODY, "k-race"))
    await asyncio.sleep(0.5)
    await tx.commit()
    answer = await retry
    assert answer.status_code == 201, answer.text
    assert await _count(cut.dsn) == 1
