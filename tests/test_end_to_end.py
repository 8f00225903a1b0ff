"""Real HTTP through uvicorn, with real OAuth client libraries and PyJWT's JWKS client."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from oauthlib.oauth2 import BackendApplicationClient
from requests_oauthlib import OAuth2Session

from authserver.config import Settings
from authserver.records import ClientRecord
from authserver.security.argon2 import SecretHasher
from authserver.store import Store
from authserver.store.database import Database, migrate
from authserver.usecases.credentials import CredentialService
from authserver.usecases.keys import KeyService
from authserver.usecases.users import UserService
from tests.support.helpers import operator_creates, token_request
from tests.support.servers import ServerProcess
from tests.support.types import LiveServerFixture


def new_credential(
    settings: Settings, store: Store, hasher: SecretHasher, cidrs: tuple[str, ...] = ()
) -> tuple[ClientRecord, str]:
    owner = UserService(store).create(
        email="e2e@example.com",
        display_name="E2E",
        role_names=["deploy", "read"],
        now=datetime.now(UTC),
    )
    service = CredentialService(store, hasher, settings)
    return operator_creates(service, owner, cidrs=cidrs, name="e2e")


def test_token_verifies_with_pyjwkclient(
    live_server: LiveServerFixture, hasher: SecretHasher
) -> None:
    server, settings, store = live_server
    record, secret = new_credential(settings, store, hasher)
    with httpx.Client(base_url=server.url) as http:
        token = token_request(http, record.client_id, secret).json()["access_token"]
    signing_key = jwt.PyJWKClient(f"{server.url}/.well-known/jwks.json").get_signing_key_from_jwt(
        token
    )
    claims = jwt.decode(
        token,
        signing_key.key,
        algorithms=["ES256"],
        audience=settings.issuer,
        issuer=settings.issuer,
    )
    assert claims["client_id"] == record.client_id
    assert claims["roles"] == ["deploy", "read"]


def test_old_token_verifies_after_rotation(
    live_server: LiveServerFixture, hasher: SecretHasher
) -> None:

    server, settings, store = live_server
    record, secret = new_credential(settings, store, hasher)
    with httpx.Client(base_url=server.url) as http:
        old_token = token_request(http, record.client_id, secret).json()["access_token"]
        new = KeyService(store, settings).rotate(now=datetime.now(UTC))
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            new_token = token_request(http, record.client_id, secret).json()["access_token"]
            if jwt.get_unverified_header(new_token)["kid"] == new.kid:
                break
            time.sleep(0.1)
    jwks = jwt.PyJWKClient(f"{server.url}/.well-known/jwks.json", cache_keys=False)
    for token in (old_token, new_token):
        key = jwks.get_signing_key_from_jwt(token)
        assert jwt.decode(token, key.key, algorithms=["ES256"], audience=settings.issuer)["sub"]
    assert (
        jwt.get_unverified_header(old_token)["kid"] != jwt.get_unverified_header(new_token)["kid"]
    )


def test_metadata_advertises_live_endpoints(live_server: LiveServerFixture) -> None:
    server, settings, _ = live_server
    metadata = httpx.get(f"{server.url}/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == server.url
    assert metadata["token_endpoint"] == f"{server.url}/auth/v1/token"
    assert httpx.get(metadata["jwks_uri"]).json()["keys"]
    assert metadata["grant_types_supported"] == [
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    ]
    assert metadata["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ]
    assert metadata["token_endpoint_auth_signing_alg_values_supported"] == ["EdDSA", "Ed25519"]
    assert metadata["registration_endpoint"] == f"{server.url}/auth/v1/register"
    assert metadata["introspection_endpoint"] == f"{server.url}/auth/v1/introspect"
    assert metadata["revocation_endpoint"] == f"{server.url}/auth/v1/revoke"


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_oauth2client_fetches_token(
    live_server: LiveServerFixture,
    hasher: SecretHasher,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
) -> None:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    server, settings, store = live_server
    record, secret = new_credential(settings, store, hasher)
    with OAuth2Client(
        record.client_id, secret, token_endpoint_auth_method=method, scope="read"
    ) as oauth:
        token = oauth.fetch_token(f"{server.url}/auth/v1/token", grant_type="client_credentials")
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "read"


def test_requests_oauthlib_backend_application_client(
    live_server: LiveServerFixture, hasher: SecretHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    server, settings, store = live_server
    record, secret = new_credential(settings, store, hasher)
    session = OAuth2Session(client=BackendApplicationClient(client_id=record.client_id))
    token = session.fetch_token(
        token_url=f"{server.url}/auth/v1/token", client_id=record.client_id, client_secret=secret
    )
    assert (
        jwt.decode(token["access_token"], options={"verify_signature": False})["client_id"]
        == record.client_id
    )


def test_loopback_peer_is_matched_against_cidr(
    live_server: LiveServerFixture, hasher: SecretHasher
) -> None:
    server, settings, store = live_server
    record, secret = new_credential(settings, store, hasher, cidrs=("127.0.0.0/8",))
    with httpx.Client(base_url=server.url) as http:
        assert token_request(http, record.client_id, secret).status_code == 200


def test_sigterm_flushes_last_used_at(
    tmp_path: Path, database_url: str, hasher: SecretHasher
) -> None:
    """Mint through a real ``authserver serve`` process, SIGTERM it at once, find lastUsedAt stored."""
    from authserver.config import load_settings

    server = ServerProcess(database_url, tmp_path, AUTHSERVER_LAST_USED_FLUSH_INTERVAL="1")
    settings = load_settings(environ=server.env)
    database = Database(settings.database_url)
    migrate(database)
    store = Store(database)
    record, secret = new_credential(settings, store, hasher)
    with server:
        response = httpx.post(
            f"{server.url}/auth/v1/token",
            data={"grant_type": "client_credentials"},
            auth=(record.client_id, secret),
        )
        assert response.status_code == 200
        # uvicorn re-raises SIGTERM after its graceful shutdown, so -15 is a clean exit.
        assert server.terminate() in (0, -signal.SIGTERM)
    assert store.credentials.get(id=record.id).last_used_at is not None
    database.dispose()


def test_management_loop_over_real_http(
    live_server: LiveServerFixture, hasher: SecretHasher
) -> None:
    """create → token → list → update → delete → token refused, all through uvicorn."""
    server, settings, store = live_server
    record, secret = new_credential(settings, store, hasher)
    with httpx.Client(base_url=server.url) as http:
        bearer = {
            "authorization": f"Bearer {token_request(http, record.client_id, secret).json()['access_token']}"
        }
        created = http.post(
            "/api/v1/iam/personal_clients",
            json={"displayName": "ci", "expires": "86400s"},
            headers=bearer,
        ).json()
        new_id, new_client_id, new_secret = (
            created["client"]["id"],
            created["client"]["clientId"],
            created["clientSecret"],
        )
        assert token_request(http, new_client_id, new_secret).status_code == 200
        listed = http.get("/api/v1/iam/personal_clients", headers=bearer).json()["list"]
        assert new_id in [c["id"] for c in listed]
        updated = http.post(
            f"/api/v1/iam/personal_clients/{new_id}",
            json={"client": {"displayName": "ci-renamed"}, "updateMask": "displayName"},
            headers=bearer,
        ).json()["client"]
        assert updated["displayName"] == "ci-renamed"
        assert http.delete(f"/api/v1/iam/personal_clients/{new_id}", headers=bearer).json() == {}
        assert token_request(http, new_client_id, new_secret).status_code == 401


def test_register_then_authlib_private_key_jwt_over_real_http(
    live_server: LiveServerFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 7591 registration, then Authlib's OAuth2Client authenticates with PrivateKeyJWT."""
    from authlib.oauth2.auth import ClientAuth
    from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
    from joserfc.jwk import OKPKey

    from authserver.client import private_jwk

    class ShortLivedPrivateKeyJWT(PrivateKeyJWT):
        """Authlib signs one-hour assertions by default; the server accepts at most five minutes."""

        def sign(self, auth: ClientAuth, token_endpoint: str) -> str:
            assertion: str = private_key_jwt_sign(
                auth.client_secret,
                client_id=auth.client_id,
                token_endpoint=token_endpoint,
                alg=self.alg,
                expires_in=60,
            )
            return assertion

    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    server, settings, store = live_server
    user = UserService(store).create(
        email="reg@example.com", display_name="", role_names=["deploy"], now=datetime.now(UTC)
    )
    initial, _ = CredentialService(store, SecretHasher(settings), settings).mint_registration_token(
        user_ref=user.id, ttl=timedelta(minutes=5), now=datetime.now(UTC)
    )
    registered = httpx.post(
        f"{server.url}/auth/v1/register",
        json={"client_name": "authlib", "token_endpoint_auth_method": "private_key_jwt"},
        headers={"authorization": f"Bearer {initial}"},
    ).json()
    token_url = f"{server.url}/auth/v1/token"
    jwk: dict[str, str | list[str]] = {**private_jwk(registered["client_secret"])}
    key = OKPKey.import_key(jwk)
    with OAuth2Client(
        registered["client_id"], key, token_endpoint_auth_method="private_key_jwt"
    ) as oauth:
        oauth.register_client_auth_method(ShortLivedPrivateKeyJWT(token_url, alg="Ed25519"))
        first = oauth.fetch_token(token_url, grant_type="client_credentials")
        second = oauth.fetch_token(token_url, grant_type="client_credentials")
    assert first["scope"] == "deploy"
    assert first["access_token"] != second["access_token"]


