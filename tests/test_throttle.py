"""Brute-force protection: failures throttled per client_id and per source, never the innocent."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from authserver.domain.credentials import AuthState
from authserver.security.argon2 import SecretHasher
from authserver.store import Store
from tests.support.helpers import now, operator_creates, services_of, token_request, within
from tests.support.types import MakeCaller, MakeClient, MakeUser

LIMIT = {"auth_failure_limit": 3, "auth_failure_window": 60}


def fail_times(client: TestClient, client_id: str, times: int) -> None:
    for _ in range(times):
        assert token_request(client, client_id, "wrong").status_code == 401


@pytest.mark.parametrize("settings_overrides", [LIMIT])
def test_repeated_failures_for_a_client_id_get_429(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, _ = make_client(make_user())
    fail_times(client, record.client_id, 3)
    response = token_request(client, record.client_id, "another-guess")
    assert response.status_code == 429
    assert response.json()["error"] == "temporarily_unavailable"
    assert 1 <= int(response.headers["retry-after"]) <= 60


@pytest.mark.parametrize("settings_overrides", [LIMIT])
def test_throttled_client_id_still_admits_its_verified_secret(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    assert token_request(client, record.client_id, secret).status_code == 200
    fail_times(client, record.client_id, 3)
    assert token_request(client, record.client_id, secret).status_code == 200


@pytest.mark.parametrize("settings_overrides", [LIMIT])
def test_guessing_unknown_ids_does_not_throttle_other_credentials_at_that_source(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    for i in range(5):
        token_request(client, f"ghost-{i}@127.0.0.1/pcc", "x")
    assert token_request(client, "ghost-9@127.0.0.1/pcc", "x").status_code == 429
    assert token_request(client, record.client_id, secret).status_code == 200


@pytest.mark.parametrize("settings_overrides", [LIMIT])
def test_another_credentials_failures_do_not_throttle_this_one(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    owner = make_user()
    victim, _ = make_client(owner)
    bystander, secret = make_client(owner)
    fail_times(client, victim.client_id, 3)
    assert token_request(client, victim.client_id, "more").status_code == 429
    assert token_request(client, bystander.client_id, secret).status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"auth_failure_limit": 0}])
def test_zero_limit_disables_throttling(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, _ = make_client(make_user())
    fail_times(client, record.client_id, 12)


def test_repeated_identical_wrong_secret_costs_no_argon2(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, _ = make_client(make_user())
    hasher = services_of(client.app).hasher
    token_request(client, record.client_id, "same-wrong")
    misses = hasher.cache_misses
    token_request(client, record.client_id, "same-wrong")
    assert hasher.cache_misses == misses


FLOOD = Path(__file__).resolve().parents[1] / "bench" / "flood.py"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_flood_of_wrong_secrets_is_throttled_while_the_correct_credential_is_served(
    database_url: str, tmp_path: Path, hasher: SecretHasher
) -> None:
    """A separate process sends ~200 wrong secrets/s from the same address as a correct client.

    Functional only: the flood gets 429s and every correct request still gets its
    token. How much the flood slows correct traffic is a number for scripts/bench
    (``--flood``), not an assertion: on a busy machine it would fail for the wrong reason.
    """
    import subprocess
    import sys
    from datetime import UTC, datetime

    import httpx

    from authserver.config import load_settings
    from authserver.store import Store
    from authserver.store.database import Database, migrate
    from authserver.usecases.credentials import CredentialService
    from authserver.usecases.users import UserService
    from tests.support.servers import ServerProcess

    server = ServerProcess(database_url, tmp_path)
    settings = load_settings(environ=server.env)
    database = Database(settings.database_url)
    migrate(database)
    store = Store(database)
    owner = UserService(store).create(
        email="f@example.com", display_name="", role_names=["r"], now=datetime.now(UTC)
    )
    service = CredentialService(store, hasher, settings)
    good, good_secret = operator_creates(service, owner, name="")
    targets = [operator_creates(service, owner, name="")[0].client_id for _ in range(10)]
    database.dispose()
    with server, httpx.Client(base_url=server.url) as http:
        flood = subprocess.Popen(
            [
                sys.executable,
                str(FLOOD),
                f"{server.url}/auth/v1/token",
                ",".join(targets),
                "3",
                "200",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        statuses = set()
        while flood.poll() is None:
            statuses.add(token_request(http, good.client_id, good_secret).status_code)
        sent, throttled = (int(n) for n in flood.communicate(timeout=30)[0].split())
    assert statuses == {200}
    assert sent > 50  # the flood was real
    assert throttled > 0  # and it was throttled


@pytest.mark.parametrize("settings_overrides", [LIMIT])
def test_holder_of_the_key_is_never_throttled_even_uncached(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    fail_times(client, record.client_id, 3)
    # Never verified in this process: the secret's key matching the stored public key proves possession.
    assert token_request(client, record.client_id, secret).status_code == 200


@pytest.mark.parametrize("settings_overrides", [LIMIT])
def test_junk_assertions_cannot_lock_out_a_private_key_jwt_client(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    import jwt as pyjwt

    from authserver.client import assertion_form

    record, secret = make_client(make_user())
    junk = pyjwt.encode(
        {"iss": record.client_id, "sub": record.client_id, "exp": 9999999999},
        "k" * 32,
        algorithm="HS256",
    )
    for _ in range(4):
        client.post(
            "/auth/v1/token",
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": junk,
            },
        )
    form = assertion_form(secret, client_id=record.client_id, audience="http://127.0.0.1:8000")
    assert (
        client.post("/auth/v1/token", data={"grant_type": "client_credentials", **form}).status_code
        == 200
    )


def test_wrong_secrets_cost_no_argon2(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    owner = make_user()
    victim, _ = make_client(owner)
    _, someone_elses_secret = make_client(owner)  # well-formed, but another key
    hasher = services_of(client.app).hasher
    misses = hasher.cache_misses
    for _ in range(5):
        assert token_request(client, victim.client_id, someone_elses_secret).status_code == 401
    assert hasher.cache_misses == misses


@pytest.mark.parametrize("settings_overrides", [LIMIT])
def test_refused_credential_with_known_secret_is_throttled_like_any_failure(
    app: Starlette, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user(), cidrs=("203.0.113.0/24",))
    with TestClient(app, client=("203.0.113.7", 1)) as inside:
        assert token_request(inside, record.client_id, secret).status_code == 200
    with TestClient(app, client=("198.51.100.1", 1)) as outside:
        for _ in range(3):
            assert token_request(outside, record.client_id, secret).status_code == 401
        assert token_request(outside, record.client_id, secret).status_code == 429


@pytest.mark.parametrize("settings_overrides", [LIMIT])
def test_exhausted_source_answers_alike_for_known_and_unknown_ids(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, _ = make_client(make_user())
    for i in range(3):
        token_request(client, f"ghost-{i}@127.0.0.1/pcc", "x")
    unknown = token_request(client, "ghost-9@127.0.0.1/pcc", "x")
    known = token_request(client, record.client_id, "x")
    assert unknown.status_code == known.status_code == 429


@pytest.mark.parametrize("settings_overrides", [LIMIT])
def test_ipv6_sources_are_counted_per_64(app: Starlette) -> None:
    statuses = []
    for host in range(1, 5):
        with TestClient(app, client=(f"2001:db8:1:2::{host}", 1)) as http:
            statuses.append(token_request(http, "ghost@127.0.0.1/pcc", "x").status_code)
    assert statuses == [401, 401, 401, 429]


def test_argon2_runs_at_lower_priority_than_the_event_loop(hasher: SecretHasher) -> None:
    """First uses and floods must not take the CPU from warm traffic (Linux nice per thread)."""
    import os
    import threading

    from authserver.security.argon2 import ARGON2_NICE, MAX_NICE

    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    pool_nice = hasher._pool.submit(
        lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    ).result()
    assert pool_nice == min(own + ARGON2_NICE, MAX_NICE)


def test_password_checks_run_below_client_secret_checks(hasher: SecretHasher) -> None:
    """A sign-in flood must not take the CPU from the first uses of client secrets."""
    import os
    import threading

    from authserver.config import Settings
    from authserver.security.argon2 import PasswordHasher

    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    own = nice()
    secrets_nice = hasher._pool.submit(nice).result()
    passwords_nice = PasswordHasher(Settings())._pool.submit(nice).result()
    assert passwords_nice == 19
    assert passwords_nice > secrets_nice or own >= 10


@pytest.mark.parametrize("start_nice", [19, 15])
def test_argon2_is_never_above_a_server_started_at_high_nice(start_nice: int) -> None:
    """Started with ``nice -n 19``, argon2 must not be raised above the event loop."""
    import subprocess
    import sys

    probe = (
        "import os, threading\n"
        "from authserver.config import Settings\n"
        "from authserver.security.argon2 import SecretHasher\n"
        "pool = SecretHasher(Settings())._pool\n"
        "get = lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())\n"
        "print(get(), pool.submit(get).result())\n"
    )
    result = subprocess.run(
        ["nice", "-n", str(start_nice), sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    loop_nice, argon2_nice = (int(n) for n in result.stdout.split())
    assert argon2_nice >= loop_nice


# Known and unknown ids look alike -------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [LIMIT])
def test_new_source_gets_the_same_answer_for_a_guessed_known_id_and_unknown_id(
    app: Starlette, make_user: MakeUser, make_client: MakeClient
) -> None:
    """After as many failures from elsewhere, an existing id and a made-up one answer alike."""
    record, _ = make_client(make_user())
    ghost = "made-up-12345@127.0.0.1/pcc"
    for number, client_id in enumerate((record.client_id, ghost)):
        with TestClient(app, client=(f"198.51.100.{number + 1}", 1)) as guesser:
            fail_times(guesser, client_id, 3)
    with TestClient(app, client=("192.0.2.50", 1)) as newcomer:
        known = token_request(newcomer, record.client_id, "secret-token:x:v1:eyJ")
        unknown = token_request(newcomer, ghost, "secret-token:x:v1:eyJ")
    assert known.status_code == unknown.status_code == 429
    assert known.json() == unknown.json()
    assert known.headers["retry-after"] == unknown.headers["retry-after"]


def _count_reads(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    credentials = services_of(client.app).store.credentials
    reads: list[str] = []
    original = credentials.auth_state

    def counted(**kw: str) -> AuthState | None:
        reads.append(kw["client_id"])
        return original(**kw)

    monkeypatch.setattr(credentials, "auth_state", counted)
    return reads


def test_unknown_id_is_read_from_the_database_once(
    client: TestClient,
    make_user: MakeUser,
    make_client: MakeClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A negative cache: guessing the same id again costs no thread hop and no query."""
    _, secret = make_client(make_user())  # a well-formed secret-token, of another credential
    within(1.0, services_of(client.app).state_cache.in_sync)
    reads = _count_reads(client, monkeypatch)
    for _ in range(4):
        assert token_request(client, "made-up-12345@127.0.0.1/pcc", secret).status_code == 401
    assert reads == ["made-up-12345@127.0.0.1/pcc"]


