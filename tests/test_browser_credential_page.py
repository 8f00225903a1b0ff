"""A credential's own page in headless Chromium: rotate with the secret shown once, rename,
narrow (and a refused widening), delete, where it was used from; without JavaScript and at
phone width too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from authserver.records import UserRecord
from authserver.store import Store
from tests.support import browser as chromium
from tests.support.helpers import services_of, within
from tests.support.live import LiveServer
from tests.support.pages import person, serving, sign_in, token_status

pytestmark = pytest.mark.browser


@pytest.fixture
def server(database_url: str) -> Iterator[LiveServer]:
    with serving(database_url) as live:
        yield live


@pytest.fixture
def store(server: LiveServer) -> Store:
    return services_of(server.app).store


@pytest.fixture
def alice(server: LiveServer) -> UserRecord:
    return person(server, roles=("billing:read", "deploy"))


@pytest.fixture
def page(browser: Browser, server: LiveServer, alice: UserRecord) -> Iterator[Page]:
    with chromium.guarded_context(browser, server.url) as context:
        yield context.page()


def create(page: Page, name: str, networks: str = "") -> tuple[str, str]:
    """Create a credential and come back to the list: (client id, secret)."""
    page.get_by_role("link", name="New personal client").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Networks").fill(networks)
    page.get_by_role("button", name="Create personal client").click()
    client_id = page.get_by_label("Client ID").input_value()
    secret = page.get_by_label("Client secret").input_value()
    page.get_by_role("link", name="Done: back to your personal clients").click()
    return client_id, secret


def open_page(page: Page, name: str) -> None:
    page.get_by_role("link", name=name, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)


def test_rotating_on_the_page_shows_the_new_secret_once(page: Page, server: LiveServer) -> None:
    sign_in(page)
    client_id, old = create(page, "ci")
    open_page(page, "ci")
    page.get_by_label("works 1 hour more").check()
    page.get_by_role("button", name="Rotate secret").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Copy the new client secret now")
    page.get_by_role("button", name="Copy client secret").click()
    new = page.evaluate("navigator.clipboard.readText()")
    assert new.startswith("secret-token:") and new != old
    assert page.get_by_label("Client ID").input_value() == client_id
    assert token_status(server.url, client_id, new) == 200
    assert token_status(server.url, client_id, old) == 200  # within the hour of grace
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Shown once")


def test_rotating_without_grace_stops_the_old_secret(page: Page, server: LiveServer) -> None:
    sign_in(page)
    client_id, old = create(page, "laptop")
    open_page(page, "laptop")
    expect(page.get_by_label("It stops at once")).to_be_checked()
    page.get_by_role("button", name="Rotate secret").click()
    new = page.get_by_label("Client secret").input_value()
    page.get_by_role("link", name="Done: back to “laptop”").click()
    facts = page.locator("dl.facts").nth(1)
    expect(facts).not_to_contain_text("never")  # "Secret rotated: just now"
    assert token_status(server.url, client_id, old) == 401
    assert token_status(server.url, client_id, new) == 200


def test_the_owner_renames_it(page: Page, store: Store, alice: UserRecord) -> None:
    sign_in(page)
    create(page, "old name")
    open_page(page, "old name")
    page.get_by_label("Name").fill("new name")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_have_text("The changes were saved.")
    expect(page.get_by_role("heading", level=1)).to_have_text("new name")
    assert [c.display_name for c in store.credentials.all(user_id=alice.id)] == ["new name"]


def test_the_owner_narrows_roles_and_networks(page: Page, store: Store, alice: UserRecord) -> None:
    sign_in(page)
    create(page, "deploy", networks="10.0.0.0/8")
    open_page(page, "deploy")
    page.get_by_label("deploy", exact=True).check()
    page.get_by_label("Networks").fill("10.1.0.0/16")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_have_text("The changes were saved.")
    [record] = store.credentials.all(user_id=alice.id)
    assert record.scoped_roles == ("deploy",)
    assert record.allow_source_cidr == ("10.1.0.0/16",)
    expect(page.locator("dl.facts").first).to_contain_text("10.1.0.0/16")


def test_a_wider_network_is_refused_beside_the_field(
    page: Page, store: Store, alice: UserRecord
) -> None:
    sign_in(page)
    create(page, "locked", networks="10.0.0.0/8")
    open_page(page, "locked")
    page.get_by_label("Networks").fill("0.0.0.0/0")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("alert")).to_contain_text("Networks: may only keep networks inside")
    expect(page.get_by_label("Networks")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Networks")).to_have_value("0.0.0.0/0")  # the form as sent
    [record] = store.credentials.all(user_id=alice.id)
    assert record.allow_source_cidr == ("10.0.0.0/8",)


def test_the_owner_deletes_it_from_its_page(page: Page, server: LiveServer) -> None:
    sign_in(page)
    client_id, secret = create(page, "old")
    open_page(page, "old")
    page.get_by_role("link", name="Delete personal client…").click()
    page.get_by_role("button", name="Delete personal client").click()
    expect(page.get_by_role("status")).to_have_text("The personal client was deleted.")
    assert token_status(server.url, client_id, secret) == 401


def test_the_page_shows_where_it_was_used_from(page: Page, server: LiveServer) -> None:
    sign_in(page)
    client_id, secret = create(page, "used")
    assert token_status(server.url, client_id, secret) == 200
    open_page(page, "used")
    addresses = page.get_by_role("table", name="The last source addresses")

    def shown() -> bool:
        page.reload()
        return addresses.count() == 1

    within(5, shown)  # written by the batched writer within a second of the token
    expect(addresses).to_contain_text("127.0.0.1")
    per_day = page.get_by_role("table", name="Tokens issued per day")
    expect(per_day.locator(".count")).to_have_text("1")


def test_rotating_works_without_javascript_at_phone_width(
    browser: Browser, server: LiveServer, alice: UserRecord
) -> None:
    context = browser.new_context(
        base_url=server.url,
        java_script_enabled=False,
        viewport={"width": chromium.PHONE["width"], "height": chromium.PHONE["height"]},
        is_mobile=True,
        has_touch=True,
    )
    guard = chromium.Guarded(context)
    try:
        page = guard.page()
        sign_in(page)
        client_id, _ = create(page, "phone")
        open_page(page, "phone")
        width: Any = page.evaluate("document.documentElement.scrollWidth")
        assert width <= chromium.PHONE["width"], "the page scrolls sideways on a phone"
        page.get_by_label("works 1 day more").check()
        page.get_by_role("button", name="Rotate secret").click()
        new = page.get_by_label("Client secret").input_value()
        assert token_status(server.url, client_id, new) == 200
    finally:
        context.close()
    assert not guard.blocked


LABELLED = """() => [...document.querySelectorAll("input, select, textarea")]
    .filter(e => e.type !== "hidden" && !e.hidden)
    .filter(e => !(e.labels && e.labels.length) && !e.getAttribute("aria-label"))
    .map(e => e.name || e.id)"""


def test_the_page_has_labels_and_one_heading(page: Page) -> None:
    sign_in(page)
    create(page, "a11y")
    open_page(page, "a11y")
    assert page.evaluate(LABELLED) == []
    assert page.locator("h1").count() == 1