def test_forwarded_for_from_loopback_is_not_trusted_by_serve(
    tmp_path: Path, database_url: str, hasher: SecretHasher
) -> None:
    """``authserver serve`` must not let uvicorn rewrite the peer from X-Forwarded-For."""
    from authserver.config import load_settings

    server = ServerProcess(database_url, tmp_path)
    settings = load_settings(environ=server.env)
    database = Database(settings.database_url)
    migrate(database)
    record, secret = new_credential(settings, Store(database), hasher, cidrs=("10.0.0.0/8",))
    with server:
        response = httpx.post(
            f"{server.url}/auth/v1/token",
            data={"grant_type": "client_credentials"},
            auth=(record.client_id, secret),
            headers={"X-Forwarded-For": "10.1.2.3"},
        )
    assert response.status_code == 401
    database.dispose()


def test_sigkill_right_after_a_token_loses_no_last_used(
    tmp_path: Path, database_url: str, hasher: Any
) -> None:
    """Killed before its flush, the process's journal holds the use; the next start writes it."""
    from authserver.config import load_settings

    server = ServerProcess(database_url, tmp_path, AUTHSERVER_LAST_USED_FLUSH_INTERVAL="1")
    settings = load_settings(environ=server.env)
    database = Database(settings.database_url)
    migrate(database)
    store = Store(database)
    record, secret = new_credential(settings, store, hasher)
    with server:
        before = datetime.now(UTC)
        response = httpx.post(
            f"{server.url}/auth/v1/token",
            data={"grant_type": "client_credentials"},
            auth=(record.client_id, secret),
        )
        assert response.status_code == 200
        server.kill()  # SIGKILL, well within the 1 s flush interval
    assert store.credentials.get(id=record.id).last_used_at is None
    with ServerProcess(database_url, tmp_path):
        stored = store.credentials.get(id=record.id).last_used_at
    assert stored is not None and stored >= before
    journals = settings.last_used_journal
    journals = journals if journals.is_absolute() else tmp_path / journals  # the servers' cwd
    assert list(journals.glob("*.journal")) == []
    database.dispose()


