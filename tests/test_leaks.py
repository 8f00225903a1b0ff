"""Leaked-secret reports (``POST /auth/v1/credentials/revoke``): an exact issued secret is
revoked at once, without authentication and without argon2; anything else changes nothing."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from authserver.domain.secrets import b64url, new_secret, parse_secret
from authserver.store import Store
from tests.support.helpers import app_of, services_of, token_request
from tests.support.types import MakeClient, MakeUser

PATH = "/auth/v1/credentials/revoke"
DOC = Path(__file__).resolve().parents[1] / "docs" / "secret-scanning.md"


def report(client: TestClient, *secrets: str) -> Any:
    return client.post(PATH, json={"credentials": list(secrets)})


def test_reported_secret_is_revoked_at_once(
    client: TestClient, make_user: MakeUser, make_client: MakeClient, store: Store
) -> None:
    record, secret = make_client(make_user())
    assert token_request(client, record.client_id, secret).status_code == 200
    answer = report(client, secret)
    assert (answer.status_code, answer.json()) == (202, {})
    assert store.credentials.get(id=record.id).deleted_at is not None
    assert token_request(client, record.client_id, secret).status_code == 401


def test_a_report_revokes_only_the_secrets_in_it(
    client: TestClient, make_user: MakeUser, make_client: MakeClient, store: Store
) -> None:
    owner = make_user()
    leaked, leaked_secret = make_client(owner)
    kept, _ = make_client(owner)
    report(client, "not a secret", leaked_secret, "secret-token:x:v1:junk")
    assert store.credentials.get(id=leaked.id).deleted_at is not None
    assert store.credentials.get(id=kept.id).deleted_at is None


def test_another_encoding_of_the_key_is_not_the_secret(
    client: TestClient, make_user: MakeUser, make_client: MakeClient, store: Store
) -> None:
    record, secret = make_client(make_user())
    jwk = parse_secret(secret)
    assert jwk is not None
    reordered = b64url(json.dumps(dict(reversed(list(jwk.items())))).encode())
    domain = secret.split(":")[1]
    answer = report(client, f"secret-token:{domain}:v1:{reordered}")
    assert answer.status_code == 202
    assert store.credentials.get(id=record.id).deleted_at is None


def test_a_forged_secret_naming_a_credentials_public_key_revokes_nothing(
    client: TestClient, make_user: MakeUser, make_client: MakeClient, store: Store
) -> None:
    """Someone who knows only the public key cannot have the credential revoked."""
    record, secret = make_client(make_user())
    victim = parse_secret(secret)
    other = parse_secret(new_secret(secret.split(":")[1]).secret)
    assert victim is not None and other is not None
    forged = {"kty": "OKP", "crv": "Ed25519", "x": victim["x"], "d": other["d"]}
    encoded = b64url(json.dumps(forged, separators=(",", ":")).encode())
    report(client, f"secret-token:{secret.split(':')[1]}:v1:{encoded}")
    assert store.credentials.get(id=record.id).deleted_at is None


def test_the_revocation_is_audited_as_leaked(
    client: TestClient,
    make_user: MakeUser,
    make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    record, secret = make_client(make_user())
    with caplog.at_level(logging.INFO, "authserver.audit"):
        report(client, secret)
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "authserver.audit"]
    deleted = [e for e in events if e["event"] == "credential_deleted"]
    assert [(e["credential_id"], e["reason"]) for e in deleted] == [(record.id, "leaked")]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"credentials": "secret-token:x"}, id="not-a-list"),
        pytest.param({"credentials": [1, 2]}, id="not-strings"),
        pytest.param({"credentials": ["x"] * 1001}, id="too-many"),
        pytest.param({}, id="missing"),
    ],
)
def test_a_malformed_report_is_invalid_request(client: TestClient, body: dict[str, Any]) -> None:
    answer = client.post(PATH, json=body)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"


def test_reports_are_throttled_per_source(client: TestClient) -> None:
    answers = [report(client, "nothing").status_code for _ in range(31)]
    assert answers[:30] == [202] * 30
    assert answers[30] == 429


def test_a_thousand_strings_cost_no_argon2(
    client: TestClient, make_user: MakeUser, make_client: MakeClient, store: Store
) -> None:
    record, secret = make_client(make_user())
    hasher = services_of(app_of(client)).hasher
    misses = hasher.cache_misses
    strangers = [new_secret("127.0.0.1").secret for _ in range(999)]
    assert report(client, *strangers, secret).status_code == 202
    assert hasher.cache_misses == misses
    assert store.credentials.get(id=record.id).deleted_at is not None


def _rule(language: str) -> re.Pattern[str]:
    text = DOC.read_text()
    block = re.search(rf"```{language}\n(.*?)```", text, re.S)
    assert block is not None
    found = re.search(r"""regex = '''(.+?)'''|secret: '(.+?)'""", block.group(1))
    assert found is not None
    return re.compile(found.group(1) or found.group(2))


@pytest.mark.parametrize("language", ["toml", "yaml"])
@pytest.mark.parametrize("domain", ["127.0.0.1", "auth.example.com", "conductorone.com"])
def test_the_scanner_rules_find_generated_secrets(language: str, domain: str) -> None:
    rule = _rule(language)
    for _ in range(50):
        secret = new_secret(domain).secret
        assert [m.group(0) for m in rule.finditer(f'CI_SECRET="{secret}"\n')] == [secret]


@pytest.mark.parametrize("language", ["toml", "yaml"])
def test_the_scanner_rules_ignore_what_is_no_secret(language: str) -> None:
    rule = _rule(language)
    assert rule.search("secret-token:auth.example.com:v1:too-short") is None
    assert rule.search("client_id = brave-otter-12345@auth.example.com/pcc") is None
