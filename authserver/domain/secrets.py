"""Secrets: the ``secret-token:`` format (RFC 8959) and the opaque bearer tokens we mint.

A client secret is ``secret-token:<domain>:v1:<base64url of an Ed25519 private
JWK>``. The whole string is the secret (stored as an argon2id hash); the key
inside it also signs ``private_key_jwt`` assertions, and its public half is
stored in the clear so that possession can be checked without argon2.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SECRET_PREFIX = "secret-token:"
SECRET_VERSION = "v1"


@dataclass(frozen=True)
class NewSecret:
    """A freshly generated secret: the string shown once and the public JWK we keep."""

    secret: str
    public_jwk: dict[str, str]


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _secret_string(domain: str, key: Ed25519PrivateKey) -> tuple[str, str]:
    """(the secret string for ``key`` under ``domain``, the key's public ``x``).

    The one encoding we issue: compact JSON, members in this order, unpadded
    base64url. Its JSON is always 129 bytes, so the base64 needs no padding —
    the form both ConductorOne SDKs can decode (Go refuses "=", Python adds none).
    """
    x = b64url(key.public_key().public_bytes_raw())
    d = b64url(key.private_bytes_raw())
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": x, "d": d}
    encoded = b64url(json.dumps(jwk, separators=(",", ":")).encode())
    return f"{SECRET_PREFIX}{domain}:{SECRET_VERSION}:{encoded}", x


def new_secret(domain: str) -> NewSecret:
    """``secret-token:<domain>:v1:<b64url of the Ed25519 private JWK>``."""
    secret, x = _secret_string(domain, Ed25519PrivateKey.generate())
    return NewSecret(secret=secret, public_jwk={"kty": "OKP", "crv": "Ed25519", "x": x})


def parse_secret(secret: str) -> dict[str, str] | None:
    """The private JWK inside a secret string, or None when it is not one of ours."""
    if not secret.startswith(SECRET_PREFIX):
        return None
    _, sep, encoded = secret.rpartition(f":{SECRET_VERSION}:")
    if not sep or not encoded:
        return None
    try:
        jwk = json.loads(b64url_decode(encoded))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        return None
    if not isinstance(jwk.get("x"), str) or not isinstance(jwk.get("d"), str):
        return None
    return jwk


def looks_like_secret(secret: str) -> bool:
    """True when ``secret`` has the outline of ours: the prefix, a version, something after it.

    The cheap check made before any lookup (``parse_secret`` decodes the key's
    JSON); ``secret_refusal`` still decides on the whole string.
    """
    return (
        secret.startswith(SECRET_PREFIX)
        and not secret.endswith(f":{SECRET_VERSION}:")
        and (f":{SECRET_VERSION}:" in secret)
    )


def secret_refusal(
    secret: str, *, domain: str | None, public_keys: Iterable[Mapping[str, str]]
) -> str | None:
    """Why ``secret`` cannot be a credential's secret, checked without argon2; None if it may be.

    Its Ed25519 key must be the credential's (a cheap proof of possession: the
    public key cannot be turned back into the secret), and the string must be
    exactly the one issued: the credential's secret domain and our one JSON
    encoding. Another encoding of the same key is not the secret, and refusing
    it here keeps a key holder from buying an argon2 run per variant. The argon2
    hash stays the authority on the exact string.
    """
    jwk = parse_secret(secret)
    if jwk is None or domain is None:
        return "wrong secret"
    try:
        key = Ed25519PrivateKey.from_private_bytes(b64url_decode(jwk["d"]))
    except (ValueError, TypeError):
        return "wrong secret"
    issued, x = _secret_string(domain, key)
    if not any(isinstance(k.get("x"), str) and hmac.compare_digest(k["x"], x) for k in public_keys):
        return "wrong secret"
    if not hmac.compare_digest(issued.encode(), secret.encode("utf-8", "surrogatepass")):
        return "secret not in the form issued (another domain or encoding of its key)"
    return None


def new_opaque_token() -> str:
    """A bearer token (initial access, RFC 7592 management, ...): 256 random bits."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """SHA-256 hex of a high-entropy token; enough at rest, unlike for user-chosen secrets."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
