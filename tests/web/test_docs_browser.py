"""/docs in a real browser (headless Chromium): Swagger UI renders the document with every
request to anywhere but this server blocked, so nothing it needs comes from the internet."""

from __future__ import annotations

import asyncio
import shutil
import tempfile

import pytest

from tests.servers import InProcessServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs a chromium binary on PATH")
@pytest.mark.timeout(120)
async def test_swagger_ui_renders_offline(server: InProcessServer) -> None:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        proc = await asyncio.create_subprocess_exec(
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            # Every host but our server fails to resolve: an asset fetched from a CDN would
            # not load, and the page would not render.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=15000",
            "--dump-dom",
            server.url + "/docs",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 90)
    dom = out.decode("utf-8", "replace")
    assert 'class="swagger-ui' in dom, dom[:500]
    # Rendered from /openapi.json: the title and operations are in the page.
    assert "Bangban dispatch API" in dom
    assert "/v1/orders/{order_id}/claim" in dom
    assert "/open311/v2/requests.{fmt}" in dom
