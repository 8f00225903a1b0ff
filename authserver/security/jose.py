"""JOSE through joserfc: the algorithm registries for our tokens and for client assertions."""

from __future__ import annotations

from collections.abc import Collection

from joserfc.errors import UnsupportedAlgorithmError
from joserfc.jwa import JWSAlgModel
from joserfc.jws import JWSRegistry
from joserfc.registry import HeaderParameter

from authserver.domain.algorithms import ASSERTION_ALGS, TOKEN_ALGS

#: RFC 7523 section 2.2: a client authenticating with a signed JWT.
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class Algorithms(JWSRegistry):
    """Exactly the JWS algorithms named, nothing else ("none" and HMAC never).

    joserfc warns on every use of "EdDSA", which RFC 9864 deprecates in favour
    of "Ed25519". The name stays accepted here on purpose: ConductorOne's SDKs
    sign their assertions with it, and ``signing_alg = "EdDSA"`` is a documented
    setting; a warning per request would only flood the log.
    """

    def __init__(
        self, names: Collection[str], headers: dict[str, HeaderParameter] | None = None
    ) -> None:
        super().__init__(header_registry=headers, algorithms=list(names))
        self.names = frozenset(names)

    def get_alg(self, name: str) -> JWSAlgModel:
        if name not in self.names or name not in self.algorithms:
            raise UnsupportedAlgorithmError(f"Algorithm of '{name}' is not allowed")
        return self.algorithms[name]


#: Access tokens we sign (``signing_alg``) and verify.
TOKEN_ALGORITHMS = Algorithms(TOKEN_ALGS)
#: ``private_key_jwt`` assertions. ConductorOne's Go SDK puts its replay ``nonce`` in the
#: header (RFC 7523 allows any).
ASSERTION_ALGORITHMS = Algorithms(
    ASSERTION_ALGS, headers={"nonce": HeaderParameter("Replay nonce", "str")}
)
