"""The admin pages in a real browser (Debian's headless Chromium through Playwright):
invite → the person chooses a password → signs in; disable → their session and their
credentials stop; deleting a selection; the filters; no JavaScript; phone width."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from authserver.domain.credentials import Caller, NewCredential
from authserver.records import ClientRecord, UserRecord
from tests.support import browser as chromium
from tests.support.helpers import PASSWORD, now, services_of, within
from tests.support.live import LiveServer
from tests.support.pages import person, serving, sign_in, token_status

pytestmark = pytest.mark.browser
ADMIN = "root@example.com"
LABELLED = """() => [...document.querySelectorAll("input, select, textarea")]
    .filter(e => e.type !== "hidden" && !e.hidden)
    .filter(e => !(e.labels && e.labels.length) && !e.getAttribute("aria-label"))
    .map(e => e.name || e.id)"""


@pytest.fixture
def server(database_url: str) -> Iterator[LiveServer]:
    with serving(database_url) as live:
        yield live


@pytest.fixture
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    """The admin's browser, signed in; it fails the test on any console error (a CSP
    violation, a script error)."""
    person(server, ADMIN, roles=("system:owner", "deploy"))
    errors: list[str] = []
    with chromium.guarded_context(browser, server.url) as context:
        admin_page = context.page()

        def console(message: ConsoleMessage) -> None:
            if message.type == "error":
                errors.append(message.text)

        admin_page.on("console", console)
        sign_in(admin_page, ADMIN)
        yield admin_page
    assert errors == [], errors


@pytest.fixture
def other(browser: Browser, server: LiveServer) -> Iterator[Page]:
    """Another person's browser."""
    with chromium.guarded_context(browser, server.url) as context:
        yield context.page()


def credential(
    server: LiveServer, owner: UserRecord, name: str, **new: Any
) -> tuple[ClientRecord, str]:
    created = services_of(server.app).credentials.create(
        caller=Caller.operator(),
        owner_id=owner.id,
        new=NewCredential(display_name=name, **new),
        now=now(),
    )
    return created.record, created.secret


def test_invited_person_chooses_a_password_and_signs_in(page: Page, other: Page) -> None:
    page.get_by_role("link", name="Admin").click()
    page.get_by_role("link", name="Invite a person").click()
    page.get_by_label("E-mail").fill("erin@example.com")
    page.get_by_label("Name").fill("Erin")
    page.get_by_label("Roles").fill("deploy billing:read")
    page.get_by_role("button", name="Invite").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Pass this link on to erin@example.com"
    )
    page.get_by_role("button", name="Copy the invitation link").click()
    expect(page.get_by_role("status")).to_have_text("Invitation link copied to the clipboard.")
    link = page.evaluate("navigator.clipboard.readText()")
    assert link == page.get_by_label("Invitation link").input_value()
    other.goto(link)
    other.get_by_label("New password", exact=True).fill(PASSWORD)
    other.get_by_label("The same password again").fill(PASSWORD)
    other.get_by_role("button", name="Set password and sign in").click()
    expect(other.get_by_role("heading", level=1)).to_have_text("Personal clients")
    other.get_by_role("button", name="Sign out", exact=True).click()
    sign_in(other, "erin@example.com")  # and with the chosen password, from now on
    expect(other.locator("header.site .who")).to_have_text("erin@example.com")


def test_disabling_ends_the_session_and_stops_the_credentials(
    page: Page, other: Page, server: LiveServer
) -> None:
    bob = person(server, "bob@example.com")
    record, secret = credential(server, bob, "bob's script")
    sign_in(other, "bob@example.com")
    assert token_status(server.url, record.client_id, secret) == 200
    page.goto("/ui/admin/users")
    page.get_by_label("Search by e-mail or name").fill("bob")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Manage bob@example.com").click()
    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_role("status")).to_contain_text("The person was disabled")
    other.reload()
    expect(other.get_by_role("heading", level=1)).to_have_text("Sign in")
    within(1.5, lambda: token_status(server.url, record.client_id, secret) == 401)


