"""Brute-force protection: failures throttled per client_id and per source, never the innocent."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.conftest import operator_creates, token_request

LIMIT = {"auth_failure_limit": 3, "auth_failure_window": 60}


def fail_times(client: TestClient, client_id: str, times: int) -> None:
    for _ in range(times):
        assert token_request(client, client_id, "wrong").status_code == 401


@pytest.mark.parametrize("settings_overrides", [LIMIT])
def test_repeated_failures_for_a_client_id_get_429(
    client: TestClient, make_user, make_client
) -> None:
    record, _ = make_client(make_user())
    fail_times(client, record.client_id, 3)
    response = token_request(client, record.client_id, "another-guess")
    assert response.status_code == 429
    assert response.json()["error"] == "temporarily_unavailable"
    assert 1 <= int(response.headers["retry-after"]) <= 60


@pytest.mark.parametrize("settings_overrides", [LIMIT])
def test_throttled_client_id_still_admits_its_verified_secret(
    client: TestClient, make_user, make_client
) -> None:
    record, secret = make_client(make_user())
    assert token_request(client, record.client_id, secret).status_code == 200
    fail_times(client, record.client_id, 3)
    assert token_request(client, record.client_id, secret).status_code == 200


@pytest.mark.parametrize("settings_overrides", [LIMIT])
def test_guessing_unknown_ids_does_not_throttle_other_credentials_at_that_source(
    client: TestClient, make_user, make_client
) -> None:
    record, secret = make_client(make_user())
    for i in range(5):
        token_request(client, f"ghost-{i}@127.0.0.1/pcc", "x")
    assert token_request(client, "ghost-9@127.0.0.1/pcc", "x").status_code == 429
    assert token_request(client, record.client_id, secret).status_code == 200


@pytest.mark.parametrize("settings_overrides", [LIMIT])
def test_another_credentials_failures_do_not_throttle_this_one(
    client: TestClient, make_user, make_client
) -> None:
    owner = make_user()
    victim, _ = make_client(owner)
    bystander, secret = make_client(owner)
    fail_times(client, victim.client_id, 3)
    assert token_request(client, victim.client_id, "more").status_code == 429
    assert token_request(client, bystander.client_id, secret).status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"auth_failure_limit": 0}])
def test_zero_limit_disables_throttling(client: TestClient, make_user, make_client) -> None:
    record, _ = make_client(make_user())
    fail_times(client, record.client_id, 12)


def test_repeated_identical_wrong_secret_costs_no_argon2(
    client: TestClient, make_user, make_client
) -> None:
    record, _ = make_client(make_user())
    hasher = client.app.state.services.hasher
    token_request(client, record.client_id, "same-wrong")
    misses = hasher.cache_misses
    token_request(client, record.client_id, "same-wrong")
    assert hasher.cache_misses == misses


FLOOD = Path(__file__).resolve().parents[1] / "bench" / "flood.py"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_flood_of_wrong_secrets_leaves_correct_traffic_served(
    database_url: str, tmp_path, hasher
) -> None:
    """A separate process sends ~200 wrong secrets/s while correct requests are timed."""
    import subprocess
    import sys
    import time
    from datetime import UTC, datetime

    import httpx

    from authserver.config import load_settings
    from authserver.store import Store
    from authserver.store.database import Database, migrate
    from authserver.usecases.credentials import CredentialService
    from authserver.usecases.users import UserService
    from tests.servers import ServerProcess

    server = ServerProcess(database_url, tmp_path)
    settings = load_settings(environ=server.env)
    database = Database(settings.database_url)
    migrate(database)
    store = Store(database)
    owner = UserService(store).create(
        email="f@example.com", display_name="", role_names=["r"], now=datetime.now(UTC)
    )

    def new_credential():
        return operator_creates(CredentialService(store, hasher, settings), owner, name="")

    good, good_secret = new_credential()
    targets = [new_credential()[0].client_id for _ in range(10)]
    database.dispose()
    with server, httpx.Client(base_url=server.url) as http:
        assert token_request(http, good.client_id, good_secret).status_code == 200  # verified once

        def correct_rate(seconds: float) -> float:
            done, end = 0, time.monotonic() + seconds
            while time.monotonic() < end:
                assert token_request(http, good.client_id, good_secret).status_code == 200
                done += 1
            return done / seconds

        unloaded = correct_rate(2.0)
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
        time.sleep(0.3)
        loaded = correct_rate(2.0)
        flood_sent = int(flood.communicate(timeout=30)[0])
    assert flood_sent > 50  # the flood was real (argon2 answers slow the flooders down)
    print(
        f"correct requests/s unloaded {unloaded:.0f}, under flood {loaded:.0f} ({loaded / unloaded:.0%}); flood sent {flood_sent}"
    )
    assert loaded >= 0.5 * unloaded, (loaded, unloaded)


@pytest.mark.parametrize("settings_overrides", [LIMIT])
def test_holder_of_the_key_is_never_throttled_even_uncached(
    client: TestClient, make_user, make_client
) -> None:
    record, secret = make_client(make_user())
    fail_times(client, record.client_id, 3)
    # Never verified in this process: the secret's key matching the stored public key proves possession.
    assert token_request(client, record.client_id, secret).status_code == 200


@pytest.mark.parametrize("settings_overrides", [LIMIT])
def test_junk_assertions_cannot_lock_out_a_private_key_jwt_client(
    client: TestClient, make_user, make_client
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


def test_wrong_secrets_cost_no_argon2(client: TestClient, make_user, make_client) -> None:
    owner = make_user()
    victim, _ = make_client(owner)
    _, someone_elses_secret = make_client(owner)  # well-formed, but another key
    hasher = client.app.state.services.hasher
    misses = hasher.cache_misses
    for _ in range(5):
        assert token_request(client, victim.client_id, someone_elses_secret).status_code == 401
    assert hasher.cache_misses == misses


@pytest.mark.parametrize("settings_overrides", [LIMIT])
def test_refused_credential_with_known_secret_is_throttled_like_any_failure(
    app, make_user, make_client
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
    client: TestClient, make_user, make_client
) -> None:
    record, _ = make_client(make_user())
    for i in range(3):
        token_request(client, f"ghost-{i}@127.0.0.1/pcc", "x")
    unknown = token_request(client, "ghost-9@127.0.0.1/pcc", "x")
    known = token_request(client, record.client_id, "x")
    assert unknown.status_code == known.status_code == 429


@pytest.mark.parametrize("settings_overrides", [LIMIT])
def test_ipv6_sources_are_counted_per_64(app) -> None:
    statuses = []
    for host in range(1, 5):
        with TestClient(app, client=(f"2001:db8:1:2::{host}", 1)) as http:
            statuses.append(token_request(http, "ghost@127.0.0.1/pcc", "x").status_code)
    assert statuses == [401, 401, 401, 429]


def test_argon2_runs_at_lower_priority_than_the_event_loop(hasher) -> None:
    """First uses and floods must not take the CPU from warm traffic (Linux nice per thread)."""
    import os
    import threading

    from authserver.hashing import ARGON2_NICE

    pool_nice = hasher._pool.submit(
        lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    ).result()
    assert pool_nice >= ARGON2_NICE > os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
