"""RFC 7523 section 2.2 client assertions (``private_key_jwt``) signed with Ed25519.

The key is the one inside the credential's secret (its public half is stored)
or a key the client registered with ``jwks``. Checks: EdDSA only, ``iss`` =
``sub`` = client_id, an accepted ``aud``, ``exp`` present and at most five
minutes ahead (60 s leeway), and a ``jti`` (or a ``nonce``, in the header or
the claims) never seen before — the replay cache lives in the database so every instance shares it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey
from joserfc.jws import CompactSignature
from joserfc.jwt import ClaimsOption, JWTClaimsRegistry

from authserver.domain.algorithms import ASSERTION_ALGS
from authserver.security.jose import ASSERTION_ALGORITHMS

MAX_LIFETIME = 300
LEEWAY = 60
MAX_ASSERTION_LENGTH = 4096


class AssertionError_(Exception):
    """Why an assertion was refused (logged, never shown to the caller)."""


def _parse(assertion: str) -> tuple[CompactSignature, dict[str, Any]]:
    """The JWS and its claims, unverified; any malformation is an ``AssertionError_``."""
    if len(assertion) > MAX_ASSERTION_LENGTH:
        raise AssertionError_("assertion too long")
    try:
        signed = jws.extract_compact(assertion.encode("ascii"), registry=ASSERTION_ALGORITHMS)
        claims = json.loads(signed.payload or b"")
    except (JoseError, ValueError, UnicodeError) as exc:
        raise AssertionError_(f"malformed assertion: {type(exc).__name__}") from None
    if not isinstance(claims, dict):
        raise AssertionError_("malformed assertion: the payload is not a JSON object")
    return signed, claims


def unverified_client_id(assertion: str) -> str:
    """The ``iss`` of an assertion, read before verification to find the credential."""
    _, claims = _parse(assertion)
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise AssertionError_("assertion has no iss")
    return issuer


def verify(
    assertion: str,
    *,
    client_id: str,
    keys: Sequence[dict[str, str]],
    audiences: Collection[str],
    now: datetime,
) -> tuple[str, datetime]:
    """Verify signature and claims; returns the replay-cache key and when it may be forgotten."""
    signed, claims = _parse(assertion)
    header = signed.headers()
    if header.get("alg") not in ASSERTION_ALGS:
        raise AssertionError_(f"assertion alg {header.get('alg')!r} is not EdDSA or Ed25519")
    _check_signature(signed, header, keys)
    required: ClaimsOption = {"essential": True}
    rules = JWTClaimsRegistry(
        now=int(now.timestamp()),
        leeway=LEEWAY,
        exp=required,
        iss=required,
        sub=required,
        aud=required,
    )
    try:
        rules.validate(claims)
    except JoseError as exc:
        raise AssertionError_(f"assertion rejected: {type(exc).__name__}: {exc}") from None
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise AssertionError_("iss and sub must both be the client_id")
    audience = claims.get("aud")
    values = [audience] if isinstance(audience, str) else audience
    if not isinstance(values, list) or not any(
        isinstance(a, str) and a in audiences for a in values
    ):
        raise AssertionError_("aud names none of this server's identifiers")
    exp = claims["exp"]
    if exp > now.timestamp() + MAX_LIFETIME:
        raise AssertionError_("exp more than 5 minutes ahead")
    # What makes the assertion single-use: its jti, else a nonce, which ConductorOne's Go
    # SDK sends in the header and its Python SDK as a claim.
    for marker_type, value in (
        ("jti", claims.get("jti")),
        ("nonce", header.get("nonce")),
        ("nonce", claims.get("nonce")),
    ):
        if isinstance(value, str) and value:
            marker = f"{marker_type}:{value}"
            break
    else:
        raise AssertionError_("assertion has neither jti nor nonce")
    key = hashlib.sha256(f"{client_id}\0{marker}".encode()).hexdigest()
    return key, datetime.fromtimestamp(exp, UTC) + timedelta(seconds=LEEWAY)


def _check_signature(
    signed: CompactSignature, header: dict[str, Any], keys: Sequence[dict[str, str]]
) -> None:
    """The Ed25519 signature must check out under one of the credential's keys."""
    kid = header.get("kid")
    for jwk in keys:
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        if kid is not None and jwk.get("kid") not in (None, kid):
            continue
        try:
            key = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": jwk["x"]})
            if jws.validate_compact(signed, key, registry=ASSERTION_ALGORITHMS):
                return
        except (JoseError, ValueError, KeyError, TypeError):
            continue
    raise AssertionError_("no registered key verifies the assertion")


def audiences_for(issuer: str, issuer_host: str, endpoint_url: str) -> frozenset[str]:
    """What ``aud`` may name: the issuer URL, the token endpoint URL, the host, this endpoint."""
    return frozenset({issuer, f"{issuer}/auth/v1/token", issuer_host, endpoint_url})
