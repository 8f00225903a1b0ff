"""The JWS algorithms we accept, each list in one place ("none" and HMAC never).

Names only: ``security/jose.py`` builds joserfc's registries from them, the
settings check ``signing_alg`` against them, and the metadata publishes them.
"""

from __future__ import annotations

#: Access tokens we sign (``signing_alg``) and verify, with the JWK key type each needs.
TOKEN_KEY_TYPES = {"ES256": "EC", "EdDSA": "OKP", "RS256": "RSA"}
TOKEN_ALGS = tuple(TOKEN_KEY_TYPES)
#: ``private_key_jwt`` assertions, signed with the Ed25519 key inside the secret: "EdDSA"
#: (RFC 8037) and its fully specified successor "Ed25519" (RFC 9864).
ASSERTION_ALGS = ("EdDSA", "Ed25519")
#: DPoP proofs (RFC 9449): the asymmetric algorithms a client may sign them with.
DPOP_ALGS = ("ES256", "EdDSA", "RS256")
#: Subject tokens of a token exchange (RFC 8693): CI providers' ID tokens, signed with one
#: of their published keys (GitHub and GitLab use RS256).
FEDERATION_ALGS = ("RS256", "ES256", "EdDSA")
