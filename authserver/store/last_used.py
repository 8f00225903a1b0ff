"""``lastUsedAt`` bookkeeping: recorded in memory per issuance, written in batches.

A token request never waits for a database write. Pending timestamps are
flushed every ``last_used_flush_interval`` (at most 1 s) and on graceful
shutdown; a failed flush keeps them for the next attempt, and an outage is one
log line when it starts and one when it ends (with the count), not one a flush.
"""

from __future__ import annotations

import logging
from datetime import datetime

import anyio
import anyio.to_thread

from authserver.errors import Unavailable
from authserver.store.credentials import CredentialStore

log = logging.getLogger("authserver.last_used")


class LastUsedRecorder:
    """Coalesces ``lastUsedAt`` updates: one row write per credential per interval."""

    def __init__(self, credentials: CredentialStore, *, interval: float) -> None:
        self.credentials = credentials
        self.interval = interval
        self._pending: dict[str, datetime] = {}
        self._limiter: anyio.CapacityLimiter | None = None  # own thread slot, see flush
        self.failures = 0  # flushes failed in a row (a database outage: one line, not one each)

    def touch(self, credential_id: str, when: datetime) -> None:
        previous = self._pending.get(credential_id)
        if previous is None or when > previous:
            self._pending[credential_id] = when

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        if self._limiter is None:
            # Requests that fill anyio's default worker threads must not hold up the flush.
            self._limiter = anyio.CapacityLimiter(1)
        try:
            await anyio.to_thread.run_sync(
                lambda: self.credentials.record_last_used(used=batch), limiter=self._limiter
            )
        except Exception as exc:
            self.failures += 1
            if self.failures == 1:
                # An outage is expected (Unavailable names its cause): no traceback for it.
                log.warning(
                    "lastUsedAt flush failed, updates kept for retry: %s",
                    exc,
                    exc_info=not isinstance(exc, Unavailable),
                )
            for credential_id, when in batch.items():
                self.touch(credential_id, when)
            return
        if self.failures:
            log.info("lastUsedAt flush works again, after %d failed attempts", self.failures)
            self.failures = 0

    async def run(self) -> None:
        while True:
            await anyio.sleep(self.interval)
            await self.flush()
