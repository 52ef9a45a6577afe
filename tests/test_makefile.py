"""The front door: ``make help`` names every target the Makefile declares."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.servers import ROOT


def _phony() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    (line,) = re.findall(r"^\.PHONY:(.*)$", text, flags=re.MULTILINE)
    return set(line.split())


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_help_lists_every_target() -> None:
    help_text = subprocess.run(
        ["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, timeout=30, check=True
    ).stdout
    listed = set(re.findall(r"^make (\S+)", help_text, flags=re.MULTILINE))
    assert {"run", "test", "lint", "format", "bench", "capacity", "loadtest", "clean"} <= listed
    assert listed == _phony()
