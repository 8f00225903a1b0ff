"""Secret hashing: argon2id at rest, verified off the event loop, with a verified-secret cache.

The cache keeps, per credential, an HMAC of the last secret that verified
against the credential's current hash (never the secret itself). A presented
secret whose HMAC matches skips argon2; any other secret pays a full
verification. Because the stored hash is part of the entry, a new hash
invalidates it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

import anyio.to_thread
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from authserver.config import Settings

MAX_CACHED = 200_000


class SecretHasher:
    """argon2id hashing and verification of client secrets."""

    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_cost,
            parallelism=settings.argon2_parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._dummy_hash: str | None = None
        self._cache_key = os.urandom(32)
        self._verified: dict[str, tuple[bytes, str]] = {}
        self.cache_hits = 0
        self.cache_misses = 0

    def hash(self, secret: str) -> str:
        return self._hasher.hash(secret)

    def _verify_blocking(self, secret_hash: str, secret: str) -> bool:
        try:
            return self._hasher.verify(secret_hash, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _digest(self, credential_id: str, secret: str) -> bytes:
        message = credential_id.encode() + b"\0" + secret.encode("utf-8", "surrogatepass")
        return hmac.new(self._cache_key, message, hashlib.sha256).digest()

    async def verify(self, *, credential_id: str, secret_hash: str, secret: str) -> bool:
        """True when ``secret`` matches; argon2 runs in a worker thread on a cache miss."""
        digest = self._digest(credential_id, secret)
        cached = self._verified.get(credential_id)
        if (
            cached is not None
            and cached[1] == secret_hash
            and hmac.compare_digest(cached[0], digest)
        ):
            self.cache_hits += 1
            return True
        self.cache_misses += 1
        ok = await anyio.to_thread.run_sync(self._verify_blocking, secret_hash, secret)
        if ok:
            if len(self._verified) >= MAX_CACHED:
                self._verified.pop(next(iter(self._verified)))
            self._verified[credential_id] = (digest, secret_hash)
        return ok

    async def verify_dummy(self, secret: str) -> None:
        """Spend one verification's time for an unknown client, so timing reveals nothing."""
        if self._dummy_hash is None:
            self._dummy_hash = await anyio.to_thread.run_sync(self.hash, secrets.token_urlsafe(32))
        await anyio.to_thread.run_sync(self._verify_blocking, self._dummy_hash, secret)

    def forget(self, credential_id: str) -> None:
        self._verified.pop(credential_id, None)
