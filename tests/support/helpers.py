"""Helpers many tests use: the tests' constants, the clock, tokens, credentials, polling."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.testclient import TestClient

from authserver.domain.credentials import AuthState, Caller, NewCredential
from authserver.records import ClientRecord, UserRecord
from authserver.runtime.services import Services
from authserver.usecases.credentials import CredentialService
from tests.support.types import Response

PEER = "203.0.113.7"
# What must never reach a log line: secrets, JWTs (access tokens, assertions), argon2 hashes,
# session ids, invitation tokens, CSRF tokens, pending sign-in cookies, and the tests' passwords
# (all built on PASSWORD).
PASSWORD = "violet-harbour-kettle-42"


def now() -> datetime:
    return datetime.now(UTC)


def operator_creates(
    service: CredentialService,
    owner: UserRecord,
    *,
    cidrs: tuple[str, ...] = (),
    scoped: tuple[str, ...] = (),
    expires_in: timedelta | None = None,
    name: str = "test",
) -> tuple[ClientRecord, str]:
    """A credential created by the operator, as ``authserver clients create`` does."""
    new = NewCredential(
        display_name=name, allow_source_cidr=cidrs, scoped_roles=scoped, expires_in=expires_in
    )
    created = service.create(caller=Caller.operator(), owner_id=owner.id, new=new, now=now())
    return created.record, created.secret


def token_request(
    client: TestClient | httpx.Client,
    client_id: str,
    secret: str,
    **form: str,
) -> Response:
    return client.post(
        "/auth/v1/token",
        data={"grant_type": "client_credentials", **form},
        auth=(client_id, secret),
    )


def mint(client: TestClient | httpx.Client, client_id: str, secret: str, **form: str) -> str:
    response = token_request(client, client_id, secret, **form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def auth_state(**changes: Any) -> AuthState:
    """A credential's authentication state for unit tests: live, unlocked, owner role "a"."""
    base: dict[str, Any] = dict(
        id="1",
        client_id="c",
        user_id="u",
        secret_hash="h",
        allow_source_cidr=(),
        scoped_roles=frozenset(),
        expires_time=None,
        deleted=False,
        owner_roles=frozenset({"a"}),
        owner_disabled=False,
    )
    return AuthState(**{**base, **changes})


def within(seconds: float, condition: Callable[[], bool]) -> float:
    """Poll ``condition`` until true; returns the time it took, fails past ``seconds``."""
    started = time.monotonic()
    while not condition():
        elapsed = time.monotonic() - started
        assert elapsed <= seconds, f"condition still false after {elapsed:.2f}s"
        time.sleep(0.02)
    return time.monotonic() - started


def services_of(app: object) -> Services:
    """The service container of an app ``create_app`` built.

    ``TestClient.app`` and uvicorn's ``config.app`` are typed as any ASGI application.
    """
    assert isinstance(app, Starlette), app
    services: Services = app.state.services
    return services


def app_of(client: TestClient) -> Starlette:
    """The app a ``TestClient`` drives (typed there as any ASGI application)."""
    assert isinstance(client.app, Starlette), client.app
    return client.app
