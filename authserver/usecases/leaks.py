"""Leaked secrets: whoever finds one of our secrets in public can have it revoked at once.

As with GitHub's credential revocation API, no authentication: proving a secret
is ours is proving possession of it. Each submitted string is matched without
argon2 — its embedded Ed25519 key finds the credential whose stored public key
it is (an index), and only the exact string issued counts — so a report of a
thousand strings costs a thousand index lookups, never a password hash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from authserver.domain.lifecycle import LEAKED
from authserver.domain.secrets import parse_secret, secret_refusal
from authserver.errors import NotFound
from authserver.security.audit import audit
from authserver.store import Store
from authserver.usecases.lifecycle import Lifecycle

MAX_REPORTED = 1000


class LeakReports:
    """Revokes reported secrets; ``on_change`` tells this process's cache at once. The owner
    gets an e-mail and the webhooks ``credential.leaked``, written with the deletion."""

    def __init__(
        self,
        store: Store,
        lifecycle: Lifecycle,
        *,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.lifecycle = lifecycle
        self._on_change = on_change or (lambda client_id: None)

    def report(self, *, secrets: Iterable[str], source: str | None, now: datetime) -> int:
        """Delete every credential whose exact issued secret is among ``secrets``; how many.

        The caller is never told (the answer is the same whatever matched).
        """
        revoked = 0
        for secret in dict.fromkeys(secrets):  # once each, in order
            jwk = parse_secret(secret)
            if jwk is None:
                continue
            for record, domain in self.store.credentials.by_public_key(x=jwk["x"]):
                if secret_refusal(secret, domain=domain, public_keys=[record.public_jwk]):
                    continue  # not the string issued: another encoding, or a forged "x"
                try:
                    owner = self.store.users.find(ref=record.user_id)
                    deleted = self.store.credentials.delete(
                        id=record.id,
                        now=now,
                        notify=self.lifecycle.notify(LEAKED, now=now, owner=owner),
                    )
                except NotFound:  # deleted meanwhile (a second report of the same leak)
                    continue
                self._on_change(deleted.client_id)
                audit(
                    "credential_deleted",
                    credential_id=deleted.id,
                    client_id=deleted.client_id,
                    user_id=deleted.user_id,
                    reason="leaked",
                    actor="leak report",
                    via="credentials_revoke",
                    source=source,
                )
                revoked += 1
        return revoked
