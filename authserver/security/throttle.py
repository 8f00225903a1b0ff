"""Throttle keys: what failed attempts are counted under.

Failed authentications are counted per source (an IPv4 address, or an IPv6
/64) and per credential in a sliding window; past the limit, further failing
attempts under either key answer 429. A request that proves it holds the
credential's key (see ``ClientAuthenticator.authenticate``) is never throttled,
so neither the legitimate holder nor other credentials behind the same address
are locked out by someone else's guessing. The counts live in the database and
count once across every worker and instance (``usecases/throttles.py``).
"""

from __future__ import annotations

import ipaddress

MAX_KEYS = 100_000


def source_key(source: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> str:
    """Throttle key of a source: the address, or its /64 for IPv6 (one host's usual share)."""
    if isinstance(source, ipaddress.IPv6Address):
        return f"s:{ipaddress.IPv6Network((source, 64), strict=False)}"
    return f"s:{source}"
