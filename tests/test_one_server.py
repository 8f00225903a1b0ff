"""One ``serve`` behaves as one server: a change is seen by every worker once its call answered.

Each test runs ``authserver serve --workers 2`` as a real process and holds a
kept-alive connection to each worker (``connection_per_worker``: the kernel
tends to hand one worker many fresh connections in a row, which would test
nothing); right after the change's call answered, no worker may answer from
before it. Instances on other
machines hear of changes by PostgreSQL ``NOTIFY``.
"""

from __future__ import annotations

import base64
import http.client
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from authserver.config import Settings
from authserver.records import ClientRecord
from authserver.security.argon2 import SecretHasher
from authserver.store import Store
from authserver.usecases.credentials import CredentialService
from authserver.usecases.keys import KeyService
from authserver.usecases.users import UserService
from tests.support.helpers import now, operator_creates
from tests.support.servers import ServerProcess, connection_per_worker

ISSUER = "http://authserver.test"
SHARED = {
    "AUTHSERVER_ISSUER": ISSUER,
    "AUTHSERVER_ALLOW_INSECURE_ISSUER": "1",
    # The refused requests these tests send count once for the whole serve: not a test of
    # the limit against guessing (test_shared_limits.py is), so it is raised out of the way.
    "AUTHSERVER_AUTH_FAILURE_LIMIT": "1000",
}
ASKS = 3  # requests to each worker per check


@pytest.fixture
def issued(store: Store, hasher: SecretHasher) -> tuple[ClientRecord, str]:
    """A credential of a user allowed to manage their own credentials."""
    user = UserService(store).create(
        email="one-server@example.com", display_name="", role_names=["deploy"], now=now()
    )
    settings = Settings(issuer=ISSUER, allow_insecure_issuer=True)
    return operator_creates(CredentialService(store, hasher, settings), user, name="")


