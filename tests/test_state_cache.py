"""The credential-state cache and the change feed that keeps it current: a change made
anywhere takes effect on every instance within one second."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import anyio
import pytest
from starlette.testclient import TestClient

from authserver.domain.credentials import AuthState, CheckedPatch
from authserver.errors import PermissionDenied
from authserver.records import Changes
from authserver.store import Store
from authserver.store.changes import ChangeFeed
from authserver.store.database import Database
from authserver.store.state_cache import StateCache
from authserver.usecases.users import UserService
from tests.support.helpers import auth_state, mint, now, services_of, token_request, within
from tests.support.types import MakeClient, MakeUser


class Clock:
    def __init__(self) -> None:
        self.value = 100.0

    def __call__(self) -> float:
        return self.value


def state(client_id: str = "c1", user_id: str = "u1") -> AuthState:
    return auth_state(client_id=client_id, user_id=user_id)


def changes(
    version: int,
    clients: Iterable[str] = (),
    users: Iterable[str] = (),
    revoked: Iterable[tuple[str, datetime]] = (),
) -> Changes:
    return Changes(version, frozenset(clients), frozenset(users), tuple(revoked))


def synced_cache(clock: Clock) -> StateCache:
    cache = StateCache(0.5, clock=clock)
    cache.apply(changes(1), started=clock(), now=now())
    clock.value += 0.01
    return cache


def test_cache_answers_nothing_before_its_first_sync() -> None:
    clock = Clock()
    cache = StateCache(0.5, clock=clock)
    cache.put(state(), clock())
    assert cache.get("c1") is None
    assert cache.revoked("any") is None


def test_cache_stops_answering_when_syncs_stop() -> None:
    clock = Clock()
    cache = synced_cache(clock)
    cache.put(state(), clock())
    assert cache.get("c1") == state()
    clock.value += 0.5  # no successful sync for a whole ttl: the database must be asked
    assert cache.get("c1") is None
    assert cache.revoked("any") is None


def test_sync_drops_changed_credentials_only() -> None:
    clock = Clock()
    cache = synced_cache(clock)
    cache.put(state("c1"), clock())
    cache.put(state("c2"), clock())
    cache.apply(changes(2, clients=["c1"]), started=clock(), now=now())
    assert cache.get("c1") is None
    assert cache.get("c2") == state("c2")


def test_sync_drops_every_credential_of_a_changed_user() -> None:
    clock = Clock()
    cache = synced_cache(clock)
    cache.put(state("c1", "u1"), clock())
    cache.put(state("c2", "u1"), clock())
    cache.put(state("c3", "u2"), clock())
    cache.apply(changes(2, users=["u1"]), started=clock(), now=now())
    assert (cache.get("c1"), cache.get("c2")) == (None, None)
    assert cache.get("c3") == state("c3", "u2")


def test_state_read_before_a_change_is_not_kept() -> None:
    """A read that started before a sync dropped its entry may carry the old state."""
    clock = Clock()
    cache = synced_cache(clock)
    read_started = clock()
    clock.value += 0.01
    cache.apply(changes(2, clients=["c1"]), started=clock(), now=now())
    cache.put(state("c1"), read_started)
    assert cache.get("c1") is None


def test_revocations_arrive_through_sync() -> None:
    clock = Clock()
    cache = synced_cache(clock)
    assert cache.revoked("j1") is False
    cache.apply(
        changes(2, revoked=[("j1", now() + timedelta(minutes=5))]), started=clock(), now=now()
    )
    assert cache.revoked("j1") is True


def test_first_sync_loads_live_revocations(store: Store) -> None:
    store.revocations.revoke(jti="live", expires_at=now() + timedelta(minutes=5))
    store.revocations.revoke(jti="gone", expires_at=now() - timedelta(minutes=5))
    cache = StateCache(0.5)
    anyio.run(cache.sync, store.changes)
    assert (cache.revoked("live"), cache.revoked("gone")) == (True, False)


def test_changes_since_lists_exactly_what_changed(
    store: Store, make_user: MakeUser, make_client: MakeClient
) -> None:
    owner = make_user()
    first, _ = make_client(owner)
    second, _ = make_client(owner)
    other = make_user()
    start = store.changes.since(version=None, now=now()).version
    store.credentials.delete(id=first.id, now=now())
    UserService(store).update(ref=other.id, role_names=["x"], disabled=None, now=now())
    store.revocations.revoke(jti="j", expires_at=now() + timedelta(minutes=5))
    seen = store.changes.since(version=start, now=now())
    assert seen.version == start + 3
    assert seen.client_ids == {first.client_id}
    assert seen.user_ids == {other.id}
    assert [jti for jti, _ in seen.revoked] == ["j"]
    assert second.client_id not in seen.client_ids


def test_last_used_is_not_a_change(
    store: Store, make_user: MakeUser, make_client: MakeClient
) -> None:
    """Recording use must not invalidate every instance's cache."""
    record, _ = make_client(make_user())
    start = store.changes.since(version=None, now=now()).version
    store.credentials.record_last_used(used={record.id: now()})
    assert store.changes.since(version=start, now=now()) == changes(start)


