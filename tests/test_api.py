"""Management API: /api/v1/iam/personal_clients and friends (ConductorOne wire shapes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from authserver.store import Store
from authserver.usecases.users import UserService
from tests.support.helpers import mint, now, token_request
from tests.support.types import MakeCaller, MakeClient, MakeUser, Response

BASE = "/api/v1/iam/personal_clients"


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def create(client: TestClient, token: str, **body: object) -> Response:
    return client.post(BASE, json=body, headers=auth(token))


def assert_error(response: Response, status: int, code: int, mentions: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message"}
    assert body["code"] == code
    assert mentions in body["message"]


# Create ---------------------------------------------------------------------


def test_create_returns_client_and_secret_once(client: TestClient, caller: MakeCaller) -> None:
    user, _, _, token = caller()
    response = create(
        client, token, displayName="laptop", allowSourceCidr=["10.0.0.0/8"], expires="3600s"
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    created = body["client"]
    assert created["userId"] == user.id
    assert created["displayName"] == "laptop"
    assert created["allowSourceCidr"] == ["10.0.0.0/8"]
    assert body["clientSecret"].startswith("secret-token:127.0.0.1:v1:")
    expires = datetime.fromisoformat(created["expiresTime"])
    assert abs((expires - datetime.now(UTC)) - timedelta(hours=1)) < timedelta(seconds=10)
    fetched = client.get(f"{BASE}/{created['id']}", headers=auth(token)).json()
    assert "clientSecret" not in fetched
    assert fetched["client"]["clientId"] == created["clientId"]


def test_created_secret_mints_tokens(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    body = create(client, token, displayName="x").json()
    assert (
        token_request(client, body["client"]["clientId"], body["clientSecret"]).status_code == 200
    )


def test_create_accepts_snake_case_keys(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    response = client.post(
        BASE, json={"display_name": "snake", "scoped_roles": ["deploy"]}, headers=auth(token)
    )
    assert response.status_code == 200
    assert response.json()["client"]["scopedRoles"] == ["deploy"]


def test_create_ignores_unknown_fields(client: TestClient, caller: MakeCaller) -> None:
    """grpc-gateway's unmarshaler ignores fields it does not know; newer SDKs send some."""
    _, _, _, token = caller()
    response = create(client, token, displayName="x", colour="red", newField={"a": 1})
    assert response.status_code == 200, response.text
    assert response.json()["client"]["displayName"] == "x"
    assert "colour" not in response.json()["client"]


