"""The pages without a browser: sign-in, sessions, CSRF, headers, create/list/delete, errors."""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from authserver.records import UserRecord
from authserver.store import Store
from authserver.usecases.credentials import CredentialService
from authserver.usecases.users import UserService
from tests.support.helpers import PASSWORD, now, token_request
from tests.support.types import MakeUser
from tests.support.ui_helpers import create, csrf_of, field_value, people_with_passwords, sign_in

BASE = "http://127.0.0.1:8000"


@pytest.fixture
def person(app: Starlette, make_user: MakeUser) -> Callable[..., UserRecord]:
    """A user with a password: make(email, roles)."""
    return people_with_passwords(app, make_user)


@pytest.fixture
def alice(person: Callable[..., UserRecord]) -> UserRecord:
    return person()


@pytest.fixture
def browser(app: Starlette) -> Iterator[TestClient]:
    """A second client with its own cookie jar (another person's browser)."""
    with TestClient(app, base_url=BASE) as other:
        yield other


def test_pages_carry_a_csp_without_inline_code_and_no_framing(client: TestClient) -> None:
    page = client.get("/ui/")
    csp = page.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text and "style=" not in page.text


def test_static_files_carry_the_csp_too(client: TestClient) -> None:
    css = client.get("/ui/static/app.css")
    assert (
        css.status_code == 200
        and "frame-ancestors 'none'" in css.headers["content-security-policy"]
    )


def test_sign_in_sets_an_httponly_samesite_session_cookie(
    client: TestClient, alice: UserRecord
) -> None:
    answer = sign_in(client)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/personal-clients"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if "authserver_session=" in c)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie


@pytest.mark.parametrize("settings_overrides", [{"issuer": "https://auth.example.com"}])
def test_https_issuer_uses_a_secure_host_prefixed_cookie(app: Starlette, alice: UserRecord) -> None:
    with TestClient(app, base_url="https://auth.example.com") as secure:
        answer = sign_in(secure)
    cookie = next(c for c in answer.headers.get_list("set-cookie") if "session=" in c)
    assert cookie.startswith("__Host-authserver_session=ses_")
    assert "Secure" in cookie and "Path=/" in cookie and "Domain" not in cookie


def test_wrong_password_and_unknown_email_show_the_same_page(
    client: TestClient, alice: UserRecord
) -> None:
    wrong = sign_in(client, password="not the password at all")
    unknown = sign_in(client, email="nobody@example.com")
    assert wrong.status_code == unknown.status_code == 401
    message = re.compile(r'<p class="error"[^>]*>(.*?)</p>')
    wrong_message, unknown_message = message.search(wrong.text), message.search(unknown.text)
    assert wrong_message is not None and unknown_message is not None
    assert wrong_message.group(1) == unknown_message.group(1)


def test_failed_sign_in_keeps_the_email_and_never_the_password(
    client: TestClient, alice: UserRecord
) -> None:
    page = sign_in(client, password="not the password at all")
    assert 'value="alice@example.com"' in page.text and "not the password" not in page.text


@pytest.mark.parametrize("settings_overrides", [{"sign_in_failure_limit": 2}])
def test_repeated_failures_answer_429_with_retry_after(
    client: TestClient, alice: UserRecord
) -> None:
    for _ in range(2):
        sign_in(client, password="not the password at all")
    page = sign_in(client)
    assert page.status_code == 429 and int(page.headers["retry-after"]) > 0
    assert "Too many failed attempts" in page.text


@pytest.mark.parametrize("settings_overrides", [{"max_queued_password_checks": 1}])
def test_sign_in_beyond_the_queued_password_checks_answers_429_with_retry_after(
    client: TestClient, app: Starlette, alice: UserRecord
) -> None:
    with app.state.services.passwords.admitted():  # the one place is taken
        page = sign_in(client)
    assert page.status_code == 429 and page.headers["retry-after"] == "1"
    assert "Too many sign-ins are being checked right now" in page.text
    assert sign_in(client).status_code == 303  # the place is free again


