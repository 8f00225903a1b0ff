"""Verifying a CI job's ID token for a federation trust (RFC 8693 ``subject_token``).

The token must be a JWS (RS256, ES256 or EdDSA; never ``none`` or HMAC) by a key of
the trust's issuer, with ``iss`` the trust's issuer, ``aud`` containing its
audience, ``exp`` in the future (60 s leeway), ``iat`` at most
``federation_max_token_age`` ago, and claims satisfying the trust's condition.
Every refusal raises ``SubjectTokenRefused`` with a short reason for the audit trail
(``malformed``, ``algorithm``, ``issuer``, ``jwks_unreachable``, ``signature``,
``audience``, ``expired``, ``too_old``, ``not_yet_valid``, ``condition``).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jws import CompactSignature

from authserver.domain.algorithms import FEDERATION_ALGS
from authserver.domain.credentials import Federation
from authserver.domain.federation import CLOCK_LEEWAY, compiled
from authserver.security.issuer_keys import IssuerKeys, KeysUnavailable
from authserver.security.jose import Algorithms

MAX_SUBJECT_TOKEN = 16 * 1024
FEDERATION_ALGORITHMS = Algorithms(FEDERATION_ALGS)
_KEY_TYPES = {"RS256": "RSA", "ES256": "EC", "EdDSA": "OKP"}


class SubjectTokenRefused(Exception):
    """The subject token does not satisfy the trust; ``reason`` is for the audit trail."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class VerifiedSubject:
    """A subject token that satisfied a trust: who the job is (``act``) and its claims."""

    issuer: str
    subject: str
    claims: dict[str, Any]

    @property
    def act(self) -> dict[str, str]:
        """RFC 8693 section 4.1: the party that acted, the job."""
        return {"iss": self.issuer, "sub": self.subject}


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a compact JWS, not verified; ``malformed`` otherwise."""
    if not isinstance(token, str) or len(token) > MAX_SUBJECT_TOKEN:
        raise SubjectTokenRefused("malformed")
    parts = token.split(".")
    if len(parts) != 3:
        raise SubjectTokenRefused("malformed")
    try:
        header, claims = (json.loads(_b64(part)) for part in parts[:2])
    except (ValueError, binascii.Error, UnicodeError):
        raise SubjectTokenRefused("malformed") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise SubjectTokenRefused("malformed")
    return header, claims


def _parse(token: str) -> tuple[dict[str, Any], dict[str, Any], CompactSignature | None]:
    """Header, claims and (for an algorithm we accept) joserfc's parsed JWS, parsed once."""
    header, claims = unverified(token)
    if header.get("alg") not in FEDERATION_ALGS:
        return header, claims, None
    try:
        signed = jws.extract_compact(token.encode("ascii"), registry=FEDERATION_ALGORITHMS)
    except (JoseError, ValueError):
        raise SubjectTokenRefused("malformed") from None
    return header, claims, signed


def _b64(part: str) -> bytes:
    if not part or not part.isascii():
        raise ValueError("empty or non-ASCII segment")
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


async def verify(
    token: str,
    *,
    trust: Federation,
    keys: IssuerKeys,
    now: datetime,
    max_age: int,
) -> VerifiedSubject:
    """The verified subject of ``token`` for ``trust``, else ``SubjectTokenRefused``."""
    header, claims, signed = _parse(token)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in FEDERATION_ALGS:
        raise SubjectTokenRefused("algorithm")  # none, HMAC and everything else
    if header.get("crit") is not None:
        raise SubjectTokenRefused("malformed")
    # The issuer is judged before any key is fetched: no fetch for a token of another.
    if claims.get("iss") != trust.issuer:
        raise SubjectTokenRefused("issuer")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise SubjectTokenRefused("malformed")
    try:
        key = await keys.key(trust.issuer, kid, _KEY_TYPES[alg])
    except KeysUnavailable:
        raise SubjectTokenRefused("jwks_unreachable") from None
    if key is None:
        raise SubjectTokenRefused("signature")  # a key the issuer does not publish
    try:
        valid = signed is not None and jws.validate_compact(
            signed, key, registry=FEDERATION_ALGORITHMS
        )
    except (JoseError, ValueError):
        valid = False
    if not valid:
        raise SubjectTokenRefused("signature")
    _check_times(claims, now=now, max_age=max_age)
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or trust.audience not in audiences:
        raise SubjectTokenRefused("audience")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 1024:
        raise SubjectTokenRefused("subject")
    if not compiled(trust.condition).holds(claims):
        raise SubjectTokenRefused("condition")
    return VerifiedSubject(issuer=trust.issuer, subject=subject, claims=claims)


def _check_times(claims: dict[str, Any], *, now: datetime, max_age: int) -> None:
    leeway = CLOCK_LEEWAY.total_seconds()
    at = now.timestamp()
    exp, iat, nbf = _number(claims, "exp"), _number(claims, "iat"), _number(claims, "nbf")
    if exp is None or at >= exp + leeway:
        raise SubjectTokenRefused("expired")
    if iat is None or at - iat > max_age:
        raise SubjectTokenRefused("too_old")
    if iat > at + leeway or (nbf is not None and nbf > at + leeway):
        raise SubjectTokenRefused("not_yet_valid")
    if "nbf" in claims and nbf is None:
        raise SubjectTokenRefused("malformed")


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
