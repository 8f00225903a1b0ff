"""Record ids: 26 characters, time-ordered, like a ULID."""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def new_record_id() -> str:
    """48-bit milliseconds + 80 random bits in lower-case Crockford base32."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, index = divmod(value, 32)
        chars.append(_CROCKFORD[index])
    return "".join(reversed(chars))


def is_record_id(value: str) -> bool:
    """True for a string shaped like ``new_record_id``'s (26 lower-case base32 characters)."""
    return len(value) == 26 and value.isascii() and value.isalnum() and value.islower()
