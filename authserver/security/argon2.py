"""argon2id for every secret we keep: client secrets and people's passwords.

One parameter set (config ``argon2_*``, never below OWASP's m=19 MiB, t=2) and
one bounded pool of threads per kind of secret, so that a burst of password
checks (a sign-in flood) never queues in front of a client's first token, nor
the other way round. Each pool runs at most ``argon2_max_concurrency`` argon2
runs at once, 10 nice levels below the process (never above it), so neither a
flood of requests nor a burst of creations can take every core (or 19 MiB per
run of memory) from warm traffic.

Client secrets: the verified-secret cache keeps, per credential, an HMAC
(under a per-process random key) of the last secret that matched the
credential's current hash — never the secret itself. A presented secret whose
HMAC matches skips argon2; the entry carries the stored hash it was checked
against, so a new hash invalidates it.

Passwords: at most ``max_queued_password_checks`` checks wait or run at once in
a process (``admitted``; beyond it ``SignInBusy`` without argon2), and the pages
await them from the event loop (``verify_async``), so that waiting checks park
no worker thread that storage calls need. Sign-in for an unknown e-mail, a user
without a password or a disabled user verifies against a dummy hash of the same
cost, so the answer takes as long as a wrong password does. A hash made under
older parameters is replaced on the next successful sign-in.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from authserver.config import Settings
from authserver.errors import SignInBusy

MAX_CACHED = 200_000
ARGON2_NICE = 10  # argon2 threads yield the CPU to the event loop (and to warm traffic)
# Password checks yield it to client secrets' first uses too: a sign-in flood from many
# addresses (each under its throttle) must not slow the token endpoint.
PASSWORD_NICE = 19
MAX_NICE = 19
T = TypeVar("T")


def _yield_cpu(levels: int = ARGON2_NICE) -> None:
    """Lower this thread's scheduling priority by ``levels`` (Linux sets nice per thread).

    Relative to the nice value it starts with: a server started at nice 19 must not
    see its argon2 threads raised above the event loop.
    """
    try:
        thread = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(current + levels, MAX_NICE))
    except (AttributeError, OSError):  # not Linux, or not permitted: run at normal priority
        pass


def _argon2id(settings: Settings) -> argon2.PasswordHasher:
    """The one argon2id parameter set, from the ``argon2_*`` settings."""
    return argon2.PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_cost,
        parallelism=settings.argon2_parallelism,
        hash_len=32,
        salt_len=16,
        type=argon2.Type.ID,
    )


def _pool(settings: Settings, kind: str, nice: int) -> ThreadPoolExecutor:
    """Bounded, low-priority threads for one kind of secret: their number bounds concurrency."""
    return ThreadPoolExecutor(
        max_workers=settings.argon2_max_concurrency,
        thread_name_prefix=f"argon2-{kind}",
        initializer=_yield_cpu,
        initargs=(nice,),
    )


class _Argon2:
    """argon2id hashing and verification in one kind's own threads."""

    def __init__(self, settings: Settings, kind: str, nice: int = ARGON2_NICE) -> None:
        self._argon2 = _argon2id(settings)
        self._pool = _pool(settings, kind, nice)

    def hash(self, secret: str) -> str:
        """Blocking: call from a worker thread (or the CLI)."""
        return self._pool.submit(self._argon2.hash, secret).result()

    def needs_rehash(self, secret_hash: str) -> bool:
        return self._argon2.check_needs_rehash(secret_hash)

    def _check(self, secret_hash: str, secret: str) -> bool:
        try:
            return self._argon2.verify(secret_hash, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _run(self, work: Callable[..., T], *args: object) -> T:
        """Blocking: ``work`` in this kind's threads."""
        return self._pool.submit(work, *args).result()


class SecretHasher(_Argon2):
    """argon2id hashing and verification of client secrets, with the verified-secret cache."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, "secrets")
        self._cache_key = os.urandom(32)
        self._verified: dict[str, tuple[bytes, str]] = {}
        self.cache_hits = 0
        self.cache_misses = 0
        # Told of every cache lookup (True: a hit), for the metrics; set by the server.
        self.on_lookup: Callable[[bool], None] = lambda hit: None

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
        if hit:
            self.on_lookup(True)
        return hit

    async def _argon2_async(self, secret_hash: str, secret: str) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._check, secret_hash, secret)

    async def verify(self, *, credential_id: str, secret_hash: str, secret: str) -> bool:
        """True when ``secret`` matches; argon2 runs only for a secret not verified before."""
        if self.matches_cached(credential_id=credential_id, secret_hash=secret_hash, secret=secret):
            return True
        self.cache_misses += 1
        self.on_lookup(False)
        ok = await self._argon2_async(secret_hash, secret)
        if ok:
            if credential_id not in self._verified and len(self._verified) >= MAX_CACHED:
                self._verified.pop(next(iter(self._verified)))
            self._verified[credential_id] = (self._digest(credential_id, secret), secret_hash)
        return ok


class PasswordHasher(_Argon2):
    """Hash and verify people's passwords, in threads of their own."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, "passwords", PASSWORD_NICE)
        self._dummy: str | None = None
        self._max_queued = settings.max_queued_password_checks
        self._queued = 0
        self._lock = threading.Lock()

    @property
    def queued(self) -> int:
        """Password checks admitted and not yet done, in this process."""
        return self._queued

    @contextmanager
    def admitted(self) -> Iterator[None]:
        """One of the process's ``max_queued_password_checks`` places; ``SignInBusy`` if none."""
        with self._lock:
            if self._queued >= self._max_queued:
                raise SignInBusy()
            self._queued += 1
        try:
            yield
        finally:
            with self._lock:
                self._queued -= 1

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Blocking. With ``password_hash`` None, the same work against a dummy hash, False."""
        if self._dummy is None:
            # Made at the first sign-in of any kind, known e-mail or not, so that even the
            # first answer takes no longer for an unknown address.
            self._dummy = self.hash(os.urandom(16).hex())
        if password_hash is None:
            self._run(self._check, self._dummy, password)
            return False
        return self._run(self._check, password_hash, password)

    async def verify_async(self, password_hash: str | None, password: str) -> bool:
        """``verify`` awaited on the event loop: the waiting holds no worker thread."""
        loop = asyncio.get_running_loop()
        if self._dummy is None:
            dummy = await loop.run_in_executor(self._pool, self._argon2.hash, os.urandom(16).hex())
            self._dummy = self._dummy or dummy
        if password_hash is None:
            await loop.run_in_executor(self._pool, self._check, self._dummy, password)
            return False
        return await loop.run_in_executor(self._pool, self._check, password_hash, password)
