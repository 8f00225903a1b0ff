"""Rotation with overlap: a new secret for the same credential; the old one (and its key, for
``private_key_jwt``) keeps working for the grace period asked for, then never again."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import update
from starlette.testclient import TestClient

from authserver.cli import main
from authserver.client import assertion_form
from authserver.records import ClientRecord
from authserver.store import Store
from authserver.store.models import PersonalClient
from tests.support.helpers import now, token_request
from tests.support.types import MakeClient, MakeUser

ROTATE = "/api/v1/iam/personal_clients/{id}/rotate"


def _rotate(client: TestClient, credential: tuple[ClientRecord, str], **body: Any) -> Any:
    record, secret = credential
    token = token_request(client, record.client_id, secret).json()["access_token"]
    return client.post(
        ROTATE.format(id=record.id), json=body, headers={"Authorization": f"Bearer {token}"}
    )


@pytest.fixture
def credential(make_user: MakeUser, make_client: MakeClient) -> tuple[ClientRecord, str]:
    return make_client(make_user())


def test_rotation_gives_the_same_credential_a_new_secret(
    client: TestClient, credential: tuple[ClientRecord, str]
) -> None:
    record, old = credential
    answer = _rotate(client, credential)
    assert answer.status_code == 200, answer.text
    rotated = answer.json()
    assert rotated["client"]["id"] == record.id
    assert rotated["client"]["clientId"] == record.client_id
    new = rotated["clientSecret"]
    assert new != old and new.startswith("secret-token:")
    assert token_request(client, record.client_id, new).status_code == 200


def test_without_grace_the_old_secret_stops_at_once(
    client: TestClient, credential: tuple[ClientRecord, str]
) -> None:
    record, old = credential
    assert _rotate(client, credential).status_code == 200
    assert token_request(client, record.client_id, old).status_code == 401


def test_with_grace_the_old_secret_works_until_it_ends(
    client: TestClient, credential: tuple[ClientRecord, str], store: Store
) -> None:
    record, old = credential
    answer = _rotate(client, credential, gracePeriod="3600s")
    new = answer.json()["clientSecret"]
    assert token_request(client, record.client_id, old).status_code == 200
    assert token_request(client, record.client_id, new).status_code == 200
    with store.database.session() as session:  # the grace period is over
        session.execute(
            update(PersonalClient)
            .where(PersonalClient.id == record.id)
            .values(previous_until=now() - timedelta(seconds=1), version=PersonalClient.version)
        )
    client.app.state.services.state_cache.forget(record.client_id)  # type: ignore[attr-defined]
    assert token_request(client, record.client_id, old).status_code == 401
    assert token_request(client, record.client_id, new).status_code == 200


def test_the_old_key_signs_assertions_during_the_grace_period(
    client: TestClient, credential: tuple[ClientRecord, str]
) -> None:
    record, old = credential
    _rotate(client, credential, gracePeriod="600s")
    form = assertion_form(old, client_id=record.client_id, audience="http://127.0.0.1:8000")
    answer = client.post("/auth/v1/token", data={"grant_type": "client_credentials", **form})
    assert answer.status_code == 200, answer.text


def test_a_grace_period_beyond_the_limit_is_refused(
    client: TestClient, credential: tuple[ClientRecord, str]
) -> None:
    answer = _rotate(client, credential, gracePeriod=f"{8 * 86400}s")
    assert answer.status_code == 400
    assert answer.json() == {
        "code": 3,
        "message": "gracePeriod: 0 to 7 days (max_rotation_grace)",
    }


def test_rotation_may_set_a_new_expiry_within_the_callers_limits(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    credential = make_client(make_user(), expires_in=timedelta(days=10))
    later = _rotate(client, credential, expires=f"{20 * 86400}s")
    assert later.status_code == 403  # later than the calling credential's own expiry
    sooner = _rotate(client, credential, expires=f"{5 * 86400}s")
    assert sooner.status_code == 200, sooner.text


def test_the_cli_rotates_and_prints_the_secret_once(
    database_url: str, credential: tuple[ClientRecord, str]
) -> None:
    record, _ = credential
    result = CliRunner().invoke(
        main,
        ["clients", "rotate", record.client_id, "--grace", "1h", "--json"],
        env={"AUTHSERVER_DATABASE_URL": database_url},
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["client"]["id"] == record.id
    assert answer["clientSecret"].startswith("secret-token:")


def test_rotation_is_audited(
    client: TestClient, credential: tuple[ClientRecord, str], caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    with caplog.at_level(logging.INFO, "authserver.audit"):
        _rotate(client, credential)
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "authserver.audit"]
    assert [e["credential_id"] for e in events if e["event"] == "credential_rotated"] == [
        credential[0].id
    ]
