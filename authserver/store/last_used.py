"""``lastUsedAt`` bookkeeping: recorded in memory per issuance, written in batches.

With it, in the same batches and the same transaction, the usage statistics:
each credential's recent source addresses and its tokens counted per UTC hour
(``store/usage.py``), so the token path gains no write of its own.

A token request never waits for a database write, but each issuance is also
appended (one ``os.write``) to this process's journal file, which outlives the
process when it is killed: the next start of any instance using the same
journal folder replays the journals of dead processes (each live process holds
an ``flock`` on its own), so a use is never lost, even on SIGKILL. A flush
starts a new journal first and deletes the old one after its write; replaying
twice is harmless for ``lastUsedAt`` (it never moves backwards) and for the
addresses (each keeps its latest time); the hourly counts of a batch are added
again only if a process dies between a flush's commit and its journal's removal.
Pending uses are flushed every ``last_used_flush_interval`` (at most 1 s) and on graceful
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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import anyio.to_thread

from authserver.domain import network
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

    def append(self, credential_id: str, when: datetime, source: str | None = None) -> None:
        """One issuance: ``<id> <time> <source or ->``."""
        line = f"{credential_id} {when.isoformat()} {source or '-'}\n".encode()
        with self._lock:
            os.write(self._fd, line)

    def append_batch(self, batch: Batch) -> None:
        """A batch written back (its flush failed), as lines that replay to the same batch:
        ``<id> <time> <source or -> <tokens>``, the tokens of a line 1 when absent."""
        lines = [f"{c} {when.isoformat()} - 0" for c, when in batch.used.items()]
        lines += [f"{c} {when.isoformat()} {a} 0" for (c, a), when in batch.addresses.items()]
        lines += [f"{c} {hour.isoformat()} - {n}" for (c, hour), n in batch.counts.items()]
        with self._lock:
            os.write(self._fd, "".join(line + "\n" for line in lines).encode())

    def rotate(self) -> Path:
        """Go on in a new file; the previous one (returned) may be deleted once written."""
        fd, path = self._open()
        with self._lock:
            previous_fd, previous = self._fd, self.path
            self._fd, self.path = fd, path
        os.close(previous_fd)
        return previous


SUFFIX = ".journal"
HOUR = timedelta(hours=1)
STORED_PAIRS = 100_000  # (credential, address) pairs remembered as written, at most


@dataclass
class Batch:
    """Uses not yet written: the last use per credential, the last time per (credential,
    source address), and the tokens per (credential, UTC hour)."""

    used: dict[str, datetime] = field(default_factory=dict)
    addresses: dict[tuple[str, str], datetime] = field(default_factory=dict)
    counts: dict[tuple[str, datetime], int] = field(default_factory=dict)
    # The hour the last use fell in, and the next one: most uses fall in the same hour,
    # and datetime.replace costs microseconds (this runs once per token).
    _hour: datetime = field(default=datetime.min.replace(tzinfo=UTC), repr=False, compare=False)
    _next_hour: datetime = field(
        default=datetime.min.replace(tzinfo=UTC), repr=False, compare=False
    )

    def add(self, credential_id: str, when: datetime, source: str | None, tokens: int = 1) -> None:
        previous = self.used.get(credential_id)
        if previous is None or when > previous:
            self.used[credential_id] = when
        if source:
            key = (credential_id, source)
            seen = self.addresses.get(key)
            if seen is None or when > seen:
                self.addresses[key] = when
        if tokens:
            if not self._hour <= when < self._next_hour:
                self._hour = when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
                self._next_hour = self._hour + HOUR
            hour = (credential_id, self._hour)
            self.counts[hour] = self.counts.get(hour, 0) + tokens

    def merge(self, other: Batch) -> None:
        for credential_id, when in other.used.items():
            self.add(credential_id, when, None, 0)
        for (credential_id, source), when in other.addresses.items():
            self.add(credential_id, when, source, 0)
        for (credential_id, hour), tokens in other.counts.items():
            self.add(credential_id, hour, None, tokens)

    def __len__(self) -> int:
        return len(self.used)


def replay(folder: Path) -> tuple[Batch, list[Path]]:
    """The uses in the journals of dead processes, and those files."""
    batch = Batch()
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
                _merge(batch, journal.read().decode("utf-8", "replace").splitlines())
            files.append(path)
        finally:
            os.close(fd)
    return batch, files


def _merge(batch: Batch, lines: Iterable[str]) -> None:
    for line in lines:
        # "<id> <time>" (journals from before addresses were kept), "<id> <time> <source>"
        # (one issuance; "-" for no source), or "<id> <time> <source> <tokens>" (written back)
        parts = line.split(" ")
        if len(parts) < 2 or len(parts) > 4 or not parts[0]:
            continue
        try:
            when = datetime.fromisoformat(parts[1])
            tokens = int(parts[3]) if len(parts) == 4 else 1
        except ValueError:  # a line cut short by the kill
            continue
        source = parts[2] if len(parts) > 2 and parts[2] not in ("", "-") else None
        if source is not None and network.parse_address(source) is None:
            source = None  # cut short: the use counts, the address is lost
        if when.tzinfo is not None and tokens >= 0:
            batch.add(parts[0], when, source, tokens)


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
        self._pending = Batch()
        self._stored: set[tuple[str, str]] = set()  # (credential, address) pairs written
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
                self._write(used)
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

    def touch(self, credential_id: str, when: datetime, source: str | None = None) -> None:
        """One issuance: ``source`` is the address the request came from (None: unknown)."""
        with self._lock:  # a use is in the journal file that holds it in _pending
            if self._journal is not None:
                self._journal.append(credential_id, when, source)
            self._pending.add(credential_id, when, source)

    def _write(self, batch: Batch) -> None:
        # Only a credential with an address this process has not written yet can have grown
        # past the addresses kept (another instance prunes what it adds itself).
        prune = {c for c, a in batch.addresses if (c, a) not in self._stored}
        self.credentials.record_last_used(
            used=batch.used, addresses=batch.addresses, counts=batch.counts, prune=prune
        )
        if len(self._stored) > STORED_PAIRS:
            self._stored.clear()
        self._stored.update(batch.addresses)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        if not self._pending:
            return
        with self._lock:
            written = self._journal.rotate() if self._journal is not None else None
            batch, self._pending = self._pending, Batch()
        if self._limiter is None:
            # Requests that fill anyio's default worker threads must not hold up the flush.
            self._limiter = anyio.CapacityLimiter(1)
        try:
            await anyio.to_thread.run_sync(lambda: self._write(batch), limiter=self._limiter)
        except Exception as exc:
            self.failures += 1
            if self.failures == 1:
                # An outage is expected (Unavailable names its cause): no traceback for it.
                log.warning(
                    "lastUsedAt flush failed, updates kept for retry: %s",
                    exc,
                    exc_info=not isinstance(exc, Unavailable),
                )
            self._keep(batch)  # into the new journal too
            if written is not None:
                written.unlink(missing_ok=True)
            return
        if written is not None:
            written.unlink(missing_ok=True)
        if self.failures:
            log.info("lastUsedAt flush works again, after %d failed attempts", self.failures)
            self.failures = 0

    def _keep(self, batch: Batch) -> None:
        """A batch that could not be written goes back to the pending uses, and into the
        journal that holds them."""
        with self._lock:
            if self._journal is not None:
                self._journal.append_batch(batch)
            self._pending.merge(batch)

    async def run(self) -> None:
        while True:
            await anyio.sleep(self.interval)
            await self.flush()
