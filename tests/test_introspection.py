"""POST /auth/v1/introspect (RFC 7662): activity against current state, and who may ask."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.testclient import TestClient

from authserver.config import Settings
from authserver.store import Store
from authserver.usecases.keys import KeyService
from authserver.usecases.users import UserService
from tests.support.helpers import mint, now, services_of, within
from tests.support.types import MakeCaller, MakeClient, MakeUser, Response


def introspect(
    client: TestClient, client_id: str, secret: str, token: str, **extra: str
) -> Response:
    return client.post(
        "/auth/v1/introspect", data={"token": token, **extra}, auth=(client_id, secret)
    )


def test_own_token_is_active_with_all_fields(
    client: TestClient, caller: MakeCaller, settings: Settings
) -> None:
    user, record, secret, token = caller()
    response = introspect(client, record.client_id, secret, token)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert body == {
        "active": True,
        "scope": "billing:read deploy",
        "client_id": record.client_id,
        "sub": user.id,
        "exp": claims["exp"],
        "iat": claims["iat"],
        "iss": settings.issuer,
        "aud": settings.issuer,
        "jti": claims["jti"],
        "token_type": "Bearer",
        "roles": ["billing:read", "deploy"],
    }


def test_token_is_inactive_after_its_credential_is_deleted(
    client: TestClient, caller: MakeCaller, store: Store
) -> None:
    user, record, secret, token = caller()
    _, other_record, other_secret, _ = caller(roles=("system:token-introspector",))
    store.credentials.delete(id=record.id, now=now())  # as the CLI or another instance would
    within(
        1.0,
        lambda: (
            introspect(client, other_record.client_id, other_secret, token).json()
            == {"active": False}
        ),
    )


def test_roles_shrink_when_owner_loses_a_role(
    client: TestClient, caller: MakeCaller, store: Store
) -> None:
    user, record, secret, token = caller(roles=("a", "b"))
    UserService(store).update(ref=user.id, role_names=["a"], disabled=None, now=now())
    within(
        1.0, lambda: introspect(client, record.client_id, secret, token).json()["roles"] == ["a"]
    )
    body = introspect(client, record.client_id, secret, token).json()
    assert body["active"] is True
    assert body["roles"] == ["a"]
    assert body["scope"] == "a"


def test_token_is_inactive_when_owner_is_disabled(
    client: TestClient, caller: MakeCaller, store: Store
) -> None:
    user, _, _, token = caller()
    _, admin_record, admin_secret, _ = caller(roles=("system:owner",))
    UserService(store).update(ref=user.id, role_names=None, disabled=True, now=now())
    within(
        1.0,
        lambda: (
            introspect(client, admin_record.client_id, admin_secret, token).json()
            == {"active": False}
        ),
    )


def test_token_is_inactive_after_revocation(client: TestClient, caller: MakeCaller) -> None:
    _, record, secret, token = caller()
    assert (
        client.post(
            "/auth/v1/revoke", data={"token": token}, auth=(record.client_id, secret)
        ).status_code
        == 200
    )
    assert introspect(client, record.client_id, secret, token).json() == {"active": False}


def test_caller_without_role_cannot_see_another_users_token(
    client: TestClient, caller: MakeCaller
) -> None:
    _, _, _, token = caller()
    _, record, secret, _ = caller(roles=("deploy",))
    assert introspect(client, record.client_id, secret, token).json() == {"active": False}


@pytest.mark.parametrize("role", ["system:owner", "system:token-introspector"])
def test_admin_or_introspector_sees_any_token(
    client: TestClient, caller: MakeCaller, role: str
) -> None:
    user, _, _, token = caller()
    _, record, secret, _ = caller(roles=(role,))
    body = introspect(client, record.client_id, secret, token).json()
    assert body["active"] is True
    assert body["sub"] == user.id


def test_introspector_role_must_be_effective(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    # The owner holds the role, but the credential is reduced to another one.
    _, record, secret, _ = caller(roles=("system:token-introspector", "deploy"), scoped=("deploy",))
    assert introspect(client, record.client_id, secret, token).json() == {"active": False}


def test_same_users_other_credential_may_introspect(
    client: TestClient, caller: MakeCaller, make_client: MakeClient
) -> None:
    user, _, _, token = caller()
    other, other_secret = make_client(user)
    assert introspect(client, other.client_id, other_secret, token).json()["active"] is True


def test_expired_token_is_inactive(
    client: TestClient, caller: MakeCaller, settings: Settings
) -> None:
    _, record, secret, token = caller()
    keyring = services_of(client.app).keyring
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["exp"] = int(time.time()) - 5
    expired = keyring.sign(claims)
    assert introspect(client, record.client_id, secret, expired).json() == {"active": False}


def test_wrong_issuer_is_inactive(client: TestClient, caller: MakeCaller) -> None:
    _, record, secret, token = caller()
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = services_of(client.app).keyring.sign({**claims, "iss": "https://evil.example"})
    assert introspect(client, record.client_id, secret, forged).json() == {"active": False}


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda t: "garbage", id="garbage"),
        pytest.param(lambda t: t[: len(t) // 2], id="truncated"),
        pytest.param(
            lambda t: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"), id="bad-signature"
        ),
        pytest.param(
            lambda t: (
                _b64({"alg": "none", "typ": "at+jwt", "kid": jwt.get_unverified_header(t)["kid"]})
                + "."
                + t.split(".")[1]
                + "."
            ),
            id="alg-none",
        ),
        pytest.param(
            lambda t: jwt.encode(
                jwt.decode(t, options={"verify_signature": False}),
                ec.generate_private_key(ec.SECP256R1()),
                algorithm="ES256",
                headers={"kid": jwt.get_unverified_header(t)["kid"], "typ": "at+jwt"},
            ),
            id="foreign-key-same-kid",
        ),
        pytest.param(lambda t: "a.b.c", id="three-dots"),
        pytest.param(lambda t: "x" * 9000, id="huge"),
    ],
)
def test_bad_tokens_are_inactive_not_errors(
    client: TestClient, caller: MakeCaller, mangle: Callable[[str], str]
) -> None:
    _, record, secret, token = caller()
    response = introspect(client, record.client_id, secret, mangle(token))
    assert response.status_code == 200
    assert response.json() == {"active": False}


def test_hs256_signed_with_public_key_is_inactive(client: TestClient, caller: MakeCaller) -> None:
    _, record, secret, token = caller()
    header = jwt.get_unverified_header(token)
    jwk = client.get("/.well-known/jwks.json").json()["keys"][0]
    claims = jwt.decode(token, options={"verify_signature": False})
    forged_header = _b64({"alg": "HS256", "typ": "at+jwt", "kid": header["kid"]})
    payload = _b64(claims)
    import hashlib
    import hmac

    signature = hmac.new(
        json.dumps(jwk).encode(), f"{forged_header}.{payload}".encode(), hashlib.sha256
    ).digest()
    forged = (
        f"{forged_header}.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    )
    assert introspect(client, record.client_id, secret, forged).json() == {"active": False}


def test_introspection_needs_client_authentication(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    response = client.post("/auth/v1/introspect", data={"token": token})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_introspection_caller_from_outside_its_cidr_is_refused(
    client: TestClient, make_user: MakeUser, make_client: MakeClient, caller: MakeCaller
) -> None:
    _, _, _, token = caller()
    record, secret = make_client(make_user(), cidrs=("192.0.2.0/24",))
    assert introspect(client, record.client_id, secret, token).status_code == 401


def test_missing_token_parameter_is_invalid_request(client: TestClient, caller: MakeCaller) -> None:
    _, record, secret, _ = caller()
    response = client.post("/auth/v1/introspect", data={}, auth=(record.client_id, secret))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_token_type_hint_is_accepted(client: TestClient, caller: MakeCaller) -> None:
    _, record, secret, token = caller()
    body = introspect(
        client, record.client_id, secret, token, token_type_hint="access_token"
    ).json()
    assert body["active"] is True


def test_token_from_before_rotation_stays_active(
    client: TestClient, caller: MakeCaller, store: Store, settings: Settings
) -> None:
    from authserver.runtime.tasks import refresh_keys

    _, record, secret, token = caller()
    KeyService(store, settings).rotate(now=now())
    assert client.portal is not None
    client.portal.call(refresh_keys, services_of(client.app))
    assert introspect(client, record.client_id, secret, token).json()["active"] is True


def test_reduced_token_reports_only_its_roles(client: TestClient, caller: MakeCaller) -> None:
    _, record, secret, _ = caller(roles=("a", "b"))
    token = mint(client, record.client_id, secret, scope="a")
    assert introspect(client, record.client_id, secret, token).json()["roles"] == ["a"]


def test_token_with_unknown_kid_is_inactive(client: TestClient, caller: MakeCaller) -> None:
    _, record, secret, token = caller()
    claims = jwt.decode(token, options={"verify_signature": False})
    key = ec.generate_private_key(ec.SECP256R1())
    forged = jwt.encode(
        claims, key, algorithm="ES256", headers={"kid": "not-a-published-kid", "typ": "at+jwt"}
    )
    assert introspect(client, record.client_id, secret, forged).json() == {"active": False}
