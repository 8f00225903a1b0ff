"""Several instances on one PostgreSQL database, and PostgreSQL outages.

Every change made through one instance (or the CLI) must hold on every other
instance within 1 second.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import httpx
import pytest
from alembic.script import ScriptDirectory

from authserver.records import ClientRecord, UserRecord
from authserver.security.argon2 import SecretHasher
from authserver.store import Store
from authserver.store.database import MIGRATIONS, Database, migrate
from authserver.usecases.credentials import CredentialService
from authserver.usecases.users import UserService
from tests.support.helpers import now, operator_creates, within
from tests.support.postgres import PostgresCluster
from tests.support.servers import ServerProcess, connection_per_worker

pytestmark = pytest.mark.slow

BOUND = 1.0


def mint(server: ServerProcess, client_id: str, secret: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/auth/v1/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
    )


@pytest.fixture
def seeded(
    postgres_url: str, database_url: str, hasher: SecretHasher
) -> Iterator[tuple[Store, UserRecord, SecretHasher]]:
    """A user with an unreduced credential in the shared database (emptied first)."""
    database = Database(database_url)
    store = Store(database)
    user = UserService(store).create(
        email="multi@example.com", display_name="", role_names=["deploy"], now=now()
    )
    yield store, user, hasher
    database.dispose()


def credential(
    store: Store, hasher: SecretHasher, settings_issuer_host: str, user: UserRecord
) -> tuple[ClientRecord, str]:
    from authserver.config import Settings

    settings = Settings(issuer=f"http://{settings_issuer_host}:1", allow_insecure_issuer=True)
    return operator_creates(CredentialService(store, hasher, settings), user, name="")


class Shared(TypedDict):
    """The environment every instance shares (TypedDict: each key goes to ``**env``)."""

    AUTHSERVER_ISSUER: str
    AUTHSERVER_ALLOW_INSECURE_ISSUER: str


SHARED: Shared = {
    "AUTHSERVER_ISSUER": "http://authserver.test",
    "AUTHSERVER_ALLOW_INSECURE_ISSUER": "1",
}  # one issuer for all instances


@pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_deletion_through_one_instance_stops_the_other(
    seeded: tuple[Store, UserRecord, SecretHasher], database_url: str, tmp_path: Path
) -> None:
    store, user, hasher = seeded
    with (
        ServerProcess(database_url, tmp_path, **SHARED) as a,
        ServerProcess(database_url, tmp_path, **SHARED) as b,
    ):
        record, secret = credential(store, hasher, "authserver.test", user)
        bearer = {
            "authorization": f"Bearer {mint(a, record.client_id, secret).json()['access_token']}"
        }
        created = httpx.post(
            f"{a.url}/api/v1/iam/personal_clients", json={"displayName": "ci"}, headers=bearer
        ).json()
        new_id, new_client_id, new_secret = (
            created["client"]["id"],
            created["client"]["clientId"],
            created["clientSecret"],
        )
        assert mint(b, new_client_id, new_secret).status_code == 200
        assert (
            httpx.delete(f"{a.url}/api/v1/iam/personal_clients/{new_id}", headers=bearer).json()
            == {}
        )
        within(BOUND, lambda: mint(b, new_client_id, new_secret).status_code == 401)


@pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_revocation_through_one_instance_is_seen_by_another(
    seeded: tuple[Store, UserRecord, SecretHasher], database_url: str, tmp_path: Path
) -> None:
    store, user, hasher = seeded
    with (
        ServerProcess(database_url, tmp_path, **SHARED) as a,
        ServerProcess(database_url, tmp_path, **SHARED) as b,
    ):
        record, secret = credential(store, hasher, "authserver.test", user)
        token = mint(a, record.client_id, secret).json()["access_token"]

        def introspect() -> dict[str, Any]:
            body: dict[str, Any] = httpx.post(
                f"{a.url}/auth/v1/introspect",
                data={"token": token},
                auth=(record.client_id, secret),
            ).json()
            return body

        assert introspect()["active"] is True
        assert (
            httpx.post(
                f"{b.url}/auth/v1/revoke", data={"token": token}, auth=(record.client_id, secret)
            ).status_code
            == 200
        )
        within(BOUND, lambda: introspect() == {"active": False})


@pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_cli_key_rotation_reaches_both_instances(
    seeded: tuple[Store, UserRecord, SecretHasher], database_url: str, tmp_path: Path
) -> None:
    with (
        ServerProcess(database_url, tmp_path, **SHARED) as a,
        ServerProcess(database_url, tmp_path, **SHARED) as b,
    ):
        before = {k["kid"] for k in httpx.get(f"{a.url}/.well-known/jwks.json").json()["keys"]}
        assert before == {
            k["kid"] for k in httpx.get(f"{b.url}/.well-known/jwks.json").json()["keys"]
        }
        subprocess.run(
            [sys.executable, "-m", "authserver", "keys", "rotate"],
            env=a.env,
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )
        rotated = time.monotonic()
        store, _, _ = seeded
        new_kid = next(k.kid for k in store.keys.all() if k.retired_at is None)

        def published(server: ServerProcess) -> bool:
            return new_kid in {
                k["kid"] for k in httpx.get(f"{server.url}/.well-known/jwks.json").json()["keys"]
            }

        within(BOUND, lambda: published(a) and published(b))
        assert time.monotonic() - rotated <= BOUND + 0.5  # the CLI's own exit is included above


@pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_concurrent_creates_never_duplicate_client_ids(
    seeded: tuple[Store, UserRecord, SecretHasher],
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store, user, hasher = seeded
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda _: credential(store, hasher, "127.0.0.1", user)[0].client_id, range(24))
        )
    assert len(set(results)) == 24


@pytest.mark.postgres
def test_postgresql_outage_gives_503_and_recovers(tmp_path: Path, hasher: SecretHasher) -> None:
    """Stop PostgreSQL under a running instance: 503s, not 500s; restart it: service resumes."""
    cluster = PostgresCluster().start()
    database: Database | None = None
    try:
        url = cluster.create_database("outage")
        database = Database(url)
        migrate(database)
        store = Store(database)
        user = UserService(store).create(
            email="o@example.com", display_name="", role_names=["deploy"], now=now()
        )
        record, secret = credential(store, hasher, "127.0.0.1", user)
        with ServerProcess(url, tmp_path) as server:
            assert mint(server, record.client_id, secret).status_code == 200
            cluster.stop()
            database.dispose()
            time.sleep(1.0)  # past auth_cache_ttl: the credential is no longer cached
            down = mint(server, record.client_id, secret)
            assert down.status_code == 503
            assert down.json()["error"] == "temporarily_unavailable"
            assert httpx.get(f"{server.url}/readyz").status_code == 503
            cluster.start()
            within(10, lambda: mint(server, record.client_id, secret).status_code == 200)
            assert httpx.get(f"{server.url}/readyz").status_code == 200
            within(5, lambda: store.credentials.get(id=record.id).last_used_at is not None)
    finally:
        if database is not None:
            database.dispose()
        cluster.destroy()


@pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_last_used_at_keeps_the_latest_issuance_across_instances(
    seeded: tuple[Store, UserRecord, SecretHasher], database_url: str, tmp_path: Path
) -> None:
    store, user, hasher = seeded
    with (
        ServerProcess(database_url, tmp_path, **SHARED) as a,
        ServerProcess(database_url, tmp_path, **SHARED) as b,
    ):
        record, secret = credential(store, hasher, "authserver.test", user)
        for _ in range(5):
            assert mint(a, record.client_id, secret).status_code == 200
            assert mint(b, record.client_id, secret).status_code == 200
        last = now()
        assert mint(a, record.client_id, secret).status_code == 200
        # B flushes its older timestamps after A's newer one; the stored value must not go back.
        within(
            BOUND + 0.5,
            lambda: (
                (store.credentials.get(id=record.id).last_used_at or last.replace(year=2000))
                >= last
            ),
        )
        time.sleep(1.2)
        last_used_at = store.credentials.get(id=record.id).last_used_at
        assert last_used_at is not None
        assert last_used_at >= last


HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()


@pytest.mark.postgres
def test_concurrent_migrations_are_safe(postgres: PostgresCluster, tmp_path: Path) -> None:
    """Two instances running ``authserver migrate`` at once on an empty database."""
    url = postgres.create_database("concurrent_migrate")
    env = {**os.environ, "AUTHSERVER_DATABASE_URL": url}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "authserver", "migrate"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [run.communicate(timeout=60) + (run.returncode,) for run in runs]
    assert [code for _, _, code in results] == [0, 0], results
    database = Database(url)
    try:
        with database.engine.connect() as conn:
            assert (
                conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == HEAD
            )
    finally:
        database.dispose()


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")
@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_change_reaches_every_worker_of_one_serve_within_1s(
    database_url: str, tmp_path: Path, hasher: SecretHasher
) -> None:
    """``serve --workers 2`` on SQLite: each worker follows the change feed on its own.

    A keep-alive connection stays with the worker that accepted it; connections are
    opened until each worker holds one (found through /proc), then the credential is
    deleted through the CLI and every worker must refuse it within the bound.
    """
    database = Database(database_url)
    migrate(database)
    store = Store(database)
    user = UserService(store).create(
        email="workers@example.com", display_name="", role_names=["deploy"], now=now()
    )
    record, secret = credential(store, hasher, "authserver.test", user)
    headers = {
        "Authorization": "Basic "
        + base64.b64encode(f"{record.client_id}:{secret}".encode()).decode(),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    with ServerProcess(database_url, tmp_path, workers=2, **SHARED) as server:
        per_worker = connection_per_worker(server)

        def statuses() -> set[int]:
            answers = set()
            for connection in per_worker:
                connection.request(
                    "POST", "/auth/v1/token", "grant_type=client_credentials", headers
                )
                response = connection.getresponse()
                response.read()
                answers.add(response.status)
            return answers

        assert statuses() == {200}
        deleted = subprocess.run(
            [sys.executable, "-m", "authserver", "clients", "delete", record.id],
            env=server.env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert deleted.returncode == 0, deleted.stderr
        within(BOUND, lambda: statuses() == {401})
        for connection in per_worker:
            connection.close()
    database.dispose()