def test_journal_of_a_live_process_is_not_replayed(tmp_path: Path) -> None:
    from authserver.store.last_used import Journal, replay

    live = Journal(tmp_path)
    live.append("cred-live", datetime.now(UTC))
    dead = tmp_path / "12345-00000000.journal"
    dead.write_text(f"cred-dead {datetime.now(UTC).isoformat()}\ncred-cut 2026-12-0")
    batch, files = replay(tmp_path)
    assert list(batch.used) == ["cred-dead"]  # the cut-off last line is skipped
    assert files == [dead]


def test_sigkill_loses_at_most_the_last_second_of_last_used(
    tmp_path: Path, database_url: str, hasher: SecretHasher
) -> None:
    from authserver.config import load_settings

    server = ServerProcess(database_url, tmp_path)
    settings = load_settings(environ=server.env)
    database = Database(settings.database_url)
    migrate(database)
    store = Store(database)
    record, secret = new_credential(settings, store, hasher)
    with server:
        before = datetime.now(UTC)
        response = httpx.post(
            f"{server.url}/auth/v1/token",
            data={"grant_type": "client_credentials"},
            auth=(record.client_id, secret),
        )
        assert response.status_code == 200
        time.sleep(1.1)  # more than the flush interval (0.5 s) and the 1 s bound
        server.kill()
    stored = store.credentials.get(id=record.id).last_used_at
    assert stored is not None and stored >= before
    database.dispose()
