"""``/ui/admin/credentials`` and ``/ui/admin/audit`` without a browser: who may see them,
filters in the query string, paging, deleting after a confirmation, the audit filters."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from authserver.records import ClientRecord, UserRecord
from authserver.store import Store
from tests.support.helpers import now, operator_creates, services_of, token_request
from tests.support.types import MakeUser
from tests.support.ui_helpers import csrf_of, people_with_passwords, sign_in, signed_in_admin

PAGES = ("/ui/admin/credentials", "/ui/admin/credentials/delete", "/ui/admin/audit")


@pytest.fixture
def person(app: Starlette, make_user: MakeUser) -> Callable[..., UserRecord]:
    return people_with_passwords(app, make_user, roles=("deploy",))


@pytest.fixture
def admin(person: Callable[..., UserRecord], client: TestClient) -> UserRecord:
    return signed_in_admin(person, client)


def _credential(app: Starlette, owner: UserRecord, name: str, **kw: Any) -> ClientRecord:
    record, _ = operator_creates(services_of(app).credentials, owner, name=name, **kw)
    return record


def _names(page_text: str) -> list[str]:
    return re.findall(
        r'<th scope="row" data-label="Name"><span>(?:<a href="[^"]*">)?([^<]+)', page_text
    )


@pytest.mark.parametrize("path", PAGES)
def test_people_who_are_not_admins_find_no_such_page(
    client: TestClient, person: Callable[..., UserRecord], path: str
) -> None:
    person("bob@example.com")
    sign_in(client, "bob@example.com")
    assert client.get(path).status_code == 404


def test_lists_everyones_credentials_with_a_count(
    app: Starlette, client: TestClient, admin: UserRecord, make_user: MakeUser
) -> None:
    _credential(app, make_user("carol@example.com"), "carols")
    _credential(app, admin, "mine")
    page = client.get("/ui/admin/credentials")
    assert sorted(_names(page.text)) == ["carols", "mine"]
    assert "2 credentials" in page.text


def test_filters_come_from_the_query_string(
    app: Starlette, client: TestClient, admin: UserRecord, make_user: MakeUser
) -> None:
    carol = make_user("carol@example.com")
    _credential(app, carol, "locked", cidrs=("10.0.0.0/8",))
    _credential(app, carol, "soon", expires_in=timedelta(days=2))
    _credential(app, admin, "mine")
    tomorrow_week = (now() + timedelta(days=7)).date().isoformat()
    assert _names(client.get("/ui/admin/credentials?network_locked=1").text) == ["locked"]
    assert _names(client.get(f"/ui/admin/credentials?expiring_before={tomorrow_week}").text) == [
        "soon"
    ]
    owned = client.get("/ui/admin/credentials?owner=carol&sort=name")
    assert _names(owned.text) == ["locked", "soon"]
    assert 'value="carol"' in owned.text  # the form shows what is applied


@pytest.mark.parametrize("settings_overrides", [{"policy_max_lifetime": "90d"}])
def test_outside_policy_flags_the_longer_lived(
    app: Starlette, client: TestClient, admin: UserRecord
) -> None:
    from sqlalchemy import update

    from authserver.store.models import PersonalClient

    old = _credential(app, admin, "old", expires_in=timedelta(days=30))
    _credential(app, admin, "new", expires_in=timedelta(days=30))
    with services_of(app).database.engine.begin() as conn:  # made before the policy
        conn.execute(
            update(PersonalClient)
            .where(PersonalClient.id == old.id)
            .values(expires_time=now() + timedelta(days=400))
        )
    page = client.get("/ui/admin/credentials?outside_policy=1")
    assert _names(page.text) == ["old"]
    assert "outside policy" in page.text


def test_a_bad_date_is_named_and_ignored(client: TestClient, admin: UserRecord) -> None:
    page = client.get("/ui/admin/credentials?expiring_before=tomorrow")
    assert page.status_code == 200
    assert "Expiring before: choose a date" in page.text


def test_pages_on_the_server(
    app: Starlette, client: TestClient, admin: UserRecord, store: Store
) -> None:
    for n in range(55):
        _credential(app, admin, f"c{n:02d}")
    first = client.get("/ui/admin/credentials?sort=name")
    assert len(_names(first.text)) == 50
    assert "page 1 of 2" in first.text
    later = re.search(r'href="([^"]+)">Next', first.text)
    assert later is not None
    second = client.get(later.group(1).replace("&amp;", "&"))
    assert _names(second.text) == [f"c{n}" for n in range(50, 55)]


def test_delete_a_selection_after_a_page_naming_them(
    app: Starlette, client: TestClient, admin: UserRecord, make_user: MakeUser
) -> None:
    carol = make_user("carol@example.com")
    one = _credential(app, carol, "one")
    two = _credential(app, carol, "two")
    _credential(app, carol, "kept")
    confirm = client.get("/ui/admin/credentials/delete", params={"id": [one.id, two.id]})
    assert "Delete these 2 credentials?" in confirm.text
    assert one.client_id in confirm.text and two.client_id in confirm.text
    assert len(_names(client.get("/ui/admin/credentials").text)) == 3  # nothing deleted yet
    done = client.post(
        "/ui/admin/credentials/delete",
        data={
            "csrf_token": csrf_of(confirm),
            "id": [one.id, two.id],
            "back": "/ui/admin/credentials",
        },
        follow_redirects=False,
    )
    assert done.headers["location"] == "/ui/admin/credentials?deleted=2"
    page = client.get(done.headers["location"])
    assert _names(page.text) == ["kept"]
    assert "2 credentials deleted." in page.text


def test_a_deleted_credential_gets_no_token(
    app: Starlette, client: TestClient, admin: UserRecord, make_user: MakeUser
) -> None:
    record, secret = operator_creates(services_of(app).credentials, make_user(), name="x")
    confirm = client.get("/ui/admin/credentials/delete", params={"id": record.id})
    client.post(
        "/ui/admin/credentials/delete", data={"csrf_token": csrf_of(confirm), "id": record.id}
    )
    assert token_request(client, record.client_id, secret).status_code == 401


def test_delete_needs_the_csrf_token(
    app: Starlette, client: TestClient, admin: UserRecord, store: Store
) -> None:
    record = _credential(app, admin, "x")
    assert client.post("/ui/admin/credentials/delete", data={"id": record.id}).status_code == 403
    assert store.credentials.get(id=record.id).deleted_at is None


def test_back_after_deleting_never_leaves_the_inventory(
    app: Starlette, client: TestClient, admin: UserRecord
) -> None:
    record = _credential(app, admin, "x")
    confirm = client.get("/ui/admin/credentials/delete", params={"id": record.id})
    done = client.post(
        "/ui/admin/credentials/delete",
        data={"csrf_token": csrf_of(confirm), "id": record.id, "back": "https://evil.example/"},
        follow_redirects=False,
    )
    assert done.headers["location"] == "/ui/admin/credentials?deleted=1"


# The audit trail's page ------------------------------------------------------------


def _audit_rows(text: str) -> list[str]:
    return re.findall(r'data-label="Event"><span><code>([a-z_]+)</code>', text)


def test_the_audit_page_filters_by_person(
    app: Starlette, client: TestClient, admin: UserRecord, make_user: MakeUser
) -> None:
    carol = make_user("carol@example.com")
    _credential(app, carol, "hers")
    services_of(app).audit.flush()
    page = client.get("/ui/admin/audit", params={"person": "carol@example.com"})
    assert _audit_rows(page.text) == ["credential_created", "user_created"]


def test_the_audit_page_filters_by_credential_and_event(
    app: Starlette, client: TestClient, admin: UserRecord
) -> None:
    record = _credential(app, admin, "x")
    _credential(app, admin, "y")
    token_request(client, record.client_id, "wrong")
    services_of(app).audit.flush()
    by_client_id = client.get("/ui/admin/audit", params={"credential": record.client_id})
    assert _audit_rows(by_client_id.text) == ["auth_failed", "credential_created"]
    failures = client.get("/ui/admin/audit", params={"event": "auth_failed"})
    assert _audit_rows(failures.text) == ["auth_failed"]


def test_the_audit_page_filters_by_day(
    app: Starlette, client: TestClient, admin: UserRecord
) -> None:
    services_of(app).audit.flush()
    tomorrow = (now() + timedelta(days=1)).date().isoformat()
    today = now().date().isoformat()
    assert _audit_rows(client.get(f"/ui/admin/audit?since={tomorrow}").text) == []
    assert "signed_in" in _audit_rows(client.get(f"/ui/admin/audit?until={today}").text)


def test_the_audit_page_is_paged(app: Starlette, client: TestClient, admin: UserRecord) -> None:
    from authserver.security.audit import audit

    for n in range(60):
        audit("signed_out", user_id=f"u{n}")
    services_of(app).audit.flush()
    first = client.get("/ui/admin/audit?event=signed_out")
    assert len(_audit_rows(first.text)) == 50
    older = re.search(r'href="([^"]+)">Older', first.text)
    assert older is not None
    assert len(_audit_rows(client.get(older.group(1).replace("&amp;", "&")).text)) == 10


def test_a_credentials_own_page_shows_its_events(
    app: Starlette, client: TestClient, admin: UserRecord
) -> None:
    record = _credential(app, admin, "mine")
    other = _credential(app, admin, "other")
    token_request(client, record.client_id, "wrong")
    services_of(app).audit.flush()
    page = client.get(f"/ui/personal-clients/{record.id}")
    assert _audit_rows(page.text) == ["auth_failed", "credential_created"]
    assert other.client_id not in page.text


def test_each_personal_client_links_to_its_own_page(
    app: Starlette, client: TestClient, admin: UserRecord, make_user: MakeUser
) -> None:
    record = _credential(app, make_user("carol@example.com"), "carols")
    page = client.get("/ui/admin/credentials")
    assert f'<a href="/ui/personal-clients/{record.id}">carols</a>' in page.text
    assert client.get(f"/ui/personal-clients/{record.id}").status_code == 200
