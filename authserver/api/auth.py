"""Access-token authentication of management API calls: the same "active" rules as
introspection, and for a DPoP-bound token (RFC 9449 section 7) a proof of its key."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio.to_thread
from starlette.requests import Request

from authserver.errors import InvalidDpopToken, Unauthenticated
from authserver.security import dpop
from authserver.security.access_tokens import ActiveToken
from authserver.security.audit import audit
from authserver.web.bearer import presented_token

if TYPE_CHECKING:
    from authserver.runtime.services import Services


async def bearer(request: Request, services: Services) -> ActiveToken:
    """The caller's active access token, or ``Unauthenticated`` (code 16).

    A token bound to a key (``cnf.jkt``) counts only as ``Authorization: DPoP`` with
    a proof for this request signed by that key, used once; as ``Bearer`` it is
    refused with ``WWW-Authenticate: DPoP error="invalid_token"``.
    """
    presented = presented_token(request.headers)
    if presented is None:
        raise Unauthenticated("a Bearer access token is required")
    scheme, token = presented
    active = await services.active_token(token)
    if active is None:
        raise Unauthenticated("the access token is invalid, expired or revoked")
    bound = active.jkt
    if bound is None and scheme == "bearer":
        return active
    if bound is None:
        raise Unauthenticated("the access token is not DPoP-bound: send it as Bearer")
    if scheme != "dpop":
        raise InvalidDpopToken("this access token is DPoP-bound: send it with a DPoP proof")
    await _check_proof(request, services, token, bound)
    return active


async def _check_proof(request: Request, services: Services, token: str, bound: str) -> None:
    proofs = request.headers.getlist("dpop")
    try:
        if len(proofs) != 1:
            raise dpop.DpopRefused("one DPoP proof is required")
        proof = dpop.verify_proof(
            proofs[0],
            method=request.method,
            url=services.settings.endpoint(request.url.path),
            now=time.time(),
            access_token=token,
        )
        if proof.jkt != bound:
            raise dpop.DpopRefused("the proof's key is not the token's")
    except dpop.DpopRefused as refused:
        audit("dpop_refused", reason=str(refused), endpoint="api")
        raise InvalidDpopToken("the DPoP proof is missing or invalid") from None
    key, until = proof.replay_entry()
    fresh = await anyio.to_thread.run_sync(
        lambda: services.replay.first_use(key=key, expires_at=until)
    )
    if not fresh:
        audit("dpop_refused", reason="jti replayed", endpoint="api")
        raise InvalidDpopToken("the DPoP proof was used before")