def test_a_secret_that_is_no_secret_token_is_refused_without_a_lookup(
    client: TestClient,
    make_user: MakeUser,
    make_client: MakeClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record, _ = make_client(make_user())
    reads = _count_reads(client, monkeypatch)
    assert token_request(client, record.client_id, "hunter2").status_code == 401
    assert token_request(client, "made-up-12345@127.0.0.1/pcc", "hunter2").status_code == 401
    assert reads == []


def test_credential_created_after_its_id_was_guessed_works_within_a_second(
    client: TestClient, make_user: MakeUser, store: Store, hasher: SecretHasher
) -> None:
    """Another process (the CLI) creates it: this instance follows the change feed."""
    from authserver.domain.credentials import CredentialSpec
    from authserver.domain.secrets import new_secret

    ghost = "fresh-start-12345@127.0.0.1/pcc"
    fresh = new_secret("127.0.0.1")
    within(1.0, services_of(client.app).state_cache.in_sync)
    assert token_request(client, ghost, fresh.secret).status_code == 401  # remembered unknown
    store.credentials.create(
        user_id=make_user().id,
        spec=CredentialSpec("", (), (), None),
        new_client_id=lambda: ghost,
        secret_hash=hasher.hash(fresh.secret),
        public_jwk=fresh.public_jwk,
        secret_domain="127.0.0.1",
        now=now(),
    )
    within(1.0, lambda: token_request(client, ghost, fresh.secret).status_code == 200)


# Secrets presented where an id belongs --------------------------------------------------


@pytest.mark.parametrize("how", ["basic", "post"])
def test_swapped_client_id_and_secret_never_reach_the_log(
    client: TestClient,
    make_user: MakeUser,
    make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    """The log-scanning fixture fails the test if the secret appears in any line."""
    record, secret = make_client(make_user())
    if how == "basic":
        response = token_request(client, secret, record.client_id)
    else:
        response = client.post(
            "/auth/v1/token",
            data={
                "grant_type": "client_credentials",
                "client_id": secret,
                "client_secret": record.client_id,
            },
        )
    assert response.status_code == 401
    failures = [r.getMessage() for r in caplog.records if '"auth_failed"' in r.getMessage()]
    assert failures and all('"client_id": "sha256:' in line for line in failures)


def test_jwt_presented_as_client_id_is_logged_as_a_fingerprint(
    client: TestClient, caller: MakeCaller, caplog: pytest.LogCaptureFixture
) -> None:
    _, _, _, token = caller()
    assert token_request(client, token, "x").status_code == 401
    failures = [r.getMessage() for r in caplog.records if '"auth_failed"' in r.getMessage()]
    assert failures and all('"client_id": "sha256:' in line for line in failures)
