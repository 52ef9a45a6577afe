"""The admin token never appears in the server's log: from the environment it is not shown;
generated, it is stored in a file only its user can read, and the log says where."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

from clients import ApiClient
from dispatcher.settings import Settings
from tests.servers import ProcessServer


async def test_a_token_from_the_environment_is_never_printed(
    settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    async with ProcessServer(settings, log=log, extra_env={"BANGBAN_DATA_DIR": str(tmp_path)}):
        pass
    text = log.read_text()
    assert settings.admin_token and settings.admin_token not in text, text
    assert "admin token: BANGBAN_ADMIN_TOKEN" in text


async def test_a_generated_token_is_stored_and_its_place_printed(
    settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    data = tmp_path / "data"
    none = dataclasses.replace(settings, admin_token=None)
    async with ProcessServer(none, log=log, extra_env={"BANGBAN_DATA_DIR": str(data)}) as srv:
        stored = data / "admin_token"
        assert stored.exists(), log.read_text()
        token = stored.read_text().strip()
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600
        async with ApiClient(srv.url, token) as admin:
            r = await admin.request("GET", "/v1/admin/grids")
            assert r.status_code == 200, r.text
    text = log.read_text()
    assert token not in text, text
    assert f"stored in {stored.resolve()}" in text
