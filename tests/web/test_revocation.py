"""Revocation across two server processes: a revoked token or a deactivated agent stops
working on every process within 1 s (open websockets closed with 4401, requests 401), a
reactivated agent works again; tracking tokens lapse a setting's time after the order closes."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from clients import AgentClient, ApiClient
from dispatcher.settings import Settings
from tests.servers import InProcessServer, ProcessServer
from tests.steps import CrewFactory, team

WITHIN = 1.0


async def _status(url: str, token: str, method: str, path: str, body: Any = None) -> int:
    async with httpx.AsyncClient(base_url=url) as http:
        r = await http.request(
            method, path, json=body, headers={"Authorization": f"Bearer {token}"}
        )
    return r.status_code


async def _within(seconds: float, check: Callable[[], Awaitable[bool]]) -> float:
    """Seconds until ``check()`` holds; fails past ``seconds``."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < seconds, f"not within {seconds} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_revocation_is_effective_on_every_process(settings: Settings, tmp_path: Path) -> None:
    settings = dataclasses.replace(settings, reconcile_interval=60)
    async with (
        InProcessServer(settings) as here,
        ProcessServer(settings, log=tmp_path / "there.log") as there,
    ):
        t = await team(here.url, settings.admin_token or "", {"g1": 2})
        a, b = t.agent("g1", 0), t.agent("g1", 1)
        admin = settings.admin_token or ""
        # Each principal is in the other process's cache, and connected there.
        for token in (a["token"], b["token"]):
            assert await _status(there.url, token, "GET", "/v1/agent/orders") == 200
        filed = {"grid": "g1", "text": "办事"}
        assert await _status(there.url, t.intake, "POST", "/v1/orders", filed) == 201
        ws_a = await AgentClient.connect(there.url, a["token"])
        ws_b = await AgentClient.connect(there.url, b["token"])
        try:
            # Deactivate a (through this process): closed 4401 there, 401 there.
            r = await _status(here.url, admin, "POST", f"/v1/admin/agents/{a['id']}/deactivate")
            assert r == 200
            await asyncio.wait_for(ws_a.wait_closed(), WITHIN)
            assert ws_a.close_code == 4401
            took = await _within(
                WITHIN,
                lambda: _is(there.url, a["token"], "GET", "/v1/agent/orders", 401),
            )
            assert not ws_b.closed  # nobody else
            # Reactivated: works again there.
            r = await _status(here.url, admin, "POST", f"/v1/admin/agents/{a['id']}/reactivate")
            assert r == 200
            await _within(
                WITHIN, lambda: _is(there.url, a["token"], "GET", "/v1/agent/orders", 200)
            )
            again = await AgentClient.connect(there.url, a["token"])
            await again.close()

            # Revoke b's token by id: its websocket there closes 4401.
            async with ApiClient(here.url, admin) as api:
                tokens = (await api.request("GET", "/v1/admin/tokens")).json()["tokens"]
            b_token = next(x for x in tokens if x["agent_id"] == b["id"])
            intake = next(x for x in tokens if x["kind"] == "intake")
            assert "token" not in b_token  # metadata only
            r = await _status(here.url, admin, "POST", f"/v1/admin/tokens/{b_token['id']}/revoke")
            assert r == 200
            await asyncio.wait_for(ws_b.wait_closed(), WITHIN)
            assert ws_b.close_code == 4401
            await _within(
                WITHIN, lambda: _is(there.url, b["token"], "GET", "/v1/agent/orders", 401)
            )

            # Revoke the intake token: filing there is refused.
            r = await _status(here.url, admin, "POST", f"/v1/admin/tokens/{intake['id']}/revoke")
            assert r == 200
            await _within(
                WITHIN, lambda: _is(there.url, t.intake, "POST", "/v1/orders", 401, filed)
            )
            # Unknown ids: 404; bad ids: 404/422, never 500.
            assert await _status(here.url, admin, "POST", "/v1/admin/tokens/999999/revoke") == 404
            assert await _status(here.url, admin, "POST", "/v1/admin/agents/²/deactivate") == 422
        finally:
            await ws_a.close()
            await ws_b.close()
    print(f"deactivation refused on the other process after {took:.3f}s")


async def _is(url: str, token: str, method: str, path: str, want: int, body: Any = None) -> bool:
    return await _status(url, token, method, path, body) == want


async def test_tracking_tokens_lapse_after_the_order_closes(
    settings: Settings, crew: CrewFactory
) -> None:
    settings = dataclasses.replace(settings, tracking_ttl=1.0)
    async with crew({"g1": 1}, tracking_ttl=1.0) as t:
        admin = settings.admin_token or ""
        async with ApiClient(t.url, t.intake) as api:
            first = await api.file_order(grid="g1", text="一")
            second = await api.file_order(grid="g1", text="二")
        for order in (first, second):
            path = f"/v1/orders/{order['id']}/cancel"
            assert await _status(t.url, admin, "POST", path, {"reason": "测试"}) == 200
        # Just closed: still works (an applicant reads the outcome).
        assert (
            await _status(t.url, first["tracking_token"], "GET", f"/v1/orders/{first['id']}") == 200
        )
        await asyncio.sleep(1.5)
        path = f"/v1/orders/{second['id']}"
        assert await _status(t.url, second["tracking_token"], "GET", path) == 401
