"""The catalogue in Postgres: seeded from the file, read by front ends and agents, kept by
operators (create, update, retire), and what filing makes of it."""

from __future__ import annotations

from typing import Any

from clients import ApiClient
from dispatcher.core.catalog import load_catalog
from dispatcher.settings import Settings
from tests.servers import InProcessServer
from tests.steps import ITEM, Team, claimed, error, file, get, team

NEW_ITEM: dict[str, Any] = {
    "code": "TD-001",
    "name": "土地承包经营权证补办",
    "category": "农业农村",
    "item_class": 2,
    "eligible": "土地承包经营权证遗失或损毁的承包户",
    "materials": ["户主居民身份证", "遗失声明"],
    "steps": ["代办员核对材料", "送乡镇农经站审核"],
    "time_limit_days": 15,
    "fee": "不收费",
    "level": "township",
}


async def _send(t: Team, method: str, path: str, body: Any = None) -> Any:
    async with ApiClient(t.url, t.admin_token) as admin:
        return await admin.request(method, path, body)


async def test_seeded_from_the_file_and_listed_with_guides(server: InProcessServer) -> None:
    t = await team(server.url, server.settings.admin_token or "")
    shipped = load_catalog()
    for token in (t.intake, t.agent()["token"], t.admin_token):
        items = (await get(t.url, token, "/v1/catalog"))["items"]
        assert [i["code"] for i in items] == sorted(c for c, i in shipped.items() if not i.retired)
    one = await get(t.url, t.intake, f"/v1/catalog/{ITEM}")
    assert one["steps"] and one["materials"] and one["eligible"] and one["level"] == "township"
    everything = (await get(t.url, t.admin_token, "/v1/catalog?all=true"))["items"]
    assert len(everything) == len(shipped)


async def test_create_update_patch_retire(server: InProcessServer) -> None:
    t = await team(server.url, server.settings.admin_token or "")
    r = await _send(t, "POST", "/v1/admin/catalog", NEW_ITEM)
    assert r.status_code == 201 and r.json()["retired"] is False
    assert error(await _send(t, "POST", "/v1/admin/catalog", NEW_ITEM)) == (409, "duplicate_item")
    bad = await _send(t, "POST", "/v1/admin/catalog", {**NEW_ITEM, "code": "x1", "level": "moon"})
    assert (
        error(bad) == (422, "invalid_value") and bad.json()["error"]["details"]["field"] == "code"
    )

    r = await _send(t, "PUT", "/v1/admin/catalog/TD-001", {**NEW_ITEM, "time_limit_days": 10})
    assert r.status_code == 200 and r.json()["time_limit_days"] == 10
    r = await _send(t, "PATCH", "/v1/admin/catalog/TD-001", {"fee": "工本费5元"})
    assert r.json()["fee"] == "工本费5元" and r.json()["time_limit_days"] == 10
    r = await _send(t, "PATCH", "/v1/admin/catalog/TD-001", {"code": "TD-002"})
    assert error(r) == (422, "invalid_value")
    assert error(await _send(t, "PUT", "/v1/admin/catalog/TD-999", NEW_ITEM))[0] == 404

    order = await file(t, item="TD-001")
    assert order["materials"] == NEW_ITEM["materials"] and order["time_limit_days"] == 10
    r = await _send(t, "POST", "/v1/admin/catalog/TD-001/retire")
    assert r.status_code == 200 and r.json()["retired"] is True
    async with ApiClient(t.url, t.intake) as api:
        refused = await api.request("POST", "/v1/orders", {"grid": "g1", "item": "TD-001"})
    assert error(refused) == (422, "retired_item")
    # The order filed before keeps its item and what it copied.
    kept = await get(t.url, t.admin_token, f"/v1/orders/{order['id']}")
    assert (kept["item"], kept["materials"]) == ("TD-001", NEW_ITEM["materials"])
    listed = (await get(t.url, t.intake, "/v1/catalog"))["items"]
    assert "TD-001" not in {i["code"] for i in listed}


async def test_only_admins_edit(server: InProcessServer) -> None:
    t = await team(server.url, server.settings.admin_token or "")
    async with ApiClient(t.url, t.intake) as api:
        r = await api.request("POST", "/v1/admin/catalog", NEW_ITEM)
    assert error(r) == (403, "forbidden")
    order = await file(t)
    async with ApiClient(t.url, order["tracking_token"]) as applicant:
        assert error(await applicant.request("GET", "/v1/catalog")) == (403, "forbidden")


async def test_unknown_items_are_refused_at_filing(server: InProcessServer) -> None:
    t = await team(server.url, server.settings.admin_token or "")
    async with ApiClient(t.url, t.intake) as api:
        unknown = await api.request("POST", "/v1/orders", {"grid": "g1", "item": "ZZ-999"})
        retired = await api.request("POST", "/v1/orders", {"grid": "g1", "item": "WJ-004"})
        clash = await api.request(
            "POST", "/v1/orders", {"grid": "g1", "item": ITEM, "item_class": 2}
        )
    assert error(unknown) == (422, "unknown_item")
    assert error(retired) == (422, "retired_item")
    assert error(clash) == (422, "invalid_value")


async def test_operator_edits_survive_a_restart(settings: Settings) -> None:
    """The file seeds only what is missing: an item retired or edited stays so."""
    async with InProcessServer(settings) as first:
        t = await team(first.url, settings.admin_token or "")
        r = await _send(t, "PATCH", f"/v1/admin/catalog/{ITEM}", {"time_limit_days": 7})
        assert r.status_code == 200
        await _send(t, "POST", "/v1/admin/catalog/HJ-003/retire")
        await claimed(t)
    async with InProcessServer(settings) as second:
        item = await get(second.url, settings.admin_token or "", f"/v1/catalog/{ITEM}")
        assert item["time_limit_days"] == 7
        retired = await get(second.url, settings.admin_token or "", "/v1/catalog/HJ-003")
        assert retired["retired"] is True
