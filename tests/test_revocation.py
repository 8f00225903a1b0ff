"""POST /auth/v1/revoke (RFC 7009)."""

from __future__ import annotations

from datetime import timedelta

from starlette.testclient import TestClient

from authserver.store import Store
from tests.support.helpers import mint, now
from tests.support.types import MakeCaller, MakeClient, Response


def revoke(client: TestClient, client_id: str, secret: str, token: str) -> Response:
    return client.post("/auth/v1/revoke", data={"token": token}, auth=(client_id, secret))


def is_active(client: TestClient, client_id: str, secret: str, token: str) -> bool:
    response = client.post("/auth/v1/introspect", data={"token": token}, auth=(client_id, secret))
    return bool(response.json()["active"])


def test_revoking_own_token_makes_it_inactive(client: TestClient, caller: MakeCaller) -> None:
    _, record, secret, token = caller()
    response = revoke(client, record.client_id, secret, token)
    assert response.status_code == 200
    assert response.content == b""
    assert not is_active(client, record.client_id, secret, token)


def test_revocation_is_stored_until_the_token_expires(
    client: TestClient, caller: MakeCaller, store: Store
) -> None:
    import jwt

    _, record, secret, token = caller()
    revoke(client, record.client_id, secret, token)
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    assert store.revocations.is_revoked(jti=jti)
    store.revocations.purge(now=now())
    assert store.revocations.is_revoked(jti=jti)
    # Kept a minute past exp (token checks allow clock skew), then dropped.
    store.revocations.purge(now=now() + timedelta(seconds=601 + 60))
    assert not store.revocations.is_revoked(jti=jti)


def test_revoking_one_token_leaves_others_active(client: TestClient, caller: MakeCaller) -> None:
    _, record, secret, token = caller()
    second = mint(client, record.client_id, secret)
    revoke(client, record.client_id, secret, token)
    assert is_active(client, record.client_id, secret, second)


def test_another_clients_token_is_not_revoked(
    client: TestClient, caller: MakeCaller, make_client: MakeClient
) -> None:
    user, record, secret, token = caller()
    other, other_secret = make_client(user)
    assert revoke(client, other.client_id, other_secret, token).status_code == 200
    assert is_active(client, record.client_id, secret, token)


def test_unknown_token_is_200(client: TestClient, caller: MakeCaller) -> None:
    _, record, secret, _ = caller()
    assert revoke(client, record.client_id, secret, "not-a-token").status_code == 200


def test_revoking_twice_is_200(client: TestClient, caller: MakeCaller) -> None:
    _, record, secret, token = caller()
    revoke(client, record.client_id, secret, token)
    assert revoke(client, record.client_id, secret, token).status_code == 200


def test_revocation_requires_client_authentication(client: TestClient, caller: MakeCaller) -> None:
    _, record, _, token = caller()
    response = revoke(client, record.client_id, "wrong", token)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_revoked_token_is_refused_by_management_api(client: TestClient, caller: MakeCaller) -> None:
    _, record, secret, token = caller()
    revoke(client, record.client_id, secret, token)
    response = client.get(
        "/api/v1/iam/personal_clients", headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    assert response.json()["code"] == 16


def test_replay_markers_outlive_expiry_by_a_clock_margin(store: Store) -> None:
    key = "k" * 64
    store.revocations.record_assertion(key=key, expires_at=now() - timedelta(seconds=10))
    store.revocations.purge_assertions(now=now())
    assert (
        store.revocations.record_assertion(key=key, expires_at=now()) is False
    )  # still remembered
    store.revocations.purge_assertions(now=now() + timedelta(seconds=31))
    assert store.revocations.record_assertion(key=key, expires_at=now()) is True
