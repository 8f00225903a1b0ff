"""URLs we are given to trust: our own issuer, and the servers we call (identity providers).

One rule for all of them: an absolute ``https`` URL, or plain ``http`` only on a
loopback host (where nothing crosses a network), never with a query or fragment.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback IP address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def issuer_problem(url: str, *, allow_insecure: bool = False) -> str | None:
    """Why ``url`` cannot be an issuer (RFC 8414 section 2), or None when it can.

    With ``allow_insecure``, plain http is accepted on any host (an operator's choice).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"must be an absolute http(s) URL, got {url!r}"
    if parts.query or parts.fragment:
        return "must not have a query or fragment (RFC 8414 section 2)"
    if parts.scheme == "http" and not allow_insecure and not is_loopback_host(parts.hostname):
        return f"{url} is plain http on a non-loopback host: it must be https"
    return None
