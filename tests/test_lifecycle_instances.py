"""Two ``authserver serve`` instances (two workers each) on one PostgreSQL database: every
webhook delivery and every expiry notice is sent once, whichever process claims it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import standardwebhooks

from authserver.config import Settings, Webhook
from authserver.security.argon2 import SecretHasher
from authserver.store import Store
from authserver.store.database import Database
from authserver.usecases.credentials import CredentialService
from authserver.usecases.users import UserService
from tests.support.helpers import now, operator_creates, within
from tests.support.receivers import (
    Mailbox,
    Receiver,
    mail_text,
    new_webhook_secret,
    smtp_server,
)
from tests.support.servers import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
SECRET = new_webhook_secret()
CREDENTIALS = 12


@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_instances_send_every_event_and_notice_once(
    tmp_path: Path, database_url: str, hasher: SecretHasher
) -> None:
    receiver, mailbox = Receiver(), Mailbox()
    webhooks = (Webhook(url=receiver.url, secret=SECRET),)
    database = Database(database_url)
    store = Store(database)
    settings = Settings(database_url=database_url, webhooks=webhooks)
    service = CredentialService(store, hasher, settings)
    owners = [
        UserService(store).create(
            email=f"owner{i}@example.com", display_name="", role_names=(), now=now()
        )
        for i in range(3)
    ]
    ids = {
        operator_creates(service, owners[i % 3], expires_in=timedelta(days=1 + i % 6))[0].id
        for i in range(CREDENTIALS)
    }
    with receiver.serving(), smtp_server(mailbox) as smtp_port:
        env = {
            "AUTHSERVER_WEBHOOKS": json.dumps([{"url": receiver.url, "secret": SECRET}]),
            "AUTHSERVER_MAIL_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
            "AUTHSERVER_MAIL_FROM": "authserver@example.com",
        }
        with ServerProcess(database_url, tmp_path, workers=2, **env):
            with ServerProcess(database_url, tmp_path, workers=2, **env):

                def settled() -> bool:
                    rows = store.outbox.recent(channel=None, limit=1000)
                    expiring = [r for r in rows if r.type == "credential.expiring"]
                    return len(expiring) == CREDENTIALS and all(
                        r.state == "delivered" for r in rows
                    )

                within(60, settled)
    database.dispose()
    for delivery in receiver.received:  # every one signed as Standard Webhooks says
        standardwebhooks.Webhook(SECRET).verify(delivery.body, delivery.headers)
    webhook_ids = [d.headers["webhook-id"] for d in receiver.received]
    assert len(webhook_ids) == len(set(webhook_ids)) == 2 * CREDENTIALS
    told = [
        json.loads(d.body)["data"]["client"]["id"]
        for d in receiver.received
        if json.loads(d.body)["type"] == "credential.expiring"
    ]
    assert sorted(told) == sorted(ids)  # each credential's notice once
    listed = [
        line
        for message in mailbox.messages
        for line in mail_text(message).splitlines()
        if line.startswith("- ")
    ]
    assert len(listed) == CREDENTIALS  # every credential in exactly one e-mail
