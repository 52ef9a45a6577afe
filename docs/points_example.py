"""The worked example of docs/POINTS.md, computed by the server.

Run: ``.venv/bin/python docs/points_example.py`` (starts embedded Redis and Postgres in a
temporary folder, serves the app in this process with a server clock set to the times below,
drives it over HTTP like an operator, prints what the endpoints answered).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import uvicorn

from clients import ApiClient
from dispatcher.core.workdays import CHINA
from dispatcher.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from dispatcher.settings import Settings
from dispatcher.web.app import create_app

ADMIN = "bba_example-admin-token"
HJ002 = ["出生医学证明", "父母双方居民身份证", "居民户口簿", "父母结婚证"]  # class 1
HJ001 = ["申请人居民身份证", "居民户口簿"]  # class 2 (green card: the rest later)


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> int:
    return int(dt.datetime(y, mo, d, h, mi, tzinfo=CHINA).timestamp() * 1000)


class Clock:
    def __init__(self) -> None:
        self.offset = 0

    def __call__(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset

    def at(self, when: int) -> None:
        self.offset = when - time.time_ns() // 1_000_000


async def main(tmp: Path) -> None:
    redis = EmbeddedRedis(tmp / "redis", persist=False)
    pg = EmbeddedPostgres(tmp / "pg")
    settings = Settings(
        redis_url=redis.start(),
        database_url=pg.start(),
        admin_token=ADMIN,
        data_dir=tmp / "data",
        close_after=3600.0,  # unrated replies close after an hour (7 days by default)
        sweep_interval=0.1,
    )
    clock = Clock()
    clock.at(local(2026, 11, 30, 22, 0))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = uvicorn.Config(
        create_app(settings, clock=clock), port=port, loop="none", log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
        await asyncio.sleep(0.05)
    try:
        await scenario(url, clock)
    finally:
        server.should_exit = True
        await task
        redis.stop()
        pg.stop()


async def scenario(url: str, clock: Clock) -> None:
    admin = ApiClient(url, ADMIN)
    await admin.create_grid("c1", "蓝山县", level="county")
    await admin.create_grid("t1", "塔峰镇", level="township", parent="c1")
    await admin.create_grid("t2", "祠堂圩镇", level="township", parent="c1")
    await admin.create_grid("g1", "虎溪村", level="village", parent="t1")
    await admin.create_grid("g2", "大洞村", level="village", parent="t2")
    wang = await admin.create_agent("王芳", "13700000001", ["g1"])
    li = await admin.create_agent("李强", "13700000002", ["g1"])
    zhang = await admin.create_agent("张敏", "13700000003", ["g2"])
    intake = ApiClient(url, (await admin.create_token("intake", "example"))["token"])

    async def handled(agent: dict[str, Any], item: str | None) -> dict[str, Any]:
        grid = agent["grids"][0]
        if item is None:
            order = await intake.file_order(grid=grid, text="帮我问问低保怎么申请")
        else:
            order = await intake.file_order(grid=grid, item=item)
        mats = [] if item is None else HJ002 if item == "HJ-002" else HJ001
        async with ApiClient(url, agent["token"]) as api:
            assert (await api.claim(order["id"]))["result"] == "won"
            for action, body in (
                ("accept", {"received": mats, "green_card": True}),
                ("reply", {"result": "已办结"}),
            ):
                r = await api.request("POST", f"/v1/orders/{order['id']}/{action}", body)
                assert r.status_code == 200, r.text
        return order

    async def rate(order: dict[str, Any], rating: str) -> None:
        async with ApiClient(url, order["tracking_token"]) as api:
            r = await api.request("POST", f"/v1/orders/{order['id']}/rate", {"rating": rating})
            assert r.status_code == 200, r.text

    # 30 November, 22:00 Shanghai: 王芳 replies to a class-1 order nobody will rate.
    unrated = await handled(wang, "HJ-002")
    clock.at(local(2026, 11, 30, 23, 20))
    rated = [
        (await handled(wang, "HJ-002"), "满意"),
        (await handled(wang, "HJ-001"), "不满意"),
        (await handled(wang, "HJ-001"), "一般"),
        (await handled(li, "HJ-002"), "非常满意"),
        (await handled(zhang, None), "满意"),  # free text, never classified
    ]
    clock.at(local(2026, 11, 30, 23, 30))  # the unrated one closes by itself now
    while (await admin.get_order(unrated["id"]))["status"] != "closed":  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    for order, rating in rated:
        await rate(order, rating)
    clock.at(local(2026, 12, 1, 0, 10))  # December in Shanghai, still 30 November in UTC
    await rate(await handled(li, "HJ-001"), "满意")
    r = await admin.request(
        "POST",
        "/v1/admin/adjustments",
        {"agent_id": zhang["id"], "month": "2026-11", "points": "1", "reason": "雨天上门补贴"},
    )
    assert r.status_code == 201, r.text

    show("GET /v1/admin/points?month=2026-11", await get(admin, "/v1/admin/points?month=2026-11"))
    show(
        f"GET /v1/admin/points?month=2026-11&agent_id={wang['id']}",
        await get(admin, f"/v1/admin/points?month=2026-11&agent_id={wang['id']}"),
    )
    show("GET /v1/admin/points?month=2026-12", await get(admin, "/v1/admin/points?month=2026-12"))

    clock.at(local(2027, 1, 4, 9, 0))
    r = await admin.request("POST", "/v1/admin/payouts/2026-Q4/approve")
    show("POST /v1/admin/payouts/2026-Q4/approve", r.json())

    clock.at(local(2027, 1, 5, 10, 0))
    r = await admin.request(
        "POST",
        "/v1/admin/points/classify",
        {"order_id": rated[4][0]["id"], "item_class": 1, "reason": "低保咨询，属一类"},
    )
    show("POST /v1/admin/points/classify (after approval)", r.json())
    r = await admin.request(
        "POST",
        "/v1/admin/adjustments",
        {"agent_id": wang["id"], "month": "2026-12", "points": "-2", "reason": "更正"},
    )
    show("POST /v1/admin/adjustments (for December, after approval)", r.json())
    show("GET /v1/admin/points?month=2027-01", await get(admin, "/v1/admin/points?month=2027-01"))
    r = await admin.request("GET", "/v1/admin/payouts?quarter=2026-Q4&format=csv")
    print("## GET /v1/admin/payouts?quarter=2026-Q4&format=csv\n")
    for row in csv.reader(io.StringIO(r.content.decode("utf-8-sig"))):
        print(",".join(row))
    await intake.aclose()
    await admin.aclose()


async def get(api: ApiClient, path: str) -> Any:
    r = await api.request("GET", path)
    assert r.status_code == 200, r.text
    return r.json()


def show(title: str, body: Any) -> None:
    print(f"## {title}\n")
    print(json.dumps(body, ensure_ascii=False, indent=1))
    print()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="bangban-points-") as d:
        asyncio.run(main(Path(d)))
