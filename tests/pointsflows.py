"""Helpers for the points tests: a server clock the test moves, a county with townships,
and orders taken through the whole workflow over HTTP until they close."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import time
from typing import Any

import openpyxl

from clients import ApiClient
from dispatcher.core.workdays import CHINA
from tests.servers import intake_token
from tests.steps import ITEM, MATERIALS, Team, file, get, ok

CLASS_2 = "HJ-001"  # 户口迁入: class 2 (dispatcher/core/data/catalog.json)
CLASS_2_MATERIALS = ["申请人居民身份证", "居民户口簿"]


def local(y: int, mo: int, d: int, h: int = 12, mi: int = 0) -> int:
    """Epoch ms of a Shanghai wall-clock time."""
    return int(dt.datetime(y, mo, d, h, mi, tzinfo=CHINA).timestamp() * 1000)


class Clock:
    """The server's clock: real time moved by an offset the test sets (``at``) or adds to;
    ``frozen``, it moves only when the test moves it (exact reaction times)."""

    def __init__(self, *, frozen: bool = False) -> None:
        self.offset = 0
        self.frozen_at = time.time_ns() // 1_000_000 if frozen else None

    def __call__(self) -> int:
        base = self.frozen_at if self.frozen_at is not None else time.time_ns() // 1_000_000
        return base + self.offset

    def at(self, when: int) -> None:
        self.offset = 0
        self.offset = when - self()

    def advance(self, ms: int) -> None:
        self.offset += ms


async def county(url: str, admin_token: str, agents: dict[str, int]) -> Team:
    """County c1 with townships t1 (grid g1) and t2 (grid g2); ``agents`` per grid."""
    out: dict[str, list[dict[str, Any]]] = {}
    async with ApiClient(url, admin_token) as admin:
        await admin.create_grid("c1", "蓝山县", level="county")
        await admin.create_grid("t1", "塔峰镇", level="township", parent="c1")
        await admin.create_grid("t2", "祠堂圩镇", level="township", parent="c1")
        await admin.create_grid("g1", "虎溪村", level="village", parent="t1")
        await admin.create_grid("g2", "大洞村", level="village", parent="t2")
        phone = 13700000000
        for grid, n in agents.items():
            out[grid] = []
            for i in range(n):
                phone += 1
                name = f"代办员{grid}{i}"
                out[grid].append(await admin.create_agent(name, str(phone), [grid]))
        intake = await intake_token(admin)
    return Team(url, admin_token, intake, out)


async def replied(t: Team, agent: dict[str, Any], kind: str = "class1") -> dict[str, Any]:
    """An order of ``agent``'s grid, claimed by it, accepted and replied.  ``kind``: class1
    (HJ-002), class2 (HJ-001) or text (free text without a class)."""
    grid = agent["grids"][0]
    applicant = {"name": "李四", "phone": "13800001111"}
    if kind == "text":
        order = await file(t, grid=grid, text="帮我问问低保怎么办", applicant=applicant)
        received: list[str] = []
    else:
        item = ITEM if kind == "class1" else CLASS_2
        order = await file(t, grid=grid, item=item, applicant=applicant)
        received = MATERIALS if kind == "class1" else CLASS_2_MATERIALS
    async with ApiClient(t.url, agent["token"]) as api:
        assert (await api.claim(order["id"]))["result"] == "won"
    await ok(t.url, agent["token"], order["id"], "accept", received=received, green_card=True)
    await ok(t.url, agent["token"], order["id"], "reply", result="已办结")
    return order


async def rate(t: Team, order: dict[str, Any], rating: str) -> None:
    await ok(t.url, order["tracking_token"], order["id"], "rate", rating=rating)


async def until_closed(t: Team, order_id: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (await get(t.url, t.admin_token, f"/v1/orders/{order_id}"))["status"] == "closed":
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"order {order_id} did not close")


async def fetch(url: str, token: str, path: str) -> tuple[int, dict[str, str], bytes]:
    async with ApiClient(url, token) as api:
        r = await api.request("GET", path)
    return r.status_code, dict(r.headers), r.content


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "CSV must start with a UTF-8 byte-order mark"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def read_xlsx(data: bytes) -> list[list[Any]]:
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book.active
    assert sheet is not None
    return [list(row) for row in sheet.iter_rows(values_only=True)]
