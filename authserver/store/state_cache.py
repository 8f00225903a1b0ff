"""What this instance knows of credential state and revocations, kept current by a change feed.

Token requests and token checks need a credential's state (with its owner)
and, for tokens, whether a ``jti`` is revoked. Reading those from the database
on every request costs a thread hop and a query, so this cache answers
instead, as long as it is *in sync*: a background task (``follow``) asks the
database every ``auth_cache_ttl / 2`` seconds for everything changed since the
last version it saw (``ChangeFeed.since``) and drops those entries.
If the last successful sync started ``auth_cache_ttl`` (at most 1 s) ago or
more, the cache answers nothing and callers read the database, so a change
made anywhere — another instance, the CLI — applies within that bound (every
change takes effect everywhere within one second), even while the database is
away.

Changes made through this process (management API, RFC 7592, revocation)
apply at once. Changes made by another process on this machine (another worker
of the same ``serve``, the CLI) apply as soon as the call that made them has
answered: every read first compares the machine's change signal
(``store/signal.py``) with the value it had when the last sync began, and
syncs before answering when it moved (one sync shared by concurrent requests).
Instances on other machines learn of a change by PostgreSQL ``NOTIFY``
(``changes.listen``) and sync at once; the poll stays as the bound when a
notification is lost. Client ids that name no credential are remembered as unknown
too (a negative cache), so that guessing ids costs no database read and an
unknown id is answered as fast as a known one; creating a credential is a
change like any other, so a new id stops being "unknown" within the same bound.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime

import anyio
import anyio.to_thread

from authserver.domain.credentials import AuthState
from authserver.records import Changes
from authserver.store.changes import REVOCATION_MARGIN, ChangeFeed
from authserver.store.credentials import CredentialStore
from authserver.store.signal import ChangeSignal
from authserver.store.users import UserStore

log = logging.getLogger("authserver.state_cache")
MAX_ENTRIES = 200_000
MAX_UNKNOWN = 100_000  # remembered unknown ids: kept apart, so guesses never evict real entries
MAX_PEOPLE = 10_000  # people behind device-flow tokens
PURGE_SECONDS = 10.0  # how often revocations of expired tokens are forgotten


class StateCache:
    """client_id → AuthState and the set of revoked ``jti``, valid while in sync."""

    def __init__(
        self,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        signal: ChangeSignal | None = None,
        feed: ChangeFeed | None = None,
    ) -> None:
        self.ttl = ttl
        self._clock = clock
        self._signal = signal
        self._signal_seen: int | None = None  # the signal when the last good sync began
        self._feed = feed  # what ``catch_up`` syncs from (``follow`` sets it too)
        self._sync_lock: anyio.Lock | None = None  # one sync at a time, applied in order
        self._entries: dict[str, AuthState] = {}
        self._unknown: dict[str, None] = {}  # insertion-ordered set of unknown client ids
        # (device client id, user id) → the person behind a device-flow token (RFC 8628).
        self._people: dict[tuple[str, str], AuthState] = {}
        self._by_user: dict[str, set[str]] = {}
        self._revoked: dict[str, datetime] = {}
        self.version: int | None = None
        self._synced_at = -math.inf  # start of the last successful sync
        self._dropped_at = -math.inf  # last time entries were dropped for a change
        self._purged_at = -math.inf
        # Its own worker-thread slot: requests filling anyio's default pool (e.g. a burst
        # of credential creations waiting for argon2) must not stop the sync.
        self._sync_limiter: anyio.CapacityLimiter | None = None

    def in_sync(self) -> bool:
        return self.ttl > 0 and self._clock() - self._synced_at < self.ttl

    def get(self, client_id: str) -> AuthState | None:
        return self._entries.get(client_id) if self.in_sync() else None

    def known_unknown(self, client_id: str) -> bool:
        """True when ``client_id`` is remembered to name no credential (while in sync)."""
        return client_id in self._unknown and self.in_sync()

    def put_unknown(self, client_id: str, loaded: float) -> None:
        """Remember that no credential had ``client_id`` when read at ``loaded``."""
        if self.ttl <= 0 or loaded <= self._dropped_at:
            return
        if client_id not in self._unknown and len(self._unknown) >= MAX_UNKNOWN:
            self._unknown.pop(next(iter(self._unknown)))
        self._unknown[client_id] = None

    def put(self, state: AuthState, loaded: float) -> None:
        """Remember state read from the database at ``loaded`` (a ``clock()`` value).

        State read before the latest drop may predate that change; it is not kept.
        """
        if self.ttl <= 0 or loaded <= self._dropped_at:
            return
        if state.client_id not in self._entries and len(self._entries) >= MAX_ENTRIES:
            self._evict(next(iter(self._entries)))
        self._entries[state.client_id] = state
        self._by_user.setdefault(state.user_id, set()).add(state.client_id)

    def revoked(self, jti: str) -> bool | None:
        """Whether ``jti`` is revoked; None when not in sync (ask the database)."""
        return jti in self._revoked if self.in_sync() else None

    def add_revoked(self, jti: str, expires_at: datetime) -> None:
        self._revoked[jti] = expires_at

    def forget(self, client_id: str) -> None:
        self._evict(client_id)
        self._dropped_at = self._clock()

    def apply(self, changes: Changes, *, started: float, now: datetime) -> None:
        """Take in a sync that began at ``started``; a first sync starts from nothing."""
        if self.version is None or changes.version < self.version:
            # First sync, or the counter went back (database restored): start from nothing.
            self._entries.clear()
            self._by_user.clear()
            self._unknown.clear()
            self._people.clear()
            self._revoked = dict(changes.revoked)
            self._dropped_at = self._clock()
        else:
            dropped = set(changes.client_ids)
            for user_id in changes.user_ids:
                dropped |= self._by_user.get(user_id, set())
            for client_id in dropped:
                self._evict(client_id)
            if changes.user_ids and self._people:
                self._people = {
                    key: state
                    for key, state in self._people.items()
                    if key[1] not in changes.user_ids
                }
            if changes.client_ids or changes.user_ids:
                # Also when nothing cached was dropped: a read in flight may predate the change.
                self._dropped_at = self._clock()
            self._revoked.update(changes.revoked)
            if started - self._purged_at > PURGE_SECONDS:
                cutoff = now - REVOCATION_MARGIN
                self._revoked = {j: e for j, e in self._revoked.items() if e >= cutoff}
                self._purged_at = started
        self.version = changes.version
        self._synced_at = started

    def _evict(self, client_id: str) -> None:
        self._unknown.pop(client_id, None)
        state = self._entries.pop(client_id, None)
        if state is not None:
            owned = self._by_user.get(state.user_id)
            if owned is not None:
                owned.discard(client_id)
                if not owned:
                    del self._by_user[state.user_id]

    async def catch_up(self) -> None:
        """Sync first when another process has signalled a change since the last sync began."""
        signal, feed = self._signal, self._feed
        if signal is None or feed is None or not self.in_sync():
            return  # out of sync, every answer comes from the database anyway
        if signal.read() == self._signal_seen:
            return
        try:
            await self.sync(feed, unless_seen=True)
        except Exception as exc:
            log.warning("credential state sync failed: %s", exc)
            self._synced_at = -math.inf  # unknown what changed: read the database instead

    async def credential(self, store: CredentialStore, client_id: str) -> AuthState | None:
        """A credential's state, or None for an unknown id: cached, else read (and cached)."""
        await self.catch_up()
        state = self.get(client_id)
        if state is None and not self.known_unknown(client_id):
            loaded = self._clock()
            state = await anyio.to_thread.run_sync(lambda: store.auth_state(client_id=client_id))
            if state is not None:
                self.put(state, loaded)
            else:
                self.put_unknown(client_id, loaded)
        return state

    async def token(
        self, store: CredentialStore, client_id: str, jti: str
    ) -> tuple[AuthState | None, bool]:
        """The credential behind a token and whether its ``jti`` is revoked."""
        await self.catch_up()
        revoked = self.revoked(jti)
        if revoked is None:
            return await anyio.to_thread.run_sync(
                lambda: store.token_state(client_id=client_id, jti=jti)
            )
        return await self.credential(store, client_id), revoked

    async def person_token(
        self, store: UserStore, client_id: str, user_id: str, jti: str
    ) -> tuple[AuthState | None, bool]:
        """The person behind a device client's token, and whether its ``jti`` is revoked."""
        await self.catch_up()
        revoked = self.revoked(jti)
        key = (client_id, user_id)
        state = self._people.get(key) if revoked is not None else None
        if state is not None:
            return state, bool(revoked)
        loaded = self._clock()
        state, stored_revoked = await anyio.to_thread.run_sync(
            lambda: store.token_state(user_id=user_id, client_id=client_id, jti=jti)
        )
        if state is not None and revoked is not None and loaded > self._dropped_at:
            if key not in self._people and len(self._people) >= MAX_PEOPLE:
                self._people.pop(next(iter(self._people)))
            self._people[key] = state
        return state, stored_revoked if revoked is None else bool(revoked)

    async def sync(self, feed: ChangeFeed, *, unless_seen: bool = False) -> None:
        """Take in the changes since the last sync; with ``unless_seen``, only when the
        signal moved since the last sync began (another caller may have synced meanwhile)."""
        if self._sync_lock is None:
            self._sync_lock = anyio.Lock()
            self._sync_limiter = anyio.CapacityLimiter(1)
        async with self._sync_lock:
            signalled = self._signal.read() if self._signal is not None else None
            if unless_seen and signalled == self._signal_seen:
                return
            started = self._clock()
            now = datetime.now(UTC)
            since = self.version
            changes = await anyio.to_thread.run_sync(
                lambda: feed.since(version=since, now=now), limiter=self._sync_limiter
            )
            self.apply(changes, started=started, now=now)
            self._signal_seen = signalled

    async def follow(self, feed: ChangeFeed) -> None:
        """Sync every ``ttl / 2`` seconds until cancelled."""
        if self.ttl <= 0:
            return
        self._feed = feed
        while True:
            try:
                await self.sync(feed)
            except Exception as exc:  # the database may be away; the cache stops answering
                log.warning("credential state sync failed: %s", exc)
            await anyio.sleep(self.ttl / 2)
