"""Access tokens in requests: ``Bearer`` (RFC 6750 section 2.1) and ``DPoP`` (RFC 9449
section 7.1), read the same way by every front door."""

from __future__ import annotations

from collections.abc import Mapping

SCHEMES = ("bearer", "dpop")


def presented_token(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """(scheme in lower case, token) of an ``Authorization: Bearer|DPoP <token>`` header."""
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    token = token.strip()
    scheme = scheme.lower()
    if scheme not in SCHEMES or not token:
        return None
    return scheme, token


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    found = presented_token(headers)
    return found[1] if found is not None and found[0] == "bearer" else None
