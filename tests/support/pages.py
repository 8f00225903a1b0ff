"""What the browser tests share: one headless Chromium per test module, a server on loopback,
a person who can sign in, signing in on the page, and asking for a token.

``tests/conftest.py`` loads this module as a plugin, so the ``browser`` fixture is there for
every test module; a module that needs another server or page defines its own fixtures with
the helpers below.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from authserver.app import create_app
from authserver.config import Settings
from authserver.records import UserRecord
from authserver.store.database import Database, migrate
from authserver.usecases.users import UserService
from tests.support import browser as chromium
from tests.support.helpers import PASSWORD, now, services_of
from tests.support.live import LiveServer
from tests.support.ports import free_port

ALICE = "alice@example.com"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium, shared by one test module's tests.

    Module scope, not session: sync Playwright keeps an asyncio loop running in this
    thread while it is open, which later tests' own event loops cannot share.
    """
    assert chromium.available(), "Debian's chromium is missing: ./scripts/test installs it"
    with sync_playwright() as playwright:
        launched = chromium.launch(playwright)
        yield launched
        launched.close()


@contextmanager
def serving(database_url: str, **settings: Any) -> Iterator[LiveServer]:
    """One server instance on the (shared) database, its issuer its own URL."""
    port = free_port()
    config = Settings(database_url=database_url, issuer=f"http://127.0.0.1:{port}", **settings)
    database = Database(config.database_url)
    migrate(database)
    try:
        with LiveServer(create_app(config, database=database), port) as live:
            yield live
    finally:
        database.dispose()


def person(
    server: LiveServer, email: str = ALICE, roles: tuple[str, ...] = ("deploy",)
) -> UserRecord:
    """A person with ``roles`` who can sign in with ``PASSWORD``."""
    services = services_of(server.app)
    user = UserService(services.store).create(
        email=email, display_name="", role_names=roles, now=now()
    )
    services.people.set_password(user_ref=user.id, password=PASSWORD, now=now())
    return user


def sign_in(
    page: Page, email: str = ALICE, *, start: str = "/ui/", heading: str = "Personal clients"
) -> None:
    """Open ``start``, sign in on the form it shows, and land on ``heading``."""
    page.goto(start)
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)


def token_status(url: str, client_id: str, secret: str) -> int:
    """The status of a client-credentials token request with these credentials."""
    return httpx.post(
        f"{url}/auth/v1/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
    ).status_code
