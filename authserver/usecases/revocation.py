"""RFC 7009 token revocation: a client revokes one of its own access tokens."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from authserver.domain.credentials import AuthState
from authserver.security.audit import audit
from authserver.store import Store


class RevocationService:
    """Revokes access tokens; ``on_revoked`` tells this process's cache at once."""

    def __init__(
        self, store: Store, *, on_revoked: Callable[[str, datetime], None] | None = None
    ) -> None:
        self.store = store
        self._on_revoked = on_revoked or (lambda jti, expires_at: None)

    def revoke(
        self, *, client: AuthState, claims: Mapping[str, Any] | None, source: str | None
    ) -> bool:
        """Revoke the token whose verified ``claims`` are given, if ``client`` got it.

        Anything else — not one of our tokens, another client's — changes nothing
        and is no error (RFC 7009 section 2.2): the answer must not tell which.
        """
        if claims is None or claims["client_id"] != client.client_id:
            return False
        self._revoke(claims, client.client_id, client.id or None, client.user_id, source)
        return True

    def revoke_device_token(
        self, *, client_id: str, claims: Mapping[str, Any] | None, source: str | None
    ) -> bool:
        """A public device client (RFC 8628) revokes a token issued to it (RFC 7009 2.1)."""
        if claims is None or claims["client_id"] != client_id:
            return False
        self._revoke(claims, client_id, None, str(claims["sub"]), source)
        return True

    def _revoke(
        self,
        claims: Mapping[str, Any],
        client_id: str,
        credential_id: str | None,
        user_id: str,
        source: str | None,
    ) -> None:
        expires_at = datetime.fromtimestamp(claims["exp"], UTC)
        self.store.revocations.revoke(jti=claims["jti"], expires_at=expires_at)
        self._on_revoked(claims["jti"], expires_at)
        audit(
            "token_revoked",
            client_id=client_id,
            credential_id=credential_id,
            user_id=user_id,
            jti=claims["jti"],
            source=source,
        )
