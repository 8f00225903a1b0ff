"""Sign-in through a real OpenID Connect provider (node-oidc-provider), in a real browser.

node-oidc-provider runs once for this module (``tests/support/identity_provider.py``);
each test starts its own server on loopback (SQLite, except the two-instance
test, which also runs on PostgreSQL), registers a client for it at the
provider, and drives Debian's headless Chromium through the provider's
development login and consent pages. Nothing leaves loopback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from starlette.responses import PlainTextResponse
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from authserver.app import create_app
from authserver.config import DeviceClient, Settings
from authserver.records import UserRecord
from authserver.sso.providers import OidcProvider
from authserver.store import Store
from authserver.store.database import Database, migrate
from authserver.usecases.users import UserService
from tests.support import browser as chromium
from tests.support import identity_provider
from tests.support.helpers import now
from tests.support.identity_provider import IdentityProvider
from tests.support.live import LiveServer
from tests.support.ports import free_port

pytestmark = pytest.mark.browser

NOT_SIGNED_IN = "You are not signed in"


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityProvider]:
    assert identity_provider.available(), (
        "node-oidc-provider is missing: ./scripts/test installs it (npm ci in tests/oidc)"
    )
    provider = IdentityProvider(tmp_path_factory.mktemp("idp") / "provider.log")
    try:
        yield provider
    finally:
        provider.stop()


class CallbackCatcher:
    """In front of the app: once armed, keeps the next provider callback from it (its URL
    is recorded), as if the browser had stopped there."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.armed = False
        self.caught: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.armed and scope["type"] == "http" and scope["path"].endswith("/callback"):
            self.armed = False
            self.caught.append(f"{scope['path']}?{scope['query_string'].decode()}")
            await PlainTextResponse("Held by the test.")(scope, receive, send)
            return
        await self.app(scope, receive, send)


class Server:
    """A running server, its store, and the provider entry it signs people in with."""

    def __init__(
        self, live: LiveServer, store: Store, provider: OidcProvider, catcher: CallbackCatcher
    ) -> None:
        self.live = live
        self.url = live.url
        self.store = store
        self.provider = provider
        self.catcher = catcher

    def person(
        self, email: str, roles: tuple[str, ...] = ("deploy",), disabled: bool = False
    ) -> UserRecord:
        users = UserService(self.store)
        user = users.create(email=email, display_name="", role_names=roles, now=now())
        if disabled:
            user = users.update(ref=user.id, role_names=None, disabled=True, now=now())
        return user


@contextmanager
def running(
    database_url: str,
    provider: Callable[[str], OidcProvider],
    *,
    port: int | None = None,
    **overrides: Any,
) -> Iterator[Server]:
    """A server on ``database_url`` whose one provider is ``provider(its URL)``."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    entry = provider(url)
    settings = Settings(database_url=database_url, issuer=url, login_oidc=(entry,), **overrides)
    database = Database(settings.database_url)
    migrate(database)
    catcher = CallbackCatcher(create_app(settings, database=database))
    try:
        with LiveServer(catcher, port) as live:  # type: ignore[arg-type]  # any ASGI app
            yield Server(live, Store(database), entry, catcher)
    finally:
        database.dispose()


@pytest.fixture
def provider_options() -> dict[str, Any]:
    """Options of the server's provider entry (``auto_create_users``, …); parametrised."""
    return {}


@pytest.fixture
def server(
    idp: IdentityProvider, tmp_path: Path, provider_options: dict[str, Any]
) -> Iterator[Server]:
    with running(
        f"sqlite:///{tmp_path}/oidc.db", lambda url: idp.provider(url, **provider_options)
    ) as started:
        yield started


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    with chromium.guarded_context(browser, server.url) as context:
        yield context.page()


def at_provider(page: Page, account: str) -> None:
    """Sign in on node-oidc-provider's development pages and consent."""
    page.locator('input[name="login"]').fill(account)
    page.locator('input[name="password"]').fill("anything")
    page.get_by_role("button", name="Sign-in").click()
    expect(page.get_by_role("heading", name="Authorize")).to_be_visible()
    page.get_by_role("button", name="Continue").click()


def sign_in(page: Page, account: str, *, start: str = "/ui/") -> None:
    page.goto(start)
    page.get_by_role("link", name="Sign in with corp").click()
    at_provider(page, account)


def expect_signed_in(
    page: Page, server: Server, email: str, path: str = "/ui/personal-clients"
) -> None:
    expect(page).to_have_url(f"{server.url}{path}")
    expect(page.get_by_title(f"Signed in as {email}")).to_be_visible()