def test_deleting_a_selection_after_the_confirmation(page: Page, server: LiveServer) -> None:
    carol = person(server, "carol@example.com")
    for name in ("old laptop", "old CI", "keep me"):
        credential(server, carol, name)
    page.goto("/ui/admin/credentials")
    page.get_by_label("Select old laptop").check()
    page.get_by_label("Select old CI").check()
    page.get_by_role("button", name="Delete the selected…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete these 2 credentials?")
    expect(page.locator("main li")).to_have_count(2)
    expect(page.locator("main")).to_contain_text("old laptop")
    expect(page.locator("main")).to_contain_text("old CI")
    page.get_by_role("button", name="Delete 2 credentials").click()
    expect(page.get_by_role("status").first).to_have_text("2 credentials deleted.")
    expect(page.locator("tbody th[data-label=Name]")).to_have_text(["keep me"])


def test_the_filters(page: Page, server: LiveServer) -> None:
    carol = person(server, "carol@example.com")
    dave = person(server, "dave@example.com")
    credential(server, carol, "office only", allow_source_cidr=["10.0.0.0/8"])
    credential(server, carol, "anywhere", expires_in=timedelta(days=3))
    credential(server, dave, "daves")
    page.goto("/ui/admin/credentials")
    page.get_by_label("Network-locked").check()
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody th[data-label=Name]")).to_have_text(["office only"])
    expect(page.get_by_label("Network-locked")).to_be_checked()  # the form shows what applies
    page.get_by_role("link", name="Clear").click()
    page.get_by_label("Owner (e-mail or name)").fill("dave")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody th[data-label=Name]")).to_have_text(["daves"])
    page.get_by_role("link", name="Clear").click()
    page.get_by_label("Expiring before").fill((now() + timedelta(days=7)).date().isoformat())
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody th[data-label=Name]")).to_have_text(["anywhere"])


def test_the_audit_trail_filters_by_event(page: Page, server: LiveServer) -> None:
    carol = person(server, "carol@example.com")
    credential(server, carol, "x")
    services_of(server.app).audit.flush()
    page.goto("/ui/admin/audit")
    page.get_by_label("Event").fill("credential_created")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody th[data-label=Event]")).to_have_text(["credential_created"])


def test_people_without_the_admin_role_see_no_admin_link(other: Page, server: LiveServer) -> None:
    person(server, "bob@example.com")
    sign_in(other, "bob@example.com")
    expect(other.get_by_role("link", name="Admin")).to_have_count(0)
    answer = other.goto("/ui/admin/users")
    assert answer is not None and answer.status == 404


def test_admin_pages_work_without_javascript(browser: Browser, server: LiveServer) -> None:
    admin = person(server, ADMIN, roles=("system:owner",))
    carol = person(server, "carol@example.com")
    credential(server, carol, "one")
    context = browser.new_context(base_url=server.url, java_script_enabled=False)
    guard = chromium.Guarded(context)
    try:
        page = guard.page()
        sign_in(page, ADMIN)
        page.goto("/ui/admin/credentials")
        page.get_by_label("Select one").check()
        page.get_by_role("button", name="Delete the selected…").click()
        page.get_by_role("button", name="Delete the credential").click()
        expect(page.get_by_role("status").first).to_have_text("1 credential deleted.")
        page.goto(f"/ui/admin/users/{admin.id}")
        page.get_by_role("button", name="End every session").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    finally:
        context.close()
    assert not guard.blocked


def test_admin_pages_have_labels_and_one_heading(page: Page, server: LiveServer) -> None:
    carol = person(server, "carol@example.com")
    credential(server, carol, "x")
    for path in (
        "/ui/admin/users",
        "/ui/admin/users/new",
        f"/ui/admin/users/{carol.id}",
        "/ui/admin/credentials",
        "/ui/admin/audit",
    ):
        page.goto(path)
        assert page.evaluate(LABELLED) == [], path
        expect(page.locator("h1")).to_have_count(1)


def test_the_inventory_fits_a_phone(browser: Browser, server: LiveServer) -> None:
    person(server, ADMIN, roles=("system:owner",))
    carol = person(server, "carol@example.com")
    credential(server, carol, "phone check")
    with chromium.guarded_context(
        browser, server.url, viewport=chromium.PHONE, phone=True
    ) as context:
        phone = context.page()
        sign_in(phone, ADMIN)
        phone.goto("/ui/admin/credentials")
        wider = phone.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        assert not wider, "the page scrolls sideways on a phone"
        expect(phone.get_by_label("Select phone check")).to_be_visible()
