"""The credential lifetime policy (``[policy]``): ``max_lifetime`` caps every new credential's
expiry, ``max_idle`` stops a credential that nobody uses — through every front door."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update
from starlette.testclient import TestClient

from authserver.cli import main
from authserver.config import Settings, load_settings
from authserver.errors import ConfigError
from authserver.store import Store
from authserver.store.last_used import Batch
from authserver.store.models import PersonalClient
from tests.support.helpers import now, token_request
from tests.support.types import MakeClient, MakeUser
from tests.support.ui_helpers import create, sign_in

LIFETIME = {"policy_max_lifetime": "90d"}
IDLE = {"policy_max_idle": "30d"}


def _bearer(client: TestClient, make_user: MakeUser, make_client: MakeClient) -> str:
    record, secret = make_client(make_user())
    return str(token_request(client, record.client_id, secret).json()["access_token"])


@pytest.mark.parametrize("settings_overrides", [LIFETIME])
def test_a_credential_asked_for_without_expiry_gets_the_maximum(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    token = _bearer(client, make_user, make_client)
    created = client.post(
        "/api/v1/iam/personal_clients",
        json={"display_name": "Created by Cone"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 200, created.text
    expires = created.json()["client"]["expiresTime"]
    from datetime import datetime

    lifetime = datetime.fromisoformat(expires.replace("Z", "+00:00")) - now()
    assert timedelta(days=89, hours=23) < lifetime <= timedelta(days=90)


@pytest.mark.parametrize("settings_overrides", [LIFETIME])
def test_a_longer_lifetime_is_refused_naming_the_policy(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    token = _bearer(client, make_user, make_client)
    refused = client.post(
        "/api/v1/iam/personal_clients",
        json={"expires": f"{91 * 86400}s"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert refused.status_code == 400
    assert refused.json() == {
        "code": 3,
        "message": "expiresTime: the lifetime policy allows at most 90 days",
    }


@pytest.mark.parametrize("settings_overrides", [LIFETIME])
def test_registration_follows_the_policy(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    token = _bearer(client, make_user, make_client)
    answer = client.post(
        "/auth/v1/register",
        json={"client_name": "ci", "expires_in": 200 * 86400},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_client_metadata"
    assert "lifetime policy" in answer.json()["error_description"]


def test_the_cli_refuses_a_lifetime_beyond_the_policy(
    database_url: str, make_user: MakeUser
) -> None:
    owner = make_user()
    env = {"AUTHSERVER_DATABASE_URL": database_url, "AUTHSERVER_POLICY_MAX_LIFETIME": "30d"}
    refused = CliRunner().invoke(
        main, ["clients", "create", "--user", owner.email, "--expires", "60d"], env=env
    )
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines()[-1] == (
        "error: --expires: the lifetime policy allows at most 30 days"
    )
    capped = CliRunner().invoke(
        main, ["clients", "create", "--user", owner.email, "--json"], env=env
    )
    assert capped.exit_code == 0, capped.output
    assert json.loads(capped.output)["client"]["expiresTime"]


@pytest.mark.parametrize("settings_overrides", [{"policy_max_lifetime": "7d"}])
def test_the_page_offers_only_what_the_policy_allows(
    client: TestClient, make_user: MakeUser, store: Store
) -> None:
    from tests.support.helpers import PASSWORD, services_of

    owner = make_user(email="pat@example.com")
    services_of(client.app).people.set_password(user_ref=owner.id, password=PASSWORD, now=now())
    sign_in(client, "pat@example.com")
    page = client.get("/ui/personal-clients/new").text
    assert 'value="never"' not in page and 'value="30d"' not in page
    assert 'value="max" checked' in page and "7 days (the most allowed)" in page
    assert create(client, expiry="max").status_code == 200
    (record,) = store.credentials.all(user_id=owner.id)
    assert record.expires_time is not None
    assert record.expires_time - now() <= timedelta(days=7)
    refused = create(client, expiry="never")
    assert refused.status_code == 400
    assert "the lifetime policy allows at most 7 days" in refused.text


@pytest.mark.parametrize("settings_overrides", [IDLE])
def test_a_credential_unused_for_longer_than_max_idle_stops_authenticating(
    client: TestClient, make_user: MakeUser, make_client: MakeClient, store: Store
) -> None:
    record, secret = make_client(make_user())
    assert token_request(client, record.client_id, secret).status_code == 200
    with store.database.session() as session:  # as if its last use were 31 days ago
        session.execute(
            update(PersonalClient)
            .where(PersonalClient.id == record.id)
            .values(last_used_at=now() - timedelta(days=31), created_at=now() - timedelta(days=40))
        )
    services = client.app.state.services  # type: ignore[attr-defined]
    services.state_cache.forget(record.client_id)
    services.last_used._pending = Batch()  # noqa: SLF001 - the recent use must not be flushed
    refused = token_request(client, record.client_id, secret)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"


@pytest.mark.parametrize("settings_overrides", [IDLE])
def test_a_credential_used_recently_keeps_working_under_max_idle(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    for _ in range(3):
        assert token_request(client, record.client_id, secret).status_code == 200


@pytest.mark.parametrize(
    "text", ['[policy]\nmax_lifetime = "soon"\n', '[policy]\nmax_idle = "-1d"\n']
)
def test_a_bad_policy_duration_is_refused_at_start(tmp_path: Path, text: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"\[policy\]"):
        load_settings(path, environ={})


def test_no_policy_by_default() -> None:
    assert Settings().max_lifetime is None and Settings().max_idle is None
