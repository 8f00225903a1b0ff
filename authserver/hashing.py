"""Secret hashing: argon2id at rest, verified off the event loop, with verification caches.

The verified-secret cache keeps, per credential, an HMAC (under a per-process
random key) of the last secret that matched the credential's current hash —
never the secret itself. A presented secret whose HMAC matches skips argon2;
the entry carries the stored hash it was checked against, so a new hash
invalidates it. argon2 (hashing and verifying) runs in its own threads, at most
``argon2_max_concurrency`` at once and 10 nice levels below the process (never
above it), so neither a flood of requests, nor a burst of first uses or
credential creations, can take every core (or 19 MiB per run of memory) from
warm traffic.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from authserver.config import Settings

MAX_CACHED = 200_000
ARGON2_NICE = 10  # argon2 threads yield the CPU to the event loop (and to warm traffic)
MAX_NICE = 19
T = TypeVar("T")


def _yield_cpu() -> None:
    """Lower this thread's scheduling priority by ``ARGON2_NICE`` (Linux sets nice per thread).

    Relative to the nice value it starts with: a server started at nice 19 must not
    see its argon2 threads raised above the event loop.
    """
    try:
        thread = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(current + ARGON2_NICE, MAX_NICE))
    except (AttributeError, OSError):  # not Linux, or not permitted: run at normal priority
        pass


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
        # Every argon2 run (hash or verify, from the event loop, an API worker thread or
        # the CLI) goes through these threads: their number bounds concurrency.
        self._pool = ThreadPoolExecutor(
            max_workers=settings.argon2_max_concurrency,
            thread_name_prefix="argon2",
            initializer=_yield_cpu,
        )
        self.cache_hits = 0
        self.cache_misses = 0

    def hash(self, secret: str) -> str:
        """Blocking: call from a worker thread (or the CLI)."""
        return self._pool.submit(self._hasher.hash, secret).result()

    def run(self, work: Callable[..., T], *args: object) -> T:
        """Blocking: run other argon2 work (people's passwords) in the same bounded threads."""
        return self._pool.submit(work, *args).result()

    def _verify_blocking(self, secret_hash: str, secret: str) -> bool:
        try:
            return self._hasher.verify(secret_hash, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _digest(self, credential_id: str, secret: str) -> bytes:
        message = credential_id.encode() + b"\0" + secret.encode("utf-8", "surrogatepass")
        return hmac.digest(self._cache_key, message, "sha256")

    def matches_cached(self, *, credential_id: str, secret_hash: str, secret: str) -> bool:
        """True when ``secret`` is the one last verified for this credential (no argon2)."""
        cached = self._verified.get(credential_id)
        if cached is None or cached[1] != secret_hash:
            return False
        hit = hmac.compare_digest(cached[0], self._digest(credential_id, secret))
        self.cache_hits += hit
        return hit

    async def _argon2(self, secret_hash: str, secret: str) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._verify_blocking, secret_hash, secret)

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
