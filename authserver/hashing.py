"""Secret hashing: argon2id at rest, verified off the event loop, with verification caches.

The verified-secret cache keeps, per credential, an HMAC (under a per-process
random key) of the last secret that matched the credential's current hash —
never the secret itself. A presented secret whose HMAC matches skips argon2.
The rejected-secret cache does the same for wrong guesses, so repeating one
costs nothing. Both entries carry the stored hash they were checked against: a
new hash invalidates them. argon2 runs in worker threads, at most
``argon2_max_concurrency`` at once, so a flood of guesses cannot take every
core from correct traffic.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from typing import Any

import anyio
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
        self._rejected: dict[bytes, str] = {}
        self._max_concurrency = settings.argon2_max_concurrency
        self._limiter: anyio.CapacityLimiter | None = None
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

    def matches_cached(self, *, credential_id: str, secret_hash: str, secret: str) -> bool:
        """True when ``secret`` is the one last verified for this credential (no argon2)."""
        cached = self._verified.get(credential_id)
        if cached is None or cached[1] != secret_hash:
            return False
        return hmac.compare_digest(cached[0], self._digest(credential_id, secret))

    async def _argon2(self, secret_hash: str, secret: str) -> bool:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self._max_concurrency)
        return await anyio.to_thread.run_sync(
            self._verify_blocking, secret_hash, secret, limiter=self._limiter
        )

    async def verify(self, *, credential_id: str, secret_hash: str, secret: str) -> bool:
        """True when ``secret`` matches; argon2 runs only for a secret not seen before."""
        if self.matches_cached(credential_id=credential_id, secret_hash=secret_hash, secret=secret):
            self.cache_hits += 1
            return True
        digest = self._digest(credential_id, secret)
        if self._rejected.get(digest) == secret_hash:
            self.cache_hits += 1
            return False
        self.cache_misses += 1
        ok = await self._argon2(secret_hash, secret)
        if ok:
            _bounded_put(self._verified, credential_id, (digest, secret_hash))
        else:
            _bounded_put(self._rejected, digest, secret_hash)
        return ok

    async def verify_dummy(self, secret: str) -> None:
        """Spend one verification's time for a refused client, so timing reveals nothing."""
        if self._dummy_hash is None:
            self._dummy_hash = await anyio.to_thread.run_sync(self.hash, secrets.token_urlsafe(32))
        await self._argon2(self._dummy_hash, secret)

    def forget(self, credential_id: str) -> None:
        self._verified.pop(credential_id, None)


def _bounded_put(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if key not in cache and len(cache) >= MAX_CACHED:
        cache.pop(next(iter(cache)))
    cache[key] = value
