"""Real Chromium for the browser tests: one browser per session, one context per page.

Debian's Chromium at ``/usr/bin/chromium`` (``BANGBAN_CHROMIUM`` elsewhere), driven by
Playwright's async API in the tests' own event loop, next to the in-process server.  When
Chromium is missing the browser tests fail with a message saying how to install it (``make
test`` installs it when run as root); they never skip.

:class:`Pages` records every console error, page error and failed request of the pages it
opened; a test ends by :meth:`Pages.assert_clean`, so a missing favicon or a script error fails
it.  :meth:`Pages.screenshots` writes a page at phone (360x640) and desk (1280x800) size to
``BANGBAN_SCREENSHOTS`` (default ``tests/results/screenshots``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    async_playwright,
    expect,
)

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("BANGBAN_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(
    os.environ.get("BANGBAN_SCREENSHOTS", ROOT / "tests" / "results" / "screenshots")
)
PHONE = {"width": 360, "height": 640}
DESK = {"width": 1280, "height": 800}
TIMEOUT_MS = 10_000
expect.set_options(timeout=TIMEOUT_MS)  # a shared, loaded machine: assert behaviour, not speed


def check_installed() -> None:
    """Fail (never skip) with how to fix it when Chromium or a CJK font is missing."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the browser tests need Debian's Chromium and a CJK"
            " font. Run `make test` as root (it installs them), or"
            " `apt-get install -y chromium fonts-noto-cjk`, or set BANGBAN_CHROMIUM.",
            pytrace=False,
        )
    fonts = shutil.which("fc-list")
    listed = (
        subprocess.run([fonts, ":lang=zh", "family"], capture_output=True, text=True, check=False)
        if fonts
        else None
    )
    if listed is not None and "CJK" not in listed.stdout:
        pytest.fail(
            "no CJK font: Chinese would render as empty boxes. `apt-get install fonts-noto-cjk`",
            pytrace=False,
        )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    check_installed()
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        await chromium.close()


@dataclass
class Pages:
    browser: Browser
    base_url: str
    problems: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)
    contexts: list[BrowserContext] = field(default_factory=list)

    async def open(
        self, path: str, *, size: dict[str, int] | None = None, name: str = "", **options: Any
    ) -> Page:
        """A fresh browser profile (its own storage) showing ``path``; ``options`` go to
        Playwright's ``new_context`` (``geolocation``, ``permissions``...)."""
        context = await self.browser.new_context(
            viewport=size or PHONE, locale="zh-CN", timezone_id="Asia/Shanghai", **options
        )
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        page = await context.new_page()
        label = name or path.split("#")[0]
        page.on("console", lambda msg: self._console(label, msg))
        page.on("pageerror", lambda exc: self.problems.append(f"{label}: page error {exc}"))
        page.on(
            "response",
            lambda r: (
                self.problems.append(f"{label}: {r.status} {r.url.split('?')[0]}")
                if r.status >= 400 and not self._allowed(f"{r.status} {r.url}")
                else None
            ),
        )
        await page.goto(self.base_url + path)
        return page

    def allow(self, pattern: str) -> None:
        """Console errors matching ``pattern`` are expected (a server restarting, say)."""
        self.allowed.append(re.compile(pattern))

    def _allowed(self, text: str) -> bool:
        return any(p.search(text) for p in self.allowed)

    def _console(self, label: str, msg: ConsoleMessage) -> None:
        if msg.type == "error" and not self._allowed(msg.text):
            where = msg.location.get("url", "")
            self.problems.append(f"{label}: console {msg.type}: {msg.text} ({where})")

    async def screenshots(self, page: Page, name: str) -> list[Path]:
        """``name``-phone.png and ``name``-desk.png of what ``page`` shows."""
        written = []
        original = page.viewport_size
        for label, size in (("phone", PHONE), ("desk", DESK)):
            await page.set_viewport_size(size)
            await page.evaluate("window.scrollTo(0, 0)")
            path = SCREENSHOTS / f"{name}-{label}.png"
            await page.screenshot(path=str(path), full_page=False)
            written.append(path)
        if original is not None:
            await page.set_viewport_size(original)
        return written

    def assert_clean(self) -> None:
        assert not self.problems, "browser problems:\n" + "\n".join(self.problems)

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()
        self.contexts.clear()


@pytest.fixture
async def pages(browser: Browser) -> AsyncIterator[Pages]:
    """Pages against a base URL the test sets (``pages.base_url = server.url``)."""
    opened = Pages(browser, "")
    try:
        yield opened
    finally:
        await opened.close()
