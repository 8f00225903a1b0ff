"""Expiry notices and e-mail: each (credential, threshold) claimed once across instances,
one e-mail per owner per check (sent to a real SMTP server on loopback), one webhook event
per credential; an e-mail that could not be sent is retried, never dropped."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from starlette.testclient import TestClient

from authserver.app import create_app
from authserver.config import Settings, Webhook
from authserver.domain.credentials import Caller
from authserver.domain.lifecycle import days_left, due_threshold, in_words
from authserver.errors import ConfigError
from authserver.runtime import deliveries
from authserver.runtime.services import Services
from authserver.store import Store
from authserver.store.database import Database, migrate
from authserver.store.outbox import MAIL, WEBHOOK
from authserver.usecases.lifecycle import Lifecycle
from authserver.wire import timestamp
from tests.support.helpers import now, operator_creates, within
from tests.support.live import LiveServer
from tests.support.ports import free_port
from tests.support.receivers import Mailbox, new_webhook_secret, smtp_server
from tests.support.receivers import mail_text as text
from tests.support.tls import self_signed
from tests.support.types import MakeUser

FROM = "authserver@example.com"


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture
def smtp_port(mailbox: Mailbox) -> Iterator[int]:
    with smtp_server(mailbox) as port:
        yield port


@pytest.fixture
def settings_overrides(smtp_port: int) -> dict[str, Any]:
    return {
        "mail_smtp_url": f"smtp://127.0.0.1:{smtp_port}",
        "mail_from": FROM,
        # Nothing listens there: the events are only written, not sent, here.
        "webhooks": (Webhook(url="http://127.0.0.1:9/hook", secret=new_webhook_secret()),),
    }


@pytest.fixture
def services(settings: Settings, database: Database) -> Services:
    return Services.build(settings, database)


def send_mail(services: Services, *, after: timedelta = timedelta(0)) -> int:
    return anyio.run(lambda: deliveries.send_mail(services, now=now() + after))


def events(store: Store, type: str) -> list[dict[str, Any]]:
    rows = [r for r in store.outbox.recent(channel=WEBHOOK, limit=1000) if r.type == type]
    return [json.loads(r.body) for r in reversed(rows)]


def test_an_expiring_credential_gets_an_email_and_an_event(
    services: Services, make_user: MakeUser, mailbox: Mailbox, store: Store
) -> None:
    owner = make_user()
    record, _ = operator_creates(
        services.credentials, owner, name="ci deploy", expires_in=timedelta(days=5)
    )
    assert services.lifecycle.check(now=now()) == 1
    assert send_mail(services) == 1
    [mail] = mailbox.messages
    assert (mail["To"], mail["From"]) == (owner.email, FROM)
    assert mail["Subject"] == "Your credential expires soon"
    body = text(mail)
    assert "ci deploy" in body and record.client_id in body
    assert "expires in 4 days" in body  # 5 days less the moments since its creation
    assert f": {timestamp(record.expires_time)}" in body
    assert f"{services.settings.issuer}/ui/personal-clients/{record.id}" in body
    [event] = events(store, "credential.expiring")
    assert event["data"]["daysLeft"] == 5
    assert event["data"]["client"]["id"] == record.id


def test_a_second_check_sends_nothing_again(
    services: Services, make_user: MakeUser, mailbox: Mailbox, store: Store
) -> None:
    operator_creates(services.credentials, make_user(), expires_in=timedelta(days=5))
    assert services.lifecycle.check(now=now()) == 1
    assert services.lifecycle.check(now=now() + timedelta(hours=1)) == 0
    send_mail(services)
    assert len(mailbox.messages) == 1
    assert len(events(store, "credential.expiring")) == 1


def test_one_email_per_owner_lists_their_credentials(
    services: Services, make_user: MakeUser, mailbox: Mailbox, store: Store
) -> None:
    owner, other = make_user(), make_user()
    soon, _ = operator_creates(services.credentials, owner, name="a", expires_in=timedelta(days=3))
    later, _ = operator_creates(
        services.credentials, owner, name="b", expires_in=timedelta(days=20)
    )
    operator_creates(services.credentials, other, name="c", expires_in=timedelta(days=6))
    operator_creates(services.credentials, owner, name="far", expires_in=timedelta(days=90))
    operator_creates(services.credentials, owner, name="never")
    assert services.lifecycle.check(now=now()) == 3
    send_mail(services)
    by_owner = {m["To"]: m for m in mailbox.messages}
    assert set(by_owner) == {owner.email, other.email}
    body = text(by_owner[owner.email])
    assert soon.client_id in body and later.client_id in body
    assert "far" not in body and "never" not in body
    assert by_owner[owner.email]["Subject"] == "2 of your credentials expire soon or have expired"
    assert len(events(store, "credential.expiring")) == 3


def test_a_credential_created_inside_a_threshold_gets_one_notice_per_crossing(
    services: Services, make_user: MakeUser, store: Store
) -> None:
    record, _ = operator_creates(services.credentials, make_user(), expires_in=timedelta(days=5))
    assert record.expires_time is not None
    expires = record.expires_time
    checks = [
        now(),  # within 30 and 7 days: the 7-day notice alone
        now() + timedelta(days=1),
        expires - timedelta(hours=12),  # within 1 day
        expires - timedelta(hours=1),
        expires + timedelta(hours=1),  # expired
        expires + timedelta(days=2),
    ]
    assert [services.lifecycle.check(now=when) for when in checks] == [1, 0, 1, 0, 1, 0]
    assert [e["data"]["daysLeft"] for e in events(store, "credential.expiring")] == [5, 1]
    [expired] = events(store, "credential.expired")
    assert "daysLeft" not in expired["data"]


def test_a_rotation_to_a_later_expiry_makes_its_notices_due_again(
    services: Services, make_user: MakeUser, store: Store
) -> None:
    record, _ = operator_creates(services.credentials, make_user(), expires_in=timedelta(days=5))
    assert services.lifecycle.check(now=now()) == 1
    services.credentials.rotate(
        caller=Caller.operator(),
        ref=record.id,
        grace=timedelta(0),
        expires_in=timedelta(days=6),
        now=now(),
    )
    assert services.lifecycle.check(now=now()) == 1  # the new expiry, told once
    assert services.lifecycle.check(now=now()) == 0
    assert [e["data"]["daysLeft"] for e in events(store, "credential.expiring")] == [5, 6]


def test_a_deleted_credential_gets_no_notice(services: Services, make_user: MakeUser) -> None:
    record, _ = operator_creates(services.credentials, make_user(), expires_in=timedelta(days=5))
    services.credentials.delete(caller=Caller.operator(), ref=record.id, now=now())
    assert services.lifecycle.check(now=now()) == 0


def test_a_refused_email_is_sent_again_later(
    services: Services, make_user: MakeUser, mailbox: Mailbox, store: Store
) -> None:
    mailbox.refuse = 1
    operator_creates(services.credentials, make_user(), expires_in=timedelta(days=1))
    services.lifecycle.check(now=now())
    assert send_mail(services) == 1
    assert mailbox.messages == [] and mailbox.refused == 1
    [row] = store.outbox.recent(channel=MAIL)
    assert row.state == "pending" and row.last_error == "SMTP 451 4.3.0 Try again later"
    assert send_mail(services) == 0  # its backoff first
    assert send_mail(services, after=timedelta(seconds=6)) == 1
    assert len(mailbox.messages) == 1
    assert store.outbox.recent(channel=MAIL)[0].state == "delivered"


@pytest.mark.parametrize("settings_overrides", [{}])
def test_an_email_waits_while_the_mail_server_is_down(
    settings: Settings, database: Database, make_user: MakeUser, mailbox: Mailbox, store: Store
) -> None:
    down = Settings(
        database_url=settings.database_url,
        mail_smtp_url=f"smtp://127.0.0.1:{free_port()}",
        mail_from=FROM,
    )
    services = Services.build(down, database)
    operator_creates(services.credentials, make_user(), expires_in=timedelta(days=1))
    services.lifecycle.check(now=now())
    for hours in (0, 30, 60):  # never given up, unlike a webhook after 24 h
        send_mail(services, after=timedelta(hours=hours))
        [row] = store.outbox.recent(channel=MAIL)
        assert row.state == "pending"
        assert row.last_error is not None and row.last_error.startswith("cannot send through")
    with smtp_server(mailbox) as port:
        up = Services.build(
            Settings(
                database_url=settings.database_url,
                mail_smtp_url=f"smtp://127.0.0.1:{port}",
                mail_from=FROM,
            ),
            database,
        )
        assert send_mail(up, after=timedelta(hours=61)) == 1
    assert len(mailbox.messages) == 1


def test_a_leak_report_emails_the_owner(
    client: TestClient, services: Services, make_user: MakeUser, mailbox: Mailbox
) -> None:
    owner = make_user()
    record, secret = operator_creates(services.credentials, owner, name="laptop")
    client.post("/auth/v1/credentials/revoke", json={"credentials": [secret]})
    send_mail(services)
    [mail] = mailbox.messages
    assert mail["To"] == owner.email
    assert "laptop" in mail["Subject"] and "leaked" in mail["Subject"]
    assert record.client_id in text(mail) and secret not in text(mail)


@pytest.mark.parametrize("settings_overrides", [{}])
def test_with_nowhere_to_send_nothing_is_claimed(
    services: Services, make_user: MakeUser, store: Store
) -> None:
    operator_creates(services.credentials, make_user(), expires_in=timedelta(days=1))
    assert services.lifecycle.check(now=now()) == 0
    assert store.outbox.recent(channel=None) == []


def test_smtp_auth_with_a_password_file(
    tmp_path: Path, settings: Settings, database: Database, make_user: MakeUser
) -> None:
    mailbox = Mailbox()
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(*args: Any) -> AuthResult:
        data = args[4]  # (server, session, envelope, mechanism, auth_data)
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"hunter2-but-longer")

    (tmp_path / "smtp-password").write_text("hunter2-but-longer\n")
    with smtp_server(mailbox, authenticator=authenticator, auth_require_tls=False) as port:
        services = Services.build(
            Settings(
                database_url=settings.database_url,
                mail_smtp_url=f"smtp://127.0.0.1:{port}",
                mail_from=FROM,
                mail_username="mailer",
                mail_password_file=str(tmp_path / "smtp-password"),
            ),
            database,
        )
        operator_creates(services.credentials, make_user(), expires_in=timedelta(days=1))
        services.lifecycle.check(now=now())
        send_mail(services)
    assert logins == [(b"mailer", b"hunter2-but-longer")]
    assert len(mailbox.messages) == 1


@pytest.mark.parametrize(
    ("mail", "problem"),
    [
        ({"mail_smtp_url": "http://mail.example.com"}, "smtp_url must be"),
        ({"mail_smtp_url": "smtp://user:pw@mail.example.com"}, "smtp_url is scheme"),
        ({"mail_smtp_url": "smtp://mail.example.com"}, "from must be"),
        ({"mail_from": FROM}, "needs smtp_url"),
        (
            {
                "mail_smtp_url": "smtps://m.example.com",
                "mail_from": FROM,
                "mail_password_file": "x",
            },
            "needs username",
        ),
        (
            {
                "mail_smtp_url": "smtps://m.example.com",
                "mail_from": FROM,
                "mail_username": "u",
                "mail_password_file": "/nonexistent/file",
            },
            "cannot read",
        ),
    ],
)
def test_bad_mail_settings_are_refused(mail: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        Settings(**mail)


@pytest.mark.parametrize("days", [(0,), (30, 30), (400,)])
def test_bad_expiry_notice_days_are_refused(days: tuple[int, ...]) -> None:
    with pytest.raises(ConfigError, match="expiry_notice_days"):
        Settings(expiry_notice_days=days)


def test_due_threshold_is_the_nearest_one_crossed() -> None:
    at = now()
    days = (30, 7, 1)
    assert due_threshold(at + timedelta(days=40), now=at, notice_days=days) is None
    assert due_threshold(at + timedelta(days=30), now=at, notice_days=days) == 30
    assert due_threshold(at + timedelta(days=6), now=at, notice_days=days) == 7
    assert due_threshold(at + timedelta(hours=2), now=at, notice_days=days) == 1
    assert due_threshold(at, now=at, notice_days=days) == 0
    assert days_left(at + timedelta(hours=2), now=at) == 1
    assert in_words(at + timedelta(hours=2, minutes=5), now=at) == "in 2 hours"
    assert in_words(at - timedelta(days=2), now=at) == "expired 2 days ago"


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_instances_send_each_notice_once(
    settings: Settings, database: Database, make_user: MakeUser, store: Store, mailbox: Mailbox
) -> None:
    first = Services.build(settings, database)
    owners = [make_user() for _ in range(3)]
    expected = set()
    for index in range(24):
        record, _ = operator_creates(
            first.credentials, owners[index % 3], expires_in=timedelta(days=1 + index % 9)
        )
        expected.add(record.id)
    databases = [Database(settings.database_url) for _ in range(4)]
    instances = [Lifecycle(Store(d), settings) for d in databases]
    start = threading.Barrier(len(instances))
    claimed: list[int] = []
    at = now()

    def check(lifecycle: Lifecycle) -> None:
        start.wait()
        claimed.append(lifecycle.check(now=at))

    threads = [threading.Thread(target=check, args=(i,)) for i in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for d in databases:
        d.dispose()
    assert sum(claimed) == 24
    told = [e["data"]["client"]["id"] for e in events(store, "credential.expiring")]
    assert sorted(told) == sorted(expected)  # each credential once
    while send_mail(first):
        pass
    listed = [line for m in mailbox.messages for line in text(m).splitlines() if "/pcc)" in line]
    assert len(listed) == 24  # every credential in exactly one e-mail
    assert len(mailbox.messages) <= 3 * len(instances)


def test_the_server_checks_and_mails_in_the_background(
    tmp_path: Path, mailbox: Mailbox, smtp_port: int
) -> None:
    port = free_port()
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/live.db",
        issuer=f"http://127.0.0.1:{port}",
        mail_smtp_url=f"smtp://127.0.0.1:{smtp_port}",
        mail_from=FROM,
    )
    database = Database(settings.database_url)
    migrate(database)
    app = create_app(settings, database=database)
    services: Services = app.state.services
    owner = services.users.create(email="o@example.com", display_name="", role_names=(), now=now())
    operator_creates(services.credentials, owner, expires_in=timedelta(days=2))
    with LiveServer(app, port):
        within(10, lambda: len(mailbox.messages) == 1)
    assert mailbox.messages[0]["To"] == "o@example.com"
    database.dispose()


@pytest.mark.parametrize("scheme", ["smtp+starttls", "smtps"])
def test_email_over_tls_checks_the_certificate(
    scheme: str,
    tmp_path: Path,
    settings: Settings,
    database: Database,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    tls: dict[str, Any] = (
        {"tls_context": context, "require_starttls": True}
        if scheme == "smtp+starttls"
        else {"ssl_context": context}
    )
    mailbox = Mailbox()
    with smtp_server(mailbox, **tls) as port:
        services = Services.build(
            Settings(
                database_url=settings.database_url,
                mail_smtp_url=f"{scheme}://127.0.0.1:{port}",
                mail_from=FROM,
            ),
            database,
        )
        operator_creates(services.credentials, make_user(), expires_in=timedelta(days=1))
        services.lifecycle.check(now=now())
        send_mail(services)  # the certificate is not trusted: nothing is sent
        assert mailbox.messages == []
        [row] = services.store.outbox.recent(channel=MAIL)
        assert row.state == "pending" and row.last_error is not None
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # now it is
        assert send_mail(services, after=timedelta(seconds=6)) == 1
    assert len(mailbox.messages) == 1
