"""What ConductorOne's SDKs send, replayed as their source code does it.

The Python SDK (``conductorone-sdk-python``, ``tokensource.py``) splits the
secret on ":" into exactly four parts, refuses any domain but
``conductorone.com``, decodes the key with ``base64.urlsafe_b64decode`` (no
padding added) and signs an EdDSA assertion with PyJWT whose single-use
marker is a ``nonce`` *claim* and whose ``aud`` is the token host. The Go SDK
and ``cone`` (``token_source.go``) ignore the domain, put a 32-hex-digit
``nonce`` in the JWS *header*, send no ``jti`` and an ``aud`` array holding the
host without port.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient

from authserver.config import Settings
from authserver.security.jose import ASSERTION_TYPE
from authserver.store.database import Database
from tests.support.helpers import services_of, token_request
from tests.support.types import MakeClient, MakeUser


def python_sdk_private_key(client_secret: str) -> Any:
    """``tokensource.py``'s parsing, line for line."""
    name, domain, version, encoded = client_secret.split(":")
    if name != "secret-token":
        raise Exception("not a secret token")
    if domain != "conductorone.com":
        raise Exception("wrong domain")
    if version != "v1":
        raise Exception("incorrect client-secret version")
    jwk = json.loads(base64.urlsafe_b64decode(encoded))
    if "d" not in jwk or jwk["kty"] != "OKP" or jwk["crv"] != "Ed25519":
        raise Exception("Invalid client secret: not a private key")
    return jwt.PyJWK(jwk, algorithm="EdDSA").key


def assertion_request(client_id: str, assertion: str) -> dict[str, str]:
    return {
        "client_id": client_id,
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }


def python_sdk_assertion(client_id: str, client_secret: str, host: str) -> str:
    now = int(time.time())
    payload = {
        "nonce": base64.urlsafe_b64encode(secrets.token_bytes(16)).decode(),
        "iss": client_id,
        "sub": client_id,
        "aud": host,
        "exp": now + 120,
        "iat": now,
        "nbf": now - 120,
    }
    return jwt.encode(payload, python_sdk_private_key(client_secret), "EdDSA")


def go_sdk_assertion(client_id: str, client_secret: str, host: str) -> str:
    _, _, _, encoded = client_secret.split(":", 3)
    key = jwt.PyJWK(json.loads(base64.urlsafe_b64decode(encoded)), algorithm="EdDSA").key
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": [host],
        "exp": now + 120,
        "iat": now,
        "nbf": now - 120,
    }
    return jwt.encode(claims, key, "EdDSA", headers={"nonce": secrets.token_hex(16)})


@pytest.mark.parametrize("settings_overrides", [{"secret_token_domain": "conductorone.com"}])
def test_python_sdk_gets_a_token_with_a_conductorone_com_secret(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    assert secret.startswith("secret-token:conductorone.com:v1:")
    assertion = python_sdk_assertion(record.client_id, secret, "127.0.0.1")
    response = client.post("/auth/v1/token", data=assertion_request(record.client_id, assertion))
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"


@pytest.mark.parametrize("settings_overrides", [{"secret_token_domain": "conductorone.com"}])
def test_python_sdk_assertion_cannot_be_replayed(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    form = assertion_request(
        record.client_id, python_sdk_assertion(record.client_id, secret, "127.0.0.1")
    )
    assert client.post("/auth/v1/token", data=form).status_code == 200
    assert client.post("/auth/v1/token", data=form).status_code == 401


def test_python_sdk_refuses_a_secret_of_the_default_domain(
    make_user: MakeUser, make_client: MakeClient
) -> None:
    """Without ``secret_token_domain = "conductorone.com"`` the Python SDK cannot be used."""
    _, secret = make_client(make_user())
    with pytest.raises(Exception, match="wrong domain"):
        python_sdk_private_key(secret)


def test_go_sdk_gets_a_token_with_a_header_nonce(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    assertion = go_sdk_assertion(record.client_id, secret, "127.0.0.1")
    response = client.post("/auth/v1/token", data=assertion_request(record.client_id, assertion))
    assert response.status_code == 200, response.text


def test_secret_issued_under_an_earlier_domain_keeps_working(
    client: TestClient,
    make_user: MakeUser,
    make_client: MakeClient,
    settings: Settings,
    database: Database,
) -> None:
    from authserver.app import create_app
    from authserver.config import Settings

    record, secret = make_client(make_user())  # issued under the issuer host
    changed = Settings(database_url=settings.database_url, secret_token_domain="conductorone.com")
    with TestClient(create_app(changed, database=database), client=("203.0.113.7", 1)) as later:
        response = token_request(later, record.client_id, secret)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda s: s.replace(":127.0.0.1:", ":conductorone.com:", 1), id="domain"),
        pytest.param(
            lambda s: _reencode(s, lambda jwk: json.dumps(jwk, separators=(", ", ": "))),
            id="json-spacing",
        ),
        pytest.param(
            lambda s: _reencode(s, lambda jwk: json.dumps(dict(reversed(jwk.items())))),
            id="json-member-order",
        ),
    ],
)
def test_another_encoding_of_the_key_is_refused_without_argon2(
    client: TestClient, make_user: MakeUser, make_client: MakeClient, variant: Callable[[str], str]
) -> None:
    record, secret = make_client(make_user())
    hasher = services_of(client.app).hasher
    misses = hasher.cache_misses
    response = token_request(client, record.client_id, variant(secret))
    assert response.status_code == 401
    assert hasher.cache_misses == misses  # refused before any argon2 run
    assert token_request(client, record.client_id, secret).status_code == 200


def _reencode(secret: str, dump: Any) -> str:
    prefix, _, encoded = secret.rpartition(":")
    jwk = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    return f"{prefix}:{base64.urlsafe_b64encode(dump(jwk).encode()).rstrip(b'=').decode()}"
