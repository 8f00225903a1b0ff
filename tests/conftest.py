"""Fixtures chained settings → database → store → app → client, plus a live uvicorn server."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
from starlette.applications import Starlette
from starlette.testclient import TestClient

from authserver.app import create_app
from authserver.config import Settings
from authserver.records import ClientRecord, UserRecord
from authserver.security.argon2 import SecretHasher
from authserver.store import Store
from authserver.store.database import Database, migrate
from authserver.usecases.credentials import CredentialService
from authserver.usecases.users import UserService
from tests.support.helpers import PEER, mint, now, operator_creates
from tests.support.live import LiveServer
from tests.support.ports import free_port
from tests.support.postgres import PostgresCluster
from tests.support.types import CallerTuple, LiveServerFixture, MakeCaller, MakeClient, MakeUser

# The browser tests' shared fixture (one headless Chromium per module).
pytest_plugins = ("tests.support.pages",)

LEAK = re.compile(
    r"secret-token(:|%3a)|eyJrdHki|eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.|\$argon2id\$"
    r"|(?:ses|inv|csrf|psi)_[A-Za-z0-9_-]{43}|violet-harbour",
    re.IGNORECASE,
)


@pytest.fixture(autouse=True)
def no_secrets_in_logs(
    caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> Iterator[None]:
    """Every test doubles as a leak check: all it logged, at every level, is scanned, and
    so is every row of the audit trail in the databases it used."""
    caplog.set_level(logging.DEBUG)
    yield
    # caplog.records holds only the current phase (teardown, here): scan every phase.
    records = [r for phase in ("setup", "call") for r in caplog.get_records(phase)]
    records += caplog.records
    leaked = [
        r.getMessage() for r in records if LEAK.search(r.getMessage()) and not _not_the_servers(r)
    ]
    assert not leaked, f"secret material in logs: {leaked[:3]}"
    rows = [row for database in _databases_of(request) for row in _audit_rows(database)]
    leaked = [row for row in rows if LEAK.search(row)]
    assert not leaked, f"secret material in the audit trail: {leaked[:3]}"


def _databases_of(request: pytest.FixtureRequest) -> list[Database]:
    """The databases a test's fixtures opened (the ``database`` fixture, a live server's
    store), whose audit trail the leak check reads."""
    found: list[Database] = []
    for value in request.node.__dict__.get("funcargs", {}).values():
        candidates = value if isinstance(value, tuple) else (value,)
        for candidate in candidates:
            database = candidate.database if isinstance(candidate, Store) else candidate
            if isinstance(database, Database) and database not in found:
                found.append(database)
    return found


def _audit_rows(database: Database) -> list[str]:
    """Every row of the audit trail as one line of text (empty when the table is missing)."""
    if database.sqlite_path is not None and not database.sqlite_path.is_file():
        return []  # removed by the test (or never made): nothing kept there
    # An engine of its own: the test's may be disposed already, and must stay so.
    engine = create_engine(database.engine.url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("audit_events"):
                return []
            result = conn.exec_driver_sql("SELECT * FROM audit_events")
            return [" ".join(str(value) for value in row) for row in result]
    except OperationalError:
        return []  # a test that made its database unreachable: nothing can be read there
    finally:
        engine.dispose()


def _not_the_servers(record: logging.LogRecord) -> bool:
    """Lines the leak scan skips: alembic's migration docstrings, and the test's own HTTP
    clients: httpx naming the URL it requested (an invitation link, say), httpcore tracing the
    headers it received, requests-oauthlib showing the token it got."""
    message = record.getMessage()
    return (
        record.name.startswith(("alembic", "requests_oauthlib", "oauthlib"))
        or (record.name.startswith("httpx") and message.startswith("HTTP Request:"))
        # httpcore's trace of the headers a test client received (a page's CSRF cookie)
        or (record.name.startswith("httpcore") and "_headers.complete return_value=" in message)
    )


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Tests override single settings by overriding this fixture or parametrising it."""
    return {}


