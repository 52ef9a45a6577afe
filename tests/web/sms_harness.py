"""For the SMS tests: the local gateway under real uvicorn, a clock to move, signed posts."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import asyncpg
import httpx
import uvicorn

from dispatcher.core import sms
from dispatcher.embedded import free_port
from dispatcher.settings import Settings
from dispatcher.sms_gateway import GatewayState, create_gateway
from tests.conftest import ADMIN_TOKEN
from tests.steps import get

SECRET = "test-sms-secret"


class GatewayServer:
    """:mod:`dispatcher.sms_gateway` on a free port, in the test's loop: a real HTTP server
    that records every text and answers as scripted (``faults``)."""

    def __init__(self, *, server: str | None = None, receipts: bool = False) -> None:
        self.state = GatewayState(SECRET, server, receipts)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_gateway(self.state),
            host="127.0.0.1",
            port=self.port,
            loop="none",
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.task: asyncio.Task[None] | None = None

    @property
    def send_url(self) -> str:
        return self.url + "/send"

    def script(self, *faults: dict[str, Any]) -> None:
        self.state.faults.extend(faults)

    def texts_to(self, phone: str) -> list[dict[str, Any]]:
        return [t for t in self.state.inbox.get(phone, []) if t["dir"] == "in"]

    def requests_for(self, message_id: str) -> list[dict[str, Any]]:
        return [r for r in self.state.received if r.get("id") == message_id]

    async def __aenter__(self) -> GatewayServer:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for task in list(self.state.tasks):
            task.cancel()
        self.server.should_exit = True
        if self.task is not None:
            await self.task


class Clock:
    """A clock the test moves (epoch ms)."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * 1000)


def local_ms(year: int, month: int, day: int, hour: int, minute: int = 0, offset_h: int = 8) -> int:
    """Epoch ms of a local wall time at UTC+``offset_h``."""
    from datetime import UTC, datetime, timedelta

    local = datetime(year, month, day, hour, minute, tzinfo=UTC) - timedelta(hours=offset_h)
    return round(local.timestamp() * 1000)


async def until(
    check: Callable[[], Awaitable[Any]] | Callable[[], Any], timeout: float = 10, what: str = ""
) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what or check}"
        await asyncio.sleep(0.05)


async def signed_post(
    base: str,
    path: str,
    payload: dict[str, Any],
    *,
    secret: str = SECRET,
    timestamp: float | None = None,
) -> httpx.Response:
    body = json.dumps(payload, ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        sms.SIGNATURE_HEADER: sms.sign(secret, body),
        sms.TIMESTAMP_HEADER: str(int(time.time() if timestamp is None else timestamp)),
    }
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(base + path, content=body, headers=headers)


def code_of(text: str) -> str:
    """The short code in an offer text (``…新工单 A7K2 …``)."""
    found = sms.parse_reply(text.split("新工单", 1)[1])
    assert found is not None, text
    return found


def sms_settings(settings: Settings, gw: GatewayServer, **extra: Any) -> Settings:
    return dataclasses.replace(
        settings,
        sms_url=gw.send_url,
        sms_secret=SECRET,
        sms_interval=0.1,
        sms_retry_base=0.05,
        sms_timeout=1.0,
        public_url="https://bangban.example",
        **extra,
    )


async def outbox(dsn: str | None, order_id: int | None = None) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(
            "SELECT id::text AS id, kind, to_phone, agent_id, step, status, note, attempts, text"
            " FROM sms_outbox WHERE $1::bigint IS NULL OR order_id = $1 ORDER BY created_at, id",
            order_id,
        )
    finally:
        await conn.close()


async def present(url: str) -> dict[str, Any] | None:
    """The presence listing once it lists somebody."""
    listed: dict[str, Any] = await get(url, ADMIN_TOKEN, "/v1/admin/presence")
    return listed if listed["agents"] else None
