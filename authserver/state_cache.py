"""Credential state cache: the token endpoint's answer to "who is this client?" without I/O.

An entry lives at most ``auth_cache_ttl`` seconds (default 0.5, at most 1), so a
change made anywhere else — another instance, the CLI — takes effect within
that bound, as SPEC section 7 allows. Changes made through this instance
(management API, RFC 7592) drop the entry at once. Unknown client ids are not
cached, so a credential created elsewhere works immediately.
"""

from __future__ import annotations

import time

from authserver.domain.credentials import AuthState

MAX_ENTRIES = 200_000


class StateCache:
    """client_id → (AuthState, loaded at), bounded in age and size."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[AuthState, float]] = {}

    def get(self, client_id: str) -> AuthState | None:
        entry = self._entries.get(client_id)
        if entry is None:
            return None
        state, loaded = entry
        if time.monotonic() - loaded >= self.ttl:
            del self._entries[client_id]
            return None
        return state

    def put(self, state: AuthState, loaded: float) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.pop(next(iter(self._entries)))
        self._entries[state.client_id] = (state, loaded)

    def forget(self, client_id: str) -> None:
        self._entries.pop(client_id, None)
