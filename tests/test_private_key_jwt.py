"""private_key_jwt (RFC 7523 section 2.2) with the Ed25519 key inside the secret."""

from __future__ import annotations

import secrets
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient

from authserver.client import assertion_form, private_jwk, signed_assertion
from authserver.security.jose import ASSERTION_TYPE
from authserver.store import Store
from tests.support.types import MakeClient, MakeUser, Response

ISSUER = "http://127.0.0.1:8000"


def token_with_assertion(client: TestClient, assertion: str, **extra: str) -> Response:
    return client.post(
        "/auth/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
            **extra,
        },
    )


def sign(secret: str, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
    key = jwt.PyJWK(private_jwk(secret), algorithm="EdDSA").key
    return jwt.encode(claims, key, algorithm="EdDSA", headers=headers)


def claims_for(client_id: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": client_id,
        "sub": client_id,
        "aud": ISSUER,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(12),
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def assert_invalid_client(response: Response) -> None:
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "audience",
    [
        pytest.param(ISSUER, id="issuer"),
        pytest.param(f"{ISSUER}/auth/v1/token", id="token-endpoint"),
        pytest.param("127.0.0.1", id="issuer-host"),
        pytest.param(["https://elsewhere.example", ISSUER], id="array"),
    ],
)
def test_assertion_authenticates(
    client: TestClient, make_user: MakeUser, make_client: MakeClient, audience: str | list[str]
) -> None:
    record, secret = make_client(make_user())
    response = token_with_assertion(
        client, signed_assertion(secret, client_id=record.client_id, audience=audience)
    )
    assert response.status_code == 200, response.text
    assert (
        jwt.decode(response.json()["access_token"], options={"verify_signature": False})[
            "client_id"
        ]
        == record.client_id
    )


def test_helper_form_authenticates(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    form = assertion_form(secret, client_id=record.client_id, audience=ISSUER)
    response = client.post("/auth/v1/token", data={"grant_type": "client_credentials", **form})
    assert response.status_code == 200


def test_replayed_assertion_is_refused(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    assertion = signed_assertion(secret, client_id=record.client_id, audience=ISSUER)
    assert token_with_assertion(client, assertion).status_code == 200
    assert_invalid_client(token_with_assertion(client, assertion))


def test_nonce_header_replaces_missing_jti(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    assertion = sign(secret, claims_for(record.client_id, jti=None), headers={"nonce": "n-1"})
    assert token_with_assertion(client, assertion).status_code == 200
    assert_invalid_client(token_with_assertion(client, assertion))


def test_assertion_without_jti_or_nonce_is_refused(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    assert_invalid_client(
        token_with_assertion(client, sign(secret, claims_for(record.client_id, jti=None)))
    )


def test_assertion_signed_by_other_credentials_key_is_refused(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    owner = make_user()
    record, _ = make_client(owner)
    _, other_secret = make_client(owner)
    assertion = signed_assertion(other_secret, client_id=record.client_id, audience=ISSUER)
    assert_invalid_client(token_with_assertion(client, assertion))


def test_exp_too_far_ahead_is_refused(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    assertion = sign(secret, claims_for(record.client_id, exp=int(time.time()) + 3600))
    assert_invalid_client(token_with_assertion(client, assertion))


def test_missing_exp_is_refused(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    assert_invalid_client(
        token_with_assertion(client, sign(secret, claims_for(record.client_id, exp=None)))
    )


def test_expired_assertion_is_refused(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    assertion = sign(
        secret, claims_for(record.client_id, exp=int(time.time()) - 120, iat=int(time.time()) - 180)
    )
    assert_invalid_client(token_with_assertion(client, assertion))


def test_exp_within_leeway_is_accepted(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    assertion = sign(
        secret, claims_for(record.client_id, exp=int(time.time()) - 30, iat=int(time.time()) - 90)
    )
    assert token_with_assertion(client, assertion).status_code == 200


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"aud": "https://evil.example"}, id="wrong-aud"),
        pytest.param({"aud": None}, id="no-aud"),
        pytest.param({"sub": "someone-else"}, id="sub-differs"),
    ],
)
def test_bad_claims_are_refused(
    client: TestClient, make_user: MakeUser, make_client: MakeClient, changes: dict[str, Any]
) -> None:
    record, secret = make_client(make_user())
    assert_invalid_client(
        token_with_assertion(client, sign(secret, claims_for(record.client_id, **changes)))
    )


def test_non_eddsa_assertion_is_refused(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, _ = make_client(make_user())
    assertion = jwt.encode(claims_for(record.client_id), "s" * 32, algorithm="HS256")
    assert_invalid_client(token_with_assertion(client, assertion))


def test_unsigned_assertion_is_refused(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    good = sign(secret, claims_for(record.client_id))
    header = jwt.utils.base64url_encode(b'{"alg":"none"}').decode()
    assert_invalid_client(token_with_assertion(client, f"{header}.{good.split('.')[1]}."))


def test_unknown_client_assertion_is_refused(client: TestClient) -> None:
    key = Ed25519PrivateKey.generate()
    claims = claims_for("calm-otter-12345@127.0.0.1/pcc")
    assert_invalid_client(token_with_assertion(client, jwt.encode(claims, key, algorithm="EdDSA")))


def test_wrong_assertion_type_is_refused(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    assertion = signed_assertion(secret, client_id=record.client_id, audience=ISSUER)
    response = client.post(
        "/auth/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:other",
            "client_assertion": assertion,
        },
    )
    assert_invalid_client(response)


def test_assertion_plus_basic_is_invalid_request(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    response = client.post(
        "/auth/v1/token",
        data={
            "grant_type": "client_credentials",
            **assertion_form(secret, client_id=record.client_id, audience=ISSUER),
        },
        auth=(record.client_id, secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_assertion_respects_cidr_lock(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user(), cidrs=("192.0.2.0/24",))
    assert_invalid_client(
        token_with_assertion(
            client, signed_assertion(secret, client_id=record.client_id, audience=ISSUER)
        )
    )


def test_assertion_at_introspection_endpoint(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    token = client.post(
        "/auth/v1/token", data={"grant_type": "client_credentials"}, auth=(record.client_id, secret)
    ).json()["access_token"]
    form = assertion_form(
        secret, client_id=record.client_id, audience=f"{ISSUER}/auth/v1/introspect"
    )
    response = client.post("/auth/v1/introspect", data={"token": token, **form})
    assert response.json()["active"] is True


def test_assertion_at_revocation_endpoint(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    token = client.post(
        "/auth/v1/token", data={"grant_type": "client_credentials"}, auth=(record.client_id, secret)
    ).json()["access_token"]
    form = assertion_form(secret, client_id=record.client_id, audience=ISSUER)
    assert client.post("/auth/v1/revoke", data={"token": token, **form}).status_code == 200
    check = client.post(
        "/auth/v1/introspect", data={"token": token}, auth=(record.client_id, secret)
    )
    assert check.json() == {"active": False}


def test_replay_cache_is_in_the_database(
    client: TestClient, store: Store, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    token_with_assertion(
        client, signed_assertion(secret, client_id=record.client_id, audience=ISSUER)
    )
    with store.database.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM used_assertions").scalar_one() == 1


def test_exp_just_over_five_minutes_is_refused(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    assertion = sign(secret, claims_for(record.client_id, exp=int(time.time()) + 330))
    assert_invalid_client(token_with_assertion(client, assertion))


def test_nul_in_assertion_issuer_is_invalid_client(client: TestClient) -> None:
    key = Ed25519PrivateKey.generate()
    assert_invalid_client(
        token_with_assertion(client, jwt.encode(claims_for("a\x00b"), key, algorithm="EdDSA"))
    )
