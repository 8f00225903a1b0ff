"""Usage: the last source addresses of each credential and its tokens counted per hour,
written by the batched ``lastUsedAt`` writer (never per request), and where they are shown."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from authserver.cli import main
from authserver.domain.credentials import Caller
from authserver.errors import InvalidArgument, NotFound, Unavailable
from authserver.records import ClientRecord
from authserver.store import Store
from authserver.store.credentials import CredentialStore
from authserver.store.last_used import Batch, Journal, LastUsedRecorder, replay
from authserver.store.models import CredentialAddress, TokenCount
from authserver.usecases.credentials import CredentialService
from tests.support.helpers import PEER, mint, now, services_of, token_request
from tests.support.types import MakeCaller, MakeClient, MakeUser

USAGE = "/api/v1/iam/personal_clients/{id}/usage"
T0 = datetime(2026, 11, 30, 10, 15, tzinfo=UTC)


@pytest.fixture
def credential(make_user: MakeUser, make_client: MakeClient) -> ClientRecord:
    return make_client(make_user())[0]


def _addresses(store: Store, record: ClientRecord) -> list[tuple[str, datetime]]:
    return [(u.address, u.last_used_at) for u in store.usage.addresses(credential_id=record.id)]


def _flush(store: Store, *uses: tuple[ClientRecord, datetime, str | None]) -> None:
    """One flush of the batched writer holding ``uses`` (as each instance makes its own)."""
    batch = Batch()
    for record, when, source in uses:
        batch.add(record.id, when, source)
    store.credentials.record_last_used(
        used=batch.used, addresses=batch.addresses, counts=batch.counts
    )


# The store: what a flush merges ------------------------------------------------------------


def test_a_flush_stores_each_address_with_its_last_time(
    store: Store, credential: ClientRecord
) -> None:
    _flush(
        store,
        (credential, T0, "10.0.0.1"),
        (credential, T0 + timedelta(seconds=1), "10.0.0.2"),
        (credential, T0 + timedelta(seconds=2), "10.0.0.1"),
    )
    assert _addresses(store, credential) == [
        ("10.0.0.1", T0 + timedelta(seconds=2)),
        ("10.0.0.2", T0 + timedelta(seconds=1)),
    ]


def test_only_the_five_most_recent_distinct_addresses_are_kept(
    store: Store, credential: ClientRecord
) -> None:
    _flush(store, *[(credential, T0 + timedelta(seconds=n), f"10.0.0.{n}") for n in range(8)])
    assert [a for a, _ in _addresses(store, credential)] == [f"10.0.0.{n}" for n in (7, 6, 5, 4, 3)]
    with store.database.session() as session:
        rows = session.scalar(select(func.count()).select_from(CredentialAddress))
    assert rows == 5  # pruned in the database, not only when read


def test_flushes_of_two_instances_merge_and_keep_the_most_recent(
    store: Store, credential: ClientRecord
) -> None:
    first = [(credential, T0 + timedelta(seconds=n), f"10.0.1.{n}") for n in (0, 2, 4, 6)]
    second = [(credential, T0 + timedelta(seconds=n), f"10.0.2.{n}") for n in (1, 3, 5)]
    _flush(store, *first)
    _flush(store, *second)
    assert [a for a, _ in _addresses(store, credential)] == [
        "10.0.1.6",
        "10.0.2.5",
        "10.0.1.4",
        "10.0.2.3",
        "10.0.1.2",
    ]


def test_a_late_flush_never_moves_an_address_back(store: Store, credential: ClientRecord) -> None:
    _flush(store, (credential, T0 + timedelta(minutes=5), "10.0.0.1"))
    _flush(store, (credential, T0, "10.0.0.1"))  # an instance whose flush came late
    assert _addresses(store, credential) == [("10.0.0.1", T0 + timedelta(minutes=5))]


def test_an_address_that_fell_out_comes_back_when_used_again(
    store: Store, credential: ClientRecord
) -> None:
    _flush(store, *[(credential, T0 + timedelta(seconds=n), f"10.0.0.{n}") for n in range(6)])
    _flush(store, (credential, T0 + timedelta(minutes=1), "10.0.0.0"))
    assert _addresses(store, credential)[0] == ("10.0.0.0", T0 + timedelta(minutes=1))


def test_each_credential_keeps_its_own_addresses(
    store: Store, make_user: MakeUser, make_client: MakeClient
) -> None:
    one, _ = make_client(make_user())
    two, _ = make_client(make_user())
    _flush(store, *[(one, T0 + timedelta(seconds=n), f"10.0.0.{n}") for n in range(6)])
    _flush(store, (two, T0, "192.0.2.1"))
    assert len(_addresses(store, one)) == 5
    assert _addresses(store, two) == [("192.0.2.1", T0)]


def test_tokens_are_counted_per_hour_and_flushes_add_up(
    store: Store, credential: ClientRecord
) -> None:
    _flush(store, *[(credential, T0, "10.0.0.1")] * 3)
    _flush(store, (credential, T0 + timedelta(minutes=30), None))  # 10:45, the same hour
    _flush(store, (credential, T0 + timedelta(hours=1), None))  # 11:15
    issued = store.usage.issued(credential_id=credential.id, since=T0 - timedelta(days=1))
    assert issued == [(T0.replace(minute=0), 4), (T0.replace(hour=11, minute=0), 1)]


def test_a_flush_naming_an_unknown_credential_still_writes_the_others(
    store: Store, credential: ClientRecord
) -> None:
    store.credentials.record_last_used(
        used={credential.id: T0, "0" * 26: T0},
        addresses={(credential.id, "10.0.0.1"): T0, ("0" * 26, "10.0.0.9"): T0},
        counts={(credential.id, T0.replace(minute=0)): 1, ("0" * 26, T0.replace(minute=0)): 1},
    )
    assert store.credentials.get(id=credential.id).last_used_at == T0
    assert _addresses(store, credential) == [("10.0.0.1", T0)]


def test_the_purge_forgets_counts_older_than_kept(
    store: Store, credential: ClientRecord, app: Starlette
) -> None:
    moment = now()
    _flush(store, (credential, moment - timedelta(days=120), None), (credential, moment, None))
    services_of(app).maintenance.purge(now=moment)
    with store.database.session() as session:
        hours = list(session.scalars(select(TokenCount.hour)))
    assert hours == [moment.replace(minute=0, second=0, microsecond=0)]


# The writer: in memory per request, written per flush -----------------------------------


def test_a_token_writes_nothing_until_the_flush(
    client: TestClient, store: Store, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    mint(client, record.client_id, secret)
    assert _addresses(store, record) == []
    assert store.usage.issued(credential_id=record.id, since=T0) == []
    client.portal.call(services_of(client.app).last_used.flush)  # type: ignore[union-attr]
    assert [a for a, _ in _addresses(store, record)] == [PEER]
    assert sum(n for _, n in store.usage.issued(credential_id=record.id, since=T0)) == 1


def test_a_refused_token_request_is_not_a_use(
    client: TestClient, store: Store, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    assert token_request(client, record.client_id, secret + "x").status_code == 401
    client.portal.call(services_of(client.app).last_used.flush)  # type: ignore[union-attr]
    assert _addresses(store, record) == []


def test_the_journal_of_a_dead_process_replays_addresses_and_counts(
    tmp_path: Path, store: Store, credential: ClientRecord
) -> None:
    dead = tmp_path / "12345-00000000.journal"
    dead.write_text(
        f"{credential.id} {T0.isoformat()} 10.0.0.1\n"
        f"{credential.id} {(T0 + timedelta(seconds=1)).isoformat()} -\n"
        f"{credential.id} {(T0 + timedelta(seconds=2)).isoformat()}\n"  # an older journal's line
        f"{credential.id} {T0.isoformat()} 10.0.\n"  # not an address: the use still counts
        f"{credential.id} 2026-1"  # cut short by the kill
    )
    recorder = LastUsedRecorder(store.credentials, interval=0.5, journal=tmp_path)
    assert recorder.recover() == 1
    recorder.close()
    assert store.credentials.get(id=credential.id).last_used_at == T0 + timedelta(seconds=2)
    assert _addresses(store, credential) == [("10.0.0.1", T0)]
    assert store.usage.issued(credential_id=credential.id, since=T0 - timedelta(hours=1)) == [
        (T0.replace(minute=0), 4)
    ]


def test_a_failed_flush_keeps_every_count_for_the_next_one(
    tmp_path: Path, store: Store, credential: ClientRecord
) -> None:
    class Failing:
        def record_last_used(self, **batch: object) -> None:
            raise Unavailable("database unavailable")

    recorder = LastUsedRecorder(store.credentials, interval=0.5, journal=tmp_path)
    recorder.recover()
    recorder.credentials = Failing()  # type: ignore[assignment]
    for n in range(3):
        recorder.touch(credential.id, T0 + timedelta(seconds=n), f"10.0.0.{n}")
    anyio.run(recorder.flush)
    recorder.credentials = store.credentials
    anyio.run(recorder.flush)
    recorder.close()
    assert [a for a, _ in _addresses(store, credential)] == ["10.0.0.2", "10.0.0.1", "10.0.0.0"]
    assert store.usage.issued(credential_id=credential.id, since=T0 - timedelta(hours=1)) == [
        (T0.replace(minute=0), 3)
    ]


def test_two_writers_each_pruning_what_they_add_still_show_the_five_most_recent(
    store: Store, credential: ClientRecord
) -> None:
    """A writer skips the pruning query for addresses it wrote itself; another writer may
    have pruned one meanwhile, so a row may stay over five until the next new address."""
    one = LastUsedRecorder(store.credentials, interval=0.5)
    two = LastUsedRecorder(store.credentials, interval=0.5)
    for n in range(5):
        one.touch(credential.id, T0 + timedelta(seconds=n), f"10.0.1.{n}")
    anyio.run(one.flush)
    for n in range(5):
        two.touch(credential.id, T0 + timedelta(minutes=1, seconds=n), f"10.0.2.{n}")
    anyio.run(two.flush)
    one.touch(credential.id, T0 + timedelta(minutes=2), "10.0.1.0")  # pruned by two meanwhile
    anyio.run(one.flush)
    assert [a for a, _ in _addresses(store, credential)] == [
        "10.0.1.0",
        "10.0.2.4",
        "10.0.2.3",
        "10.0.2.2",
        "10.0.2.1",
    ]
    one.touch(credential.id, T0 + timedelta(minutes=3), "10.0.3.1")  # new: pruned again
    anyio.run(one.flush)
    with store.database.session() as session:
        rows = session.scalar(select(func.count()).select_from(CredentialAddress))
    assert rows == 5


def test_a_batch_written_back_to_the_journal_replays_to_the_same_batch(tmp_path: Path) -> None:
    batch = Batch()
    for n in range(4):
        batch.add("cred-1", T0 + timedelta(minutes=20 * n), f"10.0.0.{n % 2}")
    journal = Journal(tmp_path / "live")
    journal.append_batch(batch)
    dead = tmp_path / "dead"
    dead.mkdir()
    journal.path.rename(dead / journal.path.name)
    import os

    os.close(journal._fd)  # noqa: SLF001 - the process "dies": its lock goes
    replayed, _ = replay(dead)
    assert replayed == batch


# Who sees the usage, and where ------------------------------------------------------------


def _used(client: TestClient, record: ClientRecord, secret: str) -> str:
    token = mint(client, record.client_id, secret)
    client.portal.call(services_of(client.app).last_used.flush)  # type: ignore[union-attr]
    return token


def test_the_api_shows_the_usage_of_an_own_credential(
    client: TestClient, caller: MakeCaller
) -> None:
    _, record, secret, _ = caller()
    token = _used(client, record, secret)
    answer = client.get(USAGE.format(id=record.id), headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    usage = answer.json()
    assert set(usage) == {"lastUsedAt", "addresses"}
    assert [a["address"] for a in usage["addresses"]] == [PEER]
    assert usage["addresses"][0]["lastUsedAt"].endswith("Z")


def test_the_api_shows_an_unused_credential_without_last_use(
    client: TestClient, caller: MakeCaller, make_client: MakeClient, make_user: MakeUser
) -> None:
    user, _, _, token = caller()
    unused, _ = make_client(user)
    answer = client.get(USAGE.format(id=unused.id), headers={"Authorization": f"Bearer {token}"})
    assert answer.json() == {"addresses": []}


def test_another_users_usage_is_not_found(client: TestClient, caller: MakeCaller) -> None:
    _, record, _, _ = caller()
    _, _, _, other = caller()
    answer = client.get(USAGE.format(id=record.id), headers={"Authorization": f"Bearer {other}"})
    assert answer.status_code == 404
    assert answer.json()["code"] == 5


def test_the_admin_role_sees_anyones_usage(client: TestClient, caller: MakeCaller) -> None:
    _, record, _, _ = caller()
    _, _, _, admin = caller(roles=("system:owner",))
    answer = client.get(USAGE.format(id=record.id), headers={"Authorization": f"Bearer {admin}"})
    assert answer.status_code == 200


def test_the_usage_of_a_deleted_credential_is_not_found(
    client: TestClient, caller: MakeCaller, make_client: MakeClient
) -> None:
    user, _, _, token = caller()
    doomed, _ = make_client(user)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.delete(f"/api/v1/iam/personal_clients/{doomed.id}", headers=headers).json() == {}
    assert client.get(USAGE.format(id=doomed.id), headers=headers).status_code == 404


def test_the_usage_needs_a_bearer_token(client: TestClient, credential: ClientRecord) -> None:
    answer = client.get(USAGE.format(id=credential.id))
    assert answer.status_code == 401
    assert answer.json()["code"] == 16


def test_the_personal_client_keeps_conductorones_shape(
    client: TestClient, caller: MakeCaller
) -> None:
    _, record, secret, _ = caller()
    token = _used(client, record, secret)
    got = client.get(
        f"/api/v1/iam/personal_clients/{record.id}", headers={"Authorization": f"Bearer {token}"}
    ).json()["client"]
    assert set(got) <= {
        "id",
        "clientId",
        "userId",
        "displayName",
        "allowSourceCidr",
        "scopedRoles",
        "expiresTime",
        "lastUsedAt",
        "createdAt",
        "updatedAt",
        "deletedAt",
    }


def test_the_openapi_document_describes_the_usage(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()
    answer = document["paths"]["/api/v1/iam/personal_clients/{id}/usage"]["get"]["responses"]
    assert answer["200"]["content"]["application/json"]["schema"]["$ref"].endswith("UsageResponse")


def test_clients_get_prints_the_addresses(
    database_url: str, store: Store, credential: ClientRecord
) -> None:
    _flush(store, (credential, T0, "10.0.0.1"), (credential, T0, "2001:db8::1"))
    env = {"AUTHSERVER_DATABASE_URL": database_url}
    result = CliRunner().invoke(main, ["clients", "get", credential.id], env=env)
    assert result.exit_code == 0, result.output
    assert "used from:         10.0.0.1  last 2026-11-30T10:15:00Z" in result.output
    assert "                   2001:db8::1  last 2026-11-30T10:15:00Z" in result.output


def test_clients_get_json_has_the_usage_beside_the_client(
    database_url: str, store: Store, credential: ClientRecord
) -> None:
    _flush(store, (credential, T0, "10.0.0.1"))
    env = {"AUTHSERVER_DATABASE_URL": database_url}
    result = CliRunner().invoke(main, ["clients", "get", credential.client_id, "--json"], env=env)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["client"]["id"] == credential.id
    assert answer["usage"] == {
        "lastUsedAt": "2026-11-30T10:15:00Z",
        "addresses": [{"address": "10.0.0.1", "lastUsedAt": "2026-11-30T10:15:00Z"}],
    }


# Tokens per day ------------------------------------------------------------------------------


def test_tokens_per_day_sum_the_hours_and_show_quiet_days(
    store: Store, credential: ClientRecord, credential_service: CredentialService
) -> None:
    today = datetime(2026, 12, 1, 12, tzinfo=UTC)
    _flush(
        store,
        (credential, today - timedelta(days=2, hours=3), None),
        (credential, today - timedelta(days=2, hours=1), None),
        (credential, today, None),
        (credential, today - timedelta(days=9), None),  # before the days asked for
    )
    days = credential_service.issued_per_day(
        caller=Caller.operator(), ref=credential.id, days=3, now=today
    )
    assert [(d.isoformat(), n) for d, n in days] == [
        ("2026-11-29", 2),
        ("2026-11-30", 0),
        ("2026-12-01", 1),
    ]


def test_tokens_per_day_of_another_users_credential_are_not_found(
    credential: ClientRecord, credential_service: CredentialService, make_user: MakeUser
) -> None:
    stranger = Caller(user_id=make_user().id, effective_roles=frozenset(), reduced=False)
    with pytest.raises(NotFound):
        credential_service.issued_per_day(caller=stranger, ref=credential.id, days=7, now=now())


def test_tokens_per_day_refuse_an_unkept_range(
    credential: ClientRecord, credential_service: CredentialService
) -> None:
    with pytest.raises(InvalidArgument):
        credential_service.issued_per_day(
            caller=Caller.operator(), ref=credential.id, days=365, now=now()
        )


def test_credential_store_marks_the_usage_write() -> None:
    assert getattr(CredentialStore.record_last_used, "writes_rows", False)
