"""DPoP proofs from the client's side (RFC 9449): one ES256 key per process, a proof per request."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from urllib.parse import urlsplit, urlunsplit

from joserfc import jws
from joserfc.jwk import ECKey

from authserver.domain.secrets import b64url
from authserver.security.dpop import DPOP_ALGORITHMS

_lock = threading.Lock()
_process_key: ECKey | None = None


def process_key() -> ECKey:
    """The process's DPoP key, made at first use: tokens it binds are useless elsewhere."""
    global _process_key
    with _lock:
        if _process_key is None:
            _process_key = ECKey.generate_key("P-256")
        return _process_key


class DpopSigner:
    """Signs DPoP proofs with one key, and keeps the server's latest ``DPoP-Nonce``."""

    def __init__(self, key: ECKey | None = None) -> None:
        self.key = key or process_key()
        self._header = {
            "typ": "dpop+jwt",
            "alg": "ES256",
            "jwk": self.key.as_dict(private=False),
        }
        self.nonce: str | None = None

    def proof(self, method: str, url: str, *, access_token: str | None = None) -> str:
        """A proof for one ``method`` request to ``url`` (its query and fragment left out)."""
        parts = urlsplit(url)
        claims: dict[str, object] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method.upper(),
            "htu": urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "", "")),
            "iat": int(time.time()),
        }
        if access_token is not None:
            claims["ath"] = b64url(hashlib.sha256(access_token.encode()).digest())
        if self.nonce is not None:
            claims["nonce"] = self.nonce
        payload = json.dumps(claims, separators=(",", ":")).encode()
        return jws.serialize_compact(self._header, payload, self.key, registry=DPOP_ALGORITHMS)
