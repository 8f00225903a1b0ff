"""Brute-force protection: failures throttled per client_id and per source, never the innocent."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.conftest import token_request

LIMIT = {"auth_failure_limit": 3, "auth_failure_window": 60}


def fail_times(client: TestClient, client_id: str, times: int) -> None:
    for _ in range(times):
        assert token_request(client, client_id, "wrong").status_code == 401


@pytest.mark.parametrize("settings_overrides", [LIMIT])
def test_repeated_failures_for_a_client_id_get_429(client: TestClient, make_user, make_client) -> None:
    record, _ = make_client(make_user())
    fail_times(client, record.client_id, 3)
    response = token_request(client, record.client_id, "another-guess")
    assert response.status_code == 429
    assert response.json()["error"] == "temporarily_unavailable"
    assert 1 <= int(response.headers["retry-after"]) <= 60


@pytest.mark.parametrize("settings_overrides", [LIMIT])
def test_throttled_client_id_still_admits_its_verified_secret(client: TestClient, make_user, make_client) -> None:
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
def test_another_credentials_failures_do_not_throttle_this_one(client: TestClient, make_user, make_client) -> None:
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


def test_repeated_identical_wrong_secret_costs_no_argon2(client: TestClient, make_user, make_client) -> None:
    record, _ = make_client(make_user())
    hasher = client.app.state.services.hasher
    token_request(client, record.client_id, "same-wrong")
    misses = hasher.cache_misses
    token_request(client, record.client_id, "same-wrong")
    assert hasher.cache_misses == misses


FLOOD = Path(__file__).resolve().parents[1] / "bench" / "flood.py"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_flood_of_wrong_secrets_leaves_correct_traffic_served(database_url: str, tmp_path, hasher) -> None:
    """A separate process sends ~200 wrong secrets/s while correct requests are timed."""
    import subprocess
    import sys
    import time
    from datetime import UTC, datetime

    import httpx

    from authserver import manage
    from authserver.config import load_settings
    from authserver.domain.credentials import Caller
    from authserver.store.database import Database, migrate
    from authserver.store.repository import Repository
    from tests.servers import ServerProcess

    server = ServerProcess(database_url, tmp_path)
    settings = load_settings(environ=server.env)
    database = Database(settings.database_url)
    migrate(database)
    repo = Repository(database)
    owner = manage.create_user(repo, email="f@example.com", display_name="", role_names=["r"], now=datetime.now(UTC))

    def new_credential():
        return manage.create_credential(
            repo, hasher, settings, caller=Caller.operator(), owner=owner, display_name="",
            allow_source_cidr=(), scoped_roles=(), expires_in=None, now=datetime.now(UTC),
        )

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
            [sys.executable, str(FLOOD), f"{server.url}/auth/v1/token", ",".join(targets), "3", "200"],
            stdout=subprocess.PIPE, text=True,
        )
        time.sleep(0.3)
        loaded = correct_rate(2.0)
        flood_sent = int(flood.communicate(timeout=30)[0])
    assert flood_sent > 50  # the flood was real (argon2 answers slow the flooders down)
    print(f"correct requests/s unloaded {unloaded:.0f}, under flood {loaded:.0f} ({loaded / unloaded:.0%}); flood sent {flood_sent}")
    assert loaded >= 0.5 * unloaded, (loaded, unloaded)
