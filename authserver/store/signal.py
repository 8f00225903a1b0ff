"""A change signal shared by the processes of one machine: a counter in a memory-mapped file.

Every process that commits a changing transaction (``next_version`` marks the
session) bumps the counter afterwards; a worker that reads state from its
cache first compares the counter with the value it saw when it last synced
(an mmap read, well under a microsecond) and, when it moved, syncs from the
database before answering. So the workers of one ``serve``, and the CLI on the
same machine, see a change as soon as the call that made it has answered. The
signal only says *that* something changed; what changed is always read from
the database, so a bogus bump costs one sync and nothing else.

For SQLite the file sits next to the database (``<db file>-changes``, like
``-wal``); for PostgreSQL it is in the runtime directory, named by a hash of
host, port and database. It is best effort: a process that cannot open it
(another user's file, a read-only folder) goes without, and the change feed's
poll (``auth_cache_ttl``) and PostgreSQL ``NOTIFY`` still bound the delay.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import mmap
import os
import struct
import tempfile
from pathlib import Path

from sqlalchemy.engine import URL

log = logging.getLogger("authserver.store")
_COUNTER = struct.Struct("<Q")


class ChangeSignal:
    """An 8-byte counter in a shared file: ``bump`` after a changing commit, ``read`` to compare."""

    def __init__(self, path: Path) -> None:
        self.path = path
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        self._fd = os.open(path, flags, 0o600)
        try:
            if os.fstat(self._fd).st_uid != os.geteuid():
                raise PermissionError(f"{path} belongs to another user")
            if os.fstat(self._fd).st_size < _COUNTER.size:
                os.ftruncate(self._fd, _COUNTER.size)
            self._map = mmap.mmap(self._fd, _COUNTER.size)
        except BaseException:
            os.close(self._fd)
            raise

    def read(self) -> int:
        return int(_COUNTER.unpack_from(self._map, 0)[0])

    def bump(self) -> None:
        """Increment under an exclusive lock: the counter only ever moves forward."""
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            _COUNTER.pack_into(self._map, 0, (self.read() + 1) % 2**64)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        try:
            self._map.close()
        finally:
            os.close(self._fd)


def signal_path(url: URL) -> Path:
    """Where the processes using the database at ``url`` share their signal."""
    if url.get_backend_name() == "sqlite":
        return Path(f"{Path(url.database or '').resolve()}-changes")
    key = f"{url.host or ''}:{url.port or 5432}/{url.database or ''}"
    folder = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    return folder / f"authserver-changes-{hashlib.sha256(key.encode()).hexdigest()[:20]}"


def open_signal(url: URL) -> ChangeSignal | None:
    """The machine's signal for ``url``, or None when this process cannot use it."""
    path = signal_path(url)
    try:
        return ChangeSignal(path)
    except (OSError, ValueError) as exc:
        log.warning(
            "no shared change signal at %s (%s): changes from other processes "
            "apply within auth_cache_ttl",
            path,
            getattr(exc, "strerror", None) or exc,
        )
        return None
