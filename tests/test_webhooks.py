"""Webhooks: every credential change writes its event with the change; background senders
deliver it at least once, signed per Standard Webhooks (verified here with the reference
library), retried while the receiver is down, slow or failing, and never sent twice at once
by two instances."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
import standardwebhooks
from click.testing import CliRunner
from starlette.testclient import TestClient

from authserver.app import create_app
from authserver.cli import main
from authserver.config import Settings, Webhook, load_settings
from authserver.domain.credentials import Caller, CredentialPatch
from authserver.domain.federation import NewTrust, TrustPatch
from authserver.errors import ConfigError
from authserver.runtime import deliveries
from authserver.runtime.services import Services
from authserver.store import Store
from authserver.store.database import Database, migrate
from authserver.store.outbox import WEBHOOK, Message
from authserver.usecases.credentials import CredentialService
from authserver.wire import client_json, trust_json
from tests.support.helpers import now, operator_creates, within
from tests.support.live import LiveServer
from tests.support.ports import free_port
from tests.support.receivers import Delivery, Receiver, new_webhook_secret
from tests.support.types import MakeUser

SECRET = new_webhook_secret()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """The receiver; every delivery it got is verified with the reference library at the end."""
    receiver = Receiver()
    yield receiver
    for delivery in receiver.received:
        verified(delivery)


@pytest.fixture
def settings_overrides(receiver: Receiver) -> dict[str, Any]:
    return {"webhooks": (Webhook(url=receiver.url, secret=SECRET),)}


@pytest.fixture
def services(settings: Settings, database: Database) -> Iterator[Services]:
    yield Services.build(settings, database)


def deliver(services: Services, *, after: timedelta = timedelta(0)) -> int:
    """One sender round, as the background task runs it, ``after`` from now."""

    async def round_trip() -> int:
        async with deliveries.http_client() as client:
            return await deliveries.send_webhooks(services, client, now=now() + after)

    return anyio.run(round_trip)


def verified(delivery: Delivery) -> dict[str, Any]:
    """The payload, once the reference library has checked the signature."""
    payload = standardwebhooks.Webhook(SECRET).verify(delivery.body, delivery.headers)
    assert isinstance(payload, dict)
    return payload


def created(services: Services, make_user: MakeUser, **kwargs: Any) -> Any:
    record, _ = operator_creates(services.credentials, make_user(), **kwargs)
    return record


def test_every_change_writes_its_event_with_the_credentials_json(
    services: Services, make_user: MakeUser, store: Store
) -> None:
    record = created(services, make_user)
    caller = Caller.operator()
    updated = services.credentials.update(
        caller=caller, ref=record.id, patch=CredentialPatch(display_name="renamed"), now=now()
    )
    rotated = services.credentials.rotate(
        caller=caller, ref=record.id, grace=timedelta(0), expires_in=None, now=now()
    )
    deleted = services.credentials.delete(caller=caller, ref=record.id, now=now())
    rows = list(reversed(store.outbox.recent(channel=WEBHOOK)))
    assert [r.type for r in rows] == [
        "credential.created",
        "credential.updated",
        "credential.rotated",
        "credential.deleted",
    ]
    clients = [json.loads(r.body)["data"]["client"] for r in rows]
    assert clients == [
        client_json(record),
        client_json(updated),
        client_json(rotated.record),
        client_json(deleted),
    ]
    assert not any(rotated.secret in r.body or "secret-token" in r.body for r in rows)


def test_a_change_that_fails_writes_no_event(
    services: Services, make_user: MakeUser, store: Store
) -> None:
    record = created(services, make_user)
    before = len(store.outbox.recent(channel=WEBHOOK))

    def clashing(_record: Any) -> list[Message]:  # an outbox id already taken: the write fails
        taken = store.outbox.recent(channel=WEBHOOK)[0].id
        return [Message(channel=WEBHOOK, target="x", type="t", body="{}", id=taken)]

    with pytest.raises(Exception):  # noqa: B017 - the database's own integrity error
        store.credentials.delete(id=record.id, now=now(), notify=clashing)
    assert store.credentials.get(id=record.id).deleted_at is None  # rolled back with it
    assert len(store.outbox.recent(channel=WEBHOOK)) == before


def test_delivery_is_signed_per_standard_webhooks(
    services: Services, make_user: MakeUser, receiver: Receiver, store: Store
) -> None:
    record = created(services, make_user)
    with receiver.serving():
        assert deliver(services) == 1
    [delivery] = receiver.received
    payload = verified(delivery)
    assert set(payload) == {"type", "timestamp", "data"}
    assert payload["type"] == "credential.created"
    assert payload["data"] == {"client": client_json(record)}
    assert delivery.headers["webhook-id"].startswith("msg_")
    assert delivery.headers["content-type"] == "application/json"
    [row] = store.outbox.recent(channel=WEBHOOK)
    assert (row.state, row.attempts, row.delivered_at is not None) == ("delivered", 1, True)
    assert deliver(services, after=timedelta(hours=1)) == 0  # delivered: never sent again


def test_a_forged_signature_is_refused_by_the_reference_library(
    services: Services, make_user: MakeUser, receiver: Receiver
) -> None:
    created(services, make_user)
    with receiver.serving():
        deliver(services)
    [delivery] = receiver.received
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(new_webhook_secret()).verify(delivery.body, delivery.headers)


def test_a_receiver_answering_500_gets_it_again_later(
    services: Services, make_user: MakeUser, receiver: Receiver, store: Store
) -> None:
    created(services, make_user)
    receiver.answers = [500]
    with receiver.serving():
        assert deliver(services) == 1
        [row] = store.outbox.recent(channel=WEBHOOK)
        assert (row.state, row.last_error) == ("pending", "HTTP 500")
        assert deliver(services) == 0  # not due before its backoff
        assert deliver(services, after=timedelta(seconds=6)) == 1
    assert [verified(d)["type"] for d in receiver.received] == ["credential.created"] * 2
    assert len({d.headers["webhook-id"] for d in receiver.received}) == 1  # the same message
    [row] = store.outbox.recent(channel=WEBHOOK)
    assert (row.state, row.attempts) == ("delivered", 2)


def test_a_receiver_that_is_down_gets_it_once_it_is_up(
    services: Services, make_user: MakeUser, receiver: Receiver, store: Store
) -> None:
    created(services, make_user)
    assert deliver(services) == 1  # nothing listens yet
    [row] = store.outbox.recent(channel=WEBHOOK)
    assert row.state == "pending" and row.last_error is not None
    assert row.last_error.startswith("cannot connect")
    with receiver.serving():
        assert deliver(services, after=timedelta(seconds=6)) == 1
    verified(receiver.received[0])
    assert store.outbox.recent(channel=WEBHOOK)[0].state == "delivered"


def test_a_slow_receiver_times_out_and_is_retried(
    services: Services,
    make_user: MakeUser,
    receiver: Receiver,
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deliveries, "TIMEOUT", 0.5)
    created(services, make_user)
    receiver.answers = ["slow"]
    with receiver.serving():
        deliver(services)
        row = store.outbox.recent(channel=WEBHOOK)[0]
        assert (row.state, row.last_error) == ("pending", "no answer within 0.5 s")
        deliver(services, after=timedelta(seconds=6))
    assert all(verified(d) for d in receiver.received)
    assert store.outbox.recent(channel=WEBHOOK)[0].state == "delivered"


def test_an_endless_answer_is_read_no_further_than_the_cap(
    services: Services, make_user: MakeUser, receiver: Receiver, store: Store
) -> None:
    created(services, make_user)
    receiver.answers = ["endless"]
    with receiver.serving():
        assert deliver(services) == 1
    assert store.outbox.recent(channel=WEBHOOK)[0].state == "delivered"


def test_a_redirect_is_not_followed(
    services: Services, make_user: MakeUser, receiver: Receiver, store: Store
) -> None:
    created(services, make_user)
    receiver.answers = [307]
    with receiver.serving():
        deliver(services)
    assert [d.path for d in receiver.received] == ["/hook"]
    row = store.outbox.recent(channel=WEBHOOK)[0]
    assert (row.state, row.last_error) == ("pending", "HTTP 307 (redirects are not followed)")


def test_after_24_hours_of_failures_a_delivery_is_marked_failed(
    services: Services, make_user: MakeUser, store: Store
) -> None:
    created(services, make_user)  # nothing ever listens
    assert deliver(services, after=timedelta(hours=23)) == 1
    assert store.outbox.recent(channel=WEBHOOK)[0].state == "pending"
    assert deliver(services, after=timedelta(hours=25)) == 1
    assert store.outbox.recent(channel=WEBHOOK)[0].state == "failed"
    assert deliver(services, after=timedelta(hours=30)) == 0


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {
            "webhooks": (
                Webhook(url="http://127.0.0.1:9/x", secret=SECRET, events=("credential.deleted",)),
            )
        }
    ],
)
def test_a_receiver_gets_only_the_events_it_asked_for(
    services: Services, make_user: MakeUser, store: Store
) -> None:
    record = created(services, make_user)
    services.credentials.delete(caller=Caller.operator(), ref=record.id, now=now())
    assert [r.type for r in store.outbox.recent(channel=WEBHOOK)] == ["credential.deleted"]


@pytest.mark.parametrize("settings_overrides", [{}])
def test_without_webhooks_nothing_is_written(
    services: Services, make_user: MakeUser, store: Store
) -> None:
    created(services, make_user)
    assert store.outbox.recent() == []


@pytest.mark.parametrize(
    "url",
    ["http://hooks.example.com/x", "ftp://127.0.0.1/x", "https://user:pw@hooks.example.com/"],
)
def test_webhook_urls_must_be_https_or_loopback(url: str) -> None:
    with pytest.raises(ConfigError, match="webhooks"):
        Settings(webhooks=(Webhook(url=url, secret=SECRET),))


@pytest.mark.parametrize(
    "secret", ["", "whsec_", "whsec_!!!", "abc" + SECRET[5:], "whsec_c2hvcnQ="]
)
def test_webhook_secrets_must_be_whsec_keys(secret: str) -> None:
    with pytest.raises(ConfigError, match="whsec_"):
        Settings(webhooks=(Webhook(url="https://hooks.example.com/", secret=secret),))


def test_webhook_events_must_be_known() -> None:
    with pytest.raises(ConfigError, match="unknown event 'credential.exploded'"):
        Settings(
            webhooks=(
                Webhook(
                    url="https://h.example.com/", secret=SECRET, events=("credential.exploded",)
                ),
            )
        )


def test_webhooks_from_the_file_with_a_secret_file(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text(SECRET + "\n")
    path = tmp_path / "authserver.toml"
    path.write_text(
        '[[webhooks]]\nurl = "https://hooks.example.com/a"\n'
        f'secret_file = "{tmp_path / "secret"}"\nevents = ["credential.leaked"]\n'
    )
    [hook] = load_settings(path, environ={}).webhooks
    assert (hook.url, hook.secret, hook.events) == (
        "https://hooks.example.com/a",
        SECRET,
        ("credential.leaked",),
    )
    assert SECRET not in repr(hook)


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_instances_never_send_the_same_delivery(
    settings: Settings, database: Database, make_user: MakeUser, receiver: Receiver, store: Store
) -> None:
    owner = make_user()
    first = Services.build(settings, database)
    second_database = Database(settings.database_url)
    second = Services.build(settings, second_database)
    for _ in range(30):
        operator_creates(first.credentials, owner)
    rounds: list[int] = []

    def sender(services: Services) -> None:
        while (sent := deliver(services)) > 0:
            rounds.append(sent)

    with receiver.serving():
        threads = [threading.Thread(target=sender, args=(s,)) for s in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    second_database.dispose()
    ids = [d.headers["webhook-id"] for d in receiver.received]
    assert len(ids) == len(set(ids)) == 30 == sum(rounds)
    assert all(verified(d)["type"] == "credential.created" for d in receiver.received)
    assert {r.state for r in store.outbox.recent(channel=WEBHOOK)} == {"delivered"}


def test_the_server_delivers_in_the_background(tmp_path: Path, receiver: Receiver) -> None:
    port = free_port()
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/live.db",
        issuer=f"http://127.0.0.1:{port}",
        webhooks=(Webhook(url=receiver.url, secret=SECRET),),
    )
    database = Database(settings.database_url)
    migrate(database)
    app = create_app(settings, database=database)
    with receiver.serving(), LiveServer(app, port):
        services: Services = app.state.services
        owner = services.users.create(
            email="owner@example.com", display_name="", role_names=(), now=now()
        )
        record, _ = operator_creates(services.credentials, owner)
        within(10, lambda: len(receiver.received) == 1)
    assert verified(receiver.received[0])["data"]["client"]["id"] == record.id
    database.dispose()


def test_webhooks_list_shows_deliveries_and_their_state(
    services: Services, make_user: MakeUser, receiver: Receiver, settings: Settings
) -> None:
    record = created(services, make_user)
    receiver.answers = [500]
    with receiver.serving():
        deliver(services)
    env = {"AUTHSERVER_DATABASE_URL": settings.database_url}
    result = CliRunner().invoke(main, ["webhooks", "list", "--json"], env=env)
    assert result.exit_code == 0, result.output
    [delivery] = json.loads(result.output)
    assert delivery["type"] == "credential.created"
    assert delivery["clientId"] == record.client_id
    assert (delivery["state"], delivery["attempts"], delivery["lastError"]) == (
        "pending",
        1,
        "HTTP 500",
    )
    assert delivery["url"] == receiver.url and delivery["nextAttemptAt"]
    text = CliRunner().invoke(main, ["webhooks", "list"], env=env)
    assert text.exit_code == 0
    assert "credential.created" in text.output and "pending, next attempt" in text.output


def test_a_leak_report_sends_credential_leaked(
    client: TestClient, services: Services, make_user: MakeUser, store: Store
) -> None:
    record, secret = operator_creates(services.credentials, make_user())
    assert (
        client.post("/auth/v1/credentials/revoke", json={"credentials": [secret]}).status_code
        == 202
    )
    leaked = [r for r in store.outbox.recent(channel=WEBHOOK) if r.type == "credential.leaked"]
    [row] = leaked
    body = json.loads(row.body)
    assert body["data"]["client"]["id"] == record.id
    assert body["data"]["client"]["deletedAt"]
    assert secret not in row.body


def test_credential_service_without_a_lifecycle_still_writes_events(
    store: Store, settings: Settings, make_user: MakeUser
) -> None:
    from authserver.security.argon2 import SecretHasher

    service = CredentialService(store, SecretHasher(settings), settings)
    operator_creates(service, make_user())
    assert [r.type for r in store.outbox.recent()] == ["credential.created"]


def test_deleting_a_user_sends_credential_deleted_for_each_credential(
    services: Services, make_user: MakeUser, store: Store
) -> None:
    owner = make_user()
    first, _ = operator_creates(services.credentials, owner)
    second, _ = operator_creates(services.credentials, owner)
    services.users.delete(ref=owner.id, now=now())
    deleted = [json.loads(r.body) for r in store.outbox.recent() if r.type == "credential.deleted"]
    assert sorted(e["data"]["client"]["id"] for e in deleted) == sorted([first.id, second.id])
    assert all(e["data"]["client"]["deletedAt"] for e in deleted)
    assert [e["data"]["client"] for e in deleted if e["data"]["client"]["id"] == first.id] == [
        client_json(store.credentials.get(id=first.id))
    ]


def test_a_federation_trusts_changes_send_events_with_the_trusts_json(
    services: Services, make_user: MakeUser, store: Store
) -> None:
    owner = make_user()
    caller = Caller.operator()
    trust = services.trusts.create(
        caller=caller,
        owner_id=owner.id,
        new=NewTrust(
            issuer="https://token.actions.githubusercontent.com",
            condition='claims.repository == "acme/deploy"',
            display_name="deploy",
        ),
        now=now(),
    )
    updated = services.trusts.update(
        caller=caller,
        ref=trust.id,
        patch=TrustPatch(condition='claims.repository == "acme/site"'),
        now=now(),
    )
    deleted = services.trusts.delete(caller=caller, ref=trust.id, now=now())
    rows = list(reversed(store.outbox.recent(channel=WEBHOOK)))
    assert [r.type for r in rows] == [
        "credential.created",
        "credential.updated",
        "credential.deleted",
    ]
    clients = [json.loads(r.body)["data"]["client"] for r in rows]
    assert clients == [trust_json(trust), trust_json(updated), trust_json(deleted)]
    assert clients[1]["condition"] == 'claims.repository == "acme/site"'


def test_an_expiring_trust_is_told_of_as_a_trust(
    services: Services, make_user: MakeUser, store: Store
) -> None:
    trust = services.trusts.create(
        caller=Caller.operator(),
        owner_id=make_user().id,
        new=NewTrust(
            issuer="https://gitlab.com",
            condition='claims.project_path == "acme/site"',
            expires_in=timedelta(days=5),
        ),
        now=now(),
    )
    assert services.lifecycle.check(now=now()) == 1
    [row] = [r for r in store.outbox.recent(channel=WEBHOOK) if r.type == "credential.expiring"]
    data = json.loads(row.body)["data"]
    assert data["client"] == trust_json(trust)
    assert data["daysLeft"] == 5
