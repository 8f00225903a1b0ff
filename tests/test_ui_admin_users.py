"""``/ui/admin/users`` without a browser: who may see it, invite, roles, disable, sessions,
invitations, provider identities — each change through the use cases, audited with the admin."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from authserver.records import UserRecord
from authserver.sso.providers import OidcProvider
from authserver.store import Store
from authserver.store.audit import AuditFilter
from tests.support.helpers import PASSWORD, now, operator_creates, services_of, token_request
from tests.support.types import MakeUser
from tests.support.ui_helpers import (
    csrf_of,
    field_value,
    people_with_passwords,
    sign_in,
    signed_in_admin,
)

BASE = "http://127.0.0.1:8000"
CORP = OidcProvider(name="corp", issuer="https://sso.example.com", client_id="c", client_secret="s")


@pytest.fixture
def person(app: Starlette, make_user: MakeUser) -> Callable[..., UserRecord]:
    """A user with a password: make(email, roles)."""
    return people_with_passwords(app, make_user, roles=("deploy",))


@pytest.fixture
def admin(person: Callable[..., UserRecord], client: TestClient) -> UserRecord:
    """The admin, signed in on ``client``."""
    return signed_in_admin(person, client)


@pytest.fixture
def other_browser(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, base_url=BASE) as other:
        yield other


def _post(client: TestClient, path: str, page_path: str | None = None, **data: str) -> object:
    page = client.get(page_path or path)
    return client.post(path, data={"csrf_token": csrf_of(page), **data}, follow_redirects=False)


def _trail(app: Starlette, **where: object) -> list[tuple[str, str | None]]:
    services = services_of(app)
    services.audit.flush()
    found, _ = services.store.audit.newest_first(
        where=AuditFilter(**where),  # type: ignore[arg-type]
        before_id=None,
        limit=100,
    )
    return [(e.event, e.actor) for e in found]


def test_people_who_are_not_admins_find_no_admin_page(
    client: TestClient, person: Callable[..., UserRecord]
) -> None:
    person("bob@example.com")
    sign_in(client, "bob@example.com")
    for path in ("/ui/admin/users", "/ui/admin/users/new"):
        assert client.get(path).status_code == 404
    assert 'href="/ui/admin/users"' not in client.get("/ui/personal-clients").text


def test_admins_see_the_admin_link(client: TestClient, admin: UserRecord) -> None:
    assert 'href="/ui/admin/users"' in client.get("/ui/personal-clients").text


def test_search_by_email_or_name(
    client: TestClient, admin: UserRecord, make_user: MakeUser
) -> None:
    make_user(email="carol@example.com")
    make_user(email="dave@example.com")
    page = client.get("/ui/admin/users", params={"q": "CAROL"})
    assert "carol@example.com" in page.text
    assert "dave@example.com" not in page.text


def test_invite_creates_the_person_with_roles_and_shows_the_link_once(
    client: TestClient, admin: UserRecord, store: Store, other_browser: TestClient
) -> None:
    answer = _post(
        client,
        "/ui/admin/users/new",
        email="erin@example.com",
        name="Erin",
        roles="deploy, billing:read",
        ttl="7d",
    )
    erin = store.users.find(ref="erin@example.com")
    assert erin.roles == ("billing:read", "deploy")
    shown = client.get(answer.headers["location"])  # type: ignore[attr-defined]
    link = field_value(shown, "invite-link")
    assert link.startswith(f"{BASE}/ui/invite?token=inv_")
    assert 'data-copy="invite-link"' in shown.text
    assert client.get(answer.headers["location"]).status_code == 410  # type: ignore[attr-defined]
    # The link works: the person chooses a password and is signed in.
    form = other_browser.get(link.removeprefix(BASE))
    accepted = other_browser.post(
        "/ui/invite",
        data={
            "csrf_token": csrf_of(form),
            "token": link.split("token=")[1],
            "password": PASSWORD,
            "password_again": PASSWORD,
        },
    )
    assert accepted.status_code == 200
    assert "erin@example.com" in accepted.text


def test_inviting_an_existing_email_says_so_and_creates_nothing(
    client: TestClient, admin: UserRecord, store: Store
) -> None:
    answer = _post(client, "/ui/admin/users/new", email="root@example.com", roles="", ttl="7d")
    assert answer.status_code == 400  # type: ignore[attr-defined]
    assert "Nobody was invited" in answer.text  # type: ignore[attr-defined]
    assert len(store.users.all()) == 1


def test_an_invalid_role_is_refused_and_named(
    client: TestClient, admin: UserRecord, store: Store
) -> None:
    answer = _post(client, "/ui/admin/users/new", email="f@example.com", roles='a"b', ttl="7d")
    assert answer.status_code == 400  # type: ignore[attr-defined]
    assert "Roles:" in html.unescape(answer.text)  # type: ignore[attr-defined]
    assert [u.email for u in store.users.all()] == ["root@example.com"]


def test_the_invitation_is_audited_with_the_admin(
    app: Starlette, client: TestClient, admin: UserRecord, store: Store
) -> None:
    _post(client, "/ui/admin/users/new", email="g@example.com", roles="deploy", ttl="1d")
    gina = store.users.find(ref="g@example.com")
    assert _trail(app, person=gina.id) == [
        ("invite_created", admin.id),
        ("user_created", admin.id),
    ]


def test_change_roles(app: Starlette, client: TestClient, admin: UserRecord, store: Store) -> None:
    bob = store.users.create(email="bob@example.com", display_name="", roles=("deploy",), now=now())
    path = f"/ui/admin/users/{bob.id}"
    answer = _post(client, path, action="roles", roles="billing:read audit:read")
    assert answer.headers["location"] == f"{path}?done=roles"  # type: ignore[attr-defined]
    assert store.users.find(ref=bob.id).roles == ("audit:read", "billing:read")
    assert _trail(app, person=bob.id, events=["user_updated"]) == [("user_updated", admin.id)]


def test_disable_ends_their_sessions_and_stops_their_credentials(
    app: Starlette,
    client: TestClient,
    admin: UserRecord,
    person: Callable[..., UserRecord],
    other_browser: TestClient,
) -> None:
    bob = person("bob@example.com")
    sign_in(other_browser, "bob@example.com")
    record, secret = operator_creates(services_of(app).credentials, bob)
    assert token_request(client, record.client_id, secret).status_code == 200
    _post(client, f"/ui/admin/users/{bob.id}", action="disable")
    assert other_browser.get("/ui/personal-clients", follow_redirects=False).status_code == 303
    assert token_request(client, record.client_id, secret).status_code == 401
    _post(client, f"/ui/admin/users/{bob.id}", action="enable")
    assert token_request(client, record.client_id, secret).status_code == 200


def test_an_admin_cannot_disable_themselves(
    client: TestClient, admin: UserRecord, store: Store
) -> None:
    answer = _post(client, f"/ui/admin/users/{admin.id}", action="disable")
    assert answer.status_code == 400  # type: ignore[attr-defined]
    assert "cannot disable yourself" in answer.text  # type: ignore[attr-defined]
    assert not store.users.find(ref=admin.id).disabled


def test_end_every_session(
    client: TestClient,
    admin: UserRecord,
    person: Callable[..., UserRecord],
    other_browser: TestClient,
) -> None:
    bob = person("bob@example.com")
    sign_in(other_browser, "bob@example.com")
    assert other_browser.get("/ui/personal-clients").status_code == 200
    _post(client, f"/ui/admin/users/{bob.id}", action="sign-out")
    assert other_browser.get("/ui/personal-clients", follow_redirects=False).status_code == 303


def test_open_invitations_are_listed_and_revoked(
    app: Starlette, client: TestClient, admin: UserRecord, store: Store
) -> None:
    bob = store.users.create(email="bob@example.com", display_name="", roles=(), now=now())
    link, _ = services_of(app).people.invite(user_ref=bob.id, ttl=timedelta(days=1), now=now())
    listed = client.get("/ui/admin/users")
    assert re.search(r"Open invitations.*bob@example\.com", listed.text, re.S)
    _post(client, f"/ui/admin/users/{bob.id}", "/ui/admin/users", action="revoke-invites")
    assert "No invitation is open" in client.get("/ui/admin/users").text
    assert services_of(app).people.invited(token=link.split("token=")[1], now=now()) is None


def test_a_new_link_for_an_existing_person(
    client: TestClient, admin: UserRecord, store: Store
) -> None:
    bob = store.users.create(email="bob@example.com", display_name="", roles=(), now=now())
    answer = _post(client, f"/ui/admin/users/{bob.id}", action="invite", ttl="1d")
    shown = client.get(answer.headers["location"])  # type: ignore[attr-defined]
    assert "/ui/invite?token=inv_" in field_value(shown, "invite-link")


@pytest.mark.parametrize("settings_overrides", [{"login_oidc": (CORP,)}])
def test_link_and_unlink_a_provider_identity(
    app: Starlette, client: TestClient, admin: UserRecord, store: Store
) -> None:
    bob = store.users.create(email="bob@example.com", display_name="", roles=(), now=now())
    path = f"/ui/admin/users/{bob.id}"
    _post(client, path, action="link", provider="corp", subject="sub-123")
    assert store.provider_links.of_user(user_id=bob.id) == [(CORP.issuer, "sub-123")]
    assert "sub-123" in client.get(path).text
    _post(client, path, action="unlink", issuer=CORP.issuer, subject="sub-123")
    assert store.provider_links.of_user(user_id=bob.id) == []
    assert _trail(app, person=bob.id, events=["provider_linked", "provider_unlinked"]) == [
        ("provider_unlinked", admin.id),
        ("provider_linked", admin.id),
    ]


def test_changes_need_the_csrf_token(client: TestClient, admin: UserRecord, store: Store) -> None:
    bob = store.users.create(email="bob@example.com", display_name="", roles=(), now=now())
    answer = client.post(f"/ui/admin/users/{bob.id}", data={"action": "disable"})
    assert answer.status_code == 403
    assert not store.users.find(ref=bob.id).disabled
