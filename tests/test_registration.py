"""Dynamic client registration (RFC 7591) and client configuration (RFC 7592)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from starlette.applications import Starlette
from starlette.testclient import TestClient

from authserver.cli import main
from authserver.client import signed_assertion
from authserver.domain.credentials import CheckedPatch
from authserver.records import UserRecord
from authserver.store import Store
from authserver.store.database import Database
from authserver.usecases.credentials import CredentialService
from authserver.usecases.users import UserService
from tests.support.helpers import now, token_request
from tests.support.types import MakeCaller, MakeUser, Response

REGISTER = "/auth/v1/register"
ISSUER = "http://127.0.0.1:8000"


def register(client: TestClient, bearer: str, **metadata: Any) -> Response:
    return client.post(REGISTER, json=metadata, headers={"authorization": f"Bearer {bearer}"})


class InitialToken(Protocol):
    """``initial_token(roles=..., ttl=...)``: a new user and a registration token of theirs."""

    def __call__(
        self, roles: tuple[str, ...] = ("billing:read", "deploy"), ttl: timedelta = ...
    ) -> tuple[UserRecord, str]: ...


# A registered client: (registration response body, its configuration path, bearer headers).
Registration = tuple[dict[str, Any], str, dict[str, str]]


@pytest.fixture
def initial_token(credential_service: CredentialService, make_user: MakeUser) -> InitialToken:
    def make(
        roles: tuple[str, ...] = ("billing:read", "deploy"), ttl: timedelta = timedelta(hours=1)
    ) -> tuple[UserRecord, str]:
        user = make_user(roles=roles)
        token, _ = credential_service.mint_registration_token(user_ref=user.id, ttl=ttl, now=now())
        return user, token

    return make


def assert_metadata_error(response: Response, field: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_client_metadata"
    assert field in response.json()["error_description"]


# RFC 7591 -----------------------------------------------------------------------


def test_register_with_initial_access_token(
    client: TestClient, initial_token: InitialToken
) -> None:
    user, token = initial_token()
    response = register(
        client,
        token,
        client_name="ci",
        scope="deploy",
        allow_source_cidr=["10.0.0.0/8"],
        expires_in=3600,
    )
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["client_name"] == "ci"
    assert body["scope"] == "deploy"
    assert body["allow_source_cidr"] == ["10.0.0.0/8"]
    assert body["grant_types"] == ["client_credentials"]
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["client_secret"].startswith("secret-token:")
    assert abs(body["client_secret_expires_at"] - (time.time() + 3600)) < 10
    assert abs(body["client_id_issued_at"] - time.time()) < 10
    assert (
        body["registration_client_uri"]
        == f"{ISSUER}/auth/v1/register/{quote(body['client_id'], safe='')}"
    )
    assert body["registration_access_token"]


def test_registered_secret_mints_tokens_for_the_user(
    client: TestClient, initial_token: InitialToken
) -> None:
    import jwt

    user, token = initial_token()
    body = register(client, token, client_name="ci").json()
    minted = token_request(client, body["client_id"], body["client_secret"])
    assert (
        jwt.decode(minted.json()["access_token"], options={"verify_signature": False})["sub"]
        == user.id
    )


def test_never_expiring_registration_says_zero(
    client: TestClient, initial_token: InitialToken
) -> None:
    _, token = initial_token()
    assert register(client, token).json()["client_secret_expires_at"] == 0


def test_initial_access_token_is_single_use(
    client: TestClient, initial_token: InitialToken
) -> None:
    _, token = initial_token()
    assert register(client, token).status_code == 201
    again = register(client, token)
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_token"
    assert again.headers["www-authenticate"].startswith("Bearer")


def test_rejected_metadata_does_not_spend_the_initial_token(
    client: TestClient, initial_token: InitialToken
) -> None:
    _, token = initial_token()
    assert register(client, token, grant_types=["authorization_code"]).status_code == 400
    assert register(client, token).status_code == 201


def test_expired_initial_access_token_is_refused(
    client: TestClient, initial_token: InitialToken
) -> None:
    _, token = initial_token(ttl=timedelta(seconds=1))
    time.sleep(1.1)
    assert register(client, token).status_code == 401


def test_unknown_bearer_is_refused(client: TestClient) -> None:
    assert register(client, "made-up").json()["error"] == "invalid_token"


def test_missing_bearer_is_refused(client: TestClient) -> None:
    assert client.post(REGISTER, json={}).status_code == 401


def test_register_with_users_access_token(client: TestClient, caller: MakeCaller) -> None:
    user, _, _, access = caller()
    body = register(client, access, client_name="via-token", scope="deploy").json()
    assert body["scope"] == "deploy"
    assert token_request(client, body["client_id"], body["client_secret"]).status_code == 200


def test_reduced_access_token_cannot_register_unreduced(
    client: TestClient, caller: MakeCaller
) -> None:
    _, _, _, access = caller(scoped=("deploy",))
    assert_metadata_error(register(client, access, client_name="x"), "scope")


def test_scope_beyond_bearers_roles_is_refused(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, access = caller(scope="deploy")
    assert_metadata_error(register(client, access, scope="deploy billing:read"), "scope")


def test_scope_the_user_lacks_is_refused(client: TestClient, initial_token: InitialToken) -> None:
    _, token = initial_token(roles=("deploy",))
    assert_metadata_error(register(client, token, scope="system:owner"), "scope")


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        pytest.param({"grant_types": ["authorization_code"]}, "grant_types", id="grant-type"),
        pytest.param({"response_types": ["code"]}, "response_types", id="response-types"),
        pytest.param(
            {"redirect_uris": ["https://x.example/cb"]}, "redirect_uris", id="redirect-uris"
        ),
        pytest.param(
            {"token_endpoint_auth_method": "none"}, "token_endpoint_auth_method", id="auth-none"
        ),
        pytest.param({"allow_source_cidr": ["10.0.0.1/8"]}, "allow_source_cidr", id="bad-cidr"),
        pytest.param({"allow_source_cidr": "10.0.0.0/8"}, "allow_source_cidr", id="cidr-not-list"),
        pytest.param({"expires_in": -5}, "expires_in", id="negative-expiry"),
        pytest.param({"expires_in": "3600"}, "expires_in", id="expiry-string"),
        pytest.param({"client_name": "x" * 300}, "client_name", id="long-name"),
        pytest.param({"scope": 'bad"role'}, "scope", id="bad-scope"),
        pytest.param({"jwks_uri": "https://x.example/jwks"}, "jwks_uri", id="jwks-uri"),
        pytest.param({"jwks": {"keys": []}}, "jwks", id="jwks-without-pkjwt"),
    ],
)
def test_invalid_metadata_names_the_field(
    client: TestClient, initial_token: InitialToken, metadata: dict[str, Any], field: str
) -> None:
    _, token = initial_token()
    assert_metadata_error(register(client, token, **metadata), field)


def test_malformed_json_is_invalid_client_metadata(
    client: TestClient, initial_token: InitialToken
) -> None:
    _, token = initial_token()
    response = client.post(REGISTER, content=b"{", headers={"authorization": f"Bearer {token}"})
    assert response.json()["error"] == "invalid_client_metadata"


def test_client_with_own_jwks_gets_no_secret_and_uses_its_key(
    client: TestClient, initial_token: InitialToken
) -> None:
    import jwt

    _, token = initial_token()
    key = Ed25519PrivateKey.generate()
    public = OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
    body = register(
        client, token, token_endpoint_auth_method="private_key_jwt", jwks={"keys": [public]}
    ).json()
    assert "client_secret" not in body
    assert body["jwks"]["keys"][0]["x"] == public["x"]
    claims = {
        "iss": body["client_id"],
        "sub": body["client_id"],
        "aud": ISSUER,
        "exp": int(time.time()) + 60,
        "jti": "j1",
    }
    assertion = jwt.encode(claims, key, algorithm="EdDSA")
    response = client.post(
        "/auth/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )
    assert response.status_code == 200


def test_private_key_in_jwks_is_refused(client: TestClient, initial_token: InitialToken) -> None:
    _, token = initial_token()
    key = OKPAlgorithm.to_jwk(Ed25519PrivateKey.generate(), as_dict=True)
    assert_metadata_error(
        register(client, token, token_endpoint_auth_method="private_key_jwt", jwks={"keys": [key]}),
        "jwks",
    )


def test_private_key_jwt_client_cannot_use_its_secret_directly(
    client: TestClient, initial_token: InitialToken
) -> None:
    _, token = initial_token()
    body = register(client, token, token_endpoint_auth_method="private_key_jwt").json()
    assert token_request(client, body["client_id"], body["client_secret"]).status_code == 401
    assertion = signed_assertion(
        body["client_secret"], client_id=body["client_id"], audience=ISSUER
    )
    response = client.post(
        "/auth/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )
    assert response.status_code == 200


def test_cli_mints_registration_tokens(database_url: str) -> None:
    env = {"AUTHSERVER_DATABASE_URL": database_url}
    runner = CliRunner()
    runner.invoke(main, ["users", "create", "a@example.com"], env=env)
    result = runner.invoke(
        main,
        ["registration-tokens", "create", "--user", "a@example.com", "--ttl", "15m", "--json"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert set(body) == {"token", "expiresTime"}
    expires = datetime.fromisoformat(body["expiresTime"])
    assert abs((expires - datetime.now(UTC)) - timedelta(minutes=15)) < timedelta(seconds=30)


def test_cli_registration_token_for_unknown_user_exits_1(database_url: str) -> None:
    env = {"AUTHSERVER_DATABASE_URL": database_url}
    result = CliRunner().invoke(
        main, ["registration-tokens", "create", "--user", "ghost@example.com"], env=env
    )
    assert result.exit_code == 1


# RFC 7592 ------------------------------------------------------------------------


@pytest.fixture
def registered(client: TestClient, initial_token: InitialToken) -> Registration:
    _, token = initial_token()
    body = register(client, token, client_name="ci", scope="deploy", expires_in=3600).json()
    path = body["registration_client_uri"].removeprefix(ISSUER)
    return body, path, {"authorization": f"Bearer {body['registration_access_token']}"}


def test_read_returns_metadata_without_secrets(
    client: TestClient, registered: Registration
) -> None:
    body, path, headers = registered
    response = client.get(path, headers=headers)
    assert response.status_code == 200
    read = response.json()
    assert read["client_id"] == body["client_id"]
    assert read["client_name"] == "ci"
    text = response.text
    assert 'client_secret"' not in text and "argon2" not in text and "secret_hash" not in text
    assert body["client_secret"] not in text


def test_read_with_wrong_token_is_401(client: TestClient, registered: Registration) -> None:
    _, path, _ = registered
    response = client.get(path, headers={"authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_another_clients_registration_token_is_refused(
    client: TestClient, registered: Registration, initial_token: InitialToken
) -> None:
    _, path, _ = registered
    _, token = initial_token()
    other = register(client, token).json()
    assert (
        client.get(
            path, headers={"authorization": f"Bearer {other['registration_access_token']}"}
        ).status_code
        == 401
    )


def test_update_replaces_metadata(client: TestClient, registered: Registration) -> None:
    body, path, headers = registered
    response = client.put(
        path,
        json={
            "client_id": body["client_id"],
            "client_name": "renamed",
            "scope": "deploy",
            "allow_source_cidr": ["192.0.2.0/24"],
        },
        headers=headers,
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert (updated["client_name"], updated["allow_source_cidr"]) == ("renamed", ["192.0.2.0/24"])
    assert updated["client_secret_expires_at"] == body["client_secret_expires_at"]


def test_update_cannot_widen_a_reduced_client(client: TestClient, registered: Registration) -> None:
    body, path, headers = registered
    response = client.put(
        path, json={"client_id": body["client_id"], "scope": "deploy billing:read"}, headers=headers
    )
    assert_metadata_error(response, "scope")


def test_update_cannot_extend_expiry(client: TestClient, registered: Registration) -> None:
    body, path, headers = registered
    response = client.put(
        path,
        json={"client_id": body["client_id"], "scope": "deploy", "expires_in": 86400},
        headers=headers,
    )
    assert_metadata_error(response, "expires_in")


def test_update_needs_matching_client_id(client: TestClient, registered: Registration) -> None:
    _, path, headers = registered
    assert_metadata_error(
        client.put(path, json={"client_id": "other"}, headers=headers), "client_id"
    )


def test_delete_soft_deletes_and_revokes_the_registration_token(
    client: TestClient, registered: Registration, store: Store
) -> None:
    body, path, headers = registered
    response = client.delete(path, headers=headers)
    assert response.status_code == 204
    assert token_request(client, body["client_id"], body["client_secret"]).status_code == 401
    assert client.get(path, headers=headers).status_code == 401
    found = store.credentials.find(client_id=body["client_id"])
    assert found is not None
    record, _ = found
    assert record.deleted_at is not None


def test_metadata_advertises_registration(client: TestClient) -> None:
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    assert metadata["registration_endpoint"] == f"{ISSUER}/auth/v1/register"
    assert "private_key_jwt" in metadata["introspection_endpoint_auth_methods_supported"]
    assert metadata["revocation_endpoint_auth_signing_alg_values_supported"] == ["EdDSA", "Ed25519"]


def test_malformed_jwks_is_invalid_client_metadata(
    client: TestClient, initial_token: InitialToken
) -> None:
    _, token = initial_token()
    response = register(
        client, token, token_endpoint_auth_method="private_key_jwt", jwks={"keys": "nope"}
    )
    assert_metadata_error(response, "jwks")


def test_read_echoes_the_registration_access_token(
    client: TestClient, registered: Registration
) -> None:
    body, path, headers = registered
    assert (
        client.get(path, headers=headers).json()["registration_access_token"]
        == body["registration_access_token"]
    )


def test_disabled_owner_cannot_manage_registration(
    client: TestClient, registered: Registration, store: Store
) -> None:
    body, path, headers = registered
    found = store.credentials.find(client_id=body["client_id"])
    assert found is not None
    record, _ = found
    UserService(store).update(ref=record.user_id, role_names=None, disabled=True, now=now())
    assert client.get(path, headers=headers).status_code == 401
    assert client.delete(path, headers=headers).status_code == 401
    assert store.credentials.get(id=record.id).deleted_at is None


def test_nul_in_registration_path_is_401(client: TestClient, registered: Registration) -> None:
    _, _, headers = registered
    assert client.get("/auth/v1/register/ab%00c", headers=headers).status_code == 401


@pytest.mark.parametrize("backend", ["sqlite"])
def test_registration_during_outage_is_503(
    client: TestClient, initial_token: InitialToken, database: Database, tmp_path: Path
) -> None:
    _, token = initial_token()
    (tmp_path / "authserver.db").rename(tmp_path / "moved.db")
    (tmp_path / "authserver.db").mkdir()
    database.engine.dispose()
    response = register(client, token)
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"


@pytest.fixture
def locked_registration(client: TestClient, initial_token: InitialToken) -> Registration:
    _, token = initial_token()
    body = register(client, token, allow_source_cidr=["192.0.2.0/24"]).json()
    return (
        body,
        body["registration_client_uri"].removeprefix(ISSUER),
        {"authorization": f"Bearer {body['registration_access_token']}"},
    )


def test_registration_token_is_refused_outside_the_clients_networks(
    client: TestClient, locked_registration: Registration
) -> None:
    _, path, headers = locked_registration
    assert client.get(path, headers=headers).status_code == 401  # the test client is 203.0.113.7


def test_update_without_allow_source_cidr_keeps_the_lock(
    app: Starlette, locked_registration: Registration, store: Store
) -> None:
    body, path, headers = locked_registration
    with TestClient(app, client=("192.0.2.10", 1)) as inside:
        response = inside.put(
            path, json={"client_id": body["client_id"], "client_name": "renamed"}, headers=headers
        )
    assert response.status_code == 200, response.text
    assert response.json()["allow_source_cidr"] == ["192.0.2.0/24"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_registration_token_stops_working_when_its_client_expires(
    client: TestClient, registered: Registration, store: Store, method: str
) -> None:
    body, path, headers = registered
    found = store.credentials.find(client_id=body["client_id"])
    assert found is not None
    record, _ = found
    expired = CheckedPatch(expires_time=now() - timedelta(seconds=1))
    store.credentials.update(id=record.id, patch=expired, now=now())
    response = client.request(
        method, path, headers=headers, json={"client_id": body["client_id"], "scope": "deploy"}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert store.credentials.get(id=record.id).deleted_at is None


def test_update_cannot_widen_the_clients_own_network_lock(
    client: TestClient, initial_token: InitialToken, store: Store
) -> None:
    _, token = initial_token()
    body = register(
        client, token, client_name="ci", scope="deploy", allow_source_cidr=["203.0.113.0/24"]
    ).json()
    path = body["registration_client_uri"].removeprefix(ISSUER)
    headers = {"authorization": f"Bearer {body['registration_access_token']}"}
    response = client.put(
        path,
        json={"client_id": body["client_id"], "scope": "deploy", "allow_source_cidr": []},
        headers=headers,
    )
    assert_metadata_error(response, "allow_source_cidr")
    found = store.credentials.find(client_id=body["client_id"])
    assert found is not None
    record, _ = found
    assert record.allow_source_cidr == ("203.0.113.0/24",)


def test_form_body_is_told_to_send_json(client: TestClient, initial_token: InitialToken) -> None:
    _, token = initial_token()
    response = client.post(
        REGISTER, data={"client_name": "x"}, headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_client_metadata",
        "error_description": "expected a JSON body (Content-Type: application/json)",
    }


def test_json_body_labelled_as_a_form_is_still_read(
    client: TestClient, initial_token: InitialToken
) -> None:
    _, token = initial_token()
    response = client.post(
        REGISTER,
        content=b'{"client_name":"curl-d"}',
        headers={
            "authorization": f"Bearer {token}",
            "content-type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["client_name"] == "curl-d"
