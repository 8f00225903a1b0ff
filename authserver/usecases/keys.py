"""Signing keys: the first key at first start, and rotation (``authserver keys rotate``).

A retired key stays published until ``publish_until`` (its retirement plus the
token TTL, plus a margin): every token it signed has expired by then.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from authserver.config import Settings
from authserver.records import KeyRecord
from authserver.security.audit import audit
from authserver.security.keys import new_key
from authserver.store import Store

# Other instances may sign with a retired key until their next refresh, and clocks differ.
PUBLISH_MARGIN = timedelta(seconds=60)


def publish_until(settings: Settings, retired_at: datetime) -> datetime:
    """A retired key stays published until every token it can still have signed expired."""
    return retired_at + timedelta(seconds=settings.access_token_ttl) + PUBLISH_MARGIN


class KeyService:
    """Every change to the signing keys goes through here."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def active(self) -> KeyRecord | None:
        """The newest active key of the configured algorithm, if there is one."""
        alg = self.settings.signing_alg
        active = [k for k in self.store.keys.all() if k.retired_at is None and k.alg == alg]
        return active[-1] if active else None

    def ensure_active(self, *, now: datetime) -> KeyRecord:
        """The active key of the configured algorithm, created first when there is none.

        Several instances starting at once create one key between them.
        """
        key = self.active()
        if key is None:
            self._add(now=now, only_if_none_active=True)
            key = self.active()
        assert key is not None
        return key

    def rotate(self, *, now: datetime) -> KeyRecord:
        """Add a new active key; the previous one stays published for one token TTL (+ margin)."""
        added = self._add(now=now, only_if_none_active=False)
        assert added is not None
        audit("signing_key_rotated", kid=added.kid, alg=added.alg, actor="operator", via="cli")
        return added

    def _add(self, *, now: datetime, only_if_none_active: bool) -> KeyRecord | None:
        alg = self.settings.signing_alg
        kid, pem, public = new_key(alg)
        return self.store.keys.add_active(
            kid=kid,
            alg=alg,
            private_pem=pem,
            public_jwk=public,
            now=now,
            publish_until=publish_until(self.settings, now),
            only_if_none_active=only_if_none_active,
        )