def test_sign_in_without_the_csrf_token_is_refused(client: TestClient, alice: UserRecord) -> None:
    client.get("/ui/")
    answer = client.post(
        "/ui/login/password", data={"email": "alice@example.com", "password": PASSWORD}
    )
    assert answer.status_code == 403 and "authserver_session" not in client.cookies


def test_create_without_the_csrf_token_is_refused_and_creates_nothing(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    sign_in(client)
    answer = client.post("/ui/personal-clients/new", data={"name": "x", "expiry": "never"})
    assert answer.status_code == 403 and "not sent from this site" in answer.text
    assert store.credentials.all(user_id=alice.id) == []


def test_post_from_another_origin_is_refused(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    sign_in(client)
    token = csrf_of(client.get("/ui/personal-clients/new"))
    answer = client.post(
        "/ui/personal-clients/new",
        data={"csrf_token": token, "name": "x", "expiry": "never"},
        headers={"Origin": "https://evil.example"},
    )
    assert answer.status_code == 403 and store.credentials.all(user_id=alice.id) == []


def test_signed_out_visitor_is_sent_to_sign_in_and_back(
    client: TestClient, alice: UserRecord
) -> None:
    answer = client.get("/ui/personal-clients/new", follow_redirects=False)
    assert answer.headers["location"] == "/ui/?next=/ui/personal-clients/new"
    landed = sign_in(client, next="/ui/personal-clients/new")
    assert landed.headers["location"] == "/ui/personal-clients/new"


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("https://evil.example/", id="absolute"),
        pytest.param("//evil.example/ui/", id="scheme-relative"),
        pytest.param("/ui//evil.example", id="double-slash"),
        pytest.param("/\\evil.example", id="backslash"),
        pytest.param("/api/v1/iam/personal_clients", id="outside-ui"),
    ],
)
def test_return_to_another_site_or_outside_the_pages_is_ignored(
    client: TestClient, alice: UserRecord, target: str
) -> None:
    assert sign_in(client, next=target).headers["location"] == "/ui/personal-clients"


