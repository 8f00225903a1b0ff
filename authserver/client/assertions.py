"""RFC 7523 client assertions signed with the Ed25519 key inside a ``secret-token:`` secret."""

from __future__ import annotations

import secrets
import time

from joserfc import jwt
from joserfc.jwk import OKPKey

from authserver.domain.secrets import parse_secret
from authserver.security.jose import ASSERTION_ALGORITHMS, ASSERTION_TYPE

# "EdDSA" (RFC 8037), which every JOSE library reads; the server also accepts RFC 9864's
# "Ed25519".
ASSERTION_ALG = "EdDSA"


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
    return jwt.encode({"alg": ASSERTION_ALG}, claims, key, registry=ASSERTION_ALGORITHMS)


def assertion_form(secret: str, *, client_id: str, audience: str | list[str]) -> dict[str, str]:
    """The two form fields that replace ``client_secret`` in a request."""
    return {
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed_assertion(secret, client_id=client_id, audience=audience),
    }
