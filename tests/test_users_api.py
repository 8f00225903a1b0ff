"""ConductorOne's users API: ``/api/v1/users[/{id}]`` and ``/api/v1/search/users``.

A caller sees itself, the admin role sees everyone, anyone else is 404.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

import httpx
from starlette.testclient import TestClient

from authserver.config import Settings
from authserver.records import ClientRecord, UserRecord
from authserver.security.argon2 import SecretHasher
from authserver.store import Store
from authserver.usecases.credentials import CredentialService
from authserver.usecases.users import UserService
from tests.support.helpers import mint, now, operator_creates
from tests.support.live import LiveServer

Caller = Callable[..., tuple[UserRecord, ClientRecord, str, str]]
MakeUser = Callable[..., UserRecord]
ADMIN = ("billing:read", "system:owner")


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


class Answer(Protocol):
    """An HTTP answer, from httpx or from Starlette's test client."""

    @property
    def status_code(self) -> int: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...


def listed_ids(response: Answer) -> list[str]:
    assert response.status_code == 200, response.text
    return [entry["user"]["id"] for entry in response.json()["list"]]


def test_caller_reads_itself_in_conductorones_user_shape(
    client: TestClient, caller: Caller
) -> None:
    user, _, _, token = caller()
    response = client.get(f"/api/v1/users/{user.id}", headers=auth(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    got = response.json()["userView"]["user"]
    assert {k: v for k, v in got.items() if k not in ("createdAt", "updatedAt")} == {
        "id": user.id,
        "email": user.email,
        "username": user.email,
        "displayName": "Test User",
        "status": "ENABLED",
        "type": "USER_TYPE_HUMAN",
        "roleIds": ["billing:read", "deploy"],
    }
    assert datetime.fromisoformat(got["createdAt"]) == user.created_at
    assert got["createdAt"].endswith("Z")


def test_another_user_is_not_found_without_the_admin_role(
    client: TestClient, caller: Caller, make_user: MakeUser
) -> None:
    _, _, _, token = caller()
    other = make_user()
    response = client.get(f"/api/v1/users/{other.id}", headers=auth(token))
    assert response.status_code == 404
    assert response.json()["code"] == 5


def test_the_admin_role_reads_any_user(
    client: TestClient, caller: Caller, make_user: MakeUser
) -> None:
    _, _, _, token = caller(roles=ADMIN)
    other = make_user()
    response = client.get(f"/api/v1/users/{other.id}", headers=auth(token))
    assert response.status_code == 200, response.text
    assert response.json()["userView"]["user"]["email"] == other.email


def test_a_disabled_user_shows_as_disabled(
    client: TestClient, caller: Caller, make_user: MakeUser, store: Store
) -> None:
    _, _, _, token = caller(roles=ADMIN)
    other = make_user()
    UserService(store).update(ref=other.id, role_names=None, disabled=True, now=now())
    response = client.get(f"/api/v1/users/{other.id}", headers=auth(token))
    assert response.json()["userView"]["user"]["status"] == "DISABLED"


def test_an_admin_token_reduced_below_the_admin_role_sees_only_itself(
    client: TestClient, caller: Caller, make_user: MakeUser
) -> None:
    _, _, _, token = caller(roles=ADMIN, scope="billing:read")
    other = make_user()
    assert client.get(f"/api/v1/users/{other.id}", headers=auth(token)).status_code == 404


def test_an_unknown_or_malformed_user_id_is_not_found(client: TestClient, caller: Caller) -> None:
    _, _, _, token = caller(roles=ADMIN)
    for ref in ("01m8edd0z6k9aak56aw0m778vx", "alice@example.com"):
        response = client.get(f"/api/v1/users/{quote(ref)}", headers=auth(token))
        assert response.status_code == 404, ref
        assert response.json()["code"] == 5


def test_users_api_requires_a_bearer_token(client: TestClient, make_user: MakeUser) -> None:
    user = make_user()
    for response in (
        client.get(f"/api/v1/users/{user.id}"),
        client.get("/api/v1/users"),
        client.post("/api/v1/search/users", json={}),
    ):
        assert response.status_code == 401
        assert response.json()["code"] == 16


def test_list_shows_only_the_caller_without_the_admin_role(
    client: TestClient, caller: Caller, make_user: MakeUser
) -> None:
    user, _, _, token = caller()
    make_user()
    response = client.get("/api/v1/users", headers=auth(token))
    assert listed_ids(response) == [user.id]
    assert response.json()["nextPageToken"] == ""


def test_list_pages_through_everyone_for_the_admin_role(
    client: TestClient, caller: Caller, make_user: MakeUser
) -> None:
    admin, _, _, token = caller(roles=ADMIN)
    others = [make_user(), make_user()]
    seen: list[str] = []
    page_token = ""
    for _ in range(5):
        response = client.get(
            "/api/v1/users", params={"pageSize": 2, "pageToken": page_token}, headers=auth(token)
        )
        seen += listed_ids(response)
        page_token = response.json()["nextPageToken"]
        if not page_token:
            break
    assert sorted(seen) == sorted([admin.id, *(u.id for u in others)])
    assert len(seen) == 3


def test_search_by_email_finds_that_user_for_the_admin_role(
    client: TestClient, caller: Caller, make_user: MakeUser
) -> None:
    _, _, _, token = caller(roles=ADMIN)
    wanted = make_user(email="Bob.Builder@example.com")
    make_user()
    response = client.post(
        "/api/v1/search/users", json={"email": "bob.builder@EXAMPLE.com"}, headers=auth(token)
    )
    assert listed_ids(response) == [wanted.id]


def test_search_query_matches_part_of_the_email(
    client: TestClient, caller: Caller, make_user: MakeUser
) -> None:
    _, _, _, token = caller(roles=ADMIN)
    wanted = make_user(email="carol_100%@example.com")
    make_user(email="carol1000@example.com")
    response = client.post("/api/v1/search/users", json={"query": "ROL_100%"}, headers=auth(token))
    assert listed_ids(response) == [wanted.id]


def test_search_by_ids_without_the_admin_role_finds_only_the_caller(
    client: TestClient, caller: Caller, make_user: MakeUser
) -> None:
    user, _, _, token = caller()
    other = make_user()
    response = client.post(
        "/api/v1/search/users", json={"ids": [other.id, user.id]}, headers=auth(token)
    )
    assert listed_ids(response) == [user.id]
    only_other = client.post("/api/v1/search/users", json={"ids": [other.id]}, headers=auth(token))
    assert listed_ids(only_other) == []


def test_search_ignores_unknown_fields_and_refuses_malformed_ids(
    client: TestClient, caller: Caller
) -> None:
    user, _, _, token = caller()
    ignored = client.post(
        "/api/v1/search/users", json={"userStatuses": ["ENABLED"]}, headers=auth(token)
    )
    assert listed_ids(ignored) == [user.id]
    response = client.post("/api/v1/search/users", json={"ids": "x"}, headers=auth(token))
    assert response.status_code == 400
    assert response.json() == {"code": 3, "message": "ids: expected a list of at most 100 user ids"}


# What cone does, request for request ------------------------------------------------------
#
# cone (cmd/cone/whoami.go, pkg/client/whoami.go, pkg/client/user.go) with ConductorOne's Go
# SDK (user.go, models/shared/user.go):
# - whoami: GET /api/v1/auth/introspect, takes ``userId``; then get-user with it.
# - get-user: GET /api/v1/users/{id} (id path-escaped) with ``Accept: application/json``;
#   any status >= 400 is an error carrying the body; a 200 must have an
#   ``application/json`` Content-Type, else "unknown content-type received"; the body's
#   ``userView`` and ``userView.user`` must be present (else "view is nil" /
#   "user is nil"); ``createdAt``/``updatedAt`` decode as Go ``time.Time`` (RFC 3339);
#   ``status`` is one of UNKNOWN, ENABLED, DISABLED, DELETED and ``type`` one of the
#   USER_TYPE_* values; the table shows Email, Status, Job Title, Department,
#   Employment Status, Employment Type, Created At.

GO_USER_STATUS = {"UNKNOWN": "Unknown", "ENABLED": "Enabled", "DISABLED": "Disabled",
                  "DELETED": "Deleted"}  # fmt: skip
GO_USER_TYPES = {"USER_TYPE_UNSPECIFIED", "USER_TYPE_SYSTEM", "USER_TYPE_HUMAN",
                 "USER_TYPE_SERVICE", "USER_TYPE_AGENT"}  # fmt: skip
SDK_HEADERS = {"Accept": "application/json", "User-Agent": "conductorone-sdk-go"}


class ConeError(Exception):
    pass


def cone_get_user(http: httpx.Client, token: str, user_id: str) -> dict[str, Any]:
    response = http.get(
        f"/api/v1/users/{quote(user_id, safe='')}",
        headers={**SDK_HEADERS, "Authorization": f"Bearer {token}"},
    )
    if response.status_code >= 400:
        raise ConeError(f"{response.status_code}: {response.text}")
    if not response.headers.get("content-type", "").startswith("application/json"):
        raise ConeError("unknown content-type received")
    view = response.json().get("userView")
    if view is None:
        raise ConeError("get-user: view is nil")
    user = view.get("user")
    if user is None:
        raise ConeError("get-user: user is nil")
    for stamp in ("createdAt", "updatedAt", "deletedAt"):
        if stamp in user:
            datetime.fromisoformat(user[stamp])  # Go's time.Time.UnmarshalJSON: RFC 3339
    if "type" in user:
        assert user["type"] in GO_USER_TYPES
    return {
        "Id": user.get("id", ""),
        "Email": user.get("email", ""),
        "Status": GO_USER_STATUS[user["status"]] if "status" in user else "Unknown",
        "Job Title": user.get("jobTitle", ""),
        "Department": user.get("department", ""),
        "Created At": user.get("createdAt", ""),
    }


def cone_whoami(http: httpx.Client, token: str) -> dict[str, Any]:
    response = http.get(
        "/api/v1/auth/introspect", headers={**SDK_HEADERS, "Authorization": f"Bearer {token}"}
    )
    if response.status_code >= 400:
        raise ConeError(f"{response.status_code}: {response.text}")
    return cone_get_user(http, token, response.json().get("userId") or "")


def _live_user(
    live_server: tuple[LiveServer, Settings, Store], roles: tuple[str, ...]
) -> tuple[LiveServer, UserRecord, ClientRecord, str]:
    server, settings, store = live_server
    user = UserService(store).create(
        email=f"{roles[-1].replace(':', '-')}@example.com",
        display_name="Cone User",
        role_names=roles,
        now=now(),
    )
    record, secret = operator_creates(
        CredentialService(store, SecretHasher(settings), settings), user
    )
    return server, user, record, secret


def test_cone_whoami_shows_the_callers_user(
    live_server: tuple[LiveServer, Settings, Store],
) -> None:
    server, user, record, secret = _live_user(live_server, ("billing:read",))
    with httpx.Client(base_url=server.url) as http:
        shown = cone_whoami(http, mint(http, record.client_id, secret))
    assert shown["Id"] == user.id
    assert shown["Email"] == user.email
    assert shown["Status"] == "Enabled"


def test_cone_get_user_of_someone_else_fails_with_404_without_the_admin_role(
    live_server: tuple[LiveServer, Settings, Store],
) -> None:
    server, _, record, secret = _live_user(live_server, ("billing:read",))
    _, admin, _, _ = _live_user(live_server, ("system:owner",))
    with httpx.Client(base_url=server.url) as http:
        token = mint(http, record.client_id, secret)
        try:
            cone_get_user(http, token, admin.id)
        except ConeError as error:
            assert str(error).startswith('404: {"code":5,')
        else:
            raise AssertionError("cone get-user of another user succeeded")


def test_cone_get_user_of_someone_else_works_for_the_admin_role(
    live_server: tuple[LiveServer, Settings, Store],
) -> None:
    server, other, _, _ = _live_user(live_server, ("billing:read",))
    _, _, record, secret = _live_user(live_server, ("system:owner",))
    with httpx.Client(base_url=server.url) as http:
        shown = cone_get_user(http, mint(http, record.client_id, secret), other.id)
    assert shown["Email"] == other.email
