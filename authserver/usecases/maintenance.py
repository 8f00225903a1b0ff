"""Purges: rows nothing can need any more (expired revocations, retired keys, sessions, …)."""

from __future__ import annotations

from datetime import datetime, timedelta

from authserver.store import Store
from authserver.usecases.audit import AuditTrail
from authserver.usecases.credentials import TOKEN_COUNT_DAYS
from authserver.usecases.people import PeopleService
from authserver.usecases.provider_sign_in import ProviderSignInService


class Maintenance:
    """What the background purger runs every minute, on every instance."""

    def __init__(
        self,
        store: Store,
        people: PeopleService,
        provider_sign_in: ProviderSignInService,
        trail: AuditTrail,
    ) -> None:
        self.store = store
        self.people = people
        self.provider_sign_in = provider_sign_in
        self.trail = trail

    def purge(self, *, now: datetime) -> None:
        self.store.revocations.purge(now=now)
        self.store.keys.purge(now=now)
        self.store.revocations.purge_assertions(now=now)
        self.store.device_codes.purge(now=now)
        self.people.purge(now=now)
        self.provider_sign_in.purge(now=now)
        # Attempts older than any throttle window (the longest is 10 minutes) count no more.
        self.store.throttles.purge(before=now - timedelta(hours=1))
        self.trail.purge(now=now)  # events older than audit_retention
        self.store.usage.purge(before=now - timedelta(days=TOKEN_COUNT_DAYS + 1))
        # Delivered and failed webhooks and e-mails stay listed (webhooks list) for 30 days.
        self.store.outbox.purge(before=now - timedelta(days=30))
