"""The audit trail in the database: every event of ``authserver.audit`` but single token
issuances, written in batches off the event loop, read by the pages and the export, purged.

``audit()`` hands each event to ``AuditTrail.record`` (a hook in ``security/audit.py``),
which only appends it to a buffer under a lock: no I/O where the event happens, on the
event loop or anywhere else. A background thread writes the buffer every
``FLUSH_SECONDS`` (sooner when ``BATCH`` events wait) in one transaction. When the
database is away the events stay buffered (at most ``MAX_PENDING``, the oldest dropped
and counted in the log) and are written when it is back.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from authserver.config import Settings
from authserver.domain.credentials import Caller, is_admin
from authserver.errors import NotFound
from authserver.records import AuditEventRecord
from authserver.security import audit as audit_log
from authserver.security.logsafe import Repeated
from authserver.store import Store
from authserver.store.audit import COLUMNS, AuditFilter
from authserver.usecases.credentials import CredentialService

log = logging.getLogger("authserver.audit.store")
#: Not kept one by one: each credential's tokens are counted per hour instead.
NOT_KEPT = frozenset({"token_issued"})
FLUSH_SECONDS = 0.5
BATCH = 500
MAX_PENDING = 50_000
_LENGTHS = {"actor": 64, "user_id": 64, "credential_id": 64, "client_id": 255, "source": 64}
_encode = json.JSONEncoder(default=str).encode


def row_of(at: datetime, event: dict[str, Any]) -> dict[str, Any]:
    """The ``audit_events`` row of one event: the filtered-on fields as columns (cut to
    their length), the rest as JSON (anything not JSON, an address say, as its text)."""
    fields = dict(event)
    row: dict[str, Any] = {"at": at, "event": str(fields.pop("event"))[:64]}
    for column in COLUMNS:
        value = fields.pop(column, None)
        row[column] = str(value)[: _LENGTHS.get(column, 64)] if value is not None else None
    row["details"] = json.loads(_encode(fields))
    return row


class AuditTrail:
    """Records events into the database in batches, and reads them back for people allowed."""

    def __init__(self, store: Store, settings: Settings, credentials: CredentialService) -> None:
        self.store = store
        self.settings = settings
        self.credentials = credentials
        self._pending: deque[tuple[datetime, dict[str, Any]]] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._writing = threading.Lock()  # one flush at a time (the thread, stop, a test)
        self._outage = Repeated(log, "audit events not written to the database yet")
        self.dropped = 0

    # Recording ------------------------------------------------------------------------

    def record(self, event: dict[str, Any]) -> None:
        """The hook ``audit()`` calls: buffer the event; never blocks on I/O."""
        if event.get("event") in NOT_KEPT:
            return
        at = datetime.now(UTC)
        with self._lock:
            self._pending.append((at, dict(event)))
            if len(self._pending) > MAX_PENDING:
                self._pending.popleft()
                self.dropped += 1
            if len(self._pending) >= BATCH:
                self._wake.notify()

    def start(self, *, background: bool = True) -> None:
        """Receive every audit event from now on; written by a thread of its own, or (the
        command line, which runs for a moment) only by ``stop``."""
        audit_log.add_hook(self.record)
        if background and self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(
                target=self._run, name="audit-trail-writer", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Receive no more events, and write what is buffered (blocking: a worker thread)."""
        audit_log.remove_hook(self.record)
        thread, self._thread = self._thread, None
        if thread is not None:
            with self._lock:
                self._stopping = True
                self._wake.notify()
            thread.join(timeout=10)
        self.flush()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._stopping and len(self._pending) < BATCH:
                    self._wake.wait(FLUSH_SECONDS)
                if self._stopping:
                    return
            self.flush()

    def flush(self) -> int:
        """Write every buffered event in batches; how many were written. On a database
        error the events go back to the front of the buffer, to be tried again."""
        written = 0
        with self._writing:
            while True:
                with self._lock:
                    batch = [self._pending.popleft() for _ in range(min(BATCH, len(self._pending)))]
                if not batch:
                    break
                try:
                    self.store.audit.insert_many(rows=[row_of(at, event) for at, event in batch])
                except Exception as exc:
                    with self._lock:
                        self._pending.extendleft(reversed(batch))
                        while len(self._pending) > MAX_PENDING:
                            self._pending.pop()
                            self.dropped += 1
                    self._outage.happened(exc)
                    break
                written += len(batch)
                self._outage.ended()
            if self.dropped:
                log.warning("%d audit events could not be kept (the buffer was full)", self.dropped)
                self.dropped = 0
        return written

    # Reading --------------------------------------------------------------------------

    def page(
        self, *, caller: Caller, where: AuditFilter, before_id: int | None, limit: int
    ) -> tuple[list[AuditEventRecord], bool]:
        """Events newest first, for holders of the admin role only (others: not found)."""
        if not is_admin(caller, self.settings.admin_role):
            raise NotFound("no such page")
        return self.store.audit.newest_first(where=where, before_id=before_id, limit=limit)

    def of_credential(
        self, *, caller: Caller, ref: str, before_id: int | None = None, limit: int = 50
    ) -> tuple[list[AuditEventRecord], bool]:
        """A credential's own events, newest first, for whoever may see the credential."""
        record = self.credentials.visible(caller=caller, ref=ref)
        return self.store.audit.newest_first(
            where=AuditFilter(credential=(record.id, record.client_id)),
            before_id=before_id,
            limit=limit,
        )

    def export(self, *, since: datetime | None, user_ref: str | None) -> Iterator[AuditEventRecord]:
        """Every kept event (of one person: done by or about them), oldest first (the CLI)."""
        person = self.store.users.find(ref=user_ref).id if user_ref is not None else None
        return self.store.audit.oldest_first(where=AuditFilter(person=person, since=since))

    def purge(self, *, now: datetime) -> int:
        """Drop events older than ``audit_retention``."""
        return self.store.audit.purge(before=now - self.retention)

    @property
    def retention(self) -> timedelta:
        return self.settings.audit_retention_period
