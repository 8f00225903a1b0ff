"""Client-side helper: authenticate with ``private_key_jwt`` instead of sending the secret.

The ``secret-token:`` string holds an Ed25519 private key; this module signs an
RFC 7523 client assertion with it::

    from authserver.client import assertion_form
    form = assertion_form(secret, client_id=client_id, audience="https://auth.example.com")
    httpx.post(token_url, data={"grant_type": "client_credentials", **form})
"""

from __future__ import annotations

import secrets
import time

from joserfc import jwt
from joserfc.jwk import OKPKey

from authserver.domain.secrets import parse_secret
from authserver.jose import ASSERTION_ALGORITHMS
from authserver.oauth.assertions import ASSERTION_TYPE


def private_jwk(secret: str) -> dict[str, str]:
    """The Ed25519 private JWK inside a ``secret-token:`` string (ValueError if it is not one)."""
    jwk = parse_secret(secret)
    if jwk is None:
        raise ValueError("not an authserver secret-token")
    return jwk


def signed_assertion(
    secret: str, *, client_id: str, audience: str | list[str], lifetime: int = 60
) -> str:
    """An EdDSA-signed JWT with ``iss`` = ``sub`` = client_id, a fresh ``jti``, ``exp`` soon."""
    key = OKPKey.import_key({k: v for k, v in private_jwk(secret).items()})
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode({"alg": "EdDSA"}, claims, key, registry=ASSERTION_ALGORITHMS)


def assertion_form(secret: str, *, client_id: str, audience: str | list[str]) -> dict[str, str]:
    """The two form fields that replace ``client_secret`` in a request."""
    return {
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed_assertion(secret, client_id=client_id, audience=audience),
    }
