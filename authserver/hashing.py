"""Secret hashing: argon2id at rest, verified off the event loop, with verification caches.

The verified-secret cache keeps, per credential, an HMAC (under a per-process
random key) of the last secret that matched the credential's current hash —
never the secret itself. A presented secret whose HMAC matches skips argon2;
the entry carries the stored hash it was checked against, so a new hash
invalidates it. argon2 (hashing and verifying) runs in worker threads, at most
``argon2_max_concurrency`` at once, so neither a flood of requests nor a burst
of credential creations can take every core (or 19 MiB per run of memory)
from correct traffic.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading

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
        self._cache_key = os.urandom(32)
        self._verified: dict[str, tuple[bytes, str]] = {}
        self._max_concurrency = settings.argon2_max_concurrency
        self._running = threading.BoundedSemaphore(settings.argon2_max_concurrency)
        self._limiter: anyio.CapacityLimiter | None = None
        self.cache_hits = 0
        self.cache_misses = 0

    def hash(self, secret: str) -> str:
        """Blocking: call from a worker thread (or the CLI)."""
        with self._running:
            return self._hasher.hash(secret)

    def _verify_blocking(self, secret_hash: str, secret: str) -> bool:
        with self._running:
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
        hit = hmac.compare_digest(cached[0], self._digest(credential_id, secret))
        self.cache_hits += hit
        return hit

    async def _argon2(self, secret_hash: str, secret: str) -> bool:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self._max_concurrency)
        return await anyio.to_thread.run_sync(
            self._verify_blocking, secret_hash, secret, limiter=self._limiter
        )

    async def verify(self, *, credential_id: str, secret_hash: str, secret: str) -> bool:
        """True when ``secret`` matches; argon2 runs only for a secret not verified before."""
        if self.matches_cached(credential_id=credential_id, secret_hash=secret_hash, secret=secret):
            return True
        self.cache_misses += 1
        ok = await self._argon2(secret_hash, secret)
        if ok:
            if credential_id not in self._verified and len(self._verified) >= MAX_CACHED:
                self._verified.pop(next(iter(self._verified)))
            self._verified[credential_id] = (self._digest(credential_id, secret), secret_hash)
        return ok