TABLES = (
    "users, personal_clients, signing_keys, revoked_tokens, registration_tokens, used_assertions,"
    " user_passwords, browser_sessions, invites, pending_sign_ins, throttle_events,"
    " credential_addresses, token_counts, audit_events, outbox, expiry_notices"
)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """The run's private PostgreSQL cluster, started on first use."""
    cluster = PostgresCluster().start()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def postgres_url(postgres: PostgresCluster) -> str:
    url = postgres.create_database("authserver_test")
    database = Database(url)
    migrate(database)
    database.dispose()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """Every test that touches storage runs against both databases."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, migrated-on-open database: a new SQLite file, or the emptied PostgreSQL one."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/authserver.db"
    url: str = request.getfixturevalue("postgres_url")
    database = Database(url)
    with database.engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {TABLES} CASCADE")
    database.dispose()
    return url


@pytest.fixture
def settings(database_url: str, settings_overrides: dict[str, Any]) -> Settings:
    return Settings(database_url=database_url, **settings_overrides)


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database_url)
    migrate(database)
    yield database
    database.dispose()


@pytest.fixture
def store(database: Database) -> Store:
    return Store(database)


@pytest.fixture(scope="session")
def hasher() -> SecretHasher:
    return SecretHasher(Settings())


@pytest.fixture
def make_user(store: Store) -> MakeUser:
    counter = iter(range(1, 10_000))

    def make(
        email: str | None = None, roles: tuple[str, ...] = ("billing:read", "deploy")
    ) -> UserRecord:
        return UserService(store).create(
            email=email or f"user{next(counter)}@example.com",
            display_name="Test User",
            role_names=roles,
            now=now(),
        )

    return make


@pytest.fixture
def credential_service(store: Store, settings: Settings, hasher: SecretHasher) -> CredentialService:
    """The credential service as the CLI builds it (no in-process cache to tell)."""
    return CredentialService(store, hasher, settings)


@pytest.fixture
def make_client(credential_service: CredentialService) -> MakeClient:
    def make(
        owner: UserRecord,
        *,
        cidrs: tuple[str, ...] = (),
        scoped: tuple[str, ...] = (),
        expires_in: timedelta | None = None,
    ) -> tuple[ClientRecord, str]:
        return operator_creates(
            credential_service, owner, cidrs=cidrs, scoped=scoped, expires_in=expires_in
        )

    return make


@pytest.fixture
def app(settings: Settings, database: Database) -> Starlette:
    return create_app(settings, database=database)


@pytest.fixture
def peer() -> str:
    return PEER


@pytest.fixture
def client(app: Starlette, peer: str) -> Iterator[TestClient]:
    with TestClient(app, client=(peer, 50000), base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


@pytest.fixture
def live_settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def live_server(
    tmp_path: Path, live_settings_overrides: dict[str, Any]
) -> Iterator[LiveServerFixture]:
    """A real HTTP server whose issuer is its own URL."""
    port = free_port()
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/live.db",
        issuer=f"http://127.0.0.1:{port}",
        **live_settings_overrides,
    )
    database = Database(settings.database_url)
    migrate(database)
    with LiveServer(create_app(settings, database=database), port) as server:
        yield server, settings, Store(database)
    database.dispose()


@pytest.fixture
def caller(client: TestClient, make_user: MakeUser, make_client: MakeClient) -> MakeCaller:
    """A user with a credential and a fresh access token: (user, credential, secret, token)."""

    def make(
        roles: tuple[str, ...] = ("billing:read", "deploy"),
        scoped: tuple[str, ...] = (),
        scope: str | None = None,
    ) -> CallerTuple:
        user = make_user(roles=roles)
        record, secret = make_client(user, scoped=scoped)
        extra = {"scope": scope} if scope is not None else {}
        return user, record, secret, mint(client, record.client_id, secret, **extra)

    return make
