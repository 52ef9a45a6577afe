"""Servers for tests: real uvicorn, in this process (fast) or as separate processes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from clients import AgentClient, ApiClient
from dispatcher.cli import uvicorn_config
from dispatcher.context import Clock, Context, wall_clock
from dispatcher.embedded import free_port
from dispatcher.live import wire
from dispatcher.services import ServerProcess
from dispatcher.settings import Settings
from dispatcher.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent


class InProcessServer:
    """The app under real uvicorn (websockets-sansio) on a free port, in the test's loop."""

    def __init__(
        self, settings: Settings, *, clock: Clock = wall_clock, port: int | None = None
    ) -> None:
        """``port``: serve on this one (a restart at the address clients know); default free."""
        self.settings = settings
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings, clock=clock)
        config = uvicorn_config(self.app, settings, "127.0.0.1", self.port, graceful=2)
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.task: asyncio.Task[None] | None = None

    @property
    def ctx(self) -> Context:
        ctx: Context = self.app.state.ctx
        return ctx

    def admin(self) -> ApiClient:
        assert self.settings.admin_token
        return ApiClient(self.url, self.settings.admin_token)

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve())
        deadline = time.monotonic() + 20
        while not self.server.started:
            if self.task.done():
                self.task.result()
                raise RuntimeError("server stopped during start-up")
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self.task is not None:
            self.server.should_exit = True
            await self.task
            self.task = None

    async def __aenter__(self) -> InProcessServer:
        await self.start()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


class ProcessServer(ServerProcess):
    """``bangban serve`` in its own process, as a user would run it, with ``settings``."""

    def __init__(self, settings: Settings, *, log: Path, extra_env: dict[str, str] | None = None):
        s = settings
        overrides = {
            "REDIS_URL": s.redis_url or "",
            "DATABASE_URL": s.database_url or "",
            "BANGBAN_ADMIN_TOKEN": s.admin_token or "",
            "BANGBAN_WIDEN_AFTER": str(s.widen_after),
            "BANGBAN_SWEEP_INTERVAL": str(s.sweep_interval),
            "BANGBAN_RECONCILE_INTERVAL": str(s.reconcile_interval),
            "BANGBAN_ESCALATE_AFTER": str(s.escalate_after),
            "BANGBAN_CLOSE_AFTER": str(s.close_after),
            "BANGBAN_MAX_HELD": str(s.max_held),
            "BANGBAN_FILING_RATE": str(s.filing_rate),
            "BANGBAN_CLAIM_RATE": str(s.claim_rate),
            "BANGBAN_GRID_OPEN_CAP": str(s.grid_open_cap),
            "BANGBAN_SEND_TIMEOUT": str(s.send_timeout),
            "BANGBAN_LOG_LEVEL": "info",
            **(extra_env or {}),
        }
        super().__init__(
            ServerProcess.environment(overrides, inherit_settings=False), log, start_timeout=30
        )
        self.settings = settings


async def roster(api: ApiClient, grids: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
    """Create ``grids`` (code -> number of agents); return the agents (with tokens) by grid."""
    out: dict[str, list[dict[str, Any]]] = {}
    phone = 13900000000
    for code, count in grids.items():
        await api.create_grid(code, f"网格 {code}")
        out[code] = []
        for i in range(count):
            phone += 1
            out[code].append(await api.create_agent(f"代办员{code}-{i}", str(phone), [code]))
    return out


async def intake_token(api: ApiClient) -> str:
    body = await api.create_token("intake", "tests")
    token: str = body["token"]
    return token


async def offers_for(agent: AgentClient, order_id: int, seconds: float) -> list[dict[str, Any]]:
    """Every offer for ``order_id`` that ``agent`` receives within ``seconds``: the order map
    plus ``received_at`` (epoch ms, this machine's clock)."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frame = await agent.recv(timeout=left)
        except TimeoutError:
            break
        if isinstance(frame, wire.Offer) and frame.order["id"] == order_id:
            got.append({**frame.order, "received_at": time.time_ns() // 1_000_000})
    return got
