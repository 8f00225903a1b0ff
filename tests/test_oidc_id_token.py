"""The ID token checks of the OpenID Connect relying party (``sso/relying_party.py``), without a provider:
the provider's keys and discovery document are set by hand, the tokens signed here.

Authlib verifies the signature with the provider's keys and ``iss``, ``exp``,
``iat``, ``nonce``, ``azp`` and ``at_hash``; ``aud`` only through the options we pass.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError, ClaimError
from joserfc.jwk import RSAKey

from authserver.sso.providers import OidcProvider
from authserver.sso.relying_party import RelyingParty

ISSUER = "https://sso.example.com"
SIGNING_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})


def id_token_claims(claims: dict[str, Any], key: RSAKey = SIGNING_KEY) -> dict[str, Any]:
    corp = OidcProvider(name="corp", issuer=ISSUER, client_id="our-client", client_secret="s")
    relying_party = RelyingParty((corp,))
    client = relying_party.client(corp)
    client.server_metadata.update(
        issuer=ISSUER,
        jwks={"keys": [SIGNING_KEY.as_dict(private=False)]},
        id_token_signing_alg_values_supported=["RS256"],
        _loaded_at=1,
    )
    token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)
    tokens = {"id_token": token, "access_token": "an-access-token", "token_type": "Bearer"}
    return anyio.run(relying_party.id_token_claims, corp, tokens, "the-nonce")


def valid_claims(**changes: Any) -> dict[str, Any]:
    issued = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "u-1",
        "aud": "our-client",
        "iat": issued,
        "exp": issued + 300,
        "nonce": "the-nonce",
        "email": "alice@example.com",
        "email_verified": True,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_valid_id_token_gives_its_claims() -> None:
    assert id_token_claims(valid_claims())["email"] == "alice@example.com"
    assert (
        id_token_claims(valid_claims(aud=["our-client", "other"], azp="our-client"))["sub"] == "u-1"
    )


@pytest.mark.parametrize(
    ("changes", "claim"),
    [
        # Authlib alone accepts a foreign audience when azp names us: the option catches it.
        pytest.param({"aud": "another-client", "azp": "our-client"}, "aud", id="foreign-audience"),
        pytest.param({"aud": None}, "aud", id="no-audience"),
        pytest.param({"iss": "https://attacker.example"}, "iss", id="foreign-issuer"),
        pytest.param({"exp": int(time.time()) - 600}, "exp", id="expired"),
        pytest.param({"nonce": "another-nonce"}, "nonce", id="other-nonce"),
        pytest.param({"nonce": None}, "nonce", id="no-nonce"),
    ],
)
def test_id_token_with_a_wrong_claim_is_refused(changes: dict[str, Any], claim: str) -> None:
    with pytest.raises(ClaimError) as refused:
        id_token_claims(valid_claims(**changes))
    assert refused.value.claim == claim


def test_id_token_signed_with_another_key_is_refused() -> None:
    other = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    with pytest.raises(BadSignatureError):
        id_token_claims(valid_claims(), key=other)
