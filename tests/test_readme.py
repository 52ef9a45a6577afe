"""The README is the operators' manual: every setting the server reads is in its table."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_in_the_readme_settings_table() -> None:
    read = set(re.findall(r'"(BANGBAN_[A-Z0-9_]+)"', (ROOT / "dispatcher/settings.py").read_text()))
    assert read, "no settings found in dispatcher/settings.py"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| [^|]*`(BANGBAN_[A-Z0-9_]+)`", readme, re.M))
    rows |= set(re.findall(r"`(BANGBAN_[A-Z0-9_]+)`, `(?:BANGBAN_[A-Z0-9_]+)`", readme))
    rows |= set(re.findall(r", `(BANGBAN_[A-Z0-9_]+)` \|", readme))
    assert read - rows == set(), f"settings missing from the README's table: {sorted(read - rows)}"
