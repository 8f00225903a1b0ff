"""RFC 9449 at the token endpoint: a valid ``DPoP`` proof binds the token to the client's key.

The proof is checked before client authentication (no I/O: a bad proof is
``400 invalid_dpop_proof`` at once) and its ``jti`` is spent after it (a write
to the shared replay store that only an authenticated client can cause), so
every instance accepts a proof once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio.to_thread
from starlette.requests import Request

from authserver.oauth.errors import InvalidDpopProof, UseDpopNonce
from authserver.security import dpop
from authserver.security.audit import audit
from authserver.web.context import services_of

TOKEN_PATH = "/auth/v1/token"


@dataclass(frozen=True)
class Binding:
    """A checked proof at the token endpoint, not yet spent."""

    proof: dpop.Proof


def proof_header(request: Request) -> str | None:
    """The one ``DPoP`` header, None without one; two are a bad proof (section 4.3)."""
    values = request.headers.getlist("dpop")
    if len(values) > 1:
        raise InvalidDpopProof("send one DPoP proof")
    return values[0] if values else None


def check_token_request(request: Request) -> Binding | None:
    """The token request's proof checked (signature, claims), or None when it sends none."""
    proof = proof_header(request)
    if proof is None:
        return None
    services = services_of(request)
    settings = services.settings
    now = time.time()
    current: tuple[str, ...] = (
        dpop.nonces(dpop.nonce_key(services.keyring.shared_secret), now)
        if settings.dpop_nonce
        else ()
    )
    try:
        checked = dpop.verify_proof(
            proof, method="POST", url=settings.endpoint(TOKEN_PATH), now=now, nonces=current
        )
    except dpop.NonceRequired:
        raise UseDpopNonce(current[0]) from None
    except dpop.DpopRefused as refused:
        audit("dpop_refused", reason=str(refused), endpoint="token")
        raise InvalidDpopProof("the DPoP proof is invalid") from None
    return Binding(checked)


async def spend(request: Request, binding: Binding) -> str:
    """Accept the proof once across every instance; its key's thumbprint (``cnf.jkt``)."""
    services = services_of(request)
    proof = binding.proof
    key, until = proof.replay_entry()
    fresh = await anyio.to_thread.run_sync(
        lambda: services.replay.first_use(key=key, expires_at=until)
    )
    if not fresh:
        audit("dpop_refused", reason="jti replayed", endpoint="token")
        raise InvalidDpopProof("the DPoP proof was used before")
    return proof.jkt