def mint(url: str, client_id: str, secret: str) -> httpx.Response:
    return httpx.post(
        f"{url}/auth/v1/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )


def introspect(url: str, token: str, client_id: str, secret: str) -> bool:
    """Whether ``token`` introspects active, asked over a new connection."""
    answer = httpx.post(
        f"{url}/auth/v1/introspect", data={"token": token}, auth=(client_id, secret)
    )
    assert answer.status_code == 200
    return bool(answer.json()["active"])


@contextmanager
def each_worker(server: ServerProcess) -> Iterator[list[http.client.HTTPConnection]]:
    """A kept-alive connection to each worker of ``server``, closed at the end."""
    workers = connection_per_worker(server)
    try:
        yield workers
    finally:
        for connection in workers:
            connection.close()


def ask(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    *,
    form: dict[str, str] | None = None,
    basic: tuple[str, str] | None = None,
    bearer: str | None = None,
) -> tuple[int, Any]:
    """One request on a kept-alive connection (so: to the worker holding it)."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if basic is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(basic).encode()).decode()
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    connection.request(method, path, urlencode(form or {}), headers)
    response = connection.getresponse()
    return response.status, json.loads(response.read() or b"null")


def statuses(
    workers: list[http.client.HTTPConnection], client_id: str, secret: str, asks: int = ASKS
) -> set[int]:
    """What token requests get from each worker, a few times each."""
    form = {"grant_type": "client_credentials"}
    return {
        ask(connection, "POST", "/auth/v1/token", form=form, basic=(client_id, secret))[0]
        for connection in workers
        for _ in range(asks)
    }


def actives(
    workers: list[http.client.HTTPConnection], token: str, client_id: str, secret: str
) -> set[bool]:
    """Whether ``token`` introspects active, asked of each worker a few times each."""
    return {
        ask(
            connection,
            "POST",
            "/auth/v1/introspect",
            form={"token": token},
            basic=(client_id, secret),
        )[1]["active"]
        for connection in workers
        for _ in range(ASKS)
    }


def run_cli(
    server: ServerProcess,
    workers: list[http.client.HTTPConnection],
    cwd: Path,
    *args: str,
    meanwhile: Callable[[], object] | None = None,
) -> None:
    """``authserver *args`` against the server's database, keeping ``workers`` alive meanwhile
    (uvicorn drops connections idle for 5 s), or calling ``meanwhile`` over and over."""
    with subprocess.Popen(
        [sys.executable, "-m", "authserver", *args],
        env=server.env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as command:
        while True:
            try:
                command.wait(timeout=0.5 if meanwhile is None else 0.01)
                break  # on to the checks as soon as it exits
            except subprocess.TimeoutExpired:
                if meanwhile is not None:
                    meanwhile()
                else:
                    assert {ask(c, "GET", "/readyz")[0] for c in workers} == {200}
        assert command.stderr is not None
        assert command.returncode == 0, command.stderr.read()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_revoked_token_is_inactive_on_every_worker_once_revoke_answered(
    database_url: str, tmp_path: Path, issued: tuple[ClientRecord, str]
) -> None:
    record, secret = issued
    with (
        ServerProcess(database_url, tmp_path, workers=2, **SHARED) as server,
        each_worker(server) as workers,
    ):
        token = mint(server.url, record.client_id, secret).json()["access_token"]
        # Every worker holds the token's state in its cache before the change.
        assert actives(workers, token, record.client_id, secret) == {True}
        status, _ = ask(
            workers[0],
            "POST",
            "/auth/v1/revoke",
            form={"token": token},
            basic=(record.client_id, secret),
        )
        assert status == 200
        assert actives(workers, token, record.client_id, secret) == {False}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_credential_deleted_through_the_api_is_refused_by_every_worker_at_once(
    database_url: str, tmp_path: Path, issued: tuple[ClientRecord, str]
) -> None:
    record, secret = issued
    with (
        ServerProcess(database_url, tmp_path, workers=2, **SHARED) as server,
        each_worker(server) as workers,
    ):
        token = mint(server.url, record.client_id, secret).json()["access_token"]
        created = httpx.post(
            f"{server.url}/api/v1/iam/personal_clients",
            json={"displayName": "ci"},
            headers={"authorization": f"Bearer {token}"},
        ).json()
        client_id, new_secret = created["client"]["clientId"], created["clientSecret"]
        assert statuses(workers, client_id, new_secret) == {200}
        path = f"/api/v1/iam/personal_clients/{created['client']['id']}"
        assert ask(workers[0], "DELETE", path, bearer=token) == (200, {})
        assert statuses(workers, client_id, new_secret) == {401}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_credential_deleted_through_the_cli_is_refused_by_every_worker_at_once(
    database_url: str, tmp_path: Path, issued: tuple[ClientRecord, str]
) -> None:
    record, secret = issued
    with (
        ServerProcess(database_url, tmp_path, workers=2, **SHARED) as server,
        each_worker(server) as workers,
    ):
        assert statuses(workers, record.client_id, secret) == {200}
        refused: list[set[int]] = []

        def watch() -> None:
            """While the CLI runs: once a worker has refused, every worker refuses."""
            if len(refused) < 3:  # a few rounds (each failure counts towards the limit)
                answers = statuses(workers, record.client_id, secret, asks=1)
                if refused or 401 in answers:
                    refused.append(answers)

        run_cli(server, workers, tmp_path, "clients", "delete", record.id, meanwhile=watch)
        assert refused[1:] == [{401}] * len(refused[1:])
        assert statuses(workers, record.client_id, secret) == {401}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_key_rotated_by_another_process_is_published_by_every_worker_at_once(
    database_url: str, tmp_path: Path, store: Store
) -> None:
    """The rotation runs in this process, as ``authserver keys rotate`` would in its own."""
    with (
        ServerProcess(database_url, tmp_path, workers=2, **SHARED) as server,
        each_worker(server) as workers,
    ):
        for connection in workers:  # every worker has loaded its keys
            assert ask(connection, "GET", "/.well-known/jwks.json")[0] == 200
        new_kid = KeyService(store, Settings()).rotate(now=now()).kid
        published = [
            {key["kid"] for key in ask(connection, "GET", "/.well-known/jwks.json")[1]["keys"]}
            for connection in workers
        ]
    assert all(new_kid in kids for kids in published), published


@pytest.mark.parametrize("backend", ["postgresql"])
def test_revocation_reaches_another_instance_by_notify_within_100ms(
    database_url: str, tmp_path: Path, issued: tuple[ClientRecord, str]
) -> None:
    """Two instances on one PostgreSQL, the shared local signal off: NOTIFY alone.

    With ``auth_cache_ttl = 1`` the poll runs every 0.5 s, so the poll alone would
    take about 0.25 s in the median (at least; measured: 0.4 s). After each
    revocation, the other instance is asked until it answers inactive; the lag is
    when the first such question was *sent* (so a slow answer on a busy machine
    does not count). A median over nine revocations under 100 ms shows that the
    notification carried them; each may take up to a second, so one slow round does
    not fail it.
    """
    record, secret = issued
    env: dict[str, Any] = {
        **SHARED,
        "AUTHSERVER_CHANGE_SIGNAL": "false",
        "AUTHSERVER_AUTH_CACHE_TTL": "1",
    }
    lags = []
    with (
        ServerProcess(database_url, tmp_path, **env) as a,
        ServerProcess(database_url, tmp_path, **env) as b,
    ):
        for _ in range(9):
            token = mint(a.url, record.client_id, secret).json()["access_token"]
            assert introspect(a.url, token, record.client_id, secret)
            revoked = httpx.post(
                f"{b.url}/auth/v1/revoke", data={"token": token}, auth=(record.client_id, secret)
            )
            assert revoked.status_code == 200
            answered = time.monotonic()
            while True:
                asked = time.monotonic()
                if not introspect(a.url, token, record.client_id, secret):
                    break
                assert asked - answered < 1.0, "still active a second after the revocation"
                time.sleep(0.01)
            lags.append(asked - answered)
    assert statistics.median(lags) < 0.1, lags
