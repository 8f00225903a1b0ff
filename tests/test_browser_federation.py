"""``/ui/federation`` in a real browser (Debian's headless Chromium through Playwright): a person
creates a trust from the GitLab preset, tests its condition, a CI job from the test issuer
exchanges its token, and the person deletes the trust; the page fits a phone's width."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect

from authserver.records import UserRecord
from authserver.store import Store
from tests.support import browser as chromium
from tests.support.ci_issuer import CiIssuer, gitlab_claims, running_issuer
from tests.support.helpers import now, services_of
from tests.support.live import LiveServer
from tests.support.pages import person, serving, sign_in

pytestmark = pytest.mark.browser
CONDITION = 'claims.project_path == "acme/deploy" && claims.ref_protected == "true"'


@pytest.fixture(scope="module")
def issuer() -> Iterator[CiIssuer]:
    with running_issuer() as running:
        yield running


@pytest.fixture
def server(database_url: str) -> Iterator[LiveServer]:
    with serving(database_url) as live:
        yield live


@pytest.fixture
def alice(server: LiveServer) -> UserRecord:
    return person(server)


def exchange(server: LiveServer, client_id: str, token: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/auth/v1/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "client_id": client_id,
        },
    )


def test_person_creates_tests_uses_and_deletes_a_ci_trust(
    browser: Browser, server: LiveServer, issuer: CiIssuer, alice: UserRecord
) -> None:
    with chromium.guarded_context(browser, server.url) as context:
        page = context.page()
        sign_in(page)
        page.get_by_role("link", name="CI trusts").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("CI trusts")
        page.get_by_role("link", name="GitLab CI").click()
        expect(page.get_by_label("Issuer")).to_have_value("https://gitlab.com")
        expect(page.locator("dl.claims")).to_contain_text("claims.ref_protected")
        page.get_by_label("Name").fill("deploy from GitLab")
        page.get_by_label("Issuer").fill(issuer.url)  # the test issuer stands in for gitlab.com
        page.get_by_label("Condition").fill(CONDITION)
        claims = gitlab_claims(ref_protected="false")
        page.get_by_label("ID token or claims").fill(json.dumps(claims))
        page.get_by_role("button", name="Test condition").click()
        expect(page.locator("#test-result")).to_contain_text("Refused")
        expect(page.get_by_label("ID token or claims")).to_have_value("")  # never sent back
        expect(page.get_by_label("Condition")).to_have_value(CONDITION)
        job = issuer.token(gitlab_claims(), audience=server.url)
        page.get_by_label("ID token or claims").fill(job)
        page.get_by_role("button", name="Test condition").click()
        expect(page.locator("#test-result")).to_contain_text("Accepted")
        page.get_by_label("Name").fill("deploy from GitLab")
        page.get_by_role("button", name="Create trust").click()
        expect(page.get_by_role("status")).to_contain_text("The trust was created")
        client_id = page.locator("table.clients code.id").first.inner_text()
        assert client_id.endswith("/wfe")

        answer = exchange(server, client_id, issuer.token(gitlab_claims(), audience=server.url))
        assert answer.status_code == 200, answer.text

        page.get_by_role("link", name="Delete deploy from GitLab").click()
        page.get_by_role("button", name="Delete trust").click()
        expect(page.get_by_role("status")).to_have_text("The trust was deleted.")
        again = exchange(server, client_id, issuer.token(gitlab_claims(), audience=server.url))
        assert again.status_code == 401


def test_the_page_fits_a_phone(browser: Browser, server: LiveServer, alice: UserRecord) -> None:
    store: Store = services_of(server.app).store
    from authserver.domain.credentials import Caller
    from authserver.domain.federation import NewTrust

    services_of(server.app).trusts.create(
        caller=Caller.operator(),
        owner_id=alice.id,
        new=NewTrust(
            issuer="https://token.actions.githubusercontent.com",
            condition='claims.repository == "acme/a-rather-long-repository-name" && '
            'claims.job_workflow_ref.startsWith("acme/workflows/.github/workflows/")',
            display_name="deploy",
        ),
        now=now(),
    )
    assert store.trusts.page(user_ids=[alice.id], after_id=None, limit=5)[0]
    with chromium.guarded_context(
        browser, server.url, viewport=chromium.PHONE, phone=True
    ) as context:
        page = context.page()
        sign_in(page)
        page.goto("/ui/federation")
        expect(page.get_by_role("heading", level=1)).to_have_text("CI trusts")
        overflow: Any = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        expect(page.get_by_role("button", name="Create trust")).to_be_visible()
