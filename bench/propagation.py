"""How long a revocation takes to reach another worker of one serve, and another instance.

    .venv/bin/python bench/propagation.py [--rounds 50]

Each round mints a token, has the observer (the other worker, or the other
instance) introspect it once so that its cache holds it, revokes it through the
first one, and then asks the observer until it answers inactive. Reported: how
many answers were still "active" after the revocation had answered (stale
answers), and the lag, from the revocation's answer to the sending of the first
question answered "inactive" (so a slow answer on a busy machine does not count).

Scenarios: two workers of ``serve --workers 2`` on SQLite (the shared change
signal), the same with ``change_signal = false`` (the 0.5 s poll alone, as before),
and two instances on one PostgreSQL with the signal off (NOTIFY alone).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from authserver.config import Settings  # noqa: E402
from authserver.security.argon2 import SecretHasher  # noqa: E402
from authserver.store import Store  # noqa: E402
from authserver.store.database import Database, migrate  # noqa: E402
from authserver.usecases.credentials import CredentialService  # noqa: E402
from authserver.usecases.users import UserService  # noqa: E402
from tests.support.helpers import now, operator_creates  # noqa: E402
from tests.support.postgres import PostgresCluster  # noqa: E402
from tests.support.servers import ServerProcess, connection_per_worker  # noqa: E402

ISSUER = "http://authserver.test"
SHARED = {"AUTHSERVER_ISSUER": ISSUER, "AUTHSERVER_ALLOW_INSECURE_ISSUER": "1"}


def seed(url: str) -> tuple[str, str]:
    database = Database(url)
    migrate(database)
    store = Store(database)
    user = UserService(store).create(
        email="bench@example.com", display_name="", role_names=["deploy"], now=now()
    )
    settings = Settings(issuer=ISSUER, allow_insecure_issuer=True)
    record, secret = operator_creates(
        CredentialService(store, SecretHasher(settings), settings), user
    )
    database.dispose()
    return record.client_id, secret


def post(connection: http.client.HTTPConnection, path: str, form: dict[str, str], auth: str) -> Any:
    headers = {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"}
    connection.request("POST", path, urlencode(form), headers)
    response = connection.getresponse()
    body = response.read()
    assert response.status == 200, (response.status, body)
    return json.loads(body or b"null")


def measure(
    actor: http.client.HTTPConnection,
    observer: http.client.HTTPConnection,
    client: tuple[str, str],
    rounds: int,
) -> tuple[int, list[float]]:
    auth = "Basic " + base64.b64encode(":".join(client).encode()).decode()
    stale, lags = 0, []
    for _ in range(rounds):
        token = post(actor, "/auth/v1/token", {"grant_type": "client_credentials"}, auth)[
            "access_token"
        ]
        assert post(observer, "/auth/v1/introspect", {"token": token}, auth)["active"]
        post(actor, "/auth/v1/revoke", {"token": token}, auth)
        answered = time.monotonic()
        while True:
            asked = time.monotonic()
            if not post(observer, "/auth/v1/introspect", {"token": token}, auth)["active"]:
                break
            stale += 1
            time.sleep(0.002)
        lags.append(asked - answered)
    return stale, lags


def report(name: str, stale: int, lags: list[float]) -> None:
    ms = sorted(lag * 1000 for lag in lags)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    print(
        f"{name}: {len(ms)} revocations, {stale} stale answers; lag ms median "
        f"{statistics.median(ms):.1f}, p95 {p95:.1f}, max {ms[-1]:.1f}"
    )


@contextmanager
def closing_all(connections: list[http.client.HTTPConnection]) -> Iterator[None]:
    try:
        yield
    finally:
        for connection in connections:
            connection.close()


def workers(rounds: int, folder: Path, **env: str) -> tuple[int, list[float]]:
    url = f"sqlite:///{folder}/authserver.db"
    client = seed(url)
    with ServerProcess(url, folder, workers=2, **SHARED, **env) as server:
        connections = connection_per_worker(server)
        with closing_all(connections):
            return measure(connections[0], connections[1], client, rounds)


def instances(rounds: int, folder: Path) -> tuple[int, list[float]]:
    cluster = PostgresCluster().start()
    try:
        url = cluster.create_database("propagation")
        client = seed(url)
        env = {**SHARED, "AUTHSERVER_CHANGE_SIGNAL": "false"}
        with ExitStack() as stack:
            a = stack.enter_context(ServerProcess(url, folder, **env))
            b = stack.enter_context(ServerProcess(url, folder, **env))
            actor = http.client.HTTPConnection("127.0.0.1", b.port, timeout=10)
            observer = http.client.HTTPConnection("127.0.0.1", a.port, timeout=10)
            with closing_all([actor, observer]):
                return measure(actor, observer, client, rounds)
    finally:
        cluster.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
        report("other worker, signal on (SQLite)", *workers(args.rounds, Path(one)))
        report(
            "other worker, signal off: poll only (SQLite)",
            *workers(args.rounds, Path(two), AUTHSERVER_CHANGE_SIGNAL="false"),
        )
    with tempfile.TemporaryDirectory() as three:
        report("other instance, NOTIFY only (PostgreSQL)", *instances(args.rounds, Path(three)))


if __name__ == "__main__":
    main()
