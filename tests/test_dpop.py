"""DPoP (RFC 9449): tokens bound to a key the client proves it holds, at the token endpoint and
at the management API. Proofs are made here with PyJWT, an implementation independent of ours."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.testclient import TestClient

from authserver.app import create_app
from authserver.config import DeviceClient, Settings
from authserver.domain.credentials import Caller
from authserver.records import ClientRecord, UserRecord
from authserver.security.argon2 import SecretHasher
from authserver.store import Database, Store
from authserver.usecases.credentials import CredentialService
from authserver.usecases.users import UserService
from tests.support.live import LiveServer

BASE = "http://127.0.0.1:8000"
TOKEN_URL = "http://127.0.0.1:8000/auth/v1/token"
API_URL = "http://127.0.0.1:8000/api/v1/iam/personal_clients"
MakeUser = Callable[..., UserRecord]
MakeClient = Callable[..., tuple[ClientRecord, str]]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Key:
    """A client's DPoP key pair and the proofs it signs."""

    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        if alg == "ES256":
            self.private: Any = ec.generate_private_key(ec.SECP256R1())
            self.jwk = json.loads(ECAlgorithm.to_jwk(self.private.public_key()))
        elif alg == "EdDSA":
            self.private = ed25519.Ed25519PrivateKey.generate()
            self.jwk = json.loads(OKPAlgorithm.to_jwk(self.private.public_key()))
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jwk = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        self.jwk.pop("kid", None)

    @property
    def thumbprint(self) -> str:
        """RFC 7638, computed here from the required members in lexicographic order."""
        required = {
            "EC": ("crv", "kty", "x", "y"),
            "OKP": ("crv", "kty", "x"),
            "RSA": ("e", "kty", "n"),
        }
        members = {name: self.jwk[name] for name in required[self.jwk["kty"]]}
        canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
        return _b64(hashlib.sha256(canonical.encode()).digest())

    def proof(
        self,
        *,
        htm: str = "POST",
        htu: str = TOKEN_URL,
        iat: float | None = None,
        token: str | None = None,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        body: dict[str, Any] = {
            "jti": secrets.token_urlsafe(12),
            "htm": htm,
            "htu": htu,
            "iat": int(time.time() if iat is None else iat),
        }
        if token is not None:
            body["ath"] = _b64(hashlib.sha256(token.encode()).digest())
        body.update(claims)
        headers = {"typ": "dpop+jwt", "jwk": self.jwk, **(header or {})}
        return pyjwt.encode(body, self.private, algorithm=self.alg, headers=headers)


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


@pytest.fixture
def credential(make_user: MakeUser, make_client: MakeClient) -> tuple[ClientRecord, str]:
    return make_client(make_user())


def _token(
    client: TestClient, credential: tuple[ClientRecord, str] | tuple[str, str], proof: str | None
) -> Any:
    """A client_credentials request of ``credential`` (a record and its secret, or a client id
    and its secret), with ``proof`` as its DPoP header."""
    holder, secret = credential
    client_id = holder if isinstance(holder, str) else holder.client_id
    headers = {"DPoP": proof} if proof is not None else {}
    return client.post(
        "/auth/v1/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        headers=headers,
    )


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256"])
def test_valid_proof_binds_the_token_to_its_key(
    client: TestClient, credential: tuple[ClientRecord, str], alg: str
) -> None:
    key = Key(alg)
    response = _token(client, credential, key.proof())
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    assert _claims(response.json()["access_token"])["cnf"] == {"jkt": key.thumbprint}


def test_token_without_a_proof_stays_a_bearer_token(
    client: TestClient, credential: tuple[ClientRecord, str]
) -> None:
    response = _token(client, credential, None)
    assert response.json()["token_type"] == "Bearer"
    assert "cnf" not in _claims(response.json()["access_token"])


def test_htu_is_compared_after_normalisation(
    client: TestClient, credential: tuple[ClientRecord, str]
) -> None:
    key = Key()
    proof = key.proof(htu="HTTP://127.0.0.1:8000/auth/v1/%74oken?x=1#f")
    assert _token(client, credential, proof).status_code == 200


def _private_jwk(key: Key) -> dict[str, Any]:
    return {**key.jwk, "d": _b64(secrets.token_bytes(32))}


def _unsigned(key: Key) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "dpop+jwt", "jwk": key.jwk}).encode())
    body = _b64(
        json.dumps({"jti": "x", "htm": "POST", "htu": TOKEN_URL, "iat": int(time.time())}).encode()
    )
    return f"{header}.{body}."


