"""Brute-force protection for client authentication.

Failed authentications are counted per source (an IPv4 address, or an IPv6
/64) and per credential in a sliding window; past the limit, further failing
attempts under either key answer 429. A request that proves it holds the
credential's key (see ``ClientAuthenticator.authenticate``) is never throttled,
so neither the legitimate holder nor other credentials behind the same address
are locked out by someone else's guessing. Counters live in this process: each
instance throttles on its own.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import deque

MAX_KEYS = 100_000


class FailureThrottle:
    """Sliding-window failure counters keyed by ``c:<client_id>`` and ``s:<address>``.

    Safe to share between threads (sign-in runs in worker threads).
    """

    def __init__(self, *, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def retry_after(self, keys: tuple[str, ...]) -> int:
        """Seconds until every key is below the limit again; 0 when none is throttled."""
        if self.limit <= 0:
            return 0
        with self._lock:
            return self._retry_after(keys, time.monotonic())

    def _retry_after(self, keys: tuple[str, ...], now: float) -> int:
        wait = 0.0
        for key in keys:
            failures = self._recent(key, now)
            if failures is not None and len(failures) >= self.limit:
                wait = max(wait, failures[-self.limit] + self.window - now)
        return math.ceil(wait) if wait > 0 else 0

    def record_failure(self, keys: tuple[str, ...]) -> None:
        if self.limit <= 0:
            return
        with self._lock:
            self._record(keys, time.monotonic())

    def reserve(self, keys: tuple[str, ...]) -> int:
        """Count an attempt as failed *before* its slow work, unless a key is throttled (then
        the wait, and nothing counted). ``forgive`` takes it back when it succeeds.

        Checking after the slow work (an argon2 run) would let every attempt already in
        flight past the limit: many sent at once would all be tried.
        """
        if self.limit <= 0:
            return 0
        with self._lock:
            now = time.monotonic()
            wait = self._retry_after(keys, now)
            if not wait:
                self._record(keys, now)
            return wait

    def forgive(self, keys: tuple[str, ...]) -> None:
        """Take back one counted failure of each key (a reserved attempt that succeeded)."""
        with self._lock:
            for key in keys:
                failures = self._failures.get(key)
                if failures:
                    failures.pop()
                    if not failures:
                        del self._failures[key]

    def _record(self, keys: tuple[str, ...], now: float) -> None:
        for key in keys:
            failures = self._recent(key, now)
            if failures is None:
                if len(self._failures) >= MAX_KEYS:
                    self._failures.pop(next(iter(self._failures)))
                failures = self._failures[key] = deque(maxlen=self.limit)
            failures.append(now)


def source_key(source: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> str:
    """Throttle key of a source: the address, or its /64 for IPv6 (one host's usual share)."""
    if isinstance(source, ipaddress.IPv6Address):
        return f"s:{ipaddress.IPv6Network((source, 64), strict=False)}"
    return f"s:{source}"
