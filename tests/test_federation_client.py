"""The client side of federation trusts over real HTTP: ``JobTokenAuth`` exchanges a CI job's
ID token (from the environment, a file, or GitHub Actions' token service) and caches the
access token; and what ConductorOne's Go SDK sends (``tests/support/wfe_like.py``) works."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from authserver.client import JobTokenAuth, JobTokenSource, TokenError
from authserver.client.federation import DEFAULT_ENV, GITHUB_TOKEN, GITHUB_URL
from authserver.domain.credentials import Caller
from authserver.domain.federation import NewTrust
from authserver.records import TrustRecord, UserRecord
from authserver.usecases.federation import TrustService
from authserver.usecases.users import UserService
from tests.support.ci_issuer import CiIssuer, github_claims, running_issuer
from tests.support.types import LiveServerFixture

API = "/api/v1/auth/introspect"
WFE_LIKE = Path(__file__).parent / "support" / "wfe_like.py"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def issuer() -> Iterator[CiIssuer]:
    with running_issuer() as running:
        running.github_claims = github_claims()
        yield running


@pytest.fixture
def owner(live_server: LiveServerFixture) -> UserRecord:
    _, _, store = live_server
    return UserService(store).create(
        email="ci@example.com", display_name="", role_names=["deploy"], now=datetime.now(UTC)
    )


@pytest.fixture
def trust(live_server: LiveServerFixture, owner: UserRecord, issuer: CiIssuer) -> TrustRecord:
    _, settings, store = live_server
    return TrustService(store, settings).create(
        caller=Caller.operator(),
        owner_id=owner.id,
        new=NewTrust(issuer=issuer.url, condition='claims.repository == "acme/deploy"'),
        now=datetime.now(UTC),
    )


def test_job_token_from_the_environment(
    live_server: LiveServerFixture, trust: TrustRecord, owner: UserRecord, issuer: CiIssuer
) -> None:
    server, _, _ = live_server
    job = issuer.token(github_claims(), audience=server.url)
    auth = JobTokenAuth(
        server.url, trust.client_id, source=JobTokenSource(environ={DEFAULT_ENV: job})
    )
    with httpx.Client(base_url=server.url, auth=auth) as http:
        assert http.get(API).json()["userId"] == owner.id


def test_job_token_from_a_file(
    live_server: LiveServerFixture, trust: TrustRecord, issuer: CiIssuer, tmp_path: Path
) -> None:
    server, _, _ = live_server
    path = tmp_path / "token"
    path.write_text(issuer.token(github_claims(), audience=server.url) + "\n")
    auth = JobTokenAuth(
        server.url, trust.client_id, source=JobTokenSource(token_file=path, environ={})
    )
    with httpx.Client(base_url=server.url, auth=auth) as http:
        assert http.get(API).status_code == 200


def test_job_token_from_github_actions_with_the_trusts_audience(
    live_server: LiveServerFixture, trust: TrustRecord, issuer: CiIssuer
) -> None:
    server, _, _ = live_server
    environ = {GITHUB_URL: issuer.github_request_url, GITHUB_TOKEN: issuer.github_request_token}
    auth = JobTokenAuth(server.url, trust.client_id, source=JobTokenSource(environ=environ))
    with httpx.Client(base_url=server.url, auth=auth) as http:
        assert http.get(API).status_code == 200


def test_github_refusing_the_request_token_raises(
    live_server: LiveServerFixture, trust: TrustRecord, issuer: CiIssuer
) -> None:
    server, _, _ = live_server
    environ = {GITHUB_URL: issuer.github_request_url, GITHUB_TOKEN: "wrong"}
    auth = JobTokenAuth(server.url, trust.client_id, source=JobTokenSource(environ=environ))
    with httpx.Client(base_url=server.url, auth=auth) as http, pytest.raises(TokenError):
        http.get(API)


def test_the_access_token_is_cached_and_a_fresh_job_token_read_when_it_expires(
    live_server: LiveServerFixture, trust: TrustRecord, issuer: CiIssuer
) -> None:
    server, _, _ = live_server
    environ = {DEFAULT_ENV: issuer.token(github_claims(), audience=server.url)}
    clock = Clock()
    auth = JobTokenAuth(
        server.url, trust.client_id, source=JobTokenSource(environ=environ), clock=clock
    )
    exchanges: list[str] = []

    def count(request: httpx.Request) -> None:
        if request.url.path == "/auth/v1/token":
            exchanges.append(request.content.decode())

    with httpx.Client(base_url=server.url, auth=auth, event_hooks={"request": [count]}) as http:
        http.get(API)
        http.get(API)
        assert len(exchanges) == 1
        environ[DEFAULT_ENV] = issuer.token(github_claims(), audience=server.url)
        clock.now += 600
        assert http.get(API).status_code == 200
    assert len(exchanges) == 2 and exchanges[0] != exchanges[1]


def test_refused_job_token_raises_token_error(
    live_server: LiveServerFixture, trust: TrustRecord, issuer: CiIssuer
) -> None:
    server, _, _ = live_server
    job = issuer.token(github_claims(repository="evil/fork"), audience=server.url)
    auth = JobTokenAuth(
        server.url, trust.client_id, source=JobTokenSource(environ={DEFAULT_ENV: job})
    )
    with httpx.Client(base_url=server.url, auth=auth) as http, pytest.raises(TokenError) as info:
        http.get(API)
    assert info.value.error == "invalid_grant"


def test_without_any_job_token_the_error_says_where_to_put_one() -> None:
    with pytest.raises(TokenError, match="CONDUCTORONE_OIDC_TOKEN"):
        JobTokenSource(environ={}).local()


def test_what_conductorones_go_sdk_sends_is_exchanged(
    live_server: LiveServerFixture, trust: TrustRecord, owner: UserRecord, issuer: CiIssuer
) -> None:
    server, _, _ = live_server
    job = issuer.token(github_claims(), audience=server.url)
    result = subprocess.run(
        [sys.executable, str(WFE_LIKE), server.url, trust.client_id],
        env={"CONDUCTORONE_OIDC_TOKEN": job, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    assert answer["token_type"] == "Bearer"
    assert isinstance(answer["expires_in"], int) and answer["expires_in"] > 0
    assert answer["whoami"]["userId"] == owner.id


def test_what_conductorones_go_sdk_sends_with_a_refused_token_fails_as_it_expects(
    live_server: LiveServerFixture, trust: TrustRecord, issuer: CiIssuer
) -> None:
    server, _, _ = live_server
    job = issuer.token(github_claims(repository="evil/fork"), audience=server.url)
    result = subprocess.run(
        [sys.executable, str(WFE_LIKE), server.url, trust.client_id],
        env={"CONDUCTORONE_OIDC_TOKEN": job, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "token exchange failed: 400" in result.stderr
