"""The types of the fixtures tests/conftest.py lends to every test, named once.

Tests annotate a fixture parameter with these (``make_user: MakeUser``) so that mypy checks
each call against the fixture's real signature.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

import httpx
import httpx2

from authserver.config import Settings
from authserver.records import ClientRecord, UserRecord
from authserver.store import Store
from tests.support.live import LiveServer

# A response from either HTTP client the tests use: starlette's TestClient runs on httpx2,
# the live-server tests use httpx.
Response = httpx.Response | httpx2.Response


class MakeUser(Protocol):
    """``make_user(email=None, roles=(...))``: a new user in the test's store."""

    def __call__(
        self, email: str | None = None, roles: tuple[str, ...] = ("billing:read", "deploy")
    ) -> UserRecord: ...


class MakeClient(Protocol):
    """``make_client(owner, ...)``: a credential the operator created, and its secret."""

    def __call__(
        self,
        owner: UserRecord,
        *,
        cidrs: tuple[str, ...] = (),
        scoped: tuple[str, ...] = (),
        expires_in: timedelta | None = None,
    ) -> tuple[ClientRecord, str]: ...


# What ``caller()`` returns: (user, credential, secret, access token).
CallerTuple = tuple[UserRecord, ClientRecord, str, str]


class MakeCaller(Protocol):
    """``caller(roles=..., scoped=..., scope=None)``: a user, a credential and a token."""

    def __call__(
        self,
        roles: tuple[str, ...] = ("billing:read", "deploy"),
        scoped: tuple[str, ...] = (),
        scope: str | None = None,
    ) -> CallerTuple: ...


# The ``live_server`` fixture: the running server, its settings and a store on its database.
LiveServerFixture = tuple[LiveServer, Settings, Store]
