"""The pages in a real browser: Debian's headless Chromium driven by Playwright.

Each test uses a fresh browser context (cookies, clipboard) of one browser shared
by this module; the server runs in a thread on loopback, on SQLite and on PostgreSQL.
Nothing leaves loopback (``tests.support.browser``).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from authserver.store import Store
from authserver.usecases.users import UserService
from tests.support import browser as chromium
from tests.support.helpers import PASSWORD, now, services_of, within
from tests.support.live import LiveServer
from tests.support.pages import person, serving, sign_in, token_status

pytestmark = pytest.mark.browser


@pytest.fixture
def server(database_url: str) -> Iterator[LiveServer]:
    with serving(database_url) as live:
        yield live


@pytest.fixture
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    with chromium.guarded_context(browser, server.url) as context:
        yield context.page()


@pytest.fixture
def people(server: LiveServer) -> Any:
    return services_of(server.app).people


@pytest.fixture
def store(server: LiveServer) -> Store:
    return services_of(server.app).store


def create(page: Page, name: str) -> tuple[str, str]:
    """Create a credential; (client id, secret copied from the page with its button)."""
    page.get_by_role("link", name="New personal client").click()
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create personal client").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Copy the new client secret now")
    page.get_by_role("button", name="Copy client secret").click()
    expect(page.get_by_role("status")).to_have_text("Client secret copied to the clipboard.")
    secret = page.evaluate("navigator.clipboard.readText()")
    return page.get_by_label("Client ID").input_value(), secret


def test_person_creates_uses_and_deletes_a_credential(page: Page, server: LiveServer) -> None:
    person(server)
    sign_in(page)
    client_id, secret = create(page, "laptop")
    assert secret.startswith("secret-token:")
    assert token_status(server.url, client_id, secret) == 200
    page.get_by_role("link", name="Done: back to your personal clients").click()
    row = page.get_by_role("row", name="laptop")

    def last_used_shown() -> bool:
        page.reload()
        return row.get_by_role("cell").nth(4).inner_text() != "never"

    within(5, last_used_shown)  # lastUsedAt is written within a second of the token
    # In words, with the exact time on hover.
    expect(row.locator("time").nth(1)).to_have_attribute("title", re.compile(r"^[0-9 :-]+ UTC$"))
    row.get_by_role("link", name="Delete laptop").click()
    page.get_by_role("button", name="Delete personal client").click()
    expect(page.get_by_role("status")).to_have_text("The personal client was deleted.")
    assert token_status(server.url, client_id, secret) == 401


def test_invited_person_chooses_a_password_and_uses_a_credential_with_curl(
    page: Page, server: LiveServer, store: Store, people: Any
) -> None:
    bob = UserService(store).create(
        email="bob@example.com", display_name="Bob", role_names=["deploy"], now=now()
    )
    link, _ = people.invite(user_ref=bob.id, ttl=timedelta(days=1), now=now())
    page.goto(link)
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("The same password again").fill(PASSWORD)
    page.get_by_role("button", name="Set password and sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Personal clients")
    client_id, secret = create(page, "first key")
    curl = subprocess.run(
        [
            "curl",
            "-s",
            "-u",
            f"{client_id}:{secret}",
            "-d",
            "grant_type=client_credentials",
            f"{server.url}/auth/v1/token",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert '"token_type":"Bearer"' in curl.stdout.replace(" ", "")


def test_admin_finds_and_deletes_another_users_credential(
    browser: Browser, server: LiveServer, store: Store
) -> None:
    person(server, "admin@example.com", roles=("system:owner",))
    person(server, "bob@example.com")
    with chromium.guarded_context(browser, server.url) as bobs:
        bob_page = bobs.page()
        sign_in(bob_page, "bob@example.com")
        create(bob_page, "bobs build")
    with chromium.guarded_context(browser, server.url) as admins:
        page = admins.page()
        sign_in(page, "admin@example.com")
        page.get_by_role("link", name="Everyone’s").click()
        page.get_by_label("Search by the owner’s e-mail or name").fill("bob@")
        page.get_by_role("button", name="Search").click()
        row = page.get_by_role("row", name="bobs build")
        expect(row).to_contain_text("bob@example.com")
        row.get_by_role("link", name="Delete bobs build").click()
        page.get_by_role("button", name="Delete personal client").click()
        expect(page.get_by_role("status")).to_have_text("The personal client was deleted.")
    assert store.credentials.all() == []


def test_post_without_csrf_token_is_refused(page: Page, server: LiveServer, store: Store) -> None:
    person(server)
    sign_in(page)
    status = page.evaluate(
        """() => fetch("/ui/personal-clients/new", {method: "POST",
            body: new URLSearchParams({name: "forged", expiry: "never"})}).then(r => r.status)"""
    )
    assert status == 403 and store.credentials.all() == []


def test_disabled_users_session_stops_on_a_second_instance_within_a_second(
    page: Page, server: LiveServer, store: Store, database_url: str
) -> None:
    alice = person(server)
    sign_in(page)
    with serving(database_url) as second:
        # Cookies are per host, not per port: the same session on the second instance.
        page.goto(f"{second.url}/ui/personal-clients")
        expect(page.get_by_role("heading", level=1)).to_have_text("Personal clients")
        UserService(store).update(ref=alice.id, role_names=None, disabled=True, now=now())

        def signed_out() -> bool:
            page.goto(f"{second.url}/ui/personal-clients")
            return page.get_by_role("heading", level=1).inner_text() == "Sign in"

        within(1.0, signed_out)
        expect(page.get_by_role("status")).to_have_text(
            "Your session has ended. Please sign in again."
        )


def test_pages_work_without_javascript(browser: Browser, server: LiveServer) -> None:
    person(server)
    context = browser.new_context(base_url=server.url, java_script_enabled=False)
    guard = chromium.Guarded(context)
    try:
        page = guard.page()
        sign_in(page)
        page.get_by_role("link", name="New personal client").click()
        page.get_by_label("Name").fill("no-js")
        page.get_by_role("button", name="Create personal client").click()
        assert page.get_by_label("Client secret").input_value().startswith("secret-token:")
        expect(page.get_by_role("button", name="Copy client secret")).to_be_hidden()
    finally:
        context.close()
    assert not guard.blocked


LABELLED = """() => [...document.querySelectorAll("input, select, textarea")]
    .filter(e => e.type !== "hidden" && !e.hidden)
    .filter(e => !(e.labels && e.labels.length) && !e.getAttribute("aria-label"))
    .map(e => e.name || e.id)"""
LANDMARKS = """() => ({h1: document.querySelectorAll("h1").length,
    header: document.querySelectorAll("body > header").length,
    main: document.querySelectorAll("main").length,
    footer: document.querySelectorAll("body > footer").length,
    nav: document.querySelectorAll("nav").length})"""


def test_every_page_has_labels_one_heading_and_landmarks(page: Page, server: LiveServer) -> None:
    person(server, roles=("system:owner", "deploy"))
    seen = {}
    page.goto("/ui/")
    seen["sign-in"] = (page.evaluate(LABELLED), page.evaluate(LANDMARKS))
    sign_in(page)
    create(page, "a11y")
    seen["secret"] = (page.evaluate(LABELLED), page.evaluate(LANDMARKS))
    for name, path in (
        ("list", "/ui/personal-clients"),
        ("everyone", "/ui/personal-clients/all"),
        ("new", "/ui/personal-clients/new"),
        ("not found", "/ui/nothing-here"),
    ):
        page.goto(path)
        seen[name] = (page.evaluate(LABELLED), page.evaluate(LANDMARKS))
    page.goto("/ui/personal-clients")
    page.get_by_role("link", name="Delete a11y").click()
    seen["delete"] = (page.evaluate(LABELLED), page.evaluate(LANDMARKS))
    for name, (unlabelled, landmarks) in seen.items():
        assert unlabelled == [], f"{name}: inputs without a label: {unlabelled}"
        assert landmarks["h1"] == 1 and landmarks["main"] == 1, f"{name}: {landmarks}"
        assert landmarks["header"] == 1 and landmarks["footer"] == 1, f"{name}: {landmarks}"
        if name != "sign-in":
            assert landmarks["nav"] >= 1, f"{name}: {landmarks}"


def test_secret_page_works_with_the_keyboard_alone(page: Page, server: LiveServer) -> None:
    person(server)
    sign_in(page)
    create(page, "keyboard")
    page.evaluate("navigator.clipboard.writeText('')")
    page.evaluate("document.activeElement.blur()")  # focus back at the start of the page
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.copy") == "client-secret":
            break
    else:
        pytest.fail("Tab never reached the secret's copy button")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Client secret copied to the clipboard.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.get_by_label("Client secret").input_value()


def test_phone_header_shows_the_signed_in_account(browser: Browser, server: LiveServer) -> None:
    person(server)
    with chromium.guarded_context(
        browser, server.url, viewport=chromium.PHONE, phone=True
    ) as context:
        page = context.page()
        sign_in(page)
        account = page.locator("header.site .who")
        expect(account).to_be_visible()
        expect(account).to_have_text("alice@example.com")
