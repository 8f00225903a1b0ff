"""The audit trail in the database: what is kept, how it is written, read, exported, purged."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from authserver.cli import main
from authserver.config import Settings
from authserver.domain import network
from authserver.domain.credentials import Caller
from authserver.errors import NotFound
from authserver.records import AuditEventRecord
from authserver.security.audit import audit
from authserver.store import Store
from authserver.store.audit import AuditFilter
from authserver.store.database import Database, migrate
from authserver.usecases.container import UseCases
from tests.support.helpers import mint, now, operator_creates, services_of, within
from tests.support.servers import ServerProcess
from tests.support.types import MakeUser


@pytest.fixture
def cases(settings: Settings, database: Database) -> Iterator[UseCases]:
    """The use cases with their trail receiving events (written on ``flush`` or ``stop``)."""
    built = UseCases.build(settings, database)
    built.audit.start(background=False)
    yield built
    built.audit.stop()


def _events(store: Store, **where: object) -> list[AuditEventRecord]:
    found, _ = store.audit.newest_first(where=AuditFilter(**where), before_id=None, limit=1000)  # type: ignore[arg-type]
    return found


def _admin(user_id: str = "admin-1") -> Caller:
    return Caller(user_id=user_id, effective_roles=frozenset({"system:owner"}), reduced=False)


def test_a_credential_change_is_kept_with_the_acting_person(
    cases: UseCases, make_user: MakeUser
) -> None:
    alice = make_user()
    record, _ = operator_creates(cases.credentials, alice)
    cases.audit.flush()
    [event] = _events(cases.store, events=["credential_created"])
    assert (event.credential_id, event.client_id, event.user_id) == (
        record.id,
        record.client_id,
        alice.id,
    )
    assert event.actor == "operator"
    assert event.details == {"via": "cli"}


def test_single_token_issuances_are_not_kept(cases: UseCases) -> None:
    audit("token_issued", client_id="c-1", jti="j-1")
    audit("token_revoked", jti="j-1")
    cases.audit.flush()
    assert [e.event for e in _events(cases.store)] == ["token_revoked"]


def test_events_are_kept_whatever_the_log_level(
    cases: UseCases, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="authserver.audit")
    audit("signed_out", user_id="u-1")
    cases.audit.flush()
    assert [e.event for e in _events(cases.store)] == ["signed_out"]


def test_the_background_thread_writes_without_being_asked(
    settings: Settings, database: Database
) -> None:
    built = UseCases.build(settings, database)
    built.audit.start()
    try:
        audit("signed_out", user_id="u-2")
        within(10, lambda: len(_events(built.store)) == 1)
    finally:
        built.audit.stop()


def test_an_address_is_kept_as_its_text(cases: UseCases) -> None:
    audit("sign_in_failed", reason="wrong password", source=network.parse_address("192.0.2.9"))
    cases.audit.flush()
    [event] = _events(cases.store)
    assert event.source == "192.0.2.9"
    assert event.details == {"reason": "wrong password"}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_events_wait_in_the_buffer_while_the_database_cannot_take_them(
    tmp_path: Path, settings: Settings
) -> None:
    url = f"sqlite:///{tmp_path}/later.db"
    database = Database(url)
    built = UseCases.build(Settings(database_url=url), database)
    built.audit.start(background=False)
    try:
        audit("signed_out", user_id="u-3")
        assert built.audit.flush() == 0  # no table yet: kept, not lost
        migrate(database)
        assert built.audit.flush() == 1
        assert [e.user_id for e in _events(built.store)] == ["u-3"]
    finally:
        built.audit.stop()
        database.dispose()


@pytest.mark.parametrize("settings_overrides", [{"audit_retention": "30d"}])
def test_events_older_than_the_retention_are_purged(cases: UseCases) -> None:
    audit("signed_out", user_id="old")
    cases.audit.flush()
    cases.maintenance.purge(now=now() + timedelta(days=29))
    assert len(_events(cases.store)) == 1
    cases.maintenance.purge(now=now() + timedelta(days=30, minutes=1))
    assert _events(cases.store) == []


def test_the_retention_is_ninety_days_by_default() -> None:
    assert Settings().audit_retention_period == timedelta(days=90)


def test_filters_by_person_event_and_time(cases: UseCases) -> None:
    audit("user_updated", user_id="bob", actor="alice")
    audit("signed_in", user_id="carol")
    audit("signed_out", user_id="alice", actor="alice")
    cases.audit.flush()
    page = cases.audit.page
    by_alice, _ = page(caller=_admin(), where=AuditFilter(person="alice"), before_id=None, limit=9)
    assert [e.event for e in by_alice] == ["signed_out", "user_updated"]  # newest first
    signed_in, _ = page(
        caller=_admin(), where=AuditFilter(events=["signed_in"]), before_id=None, limit=9
    )
    assert [e.user_id for e in signed_in] == ["carol"]
    later, _ = page(
        caller=_admin(),
        where=AuditFilter(since=now() + timedelta(minutes=1)),
        before_id=None,
        limit=9,
    )
    assert later == []


def test_pages_of_the_trail_follow_each_other(cases: UseCases) -> None:
    for n in range(5):
        audit("signed_in", user_id=f"u{n}")
    cases.audit.flush()
    first, more = cases.audit.page(caller=_admin(), where=AuditFilter(), before_id=None, limit=3)
    assert more
    rest, more = cases.audit.page(
        caller=_admin(), where=AuditFilter(), before_id=first[-1].id, limit=3
    )
    assert not more
    assert [e.user_id for e in first + rest] == ["u4", "u3", "u2", "u1", "u0"]


def test_only_admins_read_the_trail(cases: UseCases) -> None:
    person = Caller(user_id="u", effective_roles=frozenset({"deploy"}), reduced=False)
    with pytest.raises(NotFound):
        cases.audit.page(caller=person, where=AuditFilter(), before_id=None, limit=9)


def test_a_credentials_own_events_include_failures_by_its_client_id(
    cases: UseCases, make_user: MakeUser
) -> None:
    alice = make_user()
    record, _ = operator_creates(cases.credentials, alice)
    other, _ = operator_creates(cases.credentials, alice)
    audit("auth_failed", client_id=record.client_id, reason="wrong secret")
    cases.audit.flush()
    owner = Caller(user_id=alice.id, effective_roles=frozenset(alice.roles), reduced=False)
    found, _ = cases.audit.of_credential(caller=owner, ref=record.id)
    assert [e.event for e in found] == ["auth_failed", "credential_created"]
    assert all(e.credential_id != other.id for e in found)


def test_a_credentials_events_are_hidden_from_others(cases: UseCases, make_user: MakeUser) -> None:
    alice, bob = make_user(), make_user()
    record, _ = operator_creates(cases.credentials, alice)
    stranger = Caller(user_id=bob.id, effective_roles=frozenset(bob.roles), reduced=False)
    with pytest.raises(NotFound):
        cases.audit.of_credential(caller=stranger, ref=record.id)


def test_user_changes_name_who_made_them(cases: UseCases) -> None:
    admin = _admin("the-admin")
    user = cases.users.create(
        email="dora@example.com",
        display_name="Dora",
        role_names=["deploy"],
        now=now(),
        caller=admin,
    )
    cases.users.update(ref=user.id, role_names=None, disabled=True, now=now(), caller=admin)
    cases.audit.flush()
    events = _events(cases.store, person=user.id)
    assert [(e.event, e.actor) for e in events] == [
        ("user_updated", "the-admin"),
        ("user_created", "the-admin"),
    ]
    assert events[0].details == {"disabled": True, "sessions_ended": 0, "via": "session"}


def test_serving_writes_the_requests_events(client: TestClient, make_user: MakeUser) -> None:
    services = services_of(client.app)
    alice = make_user()
    record, secret = operator_creates(services.credentials, alice)
    mint(client, record.client_id, secret)
    client.post(
        "/auth/v1/token", data={"grant_type": "client_credentials"}, auth=(record.client_id, "nope")
    )
    services.audit.flush()
    events = [e.event for e in _events(services.store, credential=[record.id, record.client_id])]
    assert events == ["auth_failed", "credential_created"]  # the issued token is counted elsewhere


def _export(url: str, *args: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(
        main, ["audit", "export", *args], env={"AUTHSERVER_DATABASE_URL": url}
    )
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_export_prints_json_lines_oldest_first(database_url: str) -> None:
    runner = CliRunner()
    env = {"AUTHSERVER_DATABASE_URL": database_url}
    created = runner.invoke(main, ["users", "create", "eve@example.com", "--json"], env=env)
    assert created.exit_code == 0, created.output
    runner.invoke(main, ["users", "update", "eve@example.com", "--disable"], env=env)
    lines = _export(database_url)
    assert [line["event"] for line in lines] == ["user_created", "user_updated"]
    assert lines[0]["actor"] == "operator"
    assert lines[0]["userId"] == json.loads(created.stdout)["id"]
    assert str(lines[0]["time"]).endswith("Z")


def test_export_of_one_user(database_url: str) -> None:
    runner = CliRunner()
    env = {"AUTHSERVER_DATABASE_URL": database_url}
    for email in ("f@example.com", "g@example.com"):
        assert runner.invoke(main, ["users", "create", email], env=env).exit_code == 0
    lines = _export(database_url, "--user", "g@example.com")
    assert len(lines) == 1 and lines[0]["event"] == "user_created"


def test_export_since_leaves_older_events_out(database_url: str, store: Store) -> None:
    old = now() - timedelta(days=3)
    store.audit.insert_many(
        rows=[
            {"at": old, "event": "signed_in", "user_id": "u", "details": {}},
            {"at": now(), "event": "signed_out", "user_id": "u", "details": {}},
        ]
    )
    assert [line["event"] for line in _export(database_url, "--since", "1d")] == ["signed_out"]


def test_export_refuses_a_bad_duration(database_url: str) -> None:
    result = CliRunner().invoke(
        main, ["audit", "export", "--since", "soon"], env={"AUTHSERVER_DATABASE_URL": database_url}
    )
    assert result.exit_code == 1
    assert result.output.startswith("error: invalid duration")


def test_the_leak_check_reads_the_audit_trail(database: Database, store: Store) -> None:
    from tests.conftest import LEAK, _audit_rows

    store.audit.insert_many(
        rows=[{"at": now(), "event": "oops", "details": {"x": "secret-token:leaked"}}]
    )
    assert any(LEAK.search(row) for row in _audit_rows(database))
    store.audit.purge(before=now() + timedelta(seconds=1))  # the check after the test passes


def test_events_are_written_by_the_trails_thread_not_the_caller(
    settings: Settings, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = UseCases.build(settings, database)
    writers: list[str] = []
    insert = built.store.audit.insert_many

    def watched(*, rows: Sequence[dict[str, object]]) -> None:
        writers.append(threading.current_thread().name)
        insert(rows=rows)

    monkeypatch.setattr(built.store.audit, "insert_many", watched)
    built.audit.start()
    try:
        audit("signed_out", user_id="u-4")
        within(10, lambda: len(_events(built.store)) == 1)
    finally:
        built.audit.stop()
    assert writers == ["audit-trail-writer"]


def test_a_stopped_trail_keeps_nothing_more(cases: UseCases) -> None:
    cases.audit.stop()
    audit("signed_out", user_id="after")
    cases.audit.flush()
    assert _events(cases.store) == []


def test_a_serving_worker_keeps_its_events_in_the_database(
    tmp_path: Path, database_url: str, store: Store
) -> None:
    """``serve`` writes its log lines in batches (no LogRecord each); the trail's hook still
    gets every event, and its rows reach the database."""
    with ServerProcess(database_url, tmp_path) as server:
        refused = httpx.post(
            f"{server.url}/auth/v1/token",
            data={"grant_type": "client_credentials"},
            auth=("nobody@127.0.0.1/pcc", "secret-token:127.0.0.1:v1:wrong"),
        )
        assert refused.status_code == 401
        within(10, lambda: bool(_events(store, events=["auth_failed"])))
    [event] = _events(store, events=["auth_failed"])
    assert event.client_id == "nobody@127.0.0.1/pcc"
