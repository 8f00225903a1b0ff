"""Limits against guessing that count once across every worker and instance.

``SharedThrottle`` counts attempts per key in a sliding window (``retry_after``,
``record_failure``, ``reserve`` before slow work and ``forgive`` after it
succeeded) with the counts in the database (``store/throttles.py``), so N
workers or instances give no N× guesses. What
one process learnt — that a key is at its limit until some instant — it keeps,
so a flood from one key is refused without a database write per attempt; the
success path of a request never touches it.
"""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime, timedelta

from authserver.store import Store

MAX_BLOCKED = 100_000


class SharedThrottle:
    """Sliding-window attempt counters per key, in the database. Blocking: use a thread."""

    def __init__(self, store: Store, name: str, *, limit: int, window: float) -> None:
        self.store = store
        self.name = name  # one table for every throttle: each counts under its own name
        self.limit = limit
        self.window = window
        self._window = timedelta(seconds=window)
        self._blocked: dict[str, float] = {}  # key -> monotonic instant it is free again
        self._lock = threading.Lock()

    def _named(self, keys: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(f"{self.name}|{key}" for key in keys)

    def known_wait(self, keys: tuple[str, ...]) -> int:
        """The wait this process already knows of (a key the database said is at its limit).

        Memory only: callers on the event loop may ask it first and skip the thread hop."""
        now = time.monotonic()
        with self._lock:
            until = max((self._blocked.get(key, 0.0) for key in keys), default=0.0)
        return math.ceil(until - now) if until > now else 0

    def _remember(self, keys: tuple[str, ...], wait: float) -> int:
        if wait <= 0:
            return 0
        until = time.monotonic() + wait
        with self._lock:
            if len(self._blocked) >= MAX_BLOCKED:
                self._blocked.clear()
            for key in keys:
                self._blocked[key] = max(self._blocked.get(key, 0.0), until)
        return math.ceil(wait)

    def retry_after(self, keys: tuple[str, ...]) -> int:
        """Seconds until every key is below the limit again; 0 when none is throttled."""
        if self.limit <= 0:
            return 0
        known = self.known_wait(keys)
        if known:
            return known
        wait = self.store.throttles.wait(
            keys=self._named(keys), limit=self.limit, window=self._window, now=datetime.now(UTC)
        )
        return self._remember(keys, wait)

    def record_failure(self, keys: tuple[str, ...]) -> None:
        if self.limit > 0:
            self.store.throttles.add(keys=self._named(keys), now=datetime.now(UTC))

    def reserve(self, keys: tuple[str, ...]) -> int:
        """Count an attempt before its slow work unless a key is at its limit (then the wait,
        nothing counted); ``forgive`` takes it back when it succeeds."""
        if self.limit <= 0:
            return 0
        known = self.known_wait(keys)
        if known:
            return known
        wait = self.store.throttles.reserve(
            keys=self._named(keys), limit=self.limit, window=self._window, now=datetime.now(UTC)
        )
        return self._remember(keys, wait)

    def forgive(self, keys: tuple[str, ...]) -> None:
        if self.limit > 0:
            self.store.throttles.forgive(keys=self._named(keys))
