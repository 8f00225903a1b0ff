"""Token signing keys: generated on first start, rotated by the CLI, published as a JWKS.

Keys live in the database so that every instance signs with the same active
key and publishes the same set. A retired key stays published until
``publish_until`` (its retirement plus the token TTL): every token it signed
has expired by then.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from authserver.config import Settings
from authserver.store.repository import KeyRecord, Repository

_REQUIRED_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "RSA": ("e", "kty", "n"),
}


def _generate(alg: str) -> Any:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unsupported signing alg {alg}")


def _public_jwk(public_key: Any) -> dict[str, str]:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public_key, as_dict=True)
    elif isinstance(public_key, ed25519.Ed25519PublicKey):
        jwk = OKPAlgorithm.to_jwk(public_key, as_dict=True)
    else:
        jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
    return {k: v for k, v in jwk.items() if k in ("kty", "crv", "x", "y", "n", "e")}


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256), used as ``kid``."""
    members = {k: jwk[k] for k in _REQUIRED_MEMBERS[jwk["kty"]]}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def new_key(alg: str) -> tuple[str, str, dict[str, str]]:
    """(kid, private PEM, public JWK) of a fresh key for ``alg``."""
    private = _generate(alg)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = _public_jwk(private.public_key())
    return thumbprint(public), pem, public


MAX_VERIFIED = 10_000  # tokens whose signature check is remembered (introspection)

# Other instances may sign with a retired key until their next refresh, and clocks differ.
PUBLISH_MARGIN = timedelta(seconds=60)


def _publish_until(settings: Settings, retired_at: datetime) -> datetime:
    """A retired key stays published until every token it can still have signed expired."""
    return retired_at + timedelta(seconds=settings.access_token_ttl) + PUBLISH_MARGIN


def ensure_active_key(repo: Repository, settings: Settings, *, now: datetime) -> None:
    """Create an active key of the configured algorithm when there is none."""
    if any(k.retired_at is None and k.alg == settings.signing_alg for k in repo.list_keys()):
        return
    _add_key(repo, settings, now=now, only_if_none_active=True)


def rotate(repo: Repository, settings: Settings, *, now: datetime) -> KeyRecord:
    """Add a new active key; the previous one stays published for one token TTL (+ margin)."""
    added = _add_key(repo, settings, now=now, only_if_none_active=False)
    assert added is not None
    return added


def _add_key(
    repo: Repository, settings: Settings, *, now: datetime, only_if_none_active: bool
) -> KeyRecord | None:
    kid, pem, public = new_key(settings.signing_alg)
    return repo.add_active_key(
        kid=kid,
        alg=settings.signing_alg,
        private_pem=pem,
        public_jwk=public,
        now=now,
        publish_until=_publish_until(settings, now),
        only_if_none_active=only_if_none_active,
    )


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@dataclass(frozen=True)
class SigningKey:
    """The key tokens are signed with right now."""

    kid: str
    alg: str
    private_key: Any

    def __post_init__(self) -> None:
        header = {"alg": self.alg, "kid": self.kid, "typ": "at+jwt"}
        encoded = _b64(json.dumps(header, separators=(",", ":")).encode())
        object.__setattr__(self, "_header", encoded + b".")

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact JWS (RFC 7515) of ``claims``.

        Done here rather than with ``jwt.encode``: the header is encoded once per
        key instead of per token, which made signing about half as costly (PyJWT
        verifies every token in the tests).
        """
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = self._header + payload  # type: ignore[attr-defined]
        key = self.private_key
        if self.alg == "ES256":
            r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        elif self.alg == "EdDSA":
            signature = key.sign(signing_input)
        else:
            signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return (signing_input + b"." + _b64(signature)).decode()


class KeyRing:
    """In-memory view of the signing keys, reloaded from the database by the app."""

    def __init__(self) -> None:
        self.active: SigningKey | None = None
        self.jwks: dict[str, list[dict[str, str]]] = {"keys": []}
        self.jwks_body: bytes = b'{"keys":[]}'
        self._public: dict[str, Any] = {}
        self._loaded: tuple[tuple[str, datetime | None], ...] = ()
        self._verified: dict[bytes, tuple[str, dict[str, Any]]] = {}

    def load(self, records: list[KeyRecord], *, alg: str, now: datetime) -> None:
        """Adopt the newest active key of ``alg`` and publish every key still needed."""
        published = [r for r in records if r.publish_until is None or r.publish_until > now]
        fingerprint = tuple((r.kid, r.retired_at) for r in published)
        if fingerprint == self._loaded and self.active is not None:
            return
        active = [r for r in records if r.retired_at is None and r.alg == alg]
        if active:
            newest = active[-1]
            if self.active is None or self.active.kid != newest.kid:
                private = serialization.load_pem_private_key(newest.private_pem.encode(), None)
                self.active = SigningKey(kid=newest.kid, alg=newest.alg, private_key=private)
        keys = [{**r.public_jwk, "kid": r.kid, "alg": r.alg, "use": "sig"} for r in published]
        self.jwks = {"keys": keys}
        self.jwks_body = json.dumps(self.jwks, separators=(",", ":")).encode()
        self._public = {
            r.kid: jwt.PyJWK({**r.public_jwk, "kid": r.kid}, algorithm=r.alg) for r in published
        }
        self._verified = {}  # the published set changed: every token is checked afresh
        self._loaded = fingerprint

    def sign(self, claims: dict[str, Any]) -> str:
        key = self.active
        if key is None:
            raise RuntimeError("no active signing key")
        return key.sign(claims)

    def public_key(self, kid: str) -> jwt.PyJWK | None:
        return self._public.get(kid)

    def verified(self, digest: bytes) -> dict[str, Any] | None:
        """Claims of a token (by SHA-256) whose signature checked out under a published key."""
        entry = self._verified.get(digest)
        if entry is None or entry[0] not in self._public:
            return None
        return dict(entry[1])

    def remember_verified(self, digest: bytes, kid: str, claims: dict[str, Any]) -> None:
        if len(self._verified) >= MAX_VERIFIED:
            self._verified.pop(next(iter(self._verified)))
        self._verified[digest] = (kid, claims)
