"""POST /auth/v1/token: client_credentials with every PersonalClient rule."""

from __future__ import annotations

import base64
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from authserver.config import Settings
from authserver.store import Store
from authserver.store.database import Database
from authserver.usecases.users import UserService
from tests.support.helpers import now, token_request, within
from tests.support.types import MakeCaller, MakeClient, MakeUser, Response

INVALID_CLIENT = {"error": "invalid_client", "error_description": "Client authentication failed."}


def decode(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def assert_invalid_client(response: Response) -> None:
    assert response.status_code == 401
    assert response.json() == INVALID_CLIENT
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert response.headers["cache-control"] == "no-store"


def test_basic_auth_issues_bearer_token(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    response = token_request(client, record.client_id, secret)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["scope"] == "billing:read deploy"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


def test_post_auth_issues_token(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    response = client.post(
        "/auth/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_id": record.client_id,
            "client_secret": secret,
        },
    )
    assert response.status_code == 200
    assert decode(response.json()["access_token"])["client_id"] == record.client_id


def test_token_claims_follow_rfc9068(
    client: TestClient, make_user: MakeUser, make_client: MakeClient, settings: Settings
) -> None:
    owner = make_user()
    record, secret = make_client(owner)
    token = token_request(client, record.client_id, secret).json()["access_token"]
    header = jwt.get_unverified_header(token)
    claims = decode(token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    assert header["kid"]
    assert claims["iss"] == settings.issuer
    assert claims["sub"] == owner.id
    assert claims["aud"] == settings.issuer
    assert claims["client_id"] == record.client_id
    assert claims["exp"] - claims["iat"] == 600
    assert abs(claims["iat"] - time.time()) < 5
    assert claims["scope"] == "billing:read deploy"
    assert claims["roles"] == ["billing:read", "deploy"]
    assert len(claims["jti"]) >= 16


def test_each_token_has_a_fresh_jti(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    first = decode(token_request(client, record.client_id, secret).json()["access_token"])
    second = decode(token_request(client, record.client_id, secret).json()["access_token"])
    assert first["jti"] != second["jti"]


@pytest.mark.parametrize(
    "settings_overrides", [{"access_token_ttl": 120, "audience": "https://api.example"}]
)
def test_ttl_and_audience_come_from_config(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    response = token_request(client, record.client_id, secret)
    claims = decode(response.json()["access_token"])
    assert response.json()["expires_in"] == 120
    assert claims["exp"] - claims["iat"] == 120
    assert claims["aud"] == "https://api.example"


def test_wrong_secret_is_invalid_client(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, _secret = make_client(make_user())
    assert_invalid_client(token_request(client, record.client_id, "secret-token:nope"))


def test_unknown_client_looks_like_wrong_secret(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, _ = make_client(make_user())
    wrong = token_request(client, record.client_id, "x")
    unknown = token_request(client, "calm-otter-12345@127.0.0.1/pcc", "x")
    assert_invalid_client(unknown)
    assert unknown.content == wrong.content
    assert unknown.headers["www-authenticate"] == wrong.headers["www-authenticate"]


def test_another_credentials_secret_is_refused(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    owner = make_user()
    first, _ = make_client(owner)
    _, other_secret = make_client(owner)
    assert_invalid_client(token_request(client, first.client_id, other_secret))


def test_deleted_credential_is_refused(
    client: TestClient, store: Store, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    assert token_request(client, record.client_id, secret).status_code == 200
    store.credentials.delete(id=record.id, now=now())
    # Deleted through the store directly (as another instance would): refused within 1 s.
    within(1.0, lambda: token_request(client, record.client_id, secret).status_code == 401)
    assert_invalid_client(token_request(client, record.client_id, secret))


def test_credential_expiring_during_server_life_stops_working(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user(), expires_in=timedelta(seconds=1.5))
    assert token_request(client, record.client_id, secret).status_code == 200
    time.sleep(1.6)
    assert_invalid_client(token_request(client, record.client_id, secret))


def test_token_never_outlives_credential(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user(), expires_in=timedelta(seconds=100))
    response = token_request(client, record.client_id, secret)
    claims = decode(response.json()["access_token"])
    assert record.expires_time is not None
    assert claims["exp"] <= record.expires_time.timestamp()
    assert 95 <= response.json()["expires_in"] <= 100


def test_disabled_owner_is_refused(
    client: TestClient, store: Store, make_user: MakeUser, make_client: MakeClient
) -> None:
    owner = make_user()
    record, secret = make_client(owner)
    UserService(store).update(ref=owner.id, role_names=None, disabled=True, now=now())
    within(1.0, lambda: token_request(client, record.client_id, secret).status_code == 401)
    assert_invalid_client(token_request(client, record.client_id, secret))


def test_reenabled_owner_can_mint_again(
    client: TestClient, store: Store, make_user: MakeUser, make_client: MakeClient
) -> None:
    owner = make_user()
    record, secret = make_client(owner)
    UserService(store).update(ref=owner.id, role_names=None, disabled=True, now=now())
    UserService(store).update(ref=owner.id, role_names=None, disabled=False, now=now())
    assert token_request(client, record.client_id, secret).status_code == 200


def test_omitted_scope_grants_all_effective_roles_of_reduced_credential(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user(roles=("a", "b", "c")), scoped=("a", "c"))
    body = token_request(client, record.client_id, secret).json()
    assert body["scope"] == "a c"
    assert decode(body["access_token"])["roles"] == ["a", "c"]


def test_scope_subset_is_granted(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user(roles=("a", "b", "c")))
    body = token_request(client, record.client_id, secret, scope="b").json()
    assert body["scope"] == "b"
    assert decode(body["access_token"])["roles"] == ["b"]


def test_scope_beyond_scoped_roles_is_invalid_scope(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user(roles=("a", "b")), scoped=("a",))
    response = token_request(client, record.client_id, secret, scope="a b")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_scope_of_role_owner_lost_is_invalid_scope(
    client: TestClient, store: Store, make_user: MakeUser, make_client: MakeClient
) -> None:
    owner = make_user(roles=("a", "b"))
    record, secret = make_client(owner)
    UserService(store).update(ref=owner.id, role_names=["a"], disabled=None, now=now())
    within(
        1.0, lambda: token_request(client, record.client_id, secret, scope="b").status_code == 400
    )
    response = token_request(client, record.client_id, secret, scope="b")
    assert response.json()["error"] == "invalid_scope"


def test_malformed_scope_is_invalid_scope(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    response = token_request(client, record.client_id, secret, scope='deploy  "x"')
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_last_used_at_is_recorded(
    client: TestClient, store: Store, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    before = now()
    assert token_request(client, record.client_id, secret).status_code == 200
    deadline = time.monotonic() + 2
    while store.credentials.get(id=record.id).last_used_at is None and time.monotonic() < deadline:
        time.sleep(0.05)
    last_used = store.credentials.get(id=record.id).last_used_at
    assert last_used is not None and last_used >= before


@pytest.mark.parametrize("settings_overrides", [{"last_used_flush_interval": 1.0}])
def test_last_used_at_is_flushed_on_shutdown(
    app: Starlette, store: Store, make_user: MakeUser, make_client: MakeClient, peer: str
) -> None:
    record, secret = make_client(make_user())
    with TestClient(app, client=(peer, 1)) as client:
        assert token_request(client, record.client_id, secret).status_code == 200
        assert store.credentials.get(id=record.id).last_used_at is None
    assert store.credentials.get(id=record.id).last_used_at is not None


def test_failed_authentication_does_not_touch_last_used(
    client: TestClient, store: Store, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, _ = make_client(make_user())
    token_request(client, record.client_id, "wrong")
    time.sleep(0.7)
    assert store.credentials.get(id=record.id).last_used_at is None


# Protocol errors (RFC 6749 section 5.2) -------------------------------------


def test_missing_grant_type_is_invalid_request(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    response = client.post("/auth/v1/token", data={"scope": "a"}, auth=(record.client_id, secret))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_unknown_grant_type_is_unsupported(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    response = client.post(
        "/auth/v1/token", data={"grant_type": "password"}, auth=(record.client_id, secret)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_json_body_is_invalid_request(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    response = client.post(
        "/auth/v1/token", json={"grant_type": "client_credentials"}, auth=(record.client_id, secret)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_repeated_parameter_is_invalid_request(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    response = client.post(
        "/auth/v1/token",
        content=b"grant_type=client_credentials&scope=a&scope=b",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=(record.client_id, secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_bad_percent_encoding_is_invalid_request(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    response = client.post(
        "/auth/v1/token",
        content=b"grant_type=client_credentials&scope=%zz",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=(record.client_id, secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_invalid_utf8_is_invalid_request(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    response = client.post(
        "/auth/v1/token",
        content=b"grant_type=client_credentials&scope=%ff%fe",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=(record.client_id, secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Basic !!!notbase64", id="not-base64"),
        pytest.param("Basic " + base64.b64encode(b"no-colon").decode(), id="no-colon"),
        pytest.param("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), id="not-utf8"),
        pytest.param("Basic " + base64.b64encode(b"id%ff:x").decode(), id="bad-percent"),
        pytest.param("Basic", id="empty"),
        pytest.param("Bearer abc", id="other-scheme"),
    ],
)
def test_malformed_authorization_is_invalid_client(client: TestClient, authorization: str) -> None:
    response = client.post(
        "/auth/v1/token",
        data={"grant_type": "client_credentials"},
        headers={"authorization": authorization},
    )
    assert_invalid_client(response)


def test_no_credentials_is_invalid_client(client: TestClient) -> None:
    assert_invalid_client(client.post("/auth/v1/token", data={"grant_type": "client_credentials"}))


def test_two_auth_methods_at_once_is_invalid_request(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    response = client.post(
        "/auth/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_id": record.client_id,
            "client_secret": secret,
        },
        auth=(record.client_id, secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_oversized_body_is_413(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    response = token_request(client, record.client_id, secret, scope="a" * 70_000)
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"


def test_get_on_token_endpoint_is_405(client: TestClient) -> None:
    response = client.get("/auth/v1/token")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"] == "invalid_request"


def test_metrics_count_token_outcomes(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    token_request(client, record.client_id, secret)
    token_request(client, record.client_id, "wrong")
    text = client.get("/metrics").text
    assert 'authserver_token_requests_total{outcome="issued"} 1.0' in text
    assert 'authserver_token_requests_total{outcome="invalid_client"} 1.0' in text
    assert "authserver_token_request_seconds_bucket" in text
    assert 'authserver_secret_cache_lookups_total{result="miss"}' in text


@pytest.mark.parametrize("backend", ["sqlite"])  # PostgreSQL outages: test_multi_instance.py
def test_unreachable_database_is_503_temporarily_unavailable(
    client: TestClient,
    database: Database,
    make_user: MakeUser,
    make_client: MakeClient,
    tmp_path: Path,
) -> None:
    record, secret = make_client(make_user())
    (tmp_path / "authserver.db").rename(tmp_path / "moved.db")
    (tmp_path / "authserver.db").mkdir()  # a folder where the file was: SQLite cannot open it
    database.engine.dispose()
    response = token_request(client, record.client_id, secret)
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers["retry-after"] == "1"


def test_invalid_scope_is_counted_by_its_error(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user(roles=("a",)))
    token_request(client, record.client_id, secret, scope="b")
    assert (
        'authserver_token_requests_total{outcome="invalid_scope"} 1.0'
        in client.get("/metrics").text
    )


def test_nul_in_basic_client_id_is_invalid_client(client: TestClient) -> None:
    header = "Basic " + base64.b64encode(b"abc%00:xyz").decode()
    response = client.post(
        "/auth/v1/token",
        data={"grant_type": "client_credentials"},
        headers={"authorization": header},
    )
    assert_invalid_client(response)


def test_refused_credential_never_takes_the_cached_fast_path(
    app: Starlette, make_user: MakeUser, make_client: MakeClient
) -> None:
    """A right secret for a refused credential costs argon2 like a wrong one: no timing oracle."""
    record, secret = make_client(make_user(), cidrs=("203.0.113.0/24",))
    hasher = app.state.services.hasher
    with TestClient(app, client=("203.0.113.7", 1)) as inside:
        assert token_request(inside, record.client_id, secret).status_code == 200
        assert token_request(inside, record.client_id, secret).status_code == 200
        hits = hasher.cache_hits
    with TestClient(app, client=("198.51.100.1", 1)) as outside:
        assert_invalid_client(token_request(outside, record.client_id, secret))
    assert hasher.cache_hits == hits


def test_api_delete_applies_at_once_despite_state_cache(
    client: TestClient, caller: MakeCaller
) -> None:
    _, _, _, token = caller()
    body = client.post(
        "/api/v1/iam/personal_clients", json={}, headers={"authorization": f"Bearer {token}"}
    ).json()
    target, secret = body["client"], body["clientSecret"]
    assert token_request(client, target["clientId"], secret).status_code == 200  # now cached
    client.delete(
        f"/api/v1/iam/personal_clients/{target['id']}", headers={"authorization": f"Bearer {token}"}
    )
    assert_invalid_client(token_request(client, target["clientId"], secret))


@pytest.mark.parametrize("settings_overrides", [{"auth_cache_ttl": 0.0}])
def test_zero_cache_ttl_reads_every_change_at_once(
    client: TestClient, store: Store, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    assert token_request(client, record.client_id, secret).status_code == 200
    store.credentials.delete(id=record.id, now=now())
    assert_invalid_client(token_request(client, record.client_id, secret))


def test_deleted_users_credential_stops_authenticating_and_sessions_end(
    client: TestClient, make_user: Any, make_client: Any, store: Store
) -> None:
    user = make_user()
    record, secret = make_client(user)
    assert token_request(client, record.client_id, secret).status_code == 200
    session = client.app.state.services.people.start_session(  # type: ignore[attr-defined]
        user_id=user.id, method="password", now=now()
    )
    deleted = UserService(store).delete(ref=user.email, now=now())
    assert deleted.client_ids == (record.client_id,) and deleted.sessions == 1
    # Within a second on every instance (the cache's lifetime and the feed); slack for load.
    within(3.0, lambda: token_request(client, record.client_id, secret).status_code == 401)
    people = client.app.state.services.people  # type: ignore[attr-defined]
    assert people.current(session_id=session.session_id, now=now()) is None
