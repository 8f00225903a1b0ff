"""A credential's own page without a browser: its fields, usage and history, renaming and
narrowing it (never widening), rotating it with the secret shown once, who may see it."""

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

from authserver.records import ClientRecord, UserRecord
from authserver.store import Store
from tests.support.helpers import PEER, services_of, token_request
from tests.support.types import MakeUser, Response
from tests.support.ui_helpers import create, csrf_of, field_value, people_with_passwords, sign_in

BASE = "http://127.0.0.1:8000"
PAGE = "/ui/personal-clients/{id}"


@pytest.fixture
def person(app: Starlette, make_user: MakeUser) -> Callable[..., UserRecord]:
    return people_with_passwords(app, make_user)


@pytest.fixture
def alice(person: Callable[..., UserRecord]) -> UserRecord:
    return person()


@pytest.fixture
def browser(app: Starlette) -> Iterator[TestClient]:
    """Another person's browser (its own cookies)."""
    with TestClient(app, base_url=BASE) as other:
        yield other


def _own(client: TestClient, store: Store, user: UserRecord, **fields: str) -> ClientRecord:
    """Sign in as ``user`` (alice by default) and create a credential on the page."""
    sign_in(client, user.email)
    created = create(client, **fields)
    assert created.status_code == 200, created.text
    return store.credentials.all(user_id=user.id)[-1]


def _secret_of(page_text: str) -> str:
    found = re.search(r'id="client-secret"[^>]*value="([^"]+)"', page_text)
    assert found, "no secret on the page"
    return html.unescape(found.group(1))


def _edit(client: TestClient, record: ClientRecord, **fields: str | list[str]) -> Response:
    page = client.get(PAGE.format(id=record.id))
    data: dict[str, str | list[str]] = {
        "csrf_token": csrf_of(page),
        "name": field_value(page, "name"),
        "networks": "\n".join(record.allow_source_cidr),
        "role": list(record.scoped_roles),
        "expiry": "keep",
        **fields,
    }
    return client.post(f"{PAGE.format(id=record.id)}/edit", data=data)


def _flush(client: TestClient) -> None:
    client.portal.call(services_of(client.app).last_used.flush)  # type: ignore[union-attr]


# Seeing it ---------------------------------------------------------------------------------


def test_the_page_shows_every_field(client: TestClient, alice: UserRecord, store: Store) -> None:
    record = _own(
        client, store, alice, name="deploy", role="deploy", networks="10.0.0.0/8", expiry="90d"
    )
    page = client.get(PAGE.format(id=record.id))
    assert page.status_code == 200
    for shown in (record.client_id, record.id, "alice@example.com", "10.0.0.0/8", "deploy"):
        assert shown in page.text
    assert "in 90 days" in page.text
    assert "No token yet." in page.text


