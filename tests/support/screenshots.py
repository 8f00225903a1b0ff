"""Screenshots of the pages for docs/ui.md: ``scripts/screenshots`` (or
``python -m tests.support.screenshots docs``) writes docs/ui-*.png.

A throwaway server with a few example credentials, signed in as an admin, at
desktop (1280x800) and phone (390x844) widths. Its sign-in page shows an
OpenID Connect provider's button too (the provider is never contacted).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

from authserver.app import create_app
from authserver.config import DeviceClient, Settings
from authserver.domain.credentials import Caller, NewCredential
from authserver.sso.providers import OidcProvider
from authserver.store import Store
from authserver.store.database import Database, migrate
from authserver.usecases.users import UserService
from tests.support import browser
from tests.support.helpers import PASSWORD
from tests.support.live import LiveServer
from tests.support.ports import free_port


@contextmanager
def example_server(folder: Path) -> Iterator[LiveServer]:
    """A live server whose admin alice has three credentials, one used a while ago."""
    port = free_port()
    okta = OidcProvider(
        name="okta", issuer="https://example.okta.com", client_id="0oa-example", client_secret="-"
    )
    settings = Settings(
        database_url=f"sqlite:///{folder}/screens.db",
        issuer=f"http://127.0.0.1:{port}",
        device_clients=(DeviceClient("2RGdOS94VDferT9e80mdgntl36K", "cone"),),
        login_oidc=(okta,),
    )
    database = Database(settings.database_url)
    migrate(database)
    app = create_app(settings, database=database)
    services = app.state.services
    now = datetime.now(UTC)
    services.audit.start(background=False)
    users = UserService(Store(database))
    alice = users.create(
        email="alice@example.com",
        display_name="Alice",
        role_names=["system:owner", "billing:read", "deploy"],
        now=now - timedelta(days=40),
    )
    bob = users.create(email="bob@example.com", display_name="Bob", role_names=["deploy"], now=now)
    carol = users.create(
        email="carol@example.com", display_name="Carol", role_names=["billing:read"], now=now
    )
    services.people.invite(user_ref=carol.id, ttl=timedelta(days=7), now=now)
    services.people.set_password(user_ref=alice.id, password=PASSWORD, now=now)
    caller = Caller(user_id=alice.id, effective_roles=frozenset(alice.roles), reduced=False)
    examples = [
        (NewCredential("laptop", (), (), None), now - timedelta(days=35), timedelta(minutes=3)),
        (
            NewCredential("deploy from CI", ("10.20.0.0/16",), ("deploy",), timedelta(days=90)),
            now - timedelta(days=12),
            timedelta(hours=5),
        ),
        (
            NewCredential("billing export", (), ("billing:read",), timedelta(days=30)),
            now - timedelta(days=2),
            None,
        ),
    ]
    for new, created_at, used_ago in examples:
        created = services.credentials.create(
            caller=caller, owner_id=alice.id, new=new, now=created_at
        )
        if used_ago is not None:
            services.store.credentials.record_last_used(used={created.record.id: now - used_ago})
        if new.display_name == "deploy from CI" and used_ago is not None:  # where, how much
            _example_usage(services.store, created.record.id, now - used_ago)
    # Bob's, for the admin inventory: one locked to a network, one requiring DPoP, one old.
    for new, created_at in (
        (NewCredential("nightly backup", ("192.0.2.0/24",), (), timedelta(days=30)), now),
        (NewCredential("release bot", (), (), timedelta(days=7), True), now),
        (NewCredential("forgotten script", (), (), None), now - timedelta(days=200)),
    ):
        services.credentials.create(caller=caller, owner_id=bob.id, new=new, now=created_at)
    services.audit.stop()  # the setup's events written, for the audit page
    with LiveServer(app, port) as server:
        yield server
    database.dispose()


def _example_usage(store: Store, credential_id: str, last: datetime) -> None:
    """A CI credential's week: tokens on most days, from three runners' addresses."""
    addresses = {
        (credential_id, "10.20.3.17"): last,
        (credential_id, "10.20.3.42"): last - timedelta(hours=26),
        (credential_id, "10.20.7.5"): last - timedelta(days=4),
    }
    counts = {}
    for days_ago, tokens in ((0, 14), (1, 22), (2, 9), (4, 31), (5, 18), (8, 3)):
        hour = (last - timedelta(days=days_ago)).replace(minute=0, second=0, microsecond=0)
        counts[(credential_id, hour)] = tokens
    store.credentials.record_last_used(
        used={credential_id: last}, addresses=addresses, counts=counts
    )


def sign_in(page: Page, email: str = "alice@example.com") -> None:
    page.goto("/ui/")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui/personal-clients")


def take(out: Path) -> list[Path]:
    written = []
    with tempfile.TemporaryDirectory() as folder, example_server(Path(folder)) as server:
        with sync_playwright() as playwright:
            chromium = browser.launch(playwright)
            for name, viewport, phone in (
                ("desktop", browser.DESKTOP, False),
                ("phone", browser.PHONE, True),
            ):
                with browser.guarded_context(
                    chromium, server.url, viewport=viewport, phone=phone
                ) as context:
                    page = context.page()
                    page.goto("/ui/")
                    written.append(out / f"ui-sign-in-{name}.png")
                    page.screenshot(path=written[-1], full_page=True)
                    sign_in(page)
                    written.append(out / f"ui-list-{name}.png")
                    page.screenshot(path=written[-1], full_page=True)
                    page.goto("/ui/personal-clients/new")
                    written.append(out / f"ui-new-{name}.png")
                    page.screenshot(path=written[-1], full_page=True)
                    page.get_by_label("Name").fill("release bot")
                    page.get_by_role("button", name="Create personal client").click()
                    page.get_by_role("button", name="Copy client secret").click()
                    written.append(out / f"ui-secret-{name}.png")
                    page.screenshot(path=written[-1], full_page=True)
                    started = httpx.post(
                        f"{server.url}/auth/v1/device_authorization",
                        data={"client_id": "2RGdOS94VDferT9e80mdgntl36K"},
                    ).json()
                    page.goto(started["verification_uri_complete"])
                    written.append(out / f"ui-device-{name}.png")
                    page.screenshot(path=written[-1], full_page=True)
                    written += admin_pages(page, out, name)
                    page.goto("/ui/personal-clients")
                    page.get_by_role("link", name="deploy from CI", exact=True).click()
                    written.append(out / f"ui-detail-{name}.png")
                    page.screenshot(path=written[-1], full_page=True)
            chromium.close()
    return written


def admin_pages(page: Page, out: Path, name: str) -> list[Path]:
    """The admin pages: people, one person, an invitation link, the inventory with a
    selection to delete, and the audit trail."""
    written = []

    def shot(what: str) -> None:
        written.append(out / f"ui-admin-{what}-{name}.png")
        page.screenshot(path=written[-1], full_page=True)

    page.goto("/ui/admin/users")
    shot("users")
    page.get_by_role("link", name="Manage bob@example.com").click()
    shot("user")
    page.goto("/ui/admin/users/new")
    page.get_by_label("E-mail").fill(f"dora-{name}@example.com")
    page.get_by_label("Roles").fill("deploy")
    page.get_by_role("button", name="Invite").click()
    page.get_by_role("button", name="Copy the invitation link").click()
    shot("invitation")
    page.goto("/ui/admin/credentials")
    shot("credentials")
    page.get_by_label("Select forgotten script").check()
    page.get_by_label("Select nightly backup").check()
    page.get_by_role("button", name="Delete the selected…").click()
    shot("delete")
    page.goto("/ui/admin/audit")
    shot("audit")
    return written


if __name__ == "__main__":
    for path in take(Path(sys.argv[1] if len(sys.argv) > 1 else "docs")):
        print(path)
