"""Signing keys: generated on first start, rotated, published until their tokens expire."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

import jwt
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from authserver.config import Settings
from authserver.runtime.tasks import refresh_keys
from authserver.security import access_tokens as tokens
from authserver.security import keys
from authserver.store import Store
from authserver.store.database import Database
from authserver.usecases.keys import PUBLISH_MARGIN, KeyService
from tests.support.helpers import now, services_of, token_request
from tests.support.types import MakeClient, MakeUser


def kids(client: TestClient) -> list[str]:
    return [k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]]


def test_first_start_creates_one_published_key(client: TestClient, store: Store) -> None:
    records = store.keys.all()
    assert len(records) == 1
    assert kids(client) == [records[0].kid]


def test_jwks_publishes_only_public_members(client: TestClient) -> None:
    key = client.get("/.well-known/jwks.json").json()["keys"][0]
    assert key["kty"] == "EC" and key["crv"] == "P-256"
    assert key["use"] == "sig" and key["alg"] == "ES256"
    assert "d" not in key


def test_restart_reuses_the_stored_key(
    app: Starlette, store: Store, settings: Settings, database: Database, peer: str
) -> None:
    from authserver.app import create_app

    with TestClient(app, client=(peer, 1)) as first:
        before = kids(first)
    with TestClient(create_app(settings, database=database), client=(peer, 1)) as second:
        assert kids(second) == before


def test_rotation_signs_with_new_key_and_keeps_old_published(
    client: TestClient,
    app: Starlette,
    store: Store,
    settings: Settings,
    make_user: MakeUser,
    make_client: MakeClient,
) -> None:
    record, secret = make_client(make_user())
    old_kid = jwt.get_unverified_header(
        token_request(client, record.client_id, secret).json()["access_token"]
    )["kid"]
    new = KeyService(store, settings).rotate(now=now())
    assert client.portal is not None
    client.portal.call(refresh_keys, app.state.services)  # what the 1 s refresher does
    token = token_request(client, record.client_id, secret).json()["access_token"]
    assert jwt.get_unverified_header(token)["kid"] == new.kid
    assert set(kids(client)) == {old_kid, new.kid}


def test_rotation_is_picked_up_without_restart(
    client: TestClient, store: Store, settings: Settings
) -> None:
    new = KeyService(store, settings).rotate(now=now())
    deadline = time.monotonic() + 3
    while new.kid not in kids(client) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert new.kid in kids(client)


@pytest.mark.parametrize("settings_overrides", [{"access_token_ttl": 1}])
def test_retired_key_is_dropped_after_its_tokens_expire(
    client: TestClient, app: Starlette, store: Store, settings: Settings
) -> None:
    old = store.keys.all()[0].kid
    # Retired long enough ago: one TTL plus the publication margin have passed.
    KeyService(store, settings).rotate(now=now() - PUBLISH_MARGIN - timedelta(seconds=2))
    assert client.portal is not None
    client.portal.call(refresh_keys, app.state.services)
    assert old not in kids(client)


def test_retired_key_stays_published_for_ttl_plus_margin(
    client: TestClient, store: Store, settings: Settings
) -> None:
    retired_at = now()
    KeyService(store, settings).rotate(now=retired_at)
    old = next(k for k in store.keys.all() if k.retired_at is not None)
    expected = retired_at + timedelta(seconds=settings.access_token_ttl) + PUBLISH_MARGIN
    assert old.publish_until is not None
    assert abs((old.publish_until - expected).total_seconds()) < 0.01


@pytest.mark.parametrize(
    ("settings_overrides", "kty"),
    [
        pytest.param({"signing_alg": "EdDSA"}, "OKP", id="EdDSA"),
        pytest.param({"signing_alg": "RS256"}, "RSA", id="RS256"),
        pytest.param({"signing_alg": "ES256"}, "EC", id="ES256"),
    ],
)
def test_signing_alg_is_configurable(
    client: TestClient, settings: Settings, make_user: MakeUser, make_client: MakeClient, kty: str
) -> None:
    record, secret = make_client(make_user())
    token = token_request(client, record.client_id, secret).json()["access_token"]
    jwks = jwt.PyJWKSet.from_dict(client.get("/.well-known/jwks.json").json())
    header = jwt.get_unverified_header(token)
    assert header["alg"] == settings.signing_alg
    key = next(k for k in jwks.keys if k.key_id == header["kid"])
    assert key.key_type == kty
    claims = jwt.decode(token, key.key, algorithms=[settings.signing_alg], audience=settings.issuer)
    assert claims["client_id"] == record.client_id


def test_thumbprint_matches_rfc7638_example() -> None:
    # RFC 7638 section 3.1.
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
    }
    assert keys.thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_remembered_token_is_refused_once_its_key_is_unpublished(
    client: TestClient,
    store: Store,
    settings: Settings,
    make_user: MakeUser,
    make_client: MakeClient,
) -> None:
    services = services_of(client.app)
    record, secret = make_client(make_user())
    token = token_request(client, record.client_id, secret).json()["access_token"]
    assert tokens.verify_signature(token, keyring=services.keyring, settings=settings) is not None
    gone = [replace(r, retired_at=now(), publish_until=now()) for r in store.keys.all()]
    services.keyring.load(gone, alg=settings.signing_alg, now=now())
    assert tokens.verify_signature(token, keyring=services.keyring, settings=settings) is None


def test_remembered_token_is_refused_after_it_expires(
    client: TestClient,
    settings: Settings,
    make_user: MakeUser,
    make_client: MakeClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = services_of(client.app)
    record, secret = make_client(make_user())
    token = token_request(client, record.client_id, secret).json()["access_token"]
    claims = tokens.verify_signature(token, keyring=services.keyring, settings=settings)
    assert claims is not None
    monkeypatch.setattr(
        "authserver.security.access_tokens.time.time", lambda: claims["exp"] + tokens.CLOCK_SKEW + 1
    )
    assert tokens.verify_signature(token, keyring=services.keyring, settings=settings) is None


def test_altered_token_is_not_taken_for_a_remembered_one(
    client: TestClient, settings: Settings, make_user: MakeUser, make_client: MakeClient
) -> None:
    services = services_of(client.app)
    record, secret = make_client(make_user())
    token = token_request(client, record.client_id, secret).json()["access_token"]
    assert tokens.verify_signature(token, keyring=services.keyring, settings=settings) is not None
    altered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert tokens.verify_signature(altered, keyring=services.keyring, settings=settings) is None
