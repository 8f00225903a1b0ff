"""Where a request comes from: the one rule every front door and every throttle uses."""

from __future__ import annotations

from starlette.requests import Request

from authserver.config import Settings
from authserver.domain import network


def source_address(request: Request, settings: Settings) -> network.Address | None:
    """The TCP peer; only when the peer is a trusted proxy, the right-most untrusted hop of
    ``X-Forwarded-For`` (never read without one: a client could name any address there)."""
    peer = request.client.host if request.client else None
    trusted = settings.trusted_networks
    forwarded = request.headers.getlist("x-forwarded-for") if trusted else []
    return network.source_address(peer, forwarded, trusted)
