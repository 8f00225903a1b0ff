"""``cone login`` end to end: a process sends exactly what cone sends, a person approves in
headless Chromium, and the credential it creates gets tokens. Also denial and expiry."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import text

from authserver.config import DeviceClient
from tests.support import browser as chromium
from tests.support.helpers import PASSWORD, services_of
from tests.support.live import LiveServer
from tests.support.pages import person, serving, sign_in

pytestmark = pytest.mark.browser

CONE = "2RGdOS94VDferT9e80mdgntl36K"
CONE_LIKE = Path(__file__).parent / "support" / "cone_like.py"


@pytest.fixture
def server(database_url: str) -> Iterator[LiveServer]:
    with serving(
        database_url, device_clients=(DeviceClient(CONE, "cone"),), device_poll_interval=1
    ) as live:
        person(live)
        yield live


@pytest.fixture
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    with chromium.guarded_context(browser, server.url) as context:
        yield context.page()


@pytest.fixture
def cone(server: LiveServer) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, str(CONE_LIKE), server.url, CONE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


def first_line(process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, f"the tool printed nothing: {process.stderr.read() if process.stderr else ''}"
    first: dict[str, Any] = json.loads(line)
    return first


def open_and_sign_in(page: Page, url: str) -> None:
    """The person opens the link the tool printed; the page asks them to sign in first."""
    sign_in(page, start=url, heading="Approve cone?")


def test_cone_login_approved_in_the_browser_creates_a_working_credential(
    page: Page, server: LiveServer, cone: subprocess.Popen[str]
) -> None:
    shown = first_line(cone)
    open_and_sign_in(page, shown["url"])
    expect(page.locator("dd code.user-code")).to_have_text(shown["user_code"])
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("cone is approved")
    stdout, stderr = cone.communicate(timeout=60)
    assert cone.returncode == 0, stderr
    created = json.loads(stdout)
    token = httpx.post(
        f"{server.url}/auth/v1/token",
        data={"grant_type": "client_credentials"},
        auth=(created["client_id"], created["client_secret"]),
    )
    assert token.status_code == 200, token.text
    page.goto("/ui/personal-clients")
    expect(page.get_by_role("row", name="Created by Cone")).to_be_visible()


def test_cone_login_denied_in_the_browser_ends_with_access_denied(
    page: Page, cone: subprocess.Popen[str]
) -> None:
    open_and_sign_in(page, first_line(cone)["url"])
    page.get_by_role("button", name="Deny").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Request denied")
    _, stderr = cone.communicate(timeout=60)
    assert cone.returncode == 1
    assert stderr.strip() == "the request was denied in the browser"


def test_cone_login_not_approved_in_time_ends_with_expired_token(
    page: Page, server: LiveServer, cone: subprocess.Popen[str]
) -> None:
    shown = first_line(cone)
    database = services_of(server.app).database
    with database.engine.begin() as conn:  # ten minutes pass
        conn.execute(text("UPDATE device_codes SET expires_at = created_at"))
    _, stderr = cone.communicate(timeout=60)
    assert cone.returncode == 1
    assert stderr.strip() == "the code expired before it was approved"
    page.goto(shown["url"])
    page.get_by_label("E-mail address").fill("alice@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("No waiting request has this code")


def test_authserver_login_approved_in_the_browser_saves_a_working_credential(
    page: Page, server: LiveServer, tmp_path: Path
) -> None:
    """The project's own CLI, approved by a person in the browser."""
    output = tmp_path / "credential.json"
    login = subprocess.Popen(
        [sys.executable, "-m", "authserver", "login", "--issuer", server.url,
         "--client-id", CONE, "--output", str(output)],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert login.stderr is not None
    url = next(line.split(": ", 1)[1].strip() for line in login.stderr if "/ui/device" in line)
    try:
        open_and_sign_in(page, url)
        page.get_by_role("button", name="Approve").click()
        _, stderr = login.communicate(timeout=60)
    finally:
        if login.poll() is None:
            login.kill()
    assert login.returncode == 0, stderr
    saved = json.loads(output.read_text())
    token = httpx.post(
        f"{server.url}/auth/v1/token",
        data={"grant_type": "client_credentials"},
        auth=(saved["client_id"], saved["client_secret"]),
    )
    assert token.status_code == 200, token.text
