"""Throttle counters in the database: failed attempts per key, shared by every instance."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from authserver.store.database import Database, writes
from authserver.store.models import ThrottleEvent


class ThrottleStore:
    """Counts attempts per key in a sliding window (one row per attempt)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def _lock(self, session: Session, keys: Sequence[str]) -> None:
        """Serialise counting per key across instances (SQLite's write lock does it there)."""
        if self.database.is_sqlite:
            return
        for key in sorted(set(keys)):  # one order everywhere: no deadlocks
            number = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
            session.execute(text("SELECT pg_advisory_xact_lock(:n)"), {"n": number - (1 << 63)})

    def _wait(
        self, session: Session, keys: Sequence[str], *, limit: int, window: timedelta, now: datetime
    ) -> float:
        """Seconds until every key is below ``limit`` attempts in the window again."""
        wait = 0.0
        for key in keys:
            recent = list(
                session.scalars(
                    select(ThrottleEvent.at)
                    .where(ThrottleEvent.key == key, ThrottleEvent.at > now - window)
                    .order_by(ThrottleEvent.at.desc(), ThrottleEvent.id.desc())
                    .limit(limit)
                )
            )
            if len(recent) >= limit:
                wait = max(wait, (recent[-1] + window - now).total_seconds())
        return wait

    def wait(self, *, keys: Sequence[str], limit: int, window: timedelta, now: datetime) -> float:
        with self.database.session() as session:
            return self._wait(session, keys, limit=limit, window=window, now=now)

    @writes
    def add(self, *, keys: Sequence[str], now: datetime) -> None:
        with self.database.session() as session:
            session.add_all(ThrottleEvent(key=key, at=now) for key in keys)

    @writes
    def reserve(
        self, *, keys: Sequence[str], limit: int, window: timedelta, now: datetime
    ) -> float:
        """Count an attempt under every key unless one is at ``limit``: then the wait, and
        nothing counted. Exact under concurrency: attempts are serialised per key."""
        with self.database.session() as session:
            self._lock(session, keys)
            # Written first: on SQLite the write takes the database's write lock, so
            # concurrent reservations count one after the other.
            events = [ThrottleEvent(key=key, at=now) for key in keys]
            session.add_all(events)
            session.flush()
            wait = self._wait(session, keys, limit=limit + 1, window=window, now=now)
            if wait > 0:
                for event in events:
                    session.delete(event)
            return wait

    @writes
    def forgive(self, *, keys: Sequence[str]) -> None:
        """Take back the newest attempt of each key (a reserved attempt that succeeded)."""
        with self.database.session() as session:
            for key in keys:
                newest = session.scalar(
                    select(func.max(ThrottleEvent.id)).where(ThrottleEvent.key == key)
                )
                if newest is not None:
                    session.execute(delete(ThrottleEvent).where(ThrottleEvent.id == newest))

    @writes
    def purge(self, *, before: datetime) -> int:
        with self.database.session() as session:
            result = session.execute(delete(ThrottleEvent).where(ThrottleEvent.at < before))
            return int(getattr(result, "rowcount", 0) or 0)