def _hmac(key: Key) -> str:
    return pyjwt.encode(
        {"jti": "x", "htm": "POST", "htu": TOKEN_URL, "iat": int(time.time())},
        "a-shared-secret-of-enough-length",
        algorithm="HS256",
        headers={"typ": "dpop+jwt", "jwk": key.jwk},
    )


REFUSED: list[Any] = [
    pytest.param(lambda k: k.proof(htm="GET"), id="wrong-htm"),
    pytest.param(lambda k: k.proof(htu="http://127.0.0.1:8000/auth/v1/introspect"), id="wrong-htu"),
    pytest.param(lambda k: k.proof(htu="http://evil.example/auth/v1/token"), id="other-host"),
    pytest.param(lambda k: k.proof(iat=time.time() - 300), id="stale-iat"),
    pytest.param(lambda k: k.proof(iat=time.time() + 300), id="future-iat"),
    pytest.param(lambda k: k.proof(jti=""), id="no-jti"),
    pytest.param(lambda k: k.proof(header={"typ": "JWT"}), id="wrong-typ"),
    pytest.param(lambda k: k.proof(header={"jwk": _private_jwk(k)}), id="private-key-in-jwk"),
    pytest.param(lambda k: k.proof(header={"jwk": Key().jwk}), id="signed-by-another-key"),
    pytest.param(_unsigned, id="alg-none"),
    pytest.param(_hmac, id="hs256"),
    pytest.param(lambda k: "not.a.proof", id="garbage"),
]


@pytest.mark.parametrize("make_proof", REFUSED)
def test_bad_proof_is_invalid_dpop_proof(
    client: TestClient,
    credential: tuple[ClientRecord, str],
    make_proof: Callable[[Key], str],
) -> None:
    response = _token(client, credential, make_proof(Key()))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_dpop_proof"


def test_two_proofs_are_refused(client: TestClient, credential: tuple[ClientRecord, str]) -> None:
    key = Key()
    record, secret = credential
    response = client.post(
        "/auth/v1/token",
        data={"grant_type": "client_credentials"},
        auth=(record.client_id, secret),
        headers=[("DPoP", key.proof()), ("DPoP", key.proof())],
    )
    assert response.json()["error"] == "invalid_dpop_proof"


def test_a_proof_is_accepted_once(client: TestClient, credential: tuple[ClientRecord, str]) -> None:
    proof = Key().proof()
    assert _token(client, credential, proof).status_code == 200
    again = _token(client, credential, proof)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_dpop_proof"


@pytest.fixture
def bound(client: TestClient, credential: tuple[ClientRecord, str]) -> tuple[Key, str]:
    key = Key()
    response = _token(client, credential, key.proof())
    return key, str(response.json()["access_token"])


def test_bound_token_with_its_proof_calls_the_api(
    client: TestClient, bound: tuple[Key, str]
) -> None:
    key, token = bound
    proof = key.proof(htm="GET", htu=API_URL, token=token)
    response = client.get(
        "/api/v1/iam/personal_clients", headers={"Authorization": f"DPoP {token}", "DPoP": proof}
    )
    assert response.status_code == 200, response.text


