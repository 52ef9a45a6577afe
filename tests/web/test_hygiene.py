"""The text rule at the edge (dispatcher.core.validate): a lone surrogate, a NUL or another
control character in any string from outside is refused with 422 ``invalid_value`` naming the
field, ids are ASCII digits, text is NFC-normalised; nothing of it reaches Postgres (no 500)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.servers import InProcessServer, intake_token, roster

SURROGATE = "\ud800"


def _raw(body: Any) -> bytes:
    """JSON with ``\\uXXXX`` escapes, so that lone surrogates cross the wire as JSON allows."""
    return json.dumps(body, ensure_ascii=True).encode()


async def _send(
    server: InProcessServer,
    method: str,
    path: str,
    token: str,
    content: bytes | None = None,
    ctype: str = "application/json",
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url) as http:
        return await http.request(
            method,
            path,
            content=content,
            headers={"Authorization": f"Bearer {token}", "Content-Type": ctype},
        )


@pytest.fixture
async def setup(server: InProcessServer) -> dict[str, Any]:
    async with server.admin() as admin:
        agents = await roster(admin, {"g1": 1})
        intake = await intake_token(admin)
    return {"agent": agents["g1"][0], "intake": intake}


def _refused(r: httpx.Response, field: str) -> None:
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_value", err
    assert err["details"]["field"] == field, err


@pytest.mark.parametrize("bad", [SURROGATE, "\x00", "\x07", "\x1b[31m"])
async def test_bodies_refuse_bad_strings_naming_the_field(
    server: InProcessServer, setup: dict[str, Any], bad: str
) -> None:
    intake = setup["intake"]
    cases: list[tuple[str, str, str, dict[str, Any], str]] = [
        ("POST", "/v1/orders", intake, {"grid": "g1", "text": f"要{bad}办"}, "text"),
        (
            "POST",
            "/v1/orders",
            intake,
            {"grid": "g1", "text": "x", "applicant": {"name": f"张{bad}"}},
            "applicant.name",
        ),
        ("POST", "/v1/orders", intake, {"grid": "g1", "text": "x", "address": bad}, "address"),
        ("POST", "/v1/admin/grids", ADMIN_TOKEN, {"code": "g9", "name": f"网{bad}格"}, "name"),
        (
            "POST",
            "/v1/admin/agents",
            ADMIN_TOKEN,
            {"name": f"李{bad}", "phone": "13800000001", "grids": ["g1"]},
            "name",
        ),
        ("POST", "/v1/admin/tokens", ADMIN_TOKEN, {"kind": "intake", "name": f"t{bad}"}, "name"),
        (
            "POST",
            "/v1/admin/catalog",
            ADMIN_TOKEN,
            {"code": "ZZ-1", "name": f"事{bad}项", "item_class": 1, "days": 3, "materials": []},
            "name",
        ),
    ]
    for method, path, token, body, field in cases:
        r = await _send(server, method, path, token, _raw(body))
        if bad in ("\x07", "\x1b[31m") and field in ("text", "address"):
            _refused(r, field)  # free text too: only tab and newline are allowed
            continue
        _refused(r, field)


async def test_free_text_keeps_tab_and_newline_and_is_nfc(
    server: InProcessServer, setup: dict[str, Any]
) -> None:
    decomposed = "Cafe\u0301"  # e + combining acute: NFC is "Café"
    r = await _send(
        server,
        "POST",
        "/v1/orders",
        setup["intake"],
        _raw(
            {
                "grid": "g1",
                "text": f"第一行\r\n\t第二行 {decomposed}",
                "applicant": {"name": decomposed},
            }
        ),
    )
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["text"] == "第一行\n\t第二行 Café"
    r = await _send(
        server, "POST", "/v1/admin/grids", ADMIN_TOKEN, _raw({"code": "g8", "name": "多\n行"})
    )
    _refused(r, "name")  # names are one line


async def test_files_refuse_bad_strings(server: InProcessServer, setup: dict[str, Any]) -> None:
    csv = "name,phone,grids\n王\x00五,13800000009,g1\n".encode()
    r = await _send(server, "POST", "/v1/admin/agents/import", ADMIN_TOKEN, csv, "text/csv")
    _refused(r, "file")
    feature = {
        "type": "Feature",
        "properties": {"code": "g7", "name": f"坏{SURROGATE}"},
        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [0, 1], [1, 1], [0, 0]]]},
    }
    collection = {"type": "FeatureCollection", "features": [feature]}
    r = await _send(server, "POST", "/v1/admin/grids/import", ADMIN_TOKEN, _raw(collection))
    _refused(r, "features.0.properties.name")
    r = await _send(
        server, "POST", "/v1/admin/grids/import?source=a%00b", ADMIN_TOKEN, _raw(collection)
    )
    assert r.status_code == 422, r.text


@pytest.mark.parametrize("raw_id", ["²", "١٢", "１", "9" * 30, "0"])
async def test_ids_are_ascii_digits(
    server: InProcessServer, setup: dict[str, Any], raw_id: str
) -> None:
    for path in (f"/v1/orders/{raw_id}", f"/v1/orders/{raw_id}/events"):
        r = await _send(server, "GET", path, ADMIN_TOKEN)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
    for action in ("accept", "cancel", "claim"):
        r = await _send(
            server, "POST", f"/v1/orders/{raw_id}/{action}", setup["agent"]["token"], b"{}"
        )
        assert r.status_code == 404, r.text
    for name in ("limit", "after", "agent_id"):
        r = await _send(server, "GET", f"/v1/admin/orders?{name}={raw_id}", ADMIN_TOKEN)
        if raw_id == "0":
            assert r.status_code in (200, 422), r.text
            continue
        _refused(r, name)


async def test_tracking_socket_with_a_bad_id_closes_with_a_code(
    server: InProcessServer, setup: dict[str, Any]
) -> None:
    from websockets.asyncio.client import connect

    from clients.framesocket import ws_url

    uri = ws_url(server.url, "/v1/orders/²/ws", ADMIN_TOKEN, "json")
    async with connect(uri) as ws:
        with pytest.raises(Exception) as caught:
            await ws.recv()
    assert getattr(caught.value, "rcvd", None) is not None, caught.value  # a close frame
    assert caught.value.rcvd.code == 1008  # type: ignore[attr-defined]


async def test_nothing_bad_reached_postgres(server: InProcessServer, setup: dict[str, Any]) -> None:
    for bad in (SURROGATE, "\x00"):
        await _send(
            server, "POST", "/v1/orders", setup["intake"], _raw({"grid": "g1", "text": f"x{bad}"})
        )
    conn = await asyncpg.connect(server.settings.database_url)
    count = await conn.fetchval("SELECT count(*) FROM orders")
    await conn.close()
    assert count == 0
