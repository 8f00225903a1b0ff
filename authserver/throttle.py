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

import math
import time
from collections import deque

MAX_KEYS = 100_000


class FailureThrottle:
    """Sliding-window failure counters keyed by ``c:<client_id>`` and ``s:<address>``."""

    def __init__(self, *, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}

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
        now = time.monotonic()
        wait = 0.0
        for key in keys:
            failures = self._recent(key, now)
            if failures is not None and len(failures) >= self.limit:
                wait = max(wait, failures[-self.limit] + self.window - now)
        return math.ceil(wait) if wait > 0 else 0

    def record_failure(self, keys: tuple[str, ...]) -> None:
        if self.limit <= 0:
            return
        now = time.monotonic()
        for key in keys:
            failures = self._recent(key, now)
            if failures is None:
                if len(self._failures) >= MAX_KEYS:
                    self._failures.pop(next(iter(self._failures)))
                failures = self._failures[key] = deque(maxlen=self.limit)
            failures.append(now)