def test_refused_expiry_edit_is_not_a_change(
    store: Store, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, _ = make_client(make_user(), expires_in=timedelta(days=1))
    start = store.changes.since(version=None, now=now()).version
    with pytest.raises(PermissionDenied):
        store.credentials.update(
            id=record.id, patch=CheckedPatch(expires_time=now() + timedelta(days=9)), now=now()
        )
    assert store.changes.since(version=start, now=now()).version == start


def test_warm_token_requests_read_no_credential_state(
    client: TestClient,
    make_user: MakeUser,
    make_client: MakeClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record, secret = make_client(make_user())
    services = services_of(client.app)
    within(1.0, services.state_cache.in_sync)
    store = services.store.credentials
    reads: list[dict[str, str]] = []
    original = store.auth_state

    def counted(**kw: str) -> AuthState | None:
        reads.append(kw)
        return original(**kw)

    monkeypatch.setattr(store, "auth_state", counted)
    mint(client, record.client_id, secret)  # may load once: the entry can predate a sync
    reads.clear()
    for _ in range(5):
        mint(client, record.client_id, secret)
    assert reads == []


def test_change_from_another_process_applies_within_a_second(
    client: TestClient, store: Store, make_user: MakeUser, make_client: MakeClient
) -> None:
    record, secret = make_client(make_user())
    mint(client, record.client_id, secret)
    store.credentials.delete(id=record.id, now=now())  # as the CLI or another instance would
    within(1.0, lambda: token_request(client, record.client_id, secret).status_code == 401)


def test_state_read_before_a_user_change_is_not_kept_even_if_nothing_was_cached() -> None:
    clock = Clock()
    cache = synced_cache(clock)
    read_started = clock()  # a token request starts reading c1 (owner u1 still enabled)
    clock.value += 0.01
    cache.apply(changes(2, users=["u1"]), started=clock(), now=now())  # u1 disabled meanwhile
    cache.put(state("c1", "u1"), read_started)
    assert cache.get("c1") is None


def test_counter_going_back_starts_the_cache_afresh() -> None:
    """A database restored from a backup: versions seen before mean nothing any more."""
    clock = Clock()
    cache = StateCache(0.5, clock=clock)
    cache.apply(changes(10), started=clock(), now=now())
    clock.value += 0.01
    cache.put(state("c1"), clock())
    cache.apply(changes(3), started=clock(), now=now())
    assert cache.get("c1") is None
    assert cache.version == 3


def test_revocation_outlives_token_expiry_by_the_clock_skew_margin(store: Store) -> None:
    """Token checks accept a token a few seconds past exp; its revocation must still be known."""
    expired = now() - timedelta(seconds=10)
    store.revocations.revoke(jti="just-expired", expires_at=expired)
    store.revocations.purge(now=now())
    assert store.revocations.is_revoked(jti="just-expired")
    cache = StateCache(0.5)
    anyio.run(cache.sync, store.changes)
    assert cache.revoked("just-expired") is True


def test_sync_runs_while_every_default_worker_thread_is_taken(store: Store) -> None:
    """A burst of slow blocking work (argon2 for many creations) must not stop the sync."""

    async def scenario() -> None:
        default = anyio.to_thread.current_default_thread_limiter()
        holders = [object() for _ in range(int(default.total_tokens))]
        for holder in holders:
            await default.acquire_on_behalf_of(holder)
        try:
            cache = StateCache(0.5)
            with anyio.fail_after(5):
                await cache.sync(store.changes)
            assert cache.in_sync()
        finally:
            for holder in holders:
                default.release_on_behalf_of(holder)

    anyio.run(scenario)


def test_a_changing_commit_moves_the_machines_change_signal_and_a_read_does_not(
    store: Store, database_url: str
) -> None:
    other = Database(database_url)  # another process's view of the same database
    try:
        assert other.signal is not None
        before = other.signal.read()
        assert not store.revocations.is_revoked(jti="signalled")
        assert other.signal.read() == before
        store.revocations.revoke(jti="signalled", expires_at=now() + timedelta(minutes=5))
        assert other.signal.read() == before + 1
    finally:
        other.dispose()


def test_cache_syncs_before_answering_once_another_process_signalled_a_change(
    store: Store, database_url: str
) -> None:
    other = Database(database_url)  # the worker's own connection to the same database
    feed = ChangeFeed(other)
    cache = StateCache(0.5, signal=other.signal, feed=feed)

    async def scenario() -> bool:
        await cache.sync(feed)
        assert cache.revoked("fresh") is False  # in sync, and nothing revoked yet
        # Another process revokes: its commit bumps the shared signal.
        store.revocations.revoke(jti="fresh", expires_at=now() + timedelta(minutes=5))
        _, revoked = await cache.token(store.credentials, "c1", "fresh")
        return revoked

    try:
        assert anyio.run(scenario) is True
    finally:
        other.dispose()