def test_the_page_shows_the_addresses_and_the_tokens_per_day(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    created = create_and_secret(client, store, alice)
    record, secret = created
    for _ in range(3):
        assert token_request(client, record.client_id, secret).status_code == 200
    _flush(client)
    page = client.get(PAGE.format(id=record.id))
    assert f"<code>{PEER}</code>" in page.text
    today = datetime.now(UTC).date().isoformat()
    assert re.search(rf"{today}</time>.*?</meter> 3<", page.text, re.S)
    assert "<dt>Tokens, 30 days</dt><dd>3</dd>" in page.text


def create_and_secret(
    client: TestClient, store: Store, user: UserRecord, **fields: str
) -> tuple[ClientRecord, str]:
    sign_in(client, user.email)
    shown = create(client, **fields)
    return store.credentials.all(user_id=user.id)[-1], _secret_of(shown.text)


def test_the_list_links_to_the_page(client: TestClient, alice: UserRecord, store: Store) -> None:
    record = _own(client, store, alice, name="linked")
    listing = client.get("/ui/personal-clients")
    assert f'<a href="/ui/personal-clients/{record.id}">linked</a>' in listing.text


def test_another_persons_credential_page_is_not_found(
    client: TestClient, browser: TestClient, person: Callable[..., UserRecord], store: Store
) -> None:
    alice = person()
    person("bob@example.com")
    record = _own(client, store, alice)
    sign_in(browser, "bob@example.com")
    assert browser.get(PAGE.format(id=record.id)).status_code == 404


def test_another_person_cannot_change_it(
    client: TestClient, browser: TestClient, person: Callable[..., UserRecord], store: Store
) -> None:
    alice = person()
    person("bob@example.com")
    record = _own(client, store, alice, name="mine")
    sign_in(browser, "bob@example.com")
    own_page = browser.get("/ui/personal-clients")
    answer = browser.post(
        f"{PAGE.format(id=record.id)}/edit",
        data={"csrf_token": csrf_of(own_page), "name": "taken", "expiry": "keep"},
    )
    assert answer.status_code == 404
    assert store.credentials.get(id=record.id).display_name == "mine"


def test_an_admin_sees_it_but_cannot_rotate_it_on_the_page(
    client: TestClient, browser: TestClient, person: Callable[..., UserRecord], store: Store
) -> None:
    alice = person()
    person("admin@example.com", roles=("system:owner",))
    record = _own(client, store, alice)
    sign_in(browser, "admin@example.com")
    page = browser.get(PAGE.format(id=record.id))
    assert page.status_code == 200 and 'id="rotate"' not in page.text
    answer = browser.post(
        f"{PAGE.format(id=record.id)}/rotate", data={"csrf_token": csrf_of(page), "grace": "0s"}
    )
    assert answer.status_code == 403 and "only its owner" in answer.text


def test_an_unknown_id_is_not_found(client: TestClient, alice: UserRecord) -> None:
    sign_in(client)
    assert client.get(PAGE.format(id="0" * 26)).status_code == 404
    assert client.get(PAGE.format(id="not-an-id")).status_code == 404


def test_without_a_session_the_page_asks_to_sign_in(client: TestClient) -> None:
    answer = client.get(PAGE.format(id="0" * 26), follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/?next=")


def test_the_page_has_no_inline_code(client: TestClient, alice: UserRecord, store: Store) -> None:
    record = _own(client, store, alice)
    page = client.get(PAGE.format(id=record.id))
    assert "<script>" not in page.text and "style=" not in page.text
    assert not re.search(r"<[^>]*\son[a-z]+=", page.text)  # no event-handler attributes


# Changing it ------------------------------------------------------------------------------


def test_renaming_saves_the_new_name(client: TestClient, alice: UserRecord, store: Store) -> None:
    record = _own(client, store, alice, name="old name")
    answer = _edit(client, record, name="new name")
    assert "The changes were saved." in answer.text
    assert store.credentials.get(id=record.id).display_name == "new name"


def test_a_change_is_audited_as_the_person(
    client: TestClient, alice: UserRecord, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    record = _own(client, store, alice)
    with caplog.at_level(logging.INFO, "authserver.audit"):
        _edit(client, record, name="audited")
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "authserver.audit"]
    [event] = [e for e in events if e["event"] == "credential_updated"]
    assert event["credential_id"] == record.id and event["via"] == "session"


def test_sending_it_unchanged_changes_nothing(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    record = _own(client, store, alice)
    answer = _edit(client, record)
    assert "Nothing was changed." in answer.text
    assert store.credentials.get(id=record.id).updated_at == record.updated_at


def test_an_unreduced_credential_is_narrowed_to_the_roles_checked(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    record = _own(client, store, alice)
    _edit(client, record, role=["deploy"])
    assert store.credentials.get(id=record.id).scoped_roles == ("deploy",)


def test_a_role_it_does_not_have_is_refused(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    record = _own(client, store, alice, role="deploy")
    answer = _edit(client, record, role=["deploy", "billing:read"])
    assert answer.status_code == 403
    assert "may only keep roles it has now" in answer.text
    assert store.credentials.get(id=record.id).scoped_roles == ("deploy",)


def test_unchecking_every_role_of_a_reduced_credential_is_refused(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    record = _own(client, store, alice, role="deploy")
    answer = _edit(client, record, role=[])
    assert answer.status_code == 403
    assert store.credentials.get(id=record.id).scoped_roles == ("deploy",)


def test_networks_are_narrowed_inside_the_current_ones(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    record = _own(client, store, alice, networks="10.0.0.0/8")
    _edit(client, record, networks="10.1.0.0/16\n10.2.3.4")
    assert store.credentials.get(id=record.id).allow_source_cidr == ("10.1.0.0/16", "10.2.3.4/32")


@pytest.mark.parametrize(
    "networks", [pytest.param("192.0.2.0/24", id="outside"), pytest.param("", id="any")]
)
def test_wider_networks_are_refused(
    client: TestClient, alice: UserRecord, store: Store, networks: str
) -> None:
    record = _own(client, store, alice, networks="10.0.0.0/8")
    answer = _edit(client, record, networks=networks)
    assert answer.status_code == 403
    assert "inside its current ones" in answer.text
    assert store.credentials.get(id=record.id).allow_source_cidr == ("10.0.0.0/8",)


def test_an_unlocked_credential_may_be_locked(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    record = _own(client, store, alice)
    _edit(client, record, networks="203.0.113.0/24")
    assert store.credentials.get(id=record.id).allow_source_cidr == ("203.0.113.0/24",)


def test_the_expiry_may_move_earlier(client: TestClient, alice: UserRecord, store: Store) -> None:
    record = _own(client, store, alice, expiry="30d")
    day = (datetime.now(UTC) + timedelta(days=3)).date()
    _edit(client, record, expiry="date", expires_on=day.isoformat())
    expires = store.credentials.get(id=record.id).expires_time
    assert expires is not None and expires.date() == day + timedelta(days=1)


def test_a_later_expiry_is_refused(client: TestClient, alice: UserRecord, store: Store) -> None:
    record = _own(client, store, alice, expiry="30d")
    later = (datetime.now(UTC) + timedelta(days=60)).date().isoformat()
    answer = _edit(client, record, expiry="date", expires_on=later)
    assert answer.status_code == 403
    assert "Expiry" in answer.text
    assert store.credentials.get(id=record.id).expires_time == record.expires_time


def test_a_bad_date_is_shown_beside_the_field(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    record = _own(client, store, alice)
    answer = _edit(client, record, expiry="date", expires_on="soon")
    assert answer.status_code == 400
    assert 'id="expires_on"' in answer.text and 'aria-invalid="true"' in answer.text


def test_a_change_without_the_csrf_token_is_refused(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    record = _own(client, store, alice, name="kept")
    answer = client.post(
        f"{PAGE.format(id=record.id)}/edit", data={"name": "forged", "expiry": "keep"}
    )
    assert answer.status_code == 403
    assert store.credentials.get(id=record.id).display_name == "kept"


# Rotating it -------------------------------------------------------------------------------


def _rotate(client: TestClient, record: ClientRecord, grace: str) -> Response:
    page = client.get(PAGE.format(id=record.id))
    return client.post(
        f"{PAGE.format(id=record.id)}/rotate", data={"csrf_token": csrf_of(page), "grace": grace}
    )


def test_rotating_shows_the_new_secret_once(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    record, old = create_and_secret(client, store, alice)
    shown = _rotate(client, record, "0s")
    new = _secret_of(shown.text)
    assert new != old and "has a new secret" in shown.text
    assert token_request(client, record.client_id, new).status_code == 200
    assert token_request(client, record.client_id, old).status_code == 401
    again = client.get(f"{PAGE.format(id=record.id)}/secret?rotated=1")
    assert again.status_code == 410 and new not in again.text


def test_the_old_secret_works_for_the_grace_period_chosen(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    record, old = create_and_secret(client, store, alice)
    new = _secret_of(_rotate(client, record, "1h").text)
    assert token_request(client, record.client_id, old).status_code == 200
    assert token_request(client, record.client_id, new).status_code == 200


def test_the_page_shows_when_it_was_rotated(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    record = _own(client, store, alice)
    assert (
        '<dt>Secret rotated</dt><dd><span class="muted">never'
        in client.get(PAGE.format(id=record.id)).text
    )
    _rotate(client, record, "0s")
    page = client.get(PAGE.format(id=record.id))
    assert "<dt>Secret rotated</dt><dd><time" in page.text


@pytest.mark.parametrize("settings_overrides", [{"max_rotation_grace": "1d"}])
def test_grace_periods_beyond_the_limit_are_not_offered_nor_taken(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    record = _own(client, store, alice)
    page = client.get(PAGE.format(id=record.id))
    assert 'value="1d"' in page.text and 'value="7d"' not in page.text
    answer = _rotate(client, record, "7d")
    assert answer.status_code == 400
    assert "It was not rotated." in answer.text
    assert store.credentials.get(id=record.id).rotated_at is None


def test_rotating_without_the_csrf_token_is_refused(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    record = _own(client, store, alice)
    answer = client.post(f"{PAGE.format(id=record.id)}/rotate", data={"grace": "0s"})
    assert answer.status_code == 403
    assert store.credentials.get(id=record.id).rotated_at is None


def test_the_page_deletes_through_the_confirmation(
    client: TestClient, alice: UserRecord, store: Store
) -> None:
    record = _own(client, store, alice)
    page = client.get(PAGE.format(id=record.id))
    assert f'href="/ui/personal-clients/{record.id}/delete"' in page.text
    confirm = client.get(f"/ui/personal-clients/{record.id}/delete")
    client.post(f"/ui/personal-clients/{record.id}/delete", data={"csrf_token": csrf_of(confirm)})
    assert client.get(PAGE.format(id=record.id)).status_code == 404
