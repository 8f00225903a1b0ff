"""argon2id for people's passwords, in the secret hasher's bounded threads.

Same argon2id parameters as client secrets (config ``argon2_*``, never below
OWASP's m=19 MiB, t=2). Sign-in for an unknown e-mail, a user without a
password or a disabled user verifies against a dummy hash of the same cost, so
the answer takes as long as a wrong password does. A hash made under older
parameters is replaced on the next successful sign-in.
"""

from __future__ import annotations

import os

from argon2 import PasswordHasher as Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from authserver.config import Settings
from authserver.hashing import SecretHasher


class PasswordHasher:
    """Hash and verify passwords; every argon2 run goes through ``SecretHasher.run``."""

    def __init__(self, settings: Settings, threads: SecretHasher) -> None:
        self._argon2 = Argon2(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_cost,
            parallelism=settings.argon2_parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._threads = threads
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        """Blocking."""
        return self._threads.run(self._argon2.hash, password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Blocking. With ``password_hash`` None, the same work against a dummy hash, False."""
        if self._dummy is None:
            # Made at the first sign-in of any kind, known e-mail or not, so that even the
            # first answer takes no longer for an unknown address.
            self._dummy = self.hash(os.urandom(16).hex())
        if password_hash is None:
            self._threads.run(self._check, self._dummy, password)
            return False
        return self._threads.run(self._check, password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self._argon2.check_needs_rehash(password_hash)

    def _check(self, password_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
