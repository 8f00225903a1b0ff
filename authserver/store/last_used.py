"""``lastUsedAt`` bookkeeping: recorded in memory per issuance, written in batches.

A token request never waits for a database write, but each issuance is also
appended (one ``os.write``) to this process's journal file, which outlives the
process when it is killed: the next start of any instance using the same
journal folder replays the journals of dead processes (each live process holds
an ``flock`` on its own), so a use is never lost, even on SIGKILL. A flush
starts a new journal first and deletes the old one after its write; replaying
twice is harmless, since ``lastUsedAt`` never moves backwards. Pending timestamps are
flushed every ``last_used_flush_interval`` (at most 1 s) and on graceful
shutdown; a failed flush keeps them for the next attempt, and an outage is one
log line when it starts and one when it ends (with the count), not one a flush.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import anyio
import anyio.to_thread

from authserver.errors import Unavailable
from authserver.store.credentials import CredentialStore

log = logging.getLogger("authserver.last_used")


class Journal:
    """This process's append-only record of uses not yet written, in ``folder``."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._lock = threading.Lock()  # issuances may be recorded from worker threads
        self._fd, self.path = self._open()

    def _open(self) -> tuple[int, Path]:
        path = self.folder / f"{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # "alive": not to be replayed
        return fd, path

    def append(self, credential_id: str, when: datetime) -> None:
        line = f"{credential_id} {when.isoformat()}\n".encode()
        with self._lock:
            os.write(self._fd, line)

    def rotate(self) -> Path:
        """Go on in a new file; the previous one (returned) may be deleted once written."""
        fd, path = self._open()
        with self._lock:
            previous_fd, previous = self._fd, self.path
            self._fd, self.path = fd, path
        os.close(previous_fd)
        return previous


SUFFIX = ".journal"


def replay(folder: Path) -> tuple[dict[str, datetime], list[Path]]:
    """The latest use per credential in the journals of dead processes, and those files."""
    used: dict[str, datetime] = {}
    files = []
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:  # replayed meanwhile by another process
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # its process is alive
                continue
            with os.fdopen(os.dup(fd), "rb") as journal:
                _merge(used, journal.read().decode("utf-8", "replace").splitlines())
            files.append(path)
        finally:
            os.close(fd)
    return used, files


def _merge(used: dict[str, datetime], lines: Iterable[str]) -> None:
    for line in lines:
        credential_id, _, stamp = line.partition(" ")
        try:
            when = datetime.fromisoformat(stamp)
        except ValueError:  # a line cut short by the kill
            continue
        if when.tzinfo is not None and (credential_id not in used or when > used[credential_id]):
            used[credential_id] = when


class LastUsedRecorder:
    """Coalesces ``lastUsedAt`` updates: one row write per credential per interval."""

    def __init__(
        self, credentials: CredentialStore, *, interval: float, journal: Path | None = None
    ) -> None:
        self.credentials = credentials
        self.interval = interval
        self.journal_folder = journal
        self._journal: Journal | None = None  # opened by recover(), at start
        self._lock = threading.Lock()
        self._pending: dict[str, datetime] = {}
        self._limiter: anyio.CapacityLimiter | None = None  # own thread slot, see flush
        self.failures = 0  # flushes failed in a row (a database outage: one line, not one each)

    def recover(self) -> int:
        """Blocking, at start: write what dead processes' journals hold, then journal ours."""
        if self.journal_folder is None:
            return 0
        self._journal = Journal(self.journal_folder)
        used, files = replay(self.journal_folder)
        if used:
            try:
                self.credentials.record_last_used(used=used)
            except Exception as exc:  # the files stay for the next start
                log.warning("lastUsedAt: journals of stopped processes not replayed: %s", exc)
                return 0
            log.info("lastUsedAt: %d uses recovered from %d journals", len(used), len(files))
        for path in files:
            path.unlink(missing_ok=True)
        return len(used)

    def close(self) -> None:
        """After the last flush: nothing is pending, so this process's journal can go."""
        with self._lock:
            if self._journal is not None and not self._pending:
                self._journal.path.unlink(missing_ok=True)
                self._journal = None

    def touch(self, credential_id: str, when: datetime) -> None:
        with self._lock:  # a use is in the journal file that holds it in _pending
            if self._journal is not None:
                self._journal.append(credential_id, when)
            self._remember(credential_id, when)

    def _remember(self, credential_id: str, when: datetime) -> None:
        previous = self._pending.get(credential_id)
        if previous is None or when > previous:
            self._pending[credential_id] = when

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        if not self._pending:
            return
        with self._lock:
            written = self._journal.rotate() if self._journal is not None else None
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
                self.touch(credential_id, when)  # into the new journal too
            if written is not None:
                written.unlink(missing_ok=True)
            return
        if written is not None:
            written.unlink(missing_ok=True)
        if self.failures:
            log.info("lastUsedAt flush works again, after %d failed attempts", self.failures)
            self.failures = 0

    async def run(self) -> None:
        while True:
            await anyio.sleep(self.interval)
            await self.flush()
