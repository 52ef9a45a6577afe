"""Helpers for the workflow tests: a team (grids, agents, intake), orders filed and claimed,
actions through HTTP, and the trail as Postgres has it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from clients import ApiClient
from tests.servers import InProcessServer, intake_token, roster

# HJ-002 出生登记: class 1, three working days, these four materials (dispatcher/data).
ITEM = "HJ-002"
MATERIALS = ["出生医学证明", "父母双方居民身份证", "居民户口簿", "父母结婚证"]


@dataclass
class Team:
    url: str
    admin_token: str
    intake: str
    agents: dict[str, list[dict[str, Any]]]

    def agent(self, grid: str = "g1", i: int = 0) -> dict[str, Any]:
        return self.agents[grid][i]


@dataclass
class Crew(Team):
    """A :class:`Team` on a server of the test's own (the ``crew`` fixture of conftest)."""

    server: InProcessServer


# ``crew(grids=None, *, clock=wall_clock, **settings_overrides)``: ``async with`` it for a Crew.
CrewFactory = Callable[..., AbstractAsyncContextManager[Crew]]


async def team(url: str, admin_token: str, grids: dict[str, int] | None = None) -> Team:
    async with ApiClient(url, admin_token) as admin:
        agents = await roster(admin, grids or {"g1": 2})
        intake = await intake_token(admin)
    return Team(url, admin_token, intake, agents)


async def file(t: Team, **fields: Any) -> dict[str, Any]:
    """File an order (by default for the catalogue item :data:`ITEM`, in grid g1)."""
    body = {"grid": "g1", **fields}
    if "item" not in body and "text" not in body:
        body["item"] = ITEM
    async with ApiClient(t.url, t.intake) as api:
        return await api.file_order(**body)


async def claimed(t: Team, agent: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A freshly filed order, claimed by ``agent`` (default: the first of g1)."""
    order = await file(t, **fields)
    async with ApiClient(t.url, (agent or t.agent())["token"]) as api:
        assert (await api.claim(order["id"]))["result"] == "won"
    return order


async def post(url: str, token: str, order_id: int, action: str, **body: Any) -> httpx.Response:
    """``POST /v1/orders/{id}/{action}`` with ``body``; the raw response."""
    async with ApiClient(url, token) as api:
        return await api.request("POST", f"/v1/orders/{order_id}/{action}", body)


async def ok(url: str, token: str, order_id: int, action: str, **body: Any) -> dict[str, Any]:
    """As :func:`post`, asserting 200; the order as recorded (with ``event``)."""
    r = await post(url, token, order_id, action, **body)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def error(r: httpx.Response) -> tuple[int, str]:
    """(status, error code) of a refused request."""
    return r.status_code, r.json()["error"]["code"]


async def get(url: str, token: str, path: str) -> Any:
    async with ApiClient(url, token) as api:
        r = await api.request("GET", path)
    assert r.status_code == 200, r.text
    return r.json()


async def events(dsn: str | None, order_id: int) -> list[asyncpg.Record]:
    """The trail of an order as Postgres has it, oldest first."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(
            "SELECT kind, actor, details FROM order_events WHERE order_id = $1 ORDER BY id",
            order_id,
        )
    finally:
        await conn.close()


async def row(dsn: str | None, order_id: int) -> asyncpg.Record:
    conn = await asyncpg.connect(dsn)
    try:
        found = await conn.fetchrow("SELECT * FROM orders WHERE id = $1", order_id)
    finally:
        await conn.close()
    assert found is not None
    return found
