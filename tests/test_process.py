"""What one process needs of its machine: the open-files limit, its data folder to itself."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatcher.process import DataFolderInUseError, DataFolderLock, raise_open_files_limit


@pytest.fixture
def low_limit() -> Iterator[int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    yield hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_open_files_limit_is_raised_to_the_hard_limit(low_limit: int) -> None:
    got = raise_open_files_limit()
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == got
    if low_limit != resource.RLIM_INFINITY:
        assert got == low_limit
    else:
        assert got >= 65536


def test_a_held_data_folder_refuses_a_second_holder_naming_the_first(tmp_path: Path) -> None:
    with DataFolderLock(tmp_path / "data") as first:
        first.acquire(8123)
        with pytest.raises(DataFolderInUseError) as refused:
            DataFolderLock(tmp_path / "data").acquire(9000)
        assert refused.value.holder == {"pid": os.getpid(), "port": 8123}
        assert f"(pid {os.getpid()}, port 8123)" in str(refused.value)
    # Released: the next one gets it, and the file names the new holder.
    with DataFolderLock(tmp_path / "data") as second:
        second.acquire(9000)
        assert '"port": 9000' in (tmp_path / "data" / "lock").read_text()
