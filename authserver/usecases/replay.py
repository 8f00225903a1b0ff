"""Single use across every instance: a client assertion's ``jti`` (or nonce) is accepted once."""

from __future__ import annotations

from datetime import datetime

from authserver.store import Store


class ReplayGuard:
    """Remembers one-time values in the database until they expire (every instance shares it)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def first_use(self, *, key: str, expires_at: datetime) -> bool:
        """True the first time ``key`` is presented; False for a replay."""
        return self.store.revocations.record_assertion(key=key, expires_at=expires_at)