def test_create_shows_the_secret_once_and_it_gets_a_token(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    sign_in(client)
    page = create(client, role="billing:read")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    client_id, secret = field_value(page, "client-id"), field_value(page, "client-secret")
    assert secret.startswith("secret-token:")
    token = token_request(client, client_id, secret)
    assert token.status_code == 200 and token.json()["scope"] == "billing:read"
    assert secret not in client.get("/ui/personal-clients").text


def test_secret_pages_curl_hint_sets_its_variables_and_can_be_copied(
    client: TestClient, alice: UserRecord
) -> None:
    sign_in(client)
    page = create(client)
    client_id, secret = field_value(page, "client-id"), field_value(page, "client-secret")
    found = re.search(r'<textarea id="curl-hint"[^>]*>(.*?)</textarea>', page.text, re.S)
    assert found is not None
    hint = html.unescape(found.group(1)).splitlines()
    assert hint[:2] == [f"CLIENT_ID='{client_id}'", f"CLIENT_SECRET='{secret}'"]
    assert hint[2].startswith(
        'curl -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials'
    )
    assert 'data-copy="curl-hint"' in page.text


def test_reloading_the_secret_page_neither_shows_it_again_nor_creates_another(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    sign_in(client)
    token = csrf_of(client.get("/ui/personal-clients/new"))
    answer = client.post(
        "/ui/personal-clients/new",
        data={"csrf_token": token, "name": "once", "expiry": "30d"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    first = client.get(answer.headers["location"])
    assert field_value(first, "client-secret").startswith("secret-token:")
    again = client.get(answer.headers["location"])
    assert again.status_code == 410 and "shown once and cannot be shown again" in again.text
    assert "secret-token:" not in again.text and len(store.credentials.all(user_id=alice.id)) == 1


def test_handed_over_secret_is_useless_to_another_session(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    sign_in(client)
    token = csrf_of(client.get("/ui/personal-clients/new"))
    answer = client.post(
        "/ui/personal-clients/new",
        data={"csrf_token": token, "name": "once", "expiry": "30d"},
        follow_redirects=False,
    )
    sealed = client.cookies["authserver_new_secret"]
    sign_in(client)  # the same person, another session
    client.cookies.set("authserver_new_secret", sealed)
    page = client.get(answer.headers["location"])
    assert page.status_code == 410 and "secret-token:" not in page.text


def test_create_is_audited_with_the_session_as_actor(
    client: TestClient, alice: UserRecord, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "authserver.audit")
    sign_in(client)
    create(client)
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "authserver.audit"]
    created = next(e for e in events if e["event"] == "credential_created")
    assert created["actor"] == alice.id and created["via"] == "session"


def test_bad_network_keeps_the_form_and_names_the_field(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    sign_in(client)
    page = create(client, name="ci job", networks="10.0.0.0/8\n10.1.2.3/8\n", role="deploy")
    assert page.status_code == 400
    assert "Networks: invalid CIDR" in page.text and "host bits set" in page.text
    assert 'value="ci job"' in page.text and "10.1.2.3/8" in page.text
    assert 'value="deploy" checked' in page.text
    assert store.credentials.all(user_id=alice.id) == []


def test_a_role_the_person_lacks_is_refused(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    sign_in(client)
    page = create(client, role="system:owner")
    assert page.status_code == 400 and "Roles: the owner does not hold system:owner" in page.text


def test_a_date_expiry_lasts_to_the_end_of_that_day(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    sign_in(client)
    day = (datetime.now(UTC) + timedelta(days=10)).date()
    create(client, expiry="date", expires_on=day.isoformat())
    [record] = store.credentials.all(user_id=alice.id)
    assert record.expires_time == datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
        days=1
    )


@pytest.mark.parametrize(
    ("expires_on", "message"),
    [
        pytest.param("", "choose the date it expires", id="missing"),
        pytest.param("2001-01-01", "choose today or a later date", id="past"),
        pytest.param("next week", "choose a date (YYYY-MM-DD)", id="malformed"),
    ],
)
def test_a_bad_date_is_explained(
    client: TestClient, alice: UserRecord, expires_on: str, message: str
) -> None:
    sign_in(client)
    page = create(client, expiry="date", expires_on=expires_on)
    assert page.status_code == 400 and f"Expiry: {message}" in page.text


def test_never_expiring_credential_has_no_expiry(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    sign_in(client)
    create(client, expiry="never")
    [record] = store.credentials.all(user_id=alice.id)
    assert record.expires_time is None


def test_list_shows_only_own_credentials_newest_first(
    client: TestClient, browser: TestClient, person: Callable[..., UserRecord]
) -> None:
    person()
    person("bob@example.com")
    sign_in(browser, "bob@example.com")
    create(browser, name="bobs-key")
    sign_in(client)
    for name in ("first-key", "second-key"):
        create(client, name=name)
    page = client.get("/ui/personal-clients").text
    assert "bobs-key" not in page
    assert page.index("second-key") < page.index("first-key")


def test_list_is_paged(
    client: TestClient, alice: UserRecord, store: Store, credential_service: CredentialService
) -> None:
    from tests.support.helpers import operator_creates

    for number in range(26):
        operator_creates(credential_service, alice, name=f"key-{number:02}")
    sign_in(client)
    first = client.get("/ui/personal-clients").text
    assert "key-25" in first and "key-00" not in first
    link = re.search(r'href="(/ui/personal-clients\?before=[^"]+)"', first)
    assert link is not None
    older = link.group(1)
    assert "key-00" in client.get(older.replace("&amp;", "&")).text


def test_last_used_shows_in_words_with_the_exact_time_on_hover(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    sign_in(client)
    page = create(client)
    [record] = store.credentials.all(user_id=alice.id)
    store.credentials.record_last_used(used={record.id: now() - timedelta(minutes=3)})
    listing = client.get("/ui/personal-clients").text
    assert re.search(
        r'<time datetime="[^"]+" title="[0-9-]+ [0-9:]+ UTC">3 minutes ago</time>', listing
    )
    assert page.status_code == 200


def test_non_admin_gets_a_403_page_for_everyones_credentials(
    client: TestClient, alice: UserRecord
) -> None:
    sign_in(client)
    page = client.get("/ui/personal-clients/all")
    assert page.status_code == 403 and "<h1>Not allowed</h1>" in page.text
    assert "Everyone’s" not in client.get("/ui/personal-clients").text


def test_admin_finds_another_users_credential_by_email(
    client: TestClient, browser: TestClient, person: Callable[..., UserRecord]
) -> None:
    person("admin@example.com", roles=("system:owner",))
    person("bob@example.com")
    person("carol@example.com")
    for email, name in (("bob@example.com", "bobs-key"), ("carol@example.com", "carols-key")):
        sign_in(browser, email)
        create(browser, name=name)
    sign_in(client, "admin@example.com")
    page = client.get("/ui/personal-clients/all", params={"q": "BOB@"}).text
    assert "bobs-key" in page and "carols-key" not in page


def test_admin_deletes_another_users_credential(
    client: TestClient, browser: TestClient, person: Callable[..., UserRecord], store: Store
) -> None:
    person("admin@example.com", roles=("system:owner",))
    bob = person("bob@example.com")
    sign_in(browser, "bob@example.com")
    create(browser, name="bobs-key")
    [record] = store.credentials.all(user_id=bob.id)
    sign_in(client, "admin@example.com")
    confirm = client.get(f"/ui/personal-clients/{record.id}/delete")
    assert "bob@example.com" in confirm.text
    done = client.post(
        f"/ui/personal-clients/{record.id}/delete",
        data={"csrf_token": csrf_of(confirm), "back": "/ui/personal-clients/all"},
        follow_redirects=False,
    )
    assert done.headers["location"] == "/ui/personal-clients/all?deleted=1"
    assert store.credentials.all(user_id=bob.id) == []


def test_delete_asks_first_then_deletes(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    sign_in(client)
    create(client, name="old-key")
    [record] = store.credentials.all(user_id=alice.id)
    confirm = client.get(f"/ui/personal-clients/{record.id}/delete")
    assert confirm.status_code == 200 and "cannot be undone" in confirm.text
    assert store.credentials.all(user_id=alice.id) != []
    listing = client.post(
        f"/ui/personal-clients/{record.id}/delete", data={"csrf_token": csrf_of(confirm)}
    )
    assert "The personal client was deleted." in listing.text and "old-key" not in listing.text


def test_another_persons_credential_is_not_found(
    client: TestClient, browser: TestClient, person: Callable[..., UserRecord], store: Store
) -> None:
    person()
    bob = person("bob@example.com")
    sign_in(browser, "bob@example.com")
    create(browser, name="bobs-key")
    [record] = store.credentials.all(user_id=bob.id)
    sign_in(client)
    page = client.get(f"/ui/personal-clients/{record.id}/delete")
    assert page.status_code == 404 and "<h1>Not found</h1>" in page.text


def test_unknown_page_is_a_404_page_in_the_same_look(client: TestClient) -> None:
    page = client.get("/ui/no-such-page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_sign_out_ends_the_session(client: TestClient, alice: UserRecord) -> None:
    sign_in(client)
    page = client.get("/ui/personal-clients")
    cookie = client.cookies["authserver_session"]
    client.post("/ui/logout", data={"csrf_token": csrf_of(page)})
    client.cookies.set("authserver_session", cookie)  # replayed after sign-out
    assert client.get("/ui/personal-clients", follow_redirects=False).status_code == 303


def test_disabled_person_is_signed_out_at_once(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    sign_in(client)
    UserService(store).update(ref=alice.id, role_names=None, disabled=True, now=now())
    answer = client.get("/ui/personal-clients", follow_redirects=False)
    assert answer.headers["location"] == "/ui/?next=/ui/personal-clients&expired=1"
    assert "Your session has ended" in client.get(answer.headers["location"]).text


def test_form_sent_after_the_session_ended_says_so(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    sign_in(client)
    token = csrf_of(client.get("/ui/personal-clients/new"))
    UserService(store).update(ref=alice.id, role_names=None, disabled=True, now=now())
    page = client.post("/ui/personal-clients/new", data={"csrf_token": token, "name": "x"})
    assert page.status_code == 401 and "this form was not sent" in page.text


def test_invite_link_sets_a_password_and_signs_in(
    client: TestClient, app: Starlette, make_user: MakeUser
) -> None:
    bob = make_user(email="bob@example.com")
    link, _ = app.state.services.people.invite(user_ref=bob.id, ttl=timedelta(days=1), now=now())
    page = client.get(link.removeprefix("http://127.0.0.1:8000"))
    assert page.status_code == 200 and "bob@example.com" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    answer = client.post(
        "/ui/invite",
        data={
            "csrf_token": csrf_of(page),
            "token": field_value(page, "token")
            if 'id="token"' in page.text
            else link.split("=")[1],
            "password": PASSWORD,
            "password_again": PASSWORD,
        },
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/ui/personal-clients"
    assert "bob@example.com" in client.get("/ui/personal-clients").text


def test_invite_with_two_different_passwords_is_explained(
    client: TestClient, app: Starlette, make_user: MakeUser
) -> None:
    bob = make_user(email="bob@example.com")
    link, _ = app.state.services.people.invite(user_ref=bob.id, ttl=timedelta(days=1), now=now())
    page = client.get(link.removeprefix("http://127.0.0.1:8000"))
    answer = client.post(
        "/ui/invite",
        data={
            "csrf_token": csrf_of(page),
            "token": link.split("=")[1],
            "password": PASSWORD,
            "password_again": PASSWORD + "!",
        },
    )
    assert answer.status_code == 400 and "The two passwords differ" in answer.text


def test_used_invite_link_shows_a_clear_page(
    client: TestClient, app: Starlette, make_user: MakeUser
) -> None:
    bob = make_user(email="bob@example.com")
    people = app.state.services.people
    link, _ = people.invite(user_ref=bob.id, ttl=timedelta(days=1), now=now())
    people.accept_invite(token=link.split("=")[1], password=PASSWORD, now=now())
    page = client.get(link.removeprefix("http://127.0.0.1:8000"))
    assert page.status_code == 404 and "has been used or has expired" in page.text


def test_ui_without_slash_redirects_to_the_issuer_not_the_host_header(client: TestClient) -> None:
    """Point 12: the Host header is the client's to choose; the redirect must not follow it."""
    response = client.get("/ui", headers={"host": "evil.example"}, follow_redirects=False)
    assert response.status_code in (301, 307, 308)
    assert response.headers["location"] == "http://127.0.0.1:8000/ui/"


def _signed_in(client: TestClient) -> bool:
    return client.get("/ui/personal-clients", follow_redirects=False).status_code == 200


def test_sign_out_everywhere_ends_every_session_of_the_person(
    client: TestClient, browser: TestClient, alice: UserRecord, caplog: pytest.LogCaptureFixture
) -> None:
    sign_in(client)
    sign_in(browser)  # the same person, in another browser
    page = client.get("/ui/personal-clients")
    assert "Sign out everywhere" in page.text
    answer = client.post(
        "/ui/logout/everywhere", data={"csrf_token": csrf_of(page)}, follow_redirects=False
    )
    assert answer.status_code == 303
    assert "signed out everywhere" in client.get(answer.headers["location"]).text
    assert not _signed_in(browser)
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "authserver.audit"]
    (event,) = [e for e in events if e["event"] == "signed_out_everywhere"]
    assert (event["actor"], event["via"], event["sessions_ended"]) == (alice.id, "session", 2)


def test_sign_out_everywhere_without_the_csrf_token_is_refused(
    client: TestClient, browser: TestClient, alice: UserRecord
) -> None:
    sign_in(client)
    sign_in(browser)
    answer = client.post(
        "/ui/logout/everywhere", data={"csrf_token": "forged"}, follow_redirects=False
    )
    assert answer.status_code == 403
    assert _signed_in(client) and _signed_in(browser)
