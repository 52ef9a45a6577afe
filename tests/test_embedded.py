"""The embedded servers on a fresh machine: what they leave of the folders around them."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import asyncpg
import pytest

from dispatcher.embedded import EmbeddedPostgres


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="pgserver changes folder modes only as root")
@pytest.mark.parametrize("persist", [False, True])
async def test_embedded_postgres_as_root_leaves_a_private_parent_private(
    tmp_path: Path, persist: bool
) -> None:
    """As root, pgserver runs Postgres as its own user and opens up every parent folder of
    the cluster; the data folder's parents keep their modes (the cluster lives elsewhere)."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    data = private / "data"
    data.mkdir(mode=0o700)
    modes = {p: _mode(p) for p in (private, data, tmp_path)}
    pg = EmbeddedPostgres(data / "pg", persist=persist)
    cluster = pg.cluster_folder()
    try:
        url = pg.start()
        assert pg.cluster_folder() == cluster  # the folder asked for before is the one used
        assert {p: _mode(p) for p in modes} == modes
        assert not cluster.is_relative_to(private)
        conn = await asyncpg.connect(url)
        try:
            # plpgsql, loaded from the binaries' folder by the Postgres user, still works.
            await conn.execute("DO $$ BEGIN PERFORM 1; END $$")
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()
        assert (data / "pg").is_symlink() and (data / "pg" / "PG_VERSION").exists()
    finally:
        pg.stop()
    assert {p: _mode(p) for p in modes} == modes
    if persist:
        assert (cluster / "PG_VERSION").exists()  # kept for the next start
        again = EmbeddedPostgres(data / "pg", persist=True)
        assert again.cluster_folder() == cluster
        shutil.rmtree(cluster)
    else:
        assert not cluster.parent.exists()  # a throwaway cluster goes with its server