def test_create_wrong_type_names_field(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    assert_error(create(client, token, allowSourceCidr="10.0.0.0/8"), 400, 3, "allowSourceCidr")


def test_create_malformed_json_is_code_3(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    response = client.post(
        BASE, content=b"{nope", headers={**auth(token), "content-type": "application/json"}
    )
    assert_error(response, 400, 3, "JSON")


def test_create_bad_duration_is_code_3(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    assert_error(create(client, token, expires="30d"), 400, 3, "duration")


def test_create_bad_cidr_is_code_3(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    assert_error(create(client, token, allowSourceCidr=["10.0.0.1/8"]), 400, 3, "CIDR")


def test_create_too_many_cidrs_is_code_3(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    cidrs = [f"10.0.{i}.0/24" for i in range(33)]
    assert_error(create(client, token, allowSourceCidr=cidrs), 400, 3, "32")


def test_create_overlong_display_name_is_code_3(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    assert_error(create(client, token, displayName="x" * 201), 400, 3, "displayName")


# No escalation -----------------------------------------------------------------


def test_reduced_credential_cannot_create_unreduced(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller(scoped=("deploy",))
    assert_error(create(client, token, displayName="x"), 403, 7)


def test_reduced_credential_cannot_exceed_its_roles(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller(scoped=("deploy",))
    assert_error(create(client, token, scopedRoles=["deploy", "billing:read"]), 403, 7)


def test_reduced_token_cannot_create_unreduced(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller(scope="deploy")
    assert_error(create(client, token, displayName="x"), 403, 7)


def test_reduced_credential_may_create_within_its_roles(
    client: TestClient, caller: MakeCaller
) -> None:
    _, _, _, token = caller(scoped=("deploy",))
    assert create(client, token, scopedRoles=["deploy"]).status_code == 200


def test_unreduced_credential_may_create_unreduced(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    assert create(client, token, displayName="x").json()["client"]["scopedRoles"] == []


def test_reduced_credential_cannot_widen_by_update(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller(scoped=("deploy",))
    target = create(client, token, scopedRoles=["deploy"]).json()["client"]
    response = client.post(
        f"{BASE}/{target['id']}",
        json={"client": {"scopedRoles": []}, "updateMask": "scopedRoles"},
        headers=auth(token),
    )
    assert_error(response, 403, 7)


def test_expiry_cannot_move_later(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    target = create(client, token, expires="3600s").json()["client"]
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat().replace("+00:00", "Z")
    response = client.post(
        f"{BASE}/{target['id']}",
        json={"client": {"expiresTime": later}, "updateMask": "expiresTime"},
        headers=auth(token),
    )
    assert_error(response, 403, 7, "earlier")


def test_expiry_cannot_be_cleared(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    target = create(client, token, expires="3600s").json()["client"]
    response = client.post(
        f"{BASE}/{target['id']}",
        json={"client": {"expiresTime": None}, "updateMask": "expiresTime"},
        headers=auth(token),
    )
    assert_error(response, 403, 7)


def test_expiry_may_move_earlier(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    target = create(client, token, expires="3600s").json()["client"]
    sooner = (datetime.now(UTC) + timedelta(minutes=5)).replace(microsecond=0)
    response = client.post(
        f"{BASE}/{target['id']}",
        json={"client": {"expiresTime": sooner.isoformat()}, "updateMask": "expiresTime"},
        headers=auth(token),
    )
    assert response.status_code == 200
    assert datetime.fromisoformat(response.json()["client"]["expiresTime"]) == sooner


# Update masks -------------------------------------------------------------------


def test_update_changes_only_masked_fields(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    target = create(client, token, displayName="old", allowSourceCidr=["10.0.0.0/8"]).json()[
        "client"
    ]
    response = client.post(
        f"{BASE}/{target['id']}",
        json={"client": {"displayName": "new", "allowSourceCidr": []}, "updateMask": "displayName"},
        headers=auth(token),
    )
    updated = response.json()["client"]
    assert updated["displayName"] == "new"
    assert updated["allowSourceCidr"] == ["10.0.0.0/8"]
    assert updated["updatedAt"] >= target["updatedAt"]


def test_update_mask_accepts_snake_case_and_lists(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    target = create(client, token).json()["client"]
    response = client.post(
        f"{BASE}/{target['id']}",
        json={
            "client": {"display_name": "n", "allow_source_cidr": ["192.0.2.1"]},
            "update_mask": "display_name, allow_source_cidr",
        },
        headers=auth(token),
    )
    updated = response.json()["client"]
    assert (updated["displayName"], updated["allowSourceCidr"]) == ("n", ["192.0.2.1/32"])


def test_cidr_update_applies_at_token_endpoint(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    body = create(client, token).json()
    target, secret = body["client"], body["clientSecret"]
    client.post(
        f"{BASE}/{target['id']}",
        json={"client": {"allowSourceCidr": ["192.0.2.0/24"]}, "updateMask": "allowSourceCidr"},
        headers=auth(token),
    )
    assert token_request(client, target["clientId"], secret).status_code == 401


@pytest.mark.parametrize("mask", ["clientId", "bogus", "", "userId", "displayName,deletedAt"])
def test_unknown_or_read_only_mask_path_is_code_3(
    client: TestClient, caller: MakeCaller, mask: str
) -> None:
    _, _, _, token = caller()
    target = create(client, token).json()["client"]
    response = client.post(
        f"{BASE}/{target['id']}",
        json={"client": {"displayName": "x"}, "updateMask": mask},
        headers=auth(token),
    )
    assert_error(response, 400, 3, "updateMask")


def test_update_ignores_unknown_client_fields(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    target = create(client, token).json()["client"]
    response = client.post(
        f"{BASE}/{target['id']}",
        json={"client": {"nickname": "x", "displayName": "renamed"}, "updateMask": "displayName"},
        headers=auth(token),
    )
    assert response.status_code == 200, response.text
    assert response.json()["client"]["displayName"] == "renamed"


def test_update_mask_naming_an_unknown_field_is_still_refused(
    client: TestClient, caller: MakeCaller
) -> None:
    _, _, _, token = caller()
    target = create(client, token).json()["client"]
    response = client.post(
        f"{BASE}/{target['id']}",
        json={"client": {"nickname": "x"}, "updateMask": "nickname"},
        headers=auth(token),
    )
    assert_error(response, 400, 3, "nickname")


# Visibility -----------------------------------------------------------------------


def test_other_users_credential_is_404(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, alice = caller()
    _, bob_record, _, _ = caller()
    assert_error(client.get(f"{BASE}/{bob_record.id}", headers=auth(alice)), 404, 5)


def test_other_users_credential_cannot_be_deleted(
    client: TestClient, caller: MakeCaller, store: Store
) -> None:
    _, _, _, alice = caller()
    _, bob_record, _, _ = caller()
    assert_error(client.delete(f"{BASE}/{bob_record.id}", headers=auth(alice)), 404, 5)
    assert store.credentials.get(id=bob_record.id).deleted_at is None


def test_admin_sees_other_users_credential(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, admin = caller(roles=("system:owner",))
    _, bob_record, _, _ = caller()
    response = client.get(f"{BASE}/{bob_record.id}", headers=auth(admin))
    assert response.json()["client"]["id"] == bob_record.id


def test_missing_bearer_is_code_16(client: TestClient) -> None:
    response = client.get(BASE)
    assert_error(response, 401, 16)
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_garbage_bearer_is_code_16(client: TestClient) -> None:
    assert_error(client.get(BASE, headers=auth("garbage")), 401, 16)


# List and paging ------------------------------------------------------------------


def test_list_pages_through_own_credentials_without_gaps(
    client: TestClient, caller: MakeCaller, make_client: MakeClient
) -> None:
    user, record, _, token = caller()
    for _ in range(4):
        make_client(user)
    caller()  # someone else's credential must not appear
    seen: list[str] = []
    page_token = ""
    pages = 0
    while True:
        response = client.get(
            BASE, params={"pageSize": 2, "pageToken": page_token}, headers=auth(token)
        )
        body = response.json()
        seen += [c["id"] for c in body["list"]]
        pages += 1
        page_token = body["nextPageToken"]
        if not page_token:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 5
    assert record.id in seen


def test_list_omits_deleted(client: TestClient, caller: MakeCaller, store: Store) -> None:
    _, record, _, token = caller()
    extra = create(client, token).json()["client"]
    client.delete(f"{BASE}/{extra['id']}", headers=auth(token))
    ids = [c["id"] for c in client.get(BASE, headers=auth(token)).json()["list"]]
    assert ids == [record.id]


def test_bad_page_token_is_code_3(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    assert_error(
        client.get(BASE, params={"pageToken": "!!"}, headers=auth(token)), 400, 3, "pageToken"
    )


def test_page_size_zero_in_the_query_means_the_default_page(
    client: TestClient, caller: MakeCaller
) -> None:
    """Protobuf clients send their default, 0, when they mean "no preference"."""
    _, _, _, token = caller()
    create(client, token)
    response = client.get(BASE, params={"pageSize": "0"}, headers=auth(token))
    assert response.status_code == 200, response.text
    assert len(response.json()["list"]) == 2


def test_page_size_zero_in_a_search_means_the_default_page(
    client: TestClient, caller: MakeCaller
) -> None:
    _, _, _, admin = caller(roles=("system:owner",))
    response = client.post(SEARCH, json={"pageSize": 0}, headers=auth(admin))
    assert response.status_code == 200, response.text
    assert len(response.json()["list"]) == 1


def test_list_ignores_unknown_query_parameters(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    response = client.get(BASE, params={"pageSize": "1", "view": "full"}, headers=auth(token))
    assert response.status_code == 200, response.text
    assert len(response.json()["list"]) == 1


def test_bad_page_size_is_code_3(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    assert_error(
        client.get(BASE, params={"pageSize": "-1"}, headers=auth(token)), 400, 3, "pageSize"
    )


# Delete ---------------------------------------------------------------------------


def test_delete_stops_the_credential_and_its_tokens(client: TestClient, caller: MakeCaller) -> None:
    _, record, secret, token = caller()
    body = create(client, token).json()
    target, target_secret = body["client"], body["clientSecret"]
    minted = mint(client, target["clientId"], target_secret)
    assert client.delete(f"{BASE}/{target['id']}", headers=auth(token)).json() == {}
    assert token_request(client, target["clientId"], target_secret).status_code == 401
    introspection = client.post(
        "/auth/v1/introspect", data={"token": minted}, auth=(record.client_id, secret)
    )
    assert introspection.json() == {"active": False}


def test_delete_twice_is_404(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    target = create(client, token).json()["client"]
    client.delete(f"{BASE}/{target['id']}", headers=auth(token))
    assert_error(client.delete(f"{BASE}/{target['id']}", headers=auth(token)), 404, 5)


# Search (admin) ----------------------------------------------------------------------


SEARCH = "/api/v1/search/iam/personal_clients"


def test_search_requires_admin(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    assert_error(client.post(SEARCH, json={}, headers=auth(token)), 403, 7)


def test_search_by_display_name_across_users(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, admin = caller(roles=("system:owner",))
    _, _, _, alice = caller()
    _, _, _, bob = caller()
    create(client, alice, displayName="Deploy bot 100%")
    create(client, bob, displayName="nightly DEPLOY")
    create(client, bob, displayName="other")
    names = [
        c["displayName"]
        for c in client.post(SEARCH, json={"query": "deploy"}, headers=auth(admin)).json()["list"]
    ]
    assert sorted(names) == ["Deploy bot 100%", "nightly DEPLOY"]


def test_search_filters_by_users(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, admin = caller(roles=("system:owner",))
    bob, bob_record, _, _ = caller()
    caller()
    body = client.post(SEARCH, json={"users": [{"id": bob.id}]}, headers=auth(admin)).json()
    assert [c["id"] for c in body["list"]] == [bob_record.id]


def test_search_pages(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, admin = caller(roles=("system:owner",))
    for _ in range(2):
        caller()
    first = client.post(SEARCH, json={"pageSize": 2}, headers=auth(admin)).json()
    second = client.post(
        SEARCH, json={"pageSize": 2, "pageToken": first["nextPageToken"]}, headers=auth(admin)
    ).json()
    ids = [c["id"] for c in first["list"] + second["list"]]
    assert len(ids) == len(set(ids)) == 3
    assert second["nextPageToken"] == ""


def test_search_ignores_unknown_fields(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, admin = caller(roles=("system:owner",))
    response = client.post(SEARCH, json={"q": "x", "pageSize": 1}, headers=auth(admin))
    assert response.status_code == 200, response.text
    assert len(response.json()["list"]) == 1


# Introspect ---------------------------------------------------------------------------


def test_api_introspect_describes_the_caller(client: TestClient, caller: MakeCaller) -> None:
    user, _, _, token = caller(roles=("a", "b"), scope="a")
    body = client.get("/api/v1/auth/introspect", headers=auth(token)).json()
    assert body == {
        "principleId": user.id,
        "userId": user.id,
        "roles": ["a"],
        "permissions": [],
        "features": [],
    }


def test_unknown_api_path_is_code_5(client: TestClient) -> None:
    assert_error(client.get("/api/v1/nope"), 404, 5)


def test_stale_expiry_check_cannot_extend_at_write_time(
    store: Store, caller: MakeCaller, client: TestClient
) -> None:
    """Two updates validated against the same old expiry: the later value must not win."""
    from authserver.domain.credentials import CheckedPatch
    from authserver.errors import PermissionDenied
    from tests.support.helpers import now

    _, _, _, token = caller()
    target = create(client, token, expires="864000s").json()["client"]
    one_day = now() + timedelta(days=1)
    five_days = now() + timedelta(days=5)
    store.credentials.update(id=target["id"], patch=CheckedPatch(expires_time=one_day), now=now())
    with pytest.raises(PermissionDenied):
        store.credentials.update(
            id=target["id"], patch=CheckedPatch(expires_time=five_days), now=now()
        )
    assert store.credentials.get(id=target["id"]).expires_time == one_day


def test_reduced_credential_cannot_unlock_stronger_credential(
    client: TestClient, caller: MakeCaller, make_client: MakeClient
) -> None:
    user, strong, _, _ = caller(roles=("billing:read", "system:owner"))
    weak, weak_secret = make_client(user, scoped=("billing:read",))
    weak_token = mint(client, weak.client_id, weak_secret)
    response = client.post(
        f"{BASE}/{strong.id}",
        json={"client": {"allowSourceCidr": []}, "updateMask": "allowSourceCidr"},
        headers=auth(weak_token),
    )
    assert_error(response, 403, 7)


def test_reduced_credential_cannot_delete_stronger_credential(
    client: TestClient, caller: MakeCaller, make_client: MakeClient, store: Store
) -> None:
    user, strong, _, _ = caller(roles=("billing:read", "system:owner"))
    weak, weak_secret = make_client(user, scoped=("billing:read",))
    weak_token = mint(client, weak.client_id, weak_secret)
    assert_error(client.delete(f"{BASE}/{strong.id}", headers=auth(weak_token)), 403, 7)
    assert store.credentials.get(id=strong.id).deleted_at is None


def test_reduced_credential_may_manage_equal_credential(
    client: TestClient, caller: MakeCaller
) -> None:
    _, _, _, token = caller(scoped=("deploy",))
    target = create(client, token, scopedRoles=["deploy"]).json()["client"]
    assert client.delete(f"{BASE}/{target['id']}", headers=auth(token)).json() == {}


@pytest.mark.parametrize("path_id", ["ab%00c", "x" * 26, "../../etc"])
def test_malformed_ids_are_404(client: TestClient, caller: MakeCaller, path_id: str) -> None:
    _, _, _, token = caller()
    assert_error(client.get(f"{BASE}/{path_id}", headers=auth(token)), 404, 5)


def test_deeply_nested_json_is_code_3(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    body = b"[" * 30000 + b"]" * 30000
    response = client.post(
        BASE, content=body, headers={**auth(token), "content-type": "application/json"}
    )
    assert_error(response, 400, 3, "JSON")


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_out_of_range_timestamps_are_code_3(
    client: TestClient, caller: MakeCaller, stamp: str
) -> None:
    _, _, _, token = caller()
    target = create(client, token).json()["client"]
    response = client.post(
        f"{BASE}/{target['id']}",
        json={"client": {"expiresTime": stamp}, "updateMask": "expiresTime"},
        headers=auth(token),
    )
    assert_error(response, 400, 3, "expiresTime")


def test_search_with_nul_in_user_id_is_code_3(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, admin = caller(roles=("system:owner",))
    response = client.post(SEARCH, json={"users": [{"id": "a\x00b"}]}, headers=auth(admin))
    assert_error(response, 400, 3, "users")


# Reduced callers and credentials that grow stronger later ------------------------------


def test_reduced_credential_cannot_unlock_an_unreduced_credential_of_equal_roles_today(
    client: TestClient, caller: MakeCaller, make_client: MakeClient, store: Store
) -> None:
    """Unreduced means "every role the owner will ever hold": stronger than any reduced one."""
    user, unreduced, _, _ = caller(roles=("billing:read",))
    weak, weak_secret = make_client(user, scoped=("billing:read",))
    weak_token = mint(client, weak.client_id, weak_secret)
    response = client.post(
        f"{BASE}/{unreduced.id}",
        json={"client": {"allowSourceCidr": []}, "updateMask": "allowSourceCidr"},
        headers=auth(weak_token),
    )
    assert_error(response, 403, 7, "unreduced")


def test_reduced_credential_cannot_delete_one_scoped_to_a_role_the_owner_lost(
    client: TestClient, caller: MakeCaller, make_client: MakeClient, store: Store
) -> None:
    """Scoped to a role the owner lacks right now: it regains it when the owner does."""
    user, _, _, _ = caller(roles=("billing:read", "deploy"))
    dormant, _ = make_client(user, scoped=("billing:read", "deploy"))
    weak, weak_secret = make_client(user, scoped=("billing:read",))
    UserService(store).update(ref=user.id, role_names=["billing:read"], disabled=None, now=now())
    weak_token = mint(client, weak.client_id, weak_secret)
    assert_error(client.delete(f"{BASE}/{dormant.id}", headers=auth(weak_token)), 403, 7, "deploy")
    assert store.credentials.get(id=dormant.id).deleted_at is None


def test_reduced_credential_may_delete_itself(
    client: TestClient, caller: MakeCaller, store: Store
) -> None:
    _, record, _, token = caller(scoped=("deploy",))
    assert client.delete(f"{BASE}/{record.id}", headers=auth(token)).json() == {}
    assert store.credentials.get(id=record.id).deleted_at is not None


# Locks and expiry are passed on ---------------------------------------------------------


@pytest.fixture
def locked_token(client: TestClient, make_user: MakeUser, make_client: MakeClient) -> str:
    """A token of a credential locked to 203.0.113.0/24 (the test peer's network), expiring in 2 days."""
    record, secret = make_client(
        make_user(), cidrs=("203.0.113.0/24",), expires_in=timedelta(days=2)
    )
    return mint(client, record.client_id, secret)


def test_credential_created_by_a_locked_credential_inherits_its_lock(
    client: TestClient, locked_token: str
) -> None:
    created = create(client, locked_token).json()["client"]
    assert created["allowSourceCidr"] == ["203.0.113.0/24"]


def test_credential_created_by_an_expiring_credential_expires_no_later(
    client: TestClient, locked_token: str
) -> None:
    created = create(client, locked_token).json()["client"]
    caller_expiry = datetime.fromisoformat(created["expiresTime"])
    assert caller_expiry - datetime.now(UTC) < timedelta(days=2, minutes=1)


def test_locked_credential_cannot_create_one_for_wider_networks(
    client: TestClient, locked_token: str
) -> None:
    response = create(client, locked_token, allowSourceCidr=["0.0.0.0/0"])
    assert_error(response, 403, 7, "allowSourceCidr")


def test_locked_credential_may_create_one_for_a_narrower_network(
    client: TestClient, locked_token: str
) -> None:
    response = create(client, locked_token, allowSourceCidr=["203.0.113.7"])
    assert response.status_code == 200, response.text
    assert response.json()["client"]["allowSourceCidr"] == ["203.0.113.7/32"]


def test_expiring_credential_cannot_create_one_that_outlives_it(
    client: TestClient, locked_token: str
) -> None:
    assert_error(create(client, locked_token, expires="2592000s"), 403, 7, "expiresTime")


def test_locked_credential_cannot_lift_its_own_lock(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user(), cidrs=("203.0.113.0/24",))
    token = mint(client, record.client_id, secret)
    response = client.post(
        f"{BASE}/{record.id}",
        json={"client": {"allowSourceCidr": []}, "updateMask": "allowSourceCidr"},
        headers=auth(token),
    )
    assert_error(response, 403, 7, "allowSourceCidr")


def test_admin_credential_passes_no_limits_on(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    admin, secret = make_client(
        make_user(roles=("system:owner",)), cidrs=("203.0.113.0/24",), expires_in=timedelta(days=2)
    )
    token = mint(client, admin.client_id, secret)
    created = create(client, token, allowSourceCidr=["10.0.0.0/8"]).json()["client"]
    assert created["allowSourceCidr"] == ["10.0.0.0/8"]
    assert "expiresTime" not in created