def test_bound_token_sent_as_bearer_is_refused(client: TestClient, bound: tuple[Key, str]) -> None:
    _, token = bound
    response = client.get(
        "/api/v1/iam/personal_clients", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'DPoP error="invalid_token"'


@pytest.mark.parametrize(
    "make_proof",
    [
        pytest.param(lambda k, t: k.proof(htm="GET", htu=API_URL), id="no-ath"),
        pytest.param(lambda k, t: k.proof(htm="GET", htu=API_URL, token=t + "x"), id="other-ath"),
        pytest.param(lambda k, t: Key().proof(htm="GET", htu=API_URL, token=t), id="other-key"),
        pytest.param(lambda k, t: k.proof(htm="POST", htu=API_URL, token=t), id="wrong-htm"),
        pytest.param(lambda k, t: k.proof(htm="GET", htu=TOKEN_URL, token=t), id="wrong-htu"),
    ],
)
def test_api_refuses_a_bad_proof_for_a_bound_token(
    client: TestClient, bound: tuple[Key, str], make_proof: Callable[[Key, str], str]
) -> None:
    key, token = bound
    response = client.get(
        "/api/v1/iam/personal_clients",
        headers={"Authorization": f"DPoP {token}", "DPoP": make_proof(key, token)},
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'DPoP error="invalid_token"'


def test_api_accepts_a_resource_proof_once(client: TestClient, bound: tuple[Key, str]) -> None:
    key, token = bound
    headers = {
        "Authorization": f"DPoP {token}",
        "DPoP": key.proof(htm="GET", htu=API_URL, token=token),
    }
    assert client.get("/api/v1/iam/personal_clients", headers=headers).status_code == 200
    assert client.get("/api/v1/iam/personal_clients", headers=headers).status_code == 401


def test_unbound_token_keeps_working_as_bearer(
    client: TestClient, credential: tuple[ClientRecord, str]
) -> None:
    token = _token(client, credential, None).json()["access_token"]
    response = client.get(
        "/api/v1/iam/personal_clients", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200


def test_introspection_of_a_bound_token_shows_its_binding(
    client: TestClient, credential: tuple[ClientRecord, str], bound: tuple[Key, str]
) -> None:
    key, token = bound
    record, secret = credential
    answer = client.post(
        "/auth/v1/introspect", data={"token": token}, auth=(record.client_id, secret)
    ).json()
    assert answer["active"] is True
    assert answer["token_type"] == "DPoP"
    assert answer["cnf"] == {"jkt": key.thumbprint}


def test_metadata_lists_the_dpop_algorithms(client: TestClient) -> None:
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    assert metadata["dpop_signing_alg_values_supported"] == ["ES256", "EdDSA", "RS256"]


# Credentials that require DPoP (RFC 9449 section 5.2) ------------------------------------


def _api_token(client: TestClient, credential: tuple[ClientRecord, str]) -> str:
    return str(_token(client, credential, None).json()["access_token"])


def _create(client: TestClient, token: str, **body: Any) -> Any:
    return client.post(
        "/api/v1/iam/personal_clients", json=body, headers={"Authorization": f"Bearer {token}"}
    )


def test_api_creates_a_credential_that_requires_dpop(
    client: TestClient, credential: tuple[ClientRecord, str]
) -> None:
    created = _create(client, _api_token(client, credential), requireDpop=True).json()
    assert created["client"]["requireDpop"] is True
    plain = _create(client, _api_token(client, credential)).json()
    assert "requireDpop" not in plain["client"]  # ConductorOne's usual shape


def test_credential_that_requires_dpop_gets_no_bearer_token(
    client: TestClient, credential: tuple[ClientRecord, str]
) -> None:
    created = _create(client, _api_token(client, credential), requireDpop=True).json()
    held = (created["client"]["clientId"], created["clientSecret"])
    refused = _token(client, held, None)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_dpop_proof"
    bound = _token(client, held, Key().proof())
    assert bound.status_code == 200
    assert bound.json()["token_type"] == "DPoP"


def test_api_update_can_require_dpop(
    client: TestClient, credential: tuple[ClientRecord, str]
) -> None:
    token = _api_token(client, credential)
    created = _create(client, token).json()["client"]
    updated = client.post(
        f"/api/v1/iam/personal_clients/{created['id']}",
        json={"client": {"requireDpop": True}, "updateMask": "requireDpop"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["client"]["requireDpop"] is True


def test_credentials_made_by_a_dpop_bound_credential_require_dpop_too(
    client: TestClient, credential: tuple[ClientRecord, str]
) -> None:
    parent = _create(client, _api_token(client, credential), requireDpop=True).json()
    holder = (parent["client"]["clientId"], parent["clientSecret"])
    key = Key()
    token = _token(client, holder, key.proof()).json()["access_token"]
    child = client.post(
        "/api/v1/iam/personal_clients",
        json={},
        headers={
            "Authorization": f"DPoP {token}",
            "DPoP": key.proof(htm="POST", htu=API_URL, token=token),
        },
    )
    assert child.status_code == 200, child.text
    assert child.json()["client"]["requireDpop"] is True


def test_registration_metadata_dpop_bound_access_tokens(
    client: TestClient, credential: tuple[ClientRecord, str]
) -> None:
    response = client.post(
        "/auth/v1/register",
        json={"client_name": "ci", "dpop_bound_access_tokens": True},
        headers={"Authorization": f"Bearer {_api_token(client, credential)}"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["dpop_bound_access_tokens"] is True
    held = (response.json()["client_id"], response.json()["client_secret"])
    assert _token(client, held, None).json()["error"] == "invalid_dpop_proof"


def test_cli_creates_a_credential_that_requires_dpop(
    database_url: str, make_user: MakeUser
) -> None:
    from click.testing import CliRunner

    from authserver.cli import main

    owner = make_user()
    result = CliRunner().invoke(
        main,
        ["clients", "create", "--user", owner.email, "--require-dpop", "--json"],
        env={"AUTHSERVER_DATABASE_URL": database_url},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["client"]["requireDpop"] is True


def test_page_creates_a_credential_that_requires_dpop(
    client: TestClient, app: Starlette, make_user: MakeUser, store: Store
) -> None:
    from tests.support.helpers import PASSWORD, now
    from tests.support.ui_helpers import create, sign_in

    owner = make_user(email="dora@example.com")
    services_of_app = app.state.services
    services_of_app.people.set_password(user_ref=owner.id, password=PASSWORD, now=now())
    assert sign_in(client, "dora@example.com").status_code == 303
    page = client.get("/ui/personal-clients/new")
    assert 'name="require_dpop"' in page.text
    assert create(client, require_dpop="1").status_code == 200
    (record,) = store.credentials.all(user_id=owner.id)
    assert record.require_dpop is True


# Server nonces (RFC 9449 section 8) ---------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [{"dpop_nonce": True}])
def test_proof_without_the_servers_nonce_gets_use_dpop_nonce(
    client: TestClient, credential: tuple[ClientRecord, str]
) -> None:
    key = Key()
    asked = _token(client, credential, key.proof())
    assert asked.status_code == 400
    assert asked.json()["error"] == "use_dpop_nonce"
    nonce = asked.headers["dpop-nonce"]
    answered = _token(client, credential, key.proof(nonce=nonce))
    assert answered.status_code == 200, answered.text
    assert answered.json()["token_type"] == "DPoP"


@pytest.mark.parametrize("settings_overrides", [{"dpop_nonce": True}])
def test_a_made_up_nonce_is_refused(
    client: TestClient, credential: tuple[ClientRecord, str]
) -> None:
    answer = _token(client, credential, Key().proof(nonce="made-up"))
    assert answer.json()["error"] == "use_dpop_nonce"


@pytest.mark.parametrize("settings_overrides", [{"dpop_nonce": True}])
def test_a_nonce_from_another_instance_is_accepted(
    client: TestClient,
    credential: tuple[ClientRecord, str],
    settings: Settings,
    database: Database,
) -> None:
    """Nonces are derived from a key every instance shares through the database."""
    other = create_app(settings, database=database)
    with TestClient(other, base_url=BASE) as second:
        nonce = _token(second, credential, Key().proof()).headers["dpop-nonce"]
    assert _token(client, credential, Key().proof(nonce=nonce)).status_code == 200


# The client helpers ---------------------------------------------------------------------


@pytest.mark.parametrize("live_settings_overrides", [{}, {"dpop_nonce": True}])
def test_token_auth_with_dpop_binds_and_proves(
    live_server: tuple[LiveServer, Settings, Store],
) -> None:
    import httpx

    from authserver.client import RequestsTokenAuth, TokenAuth
    from tests.support.helpers import operator_creates

    server, settings, store = live_server
    service = CredentialService(store, SecretHasher(settings), settings)
    owner = UserService(store).create(
        email="ci@example.com", display_name="", role_names=["deploy"], now=datetime.now(UTC)
    )
    record, secret = operator_creates(service, owner)
    auth = TokenAuth(server.url, record.client_id, secret, dpop=True)
    with httpx.Client(base_url=server.url, auth=auth) as http:
        listed = http.get("/api/v1/iam/personal_clients")
        assert listed.status_code == 200, listed.text
        assert listed.request.headers["authorization"].startswith("DPoP ")
        assert http.get("/api/v1/iam/personal_clients").status_code == 200  # a new proof
    token = auth.tokens.current()
    assert token is not None and "cnf" in _claims(token)
    import requests

    with requests.Session() as session:
        session.auth = RequestsTokenAuth(server.url, record.client_id, secret, dpop=True)
        answer = session.get(f"{server.url}/api/v1/iam/personal_clients")
        assert answer.status_code == 200, answer.text
        assert str(answer.request.headers["Authorization"]).startswith("DPoP ")


def test_openid_client_gets_a_bound_token_and_calls_the_api(
    live_server: tuple[LiveServer, Settings, Store],
) -> None:
    """panva's openid-client, a real DPoP client: grant, then a protected-resource call."""
    import shutil
    import subprocess
    from pathlib import Path

    from tests.support.helpers import operator_creates

    server, settings, store = live_server
    service = CredentialService(store, SecretHasher(settings), settings)
    owner = UserService(store).create(
        email="node@example.com", display_name="", role_names=["deploy"], now=datetime.now(UTC)
    )
    record, secret = operator_creates(service, owner)
    script = Path(__file__).parent / "oidc" / "dpop_client.mjs"
    node = shutil.which("node")
    assert node is not None
    result = subprocess.run(
        [node, str(script), server.url, record.client_id, secret],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == {"token_type": "dpop", "status": 200, "listed": 1}


@pytest.mark.parametrize(
    "settings_overrides",
    [{"device_clients": (DeviceClient("cone-like", "cone"),), "device_poll_interval": 1}],
)
def test_device_code_grant_binds_the_token_too(
    client: TestClient, app: Starlette, make_user: MakeUser
) -> None:
    started = client.post("/auth/v1/device_authorization", data={"client_id": "cone-like"}).json()
    user = make_user()
    approver = Caller(
        user_id=user.id, effective_roles=frozenset(user.roles), reduced=False, via="session"
    )
    app.state.services.devices.decide(
        user_code=started["user_code"], caller=approver, approve=True, now=datetime.now(UTC)
    )
    key = Key()
    answer = client.post(
        "/auth/v1/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "client_id": "cone-like",
            "device_code": started["device_code"],
        },
        headers={"DPoP": key.proof()},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "DPoP"
    assert _claims(answer.json()["access_token"])["cnf"] == {"jkt": key.thumbprint}


def test_a_proof_spent_on_one_instance_is_refused_on_another(
    client: TestClient,
    credential: tuple[ClientRecord, str],
    settings: Settings,
    database: Database,
) -> None:
    proof = Key().proof()
    assert _token(client, credential, proof).status_code == 200
    with TestClient(create_app(settings, database=database), base_url=BASE) as other:
        again = _token(other, credential, proof)
    assert again.json()["error"] == "invalid_dpop_proof"
