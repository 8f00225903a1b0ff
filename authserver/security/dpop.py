"""RFC 9449 DPoP proofs: a JWS over the request, signed with a key the client holds.

``verify_proof`` checks one proof for one request — its header (``typ``
``dpop+jwt``, an asymmetric ``alg``, a public ``jwk`` of the matching type and
never a private one), its signature under that key, and its claims (``jti``,
``htm``, ``htu`` normalised per RFC 9449 section 4.3, ``iat`` within 60 s,
``ath`` when it accompanies an access token, ``nonce`` when one is asked for) —
and returns the key's RFC 7638 thumbprint (``jkt``), which binds a token
(``cnf.jkt``). Refusals raise ``DpopRefused`` with the reason for the audit
trail; the caller answers in its own words. Single use of ``jti`` across
instances is the caller's business (``usecases/replay.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import import_key

from authserver.domain.algorithms import DPOP_ALGS
from authserver.domain.secrets import b64url
from authserver.security.jose import Algorithms

MAX_PROOF_LENGTH = 8192
MAX_JTI_LENGTH = 256
IAT_WINDOW = 60  # seconds either side of now (RFC 9449 section 11.1)
_KEY_TYPES = {"ES256": ("EC", "P-256"), "EdDSA": ("OKP", "Ed25519"), "RS256": ("RSA", None)}
# Members that only a private key has (RFC 7518 section 6, RFC 8037 section 2).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
DPOP_ALGORITHMS = Algorithms(DPOP_ALGS)
MAX_KNOWN_KEYS = 10_000
_KNOWN_KEYS: dict[str, tuple[Any, str]] = {}  # canonical public JWK -> (key, thumbprint)
# The header carries the public key: a 4096-bit RSA modulus is ~700 base64 characters.
DPOP_ALGORITHMS.max_header_length = 2048


class DpopRefused(Exception):
    """Why a proof was refused (for the audit trail, never shown in detail)."""


class NonceRequired(DpopRefused):
    """The proof carries no server nonce, or one no longer current (``use_dpop_nonce``)."""


NONCE_WINDOW = 300  # seconds a nonce is current; the previous window's is accepted too


def nonce_key(secret: bytes) -> bytes:
    """The key nonces are made with, derived from ``secret`` (shared by every instance)."""
    return hmac.new(secret, b"authserver dpop nonce v1", hashlib.sha256).digest()


def nonces(key: bytes, now: float) -> tuple[str, str]:
    """(the current nonce, the previous window's): a keyed MAC of the time window, so any
    instance makes and accepts the same ones and nothing is stored per nonce."""
    window = int(now // NONCE_WINDOW)

    def mac(w: int) -> str:
        return b64url(hmac.new(key, str(w).encode(), hashlib.sha256).digest()[:18])

    return mac(window), mac(window - 1)


@dataclass(frozen=True)
class Proof:
    """A proof that checked out: the key's thumbprint, and what makes the proof single-use."""

    jkt: str
    jti: str
    iat: int

    def replay_entry(self) -> tuple[str, datetime]:
        """(key in the shared replay store, when it may be forgotten): the proof is
        accepted once, and after its ``iat`` window no copy of it is accepted anyway."""
        key = hashlib.sha256(f"dpop\0{self.jkt}\0{self.jti}".encode()).hexdigest()
        return key, datetime.fromtimestamp(self.iat, UTC) + timedelta(seconds=2 * IAT_WINDOW)


def access_token_hash(token: str) -> str:
    """``ath``: base64url of the SHA-256 of the access token (RFC 9449 section 4.2)."""
    return b64url(hashlib.sha256(token.encode("ascii", "surrogateescape")).digest())


def normalized_url(url: str) -> str:
    """``url`` without query and fragment, normalised as RFC 3986 sections 6.2.2 and 6.2.3 say:
    scheme and host in lower case, the default port dropped, an empty path as "/", and
    percent-encoding in one form."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    path = quote(unquote(parts.path or "/"), safe="/:@!$&'()*+,;=~")
    return urlunsplit((scheme, host, path, "", ""))


def verify_proof(
    proof: str,
    *,
    method: str,
    url: str,
    now: float,
    access_token: str | None = None,
    nonces: tuple[str, ...] = (),
) -> Proof:
    """The checked proof for a ``method`` request to ``url``, or ``DpopRefused``.

    ``access_token``: the token the proof accompanies (its ``ath`` must match).
    ``nonces``: the server nonces accepted now; empty when none is asked for.
    """
    if not isinstance(proof, str) or not proof or len(proof) > MAX_PROOF_LENGTH:
        raise DpopRefused("malformed proof")
    try:
        signed = jws.extract_compact(proof.encode("ascii"), registry=DPOP_ALGORITHMS)
        header = signed.headers()
        claims = json.loads(signed.payload or b"")
    except (JoseError, ValueError, UnicodeError) as exc:
        raise DpopRefused(f"malformed proof: {type(exc).__name__}") from None
    if header.get("typ") != "dpop+jwt":
        raise DpopRefused("typ is not dpop+jwt")
    alg = header.get("alg")
    if alg not in DPOP_ALGS:
        raise DpopRefused(f"alg {str(alg)[:20]!r} is not accepted")
    jwk = header.get("jwk")
    key, jkt = _public_key(jwk, alg)
    try:
        if not jws.validate_compact(signed, key, registry=DPOP_ALGORITHMS):
            raise DpopRefused("signature does not verify under jwk")
    except JoseError as exc:
        raise DpopRefused(f"signature not checked: {type(exc).__name__}") from None
    if not isinstance(claims, dict):
        raise DpopRefused("the payload is not a JSON object")
    _check_claims(claims, method=method, url=url, now=now, access_token=access_token)
    if nonces and not any(
        isinstance(claims.get("nonce"), str) and hmac.compare_digest(claims["nonce"], n)
        for n in nonces
    ):
        raise NonceRequired("nonce missing or not current")
    return Proof(jkt=jkt, jti=claims["jti"], iat=int(claims["iat"]))


def _public_key(jwk: Any, alg: str) -> tuple[Any, str]:
    """The proof's public key, checked, and its RFC 7638 thumbprint."""
    if not isinstance(jwk, dict):
        raise DpopRefused("no public jwk in the header")
    if _PRIVATE_MEMBERS & set(jwk):
        raise DpopRefused("the header's jwk holds a private key")
    kty, crv = _KEY_TYPES[alg]
    if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
        raise DpopRefused(f"jwk is not a {crv or kty} key for {alg}")
    # A client signs every proof with one key: parsing it (and its thumbprint) once saves
    # most of a proof's cost.
    name = json.dumps(jwk, sort_keys=True, separators=(",", ":"))
    known = _KNOWN_KEYS.get(name)
    if known is not None:
        return known
    try:
        key = import_key(dict(jwk))
        jkt = key.thumbprint()
    except (JoseError, ValueError, TypeError) as exc:
        raise DpopRefused(f"jwk unusable: {type(exc).__name__}") from None
    if len(_KNOWN_KEYS) >= MAX_KNOWN_KEYS:
        _KNOWN_KEYS.pop(next(iter(_KNOWN_KEYS)))
    _KNOWN_KEYS[name] = (key, jkt)
    return key, jkt


def _check_claims(
    claims: Mapping[str, Any], *, method: str, url: str, now: float, access_token: str | None
) -> None:
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise DpopRefused("jti missing")
    if claims.get("htm") != method:
        raise DpopRefused("htm is not this request's method")
    htu = claims.get("htu")
    if not isinstance(htu, str) or normalized_url(htu) != normalized_url(url):
        raise DpopRefused("htu is not this request's URL")
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int | float):
        raise DpopRefused("iat missing")
    if abs(now - iat) > IAT_WINDOW:
        raise DpopRefused("iat not within 60 s of now")
    if access_token is not None:
        ath = claims.get("ath")
        if not isinstance(ath, str) or not hmac.compare_digest(
            ath, access_token_hash(access_token)
        ):
            raise DpopRefused("ath is not the hash of the access token")
