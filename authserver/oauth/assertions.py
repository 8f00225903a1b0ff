"""RFC 7523 section 2.2 client assertions (``private_key_jwt``) signed with Ed25519.

The key is the one inside the credential's secret (its public half is stored)
or a key the client registered with ``jwks``. Checks: EdDSA only, ``iss`` =
``sub`` = client_id, an accepted ``aud``, ``exp`` present and at most five
minutes ahead (60 s leeway), and a ``jti`` (or header ``nonce``) never seen
before — the replay cache lives in the database so every instance shares it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jwt.utils import base64url_decode

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# "EdDSA" (RFC 8037) and its fully specified successor "Ed25519" (RFC 9864).
SIGNING_ALGS = ("EdDSA", "Ed25519")
MAX_LIFETIME = 300
LEEWAY = 60
MAX_ASSERTION_LENGTH = 4096


class AssertionError_(Exception):
    """Why an assertion was refused (logged, never shown to the caller)."""


def unverified_client_id(assertion: str) -> str:
    """The ``iss`` of an assertion, read before verification to find the credential."""
    if len(assertion) > MAX_ASSERTION_LENGTH:
        raise AssertionError_("assertion too long")
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise AssertionError_(f"malformed assertion: {type(exc).__name__}") from None
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
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise AssertionError_("malformed assertion header") from None
    if header.get("alg") not in SIGNING_ALGS:
        raise AssertionError_(f"assertion alg {header.get('alg')!r} is not EdDSA or Ed25519")
    claims = _verified_claims(assertion, header, keys, now)
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise AssertionError_("iss and sub must both be the client_id")
    audience = claims.get("aud")
    values = [audience] if isinstance(audience, str) else audience
    if not isinstance(values, list) or not any(
        isinstance(a, str) and a in audiences for a in values
    ):
        raise AssertionError_("aud names none of this server's identifiers")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise AssertionError_("exp missing")
    timestamp = now.timestamp()
    if exp > timestamp + MAX_LIFETIME:
        raise AssertionError_("exp more than 5 minutes ahead")
    jti = claims.get("jti")
    nonce = header.get("nonce")
    if isinstance(jti, str) and jti:
        marker = f"jti:{jti}"
    elif isinstance(nonce, str) and nonce:
        marker = f"nonce:{nonce}"
    else:
        raise AssertionError_("assertion has neither jti nor nonce")
    key = hashlib.sha256(f"{client_id}\0{marker}".encode()).hexdigest()
    return key, datetime.fromtimestamp(exp, UTC) + timedelta(seconds=LEEWAY)


def _verified_claims(
    assertion: str, header: dict[str, Any], keys: Sequence[dict[str, str]], now: datetime
) -> dict[str, Any]:
    """Check the Ed25519 signature against each candidate key, then the time claims.

    The signature is checked with ``cryptography`` directly because PyJWT does
    not know the RFC 9864 name ``Ed25519``.
    """
    try:
        signing_input, _, signature_b64 = assertion.rpartition(".")
        signature = base64url_decode(signature_b64)
    except (ValueError, TypeError):
        raise AssertionError_("malformed assertion signature") from None
    kid = header.get("kid")
    for jwk in keys:
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        if kid is not None and jwk.get("kid") not in (None, kid):
            continue
        try:
            public = Ed25519PublicKey.from_public_bytes(base64url_decode(jwk["x"]))
            public.verify(signature, signing_input.encode("ascii"))
        except (InvalidSignature, ValueError, KeyError, UnicodeEncodeError):
            continue
        try:
            return jwt.decode(
                assertion,
                options={
                    "verify_signature": False,
                    "verify_exp": True,
                    "verify_iat": True,
                    "verify_nbf": True,
                    "require": ["exp", "iss", "sub", "aud"],
                },
                leeway=LEEWAY,
            )
        except jwt.PyJWTError as exc:
            raise AssertionError_(f"assertion rejected: {type(exc).__name__}: {exc}") from None
    raise AssertionError_("no registered key verifies the assertion")


def audiences_for(issuer: str, issuer_host: str, endpoint_url: str) -> frozenset[str]:
    """What ``aud`` may name: the issuer URL, the token endpoint URL, the host, this endpoint."""
    return frozenset({issuer, f"{issuer}/auth/v1/token", issuer_host, endpoint_url})
