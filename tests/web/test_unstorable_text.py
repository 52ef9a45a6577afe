"""Text Postgres cannot store (NUL, lone surrogates) is refused with 422, never a 500.

Schemathesis found the first case (a NUL in a catalogue item's steps); these pin it down for
every way text reaches the store, the file imports included.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.servers import InProcessServer


def _feature(name: str) -> dict[str, object]:
    ring = [[112.0, 25.0], [112.1, 25.0], [112.1, 25.1], [112.0, 25.1], [112.0, 25.0]]
    return {
        "type": "Feature",
        "properties": {"code": "g1", "name": name, "level": "grid"},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


@pytest.mark.parametrize("bad", ["a\u0000b", "\ud800"])
async def test_bodies_with_unstorable_text_are_refused(server: InProcessServer, bad: str) -> None:
    headers = {
        "Authorization": f"Bearer {server.settings.admin_token}",
        "Content-Type": "application/json",
    }
    bodies = {
        "/v1/admin/grids": {"code": "g1", "name": bad},
        "/v1/admin/tokens": {"kind": "intake", "name": bad},
        "/v1/orders": {"grid": "g1", "text": "x", "applicant": {"name": bad}},
    }
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        for path, body in bodies.items():
            # ensure_ascii keeps a lone surrogate as the \\ud800 escape JSON allows
            r = await http.post(path, content=json.dumps(body).encode())
            assert r.status_code == 422, (path, r.text)
            assert r.json()["error"]["code"] == "invalid_value"
        collection = {"type": "FeatureCollection", "features": [_feature(bad)]}
        r = await http.post("/v1/admin/grids/import", content=json.dumps(collection).encode())
        assert r.status_code == 422, r.text
        r = await http.post("/v1/admin/grids/import?source=%00", content=b"{}")
        assert r.status_code == 422, r.text


async def test_a_roster_with_a_nul_is_refused(server: InProcessServer) -> None:
    headers = {"Authorization": f"Bearer {server.settings.admin_token}", "Content-Type": "text/csv"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        await http.post(
            "/v1/admin/grids",
            json={"code": "g1", "name": "g"},
            headers={"Content-Type": "application/json"},
        )
        r = await http.post(
            "/v1/admin/agents/import", content="name,phone,grids\n李\x00,13900000001,g1\n".encode()
        )
        assert r.status_code == 422, r.text
