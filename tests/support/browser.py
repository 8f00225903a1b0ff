"""Headless Chromium (Debian's ``chromium``, never a downloaded browser) driven by Playwright.

The browser may only talk to loopback: host resolution maps every other name to
nothing, and each context aborts (and records) any request to another host.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Route

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",  # the tests run as root in CI
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")


def available() -> bool:
    return os.access(CHROMIUM, os.X_OK)


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)


class Guarded:
    """A browser context whose requests stay on loopback; ``blocked`` lists any that did not."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.blocked: list[str] = []
        context.route("**/*", self._guard)

    def _guard(self, route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOOPBACK or url.startswith(("data:", "about:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def page(self) -> Page:
        return self.context.new_page()


@contextmanager
def guarded_context(
    browser: Browser, base_url: str, *, viewport: dict[str, int] = DESKTOP, phone: bool = False
) -> Iterator[Guarded]:
    context = browser.new_context(
        viewport=viewport,  # type: ignore[arg-type]  # a ViewportSize TypedDict
        base_url=base_url,
        is_mobile=phone,
        has_touch=phone,
        device_scale_factor=1,
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    guarded = Guarded(context)
    try:
        yield guarded
    finally:
        context.close()
    assert not guarded.blocked, f"the browser tried to leave loopback: {guarded.blocked}"
