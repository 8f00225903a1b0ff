"""Token signing keys in memory: new keys, the active signer, and the published JWKS.

Keys live in the database (``usecases/keys.py`` creates and rotates them) so
that every instance signs with the same active key and publishes the same set;
``KeyRing`` is one instance's view of them, reloaded by a background task.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey, import_key

from authserver.domain.algorithms import TOKEN_KEY_TYPES
from authserver.records import KeyRecord
from authserver.security.jose import TOKEN_ALGORITHMS


def _generate(alg: str) -> ECKey | OKPKey | RSAKey:
    """A new private key for ``alg`` (its key type from ``TOKEN_KEY_TYPES``)."""
    kinds: dict[str, Callable[[], ECKey | OKPKey | RSAKey]] = {
        "EC": lambda: ECKey.generate_key("P-256"),
        "OKP": lambda: OKPKey.generate_key("Ed25519"),
        "RSA": lambda: RSAKey.generate_key(2048),
    }
    if alg not in TOKEN_KEY_TYPES:
        raise ValueError(f"unsupported signing alg {alg}")
    return kinds[TOKEN_KEY_TYPES[alg]]()


def new_key(alg: str) -> tuple[str, str, dict[str, str]]:
    """(kid, private PEM, public JWK) of a fresh key for ``alg``; the kid is its RFC 7638
    thumbprint."""
    private = _generate(alg)
    pem = private.as_pem(private=True).decode()
    public = {k: str(v) for k, v in private.as_dict(private=False).items()}
    return private.thumbprint(), pem, public


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256), used as ``kid``."""
    return import_key(dict(jwk)).thumbprint()


MAX_VERIFIED = 10_000  # tokens whose signature check is remembered (introspection)
# Claim values that repeat across tokens (issuer, audience, user, client, scope, roles)
# are kept once; past this many distinct ones, new entries stop sharing until a reload.
MAX_SHARED_VALUES = 2 * MAX_VERIFIED
_UNSHARED = frozenset({"jti", "iat", "exp"})  # unique per token, or small numbers


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


# Made once: ``json.dumps`` with ``separators`` builds a new encoder on every call.
_compact_json = json.JSONEncoder(separators=(",", ":")).encode


def _signer(alg: str, key: Key) -> Callable[[bytes], bytes]:
    """The JWS signature function (RFC 7518 section 3) of ``key``, resolved once per key.

    ES256 calls the key's OpenSSL object directly with an ``ECDSA(SHA-256)`` made
    once, and encodes ``r || s`` as RFC 7518 section 3.4 says: the same bytes
    joserfc's ``ESAlgorithm.sign`` produces, without its per-call key-operation
    lookup and object creation (docs/performance.md). Other algorithms go through
    joserfc.
    """
    native = key.private_key
    if alg == "ES256" and isinstance(native, ec.EllipticCurvePrivateKey):
        ecdsa = ec.ECDSA(hashes.SHA256())

        def sign_es256(data: bytes) -> bytes:
            r, s = decode_dss_signature(native.sign(data, ecdsa))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")

        return sign_es256
    algorithm = TOKEN_ALGORITHMS.get_alg(alg)
    return lambda data: algorithm.sign(data, key)


@dataclass(frozen=True)
class SigningKey:
    """The key tokens are signed with right now."""

    kid: str
    alg: str
    private_key: Key
    _header: bytes = field(init=False, repr=False)
    _sign: Callable[[bytes], bytes] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        header = {"alg": self.alg, "kid": self.kid, "typ": "at+jwt"}
        encoded = _b64(_compact_json(header).encode())
        object.__setattr__(self, "_header", encoded + b".")
        object.__setattr__(self, "_sign", _signer(self.alg, self.private_key))

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact JWS (RFC 7515) of ``claims``.

        The protected header never changes for a key, so it is encoded once here
        rather than per token by ``joserfc.jwt.encode``, and so is the signer
        (docs/performance.md).
        """
        # orjson: the same compact JSON (non-ASCII as UTF-8 rather than escaped), and a
        # tenth of the json module's time.
        signing_input = self._header + _b64(orjson.dumps(claims))
        return (signing_input + b"." + _b64(self._sign(signing_input))).decode()


class KeyRing:
    """In-memory view of the signing keys, reloaded from the database by the app."""

    def __init__(self) -> None:
        self.active: SigningKey | None = None
        self.jwks: dict[str, list[dict[str, str]]] = {"keys": []}
        self.jwks_body: bytes = b'{"keys":[]}'
        self._public: dict[str, tuple[str, Key]] = {}
        self._loaded: tuple[tuple[str, datetime | None], ...] = ()
        # token SHA-256 -> (claim names, kid, *claim values): see remember_verified
        self._verified: dict[bytes, tuple[Any, ...]] = {}
        self._names: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._shared: dict[Any, Any] = {}
        # Secret material every instance shares through the database: derived from the
        # active key (DPoP nonces are made with it, ``security/dpop.py``).
        self.shared_secret = b""

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
                key_type: Any = TOKEN_KEY_TYPES[newest.alg]
                private = import_key(newest.private_pem.encode(), key_type)
                self.active = SigningKey(kid=newest.kid, alg=newest.alg, private_key=private)
                self.shared_secret = hashlib.sha256(newest.private_pem.encode()).digest()
        keys = [{**r.public_jwk, "kid": r.kid, "alg": r.alg, "use": "sig"} for r in published]
        self.jwks = {"keys": keys}
        self.jwks_body = json.dumps(self.jwks, separators=(",", ":")).encode()
        self._public = {r.kid: (r.alg, _public_key(r.public_jwk)) for r in published}
        self._verified = {}  # the published set changed: every token is checked afresh
        self._names, self._shared = {}, {}
        self._loaded = fingerprint

    def sign(self, claims: dict[str, Any]) -> str:
        key = self.active
        if key is None:
            raise RuntimeError("no active signing key")
        return key.sign(claims)

    def public_key(self, kid: str) -> tuple[str, Key] | None:
        """(alg, public key) of a published key."""
        return self._public.get(kid)

    def verified(self, digest: bytes) -> dict[str, Any] | None:
        """Claims of a token (by SHA-256) whose signature checked out under a published key."""
        entry = self._verified.get(digest)
        if entry is None or entry[1] not in self._public:
            return None
        # JSON has no tuples: every tuple here was a list (roles) when it was parsed.
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in zip(entry[0], entry[2:], strict=True)
        }

    def remember_verified(self, digest: bytes, kid: str, claims: dict[str, Any]) -> None:
        """Remember a verified token as one flat tuple, its repeating values shared.

        A dict of freshly parsed claims per token cost about 1.6 kB; the tuple, with
        the issuer, audience, user, client, scope and roles held once for all the
        tokens that carry them, costs about a quarter of that (docs/performance.md).
        """
        if len(self._verified) >= MAX_VERIFIED:
            self._verified.pop(next(iter(self._verified)))
        names = tuple(claims)
        names = self._names.setdefault(names, names) if len(self._names) < 16 else names
        if len(self._shared) >= MAX_SHARED_VALUES:
            self._shared = {}
        values = []
        for name, value in claims.items():
            if isinstance(value, list):
                value = tuple(value)
            if name not in _UNSHARED and isinstance(value, str | tuple):
                try:
                    value = self._shared.setdefault(value, value)
                except TypeError:  # a tuple holding something unhashable: kept as it is
                    pass
            values.append(value)
        self._verified[digest] = (names, kid, *values)


def _public_key(jwk: Mapping[str, str]) -> Key:
    return import_key({k: v for k, v in jwk.items()})