def expect_refused(page: Page, message: str | re.Pattern[str]) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text(NOT_SIGNED_IN)
    expect(page.locator("p.lead")).to_contain_text(message)
    expect(page.get_by_role("button", name="Sign out", exact=True)).to_have_count(0)


def audited(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    return [
        json.loads(record.getMessage())
        for record in caplog.records
        if record.name == "authserver.audit" and json.loads(record.getMessage())["event"] == event
    ]


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


def test_person_signs_in_through_the_provider_and_creates_a_credential(
    page: Page, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    alice = server.person("alice@example.com")  # the provider says "Alice@Example.com"
    sign_in(page, "alice")
    expect_signed_in(page, server, "alice@example.com")
    page.get_by_role("link", name="New personal client").click()
    page.get_by_label("Name").fill("from sso")
    page.get_by_role("button", name="Create personal client").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Copy the new client secret now")
    client_id = page.get_by_label("Client ID").input_value()
    secret = page.get_by_label("Client secret", exact=True).input_value()
    token = httpx.post(
        f"{server.url}/auth/v1/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
    )
    assert token.status_code == 200
    (signed_in,) = audited(caplog, "signed_in")
    assert (signed_in["user_id"], signed_in["method"]) == (alice.id, "oidc:corp")
    assert audited(caplog, "sign_in_failed") == []


def test_sign_in_returns_to_the_page_that_asked_for_it(page: Page, server: Server) -> None:
    server.person("alice@example.com")
    page.goto("/ui/personal-clients/new")
    expect(page).to_have_url(re.compile(r"/ui/\?next="))
    page.get_by_role("link", name="Sign in with corp").click()
    at_provider(page, "alice")
    expect_signed_in(page, server, "alice@example.com", "/ui/personal-clients/new")


def test_device_login_is_approved_after_signing_in_through_the_provider(
    idp: IdentityProvider, browser: Browser, tmp_path: Path
) -> None:
    """cone's device flow with a person who signs in through the company's provider."""
    cone = DeviceClient("2RGdOS94VDferT9e80mdgntl36K", "cone")
    with running(f"sqlite:///{tmp_path}/device.db", idp.provider, device_clients=(cone,)) as server:
        server.person("alice@example.com")
        started = httpx.post(
            f"{server.url}/auth/v1/device_authorization", data={"client_id": cone.id}
        ).json()
        with chromium.guarded_context(browser, server.url) as context:
            tab = context.page()
            tab.goto(started["verification_uri_complete"])
            tab.get_by_role("link", name="Sign in with corp").click()
            at_provider(tab, "alice")
            expect(tab.get_by_role("heading", level=1)).to_have_text("Approve cone?")
            tab.get_by_role("button", name="Approve").click()
            expect(tab.get_by_role("heading", level=1)).to_have_text("cone is approved")
        token = httpx.post(
            f"{server.url}/auth/v1/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                "client_id": cone.id,
                "device_code": started["device_code"],
            },
        )
        assert token.status_code == 200, token.text


@pytest.mark.parametrize(
    ("account", "message", "reason"),
    [
        pytest.param(
            "bob", "has not verified the e-mail address", "unverified e-mail", id="unverified"
        ),
        pytest.param("frank", "has not verified", "unverified e-mail", id="verified-as-a-string"),
        pytest.param(
            "carol", "there is no account for carol@example.com", "unknown e-mail", id="unknown"
        ),
    ],
)
def test_sign_in_is_refused_without_a_verified_known_email(
    page: Page,
    server: Server,
    caplog: pytest.LogCaptureFixture,
    account: str,
    message: str,
    reason: str,
) -> None:
    server.person("bob@example.com")  # bob exists, but the provider has not verified him
    server.person("frank@example.com")
    sign_in(page, account)
    expect_refused(page, re.compile(message, re.IGNORECASE))
    (failed,) = audited(caplog, "sign_in_failed")
    assert (failed["reason"], failed["method"], failed["subject"]) == (reason, "oidc:corp", account)
    assert audited(caplog, "signed_in") == []


@pytest.mark.parametrize(
    "provider_options",
    [{"auto_create_users": True, "default_roles": ("billing:read", "deploy")}],
)
def test_unknown_email_creates_the_user_when_auto_create_users_is_on(
    page: Page, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    sign_in(page, "carol")
    expect_signed_in(page, server, "carol@example.com")
    carol = server.store.users.find(ref="carol@example.com")
    assert (carol.display_name, carol.roles) == ("Carol", ("billing:read", "deploy"))
    (created,) = audited(caplog, "user_created")
    assert (created["user_id"], created["actor"]) == (carol.id, "oidc:corp")


@pytest.mark.parametrize(
    "provider_options", [{"auto_create_users": True, "allowed_domains": ("example.com",)}]
)
def test_email_outside_the_allowed_domains_is_refused(
    page: Page, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    sign_in(page, "erin")
    expect_refused(page, "Accounts of elsewhere.example cannot sign in")
    assert [e["reason"] for e in audited(caplog, "sign_in_failed")] == ["domain not allowed"]
    assert server.store.users.all() == []


def test_disabled_user_is_refused(
    page: Page, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    server.person("alice@example.com", disabled=True)
    sign_in(page, "alice")
    expect_refused(page, "is disabled")
    assert [e["reason"] for e in audited(caplog, "sign_in_failed")] == ["user disabled"]


def test_claims_only_in_userinfo_are_fetched_from_there(page: Page, server: Server) -> None:
    server.person("dana@example.com")
    sign_in(page, "dana")
    expect_signed_in(page, server, "dana@example.com")


def held_callback(page: Page, server: Server, account: str) -> str:
    """Sign in at the provider, but keep its redirect back from the server: that URL."""
    server.catcher.armed = True
    sign_in(page, account)
    expect(page.locator("body")).to_have_text("Held by the test.")
    (caught,) = server.catcher.caught
    return server.url + caught


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return parts._replace(query=urlencode(query)).geturl()


def test_callback_with_another_state_is_refused_and_its_code_cannot_be_replayed(
    page: Page, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    server.person("alice@example.com")
    callback = held_callback(page, server, "alice")
    page.goto(with_query(callback, state="another-state"))
    expect_refused(page, "not started in this browser")
    # The pending sign-in is spent: the untouched callback, replayed, is refused too.
    page.goto(callback)
    expect_refused(page, "has been used already")
    page.goto("/ui/personal-clients")
    expect(page).to_have_url(re.compile(r"/ui/\?next="))
    failed = audited(caplog, "sign_in_failed")
    assert [(e["reason"], e["detail"]) for e in failed] == [
        ("state mismatch", "state differs"),
        ("state mismatch", "no pending sign-in in this browser"),
    ]


def test_code_redeemed_by_someone_else_first_is_refused(
    page: Page, server: Server, idp: IdentityProvider, caplog: pytest.LogCaptureFixture
) -> None:
    server.person("alice@example.com")
    callback = held_callback(page, server, "alice")
    # Someone who saw the code (and, for PKCE, the verifier) redeems it before the browser.
    with server.store.database.engine.connect() as conn:
        (data,) = conn.exec_driver_sql("SELECT data FROM pending_sign_ins").one()
    pending = json.loads(data) if isinstance(data, str) else data
    stolen = httpx.post(
        f"{idp.issuer}/token",
        data={
            "grant_type": "authorization_code",
            "code": parse_qs(urlsplit(callback).query)["code"][0],
            "redirect_uri": pending["redirect_uri"],
            "code_verifier": pending["code_verifier"],
        },
        auth=(server.provider.client_id, server.provider.client_secret),
    )
    assert stolen.status_code == 200
    page.goto(callback)
    expect_refused(page, "The provider corp refused to complete the sign-in (“invalid_grant”)")
    (failed,) = audited(caplog, "sign_in_failed")
    assert (failed["reason"], failed["detail"]) == (
        "provider error",
        "token endpoint: invalid_grant",
    )
    no_tracebacks(caplog)


def test_id_token_with_another_nonce_is_refused(
    page: Page, server: Server, idp: IdentityProvider, caplog: pytest.LogCaptureFixture
) -> None:
    server.person("alice@example.com")
    idp.next_nonce("a-nonce-authserver-never-sent")
    sign_in(page, "alice")
    expect_refused(page, "did not prove who you are")
    assert [e["reason"] for e in audited(caplog, "sign_in_failed")] == ["nonce mismatch"]
    assert audited(caplog, "signed_in") == []


def test_cancelling_at_the_provider_ends_on_a_clear_page(
    page: Page, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    page.goto("/ui/")
    page.get_by_role("link", name="Sign in with corp").click()
    page.get_by_role("link", name="[ Cancel ]").click()
    expect_refused(page, "The sign-in at corp was cancelled or refused")
    (failed,) = audited(caplog, "sign_in_failed")
    assert (failed["reason"], failed["detail"]) == ("provider error", "access_denied")
    no_tracebacks(caplog)


def test_unreachable_provider_ends_on_a_clear_page(
    browser: Browser, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    def nowhere(url: str) -> OidcProvider:
        return OidcProvider(name="corp", issuer=closed, client_id="c", client_secret="s")

    with (
        running(f"sqlite:///{tmp_path}/down.db", nowhere) as server,
        chromium.guarded_context(browser, server.url) as context,
    ):
        page = context.page()
        page.goto("/ui/")
        page.get_by_role("link", name="Sign in with corp").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(NOT_SIGNED_IN)
        expect(page.locator("p.lead")).to_contain_text(
            "The sign-in service of corp cannot be reached"
        )
    (failed,) = audited(caplog, "sign_in_failed")
    assert failed["reason"] == "provider unreachable"
    assert failed["detail"] == "discovery failed (ConnectError)"
    no_tracebacks(caplog)


def test_sign_out_ends_the_session_and_offers_the_providers_sign_out(
    page: Page, server: Server
) -> None:
    server.person("alice@example.com")
    sign_in(page, "alice")
    expect_signed_in(page, server, "alice@example.com")
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("status")).to_have_text(
        "You are signed out here. You may still be signed in at corp."
    )
    page.goto("/ui/personal-clients")
    expect(page).to_have_url(re.compile(r"/ui/\?next="))  # our session is over
    page.goto("/ui/?signed_out=1&provider=corp")
    page.get_by_role("link", name="Sign out of corp too").click()
    page.get_by_role("button", name="Yes, sign me out").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(server.url)}/ui/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    # Signed out at the provider as well: it asks who you are again.
    page.get_by_role("link", name="Sign in with corp").click()
    expect(page.locator('input[name="login"]')).to_be_visible()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_sign_in_started_on_one_instance_completes_on_another(
    browser: Browser, idp: IdentityProvider, database_url: str
) -> None:
    entry: list[OidcProvider] = []

    def registered(url: str) -> OidcProvider:
        entry.append(idp.provider(url))
        return entry[0]

    with (
        running(database_url, registered) as first,
        running(database_url, lambda url: entry[0]) as second,
        chromium.guarded_context(browser, first.url) as context,
    ):
        first.person("alice@example.com")
        page = context.page()
        callback = held_callback(page, first, "alice")
        # The load balancer sends the provider's redirect back to the other instance.
        page.goto(callback.replace(first.url, second.url))
        expect_signed_in(page, second, "alice@example.com")
        page.goto(f"{first.url}/ui/personal-clients")
        expect_signed_in(page, first, "alice@example.com")


# Without a browser: what the redirect carries, and answers that need no login. ----------


@contextmanager
def client_for(tmp_path: Path, provider: OidcProvider, **overrides: Any) -> Iterator[TestClient]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/pages.db", login_oidc=(provider,), **overrides
    )
    database = Database(settings.database_url)
    migrate(database)
    app = create_app(settings, database=database)
    try:
        with TestClient(app, base_url=settings.issuer, follow_redirects=False) as client:
            yield client
    finally:
        database.dispose()


def test_redirect_carries_pkce_state_and_nonce_and_a_short_lived_cookie(
    idp: IdentityProvider, tmp_path: Path
) -> None:
    corp = idp.provider("http://127.0.0.1:8000")
    with client_for(tmp_path, corp) as client:
        response = client.get("/ui/login/oidc/corp", params={"next": "/ui/personal-clients/new"})
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{idp.issuer}/auth"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["response_type"] == "code"
    assert query["client_id"] == corp.client_id
    assert query["redirect_uri"] == "http://127.0.0.1:8000/ui/login/oidc/corp/callback"
    assert query["scope"] == "openid email profile"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43 and len(query["state"]) >= 20
    assert len(query["nonce"]) >= 20
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("authserver_oidc=psi_")
    for attribute in ("HttpOnly", "Max-Age=600", "Path=/", "SameSite=lax"):
        assert attribute in cookie


def test_answer_naming_another_issuer_is_refused(
    idp: IdentityProvider, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with client_for(tmp_path, idp.provider("http://127.0.0.1:8000")) as client:
        started = client.get("/ui/login/oidc/corp")
        state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
        response = client.get(
            "/ui/login/oidc/corp/callback",
            params={"code": "x", "state": state, "iss": "https://attacker.example"},
        )
    assert response.status_code == 400
    assert "did not come from corp" in response.text
    assert [e["reason"] for e in audited(caplog, "sign_in_failed")] == ["issuer mismatch"]


def test_provider_gone_before_the_callback_ends_on_a_clear_page(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    brief = IdentityProvider(tmp_path / "brief-provider.log")
    try:
        corp = brief.provider("http://127.0.0.1:8000")
        with client_for(tmp_path, corp) as client:
            started = client.get("/ui/login/oidc/corp")
            state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
            brief.stop()
            response = client.get(
                "/ui/login/oidc/corp/callback",
                params={"code": "x", "state": state, "iss": corp.issuer},
            )
    finally:
        brief.stop()
    assert response.status_code == 503
    assert "The sign-in service of corp cannot be reached" in response.text
    (failed,) = audited(caplog, "sign_in_failed")
    assert (failed["reason"], failed["detail"]) == ("provider unreachable", "ConnectError")
    no_tracebacks(caplog)


def test_discovery_naming_another_issuer_is_refused(
    idp: IdentityProvider, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    corp = idp.provider("http://127.0.0.1:8000")
    corp = OidcProvider(
        name="corp", issuer=idp.issuer + "/", client_id=corp.client_id, client_secret="s"
    )
    with client_for(tmp_path, corp) as client:
        response = client.get("/ui/login/oidc/corp")
    assert response.status_code == 503
    (failed,) = audited(caplog, "sign_in_failed")
    assert failed["detail"].startswith("discovery document refused: it names its issuer")


def test_unknown_provider_is_not_found(tmp_path: Path) -> None:
    corp = OidcProvider(
        name="corp", issuer="https://sso.example.com", client_id="c", client_secret="s"
    )
    with client_for(tmp_path, corp) as client:
        assert client.get("/ui/login/oidc/other").status_code == 404
        assert client.get("/ui/login/oidc/other/callback?code=x&state=y").status_code == 404


def test_with_passwords_off_the_sign_in_page_offers_only_the_provider(tmp_path: Path) -> None:
    corp = OidcProvider(
        name="corp", issuer="https://sso.example.com", client_id="c", client_secret="s"
    )
    with client_for(tmp_path, corp, login_password=False) as client:
        page = client.get("/ui/", params={"next": "/ui/personal-clients/new"})
        assert 'href="/ui/login/oidc/corp?next=%2Fui%2Fpersonal-clients%2Fnew"' in page.text
        assert "Sign in with corp" in page.text
        assert 'type="password"' not in page.text
        assert client.post("/ui/login/password", data={"email": "a@example.com"}).status_code == 404
        assert client.get("/ui/invite", params={"token": "inv_x"}).status_code == 404
        assert client.post("/ui/invite", data={"token": "inv_x"}).status_code == 404


def test_answer_without_iss_is_refused_when_the_provider_advertises_it(
    idp: IdentityProvider, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """RFC 9207 section 2.4: node-oidc-provider advertises
    authorization_response_iss_parameter_supported, so an answer without iss is forged."""
    with client_for(tmp_path, idp.provider("http://127.0.0.1:8000")) as client:
        started = client.get("/ui/login/oidc/corp")
        state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
        response = client.get("/ui/login/oidc/corp/callback", params={"code": "x", "state": state})
    assert response.status_code == 400
    assert "did not say it came from corp" in response.text
    assert [e["reason"] for e in audited(caplog, "sign_in_failed")] == ["issuer mismatch"]


def test_second_provider_cannot_sign_in_a_person_bound_to_the_first(
    idp: IdentityProvider, browser: Browser, tmp_path: Path
) -> None:
    """M2 end to end: two node-oidc-provider instances both vouch for alice@example.com; the
    one that signed her in first is bound to her, the other is refused until linked."""
    rival_idp = IdentityProvider(tmp_path / "rival-provider.log")
    try:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        domains: dict[str, Any] = {"allowed_domains": ("example.com",)}
        corp = idp.provider(url, **domains)
        rival = rival_idp.provider(url, name="rival", **domains)
        settings = Settings(
            database_url=f"sqlite:///{tmp_path}/two.db", issuer=url, login_oidc=(corp, rival)
        )
        database = Database(settings.database_url)
        migrate(database)
        try:
            catcher = CallbackCatcher(create_app(settings, database=database))
            with LiveServer(catcher, port) as live:  # type: ignore[arg-type]  # any ASGI app
                server = Server(live, Store(database), corp, catcher)
                server.person("alice@example.com")
                with chromium.guarded_context(browser, url) as context:
                    tab = context.page()
                    sign_in(tab, "alice")
                    expect_signed_in(tab, server, "alice@example.com")
                with chromium.guarded_context(browser, url) as context:
                    tab = context.page()
                    tab.goto("/ui/")
                    tab.get_by_role("link", name="Sign in with rival").click()
                    at_provider(tab, "alice")
                    expect_refused(tab, "signs in with another account at a provider")
        finally:
            database.dispose()
    finally:
        rival_idp.stop()
