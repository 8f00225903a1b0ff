"""``Services``: everything one app instance is made of, built once by ``create_app``.

The use cases and storage (``UseCases``, which the CLI builds alone), plus what
only a serving process has: the signing keys in memory, the caches that follow
the change feed, Authlib's server, client authentication, metrics and the
OpenID Connect relying party. Front doors reach it with ``web.context.services_of``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import anyio
import anyio.to_thread

from authserver.config import Settings
from authserver.oauth import device_flow
from authserver.oauth.client_auth import ClientAuthenticator
from authserver.oauth.device_flow import DeviceAuthorizationEndpointImpl
from authserver.oauth.server import Server
from authserver.oauth.token_exchange import TokenExchangeGrant
from authserver.runtime.metrics import Metrics
from authserver.security.access_tokens import ActiveToken, active_token
from authserver.security.issuer_keys import IssuerKeys
from authserver.security.keys import KeyRing
from authserver.sso.relying_party import RelyingParty
from authserver.store import Database
from authserver.store.last_used import LastUsedRecorder
from authserver.store.state_cache import StateCache
from authserver.usecases.container import UseCases
from authserver.usecases.throttles import SharedThrottle

# A source may start this many device authorizations a minute: every start stores a row.
DEVICE_STARTS_PER_MINUTE = 20
# User codes a session, or a source address, may look up in vain per 10 minutes (34-bit codes).
USER_CODE_GUESSES = 10
# Leaked-secret reports a source may send a minute (each holds at most 1000 strings).
LEAK_REPORTS_PER_MINUTE = 30


@dataclass
class Services(UseCases):
    """The use cases, plus the long-lived helpers a serving process adds to them."""

    keyring: KeyRing
    last_used: LastUsedRecorder
    authenticator: ClientAuthenticator
    server: Server
    metrics: Metrics
    state_cache: StateCache
    device_starts: SharedThrottle  # device authorizations started, per source
    device_code_guesses: SharedThrottle  # user codes looked up in vain, per session and source
    leak_reports: SharedThrottle  # leaked-secret reports, per source
    relying_party: RelyingParty  # sign-in through OpenID Connect providers
    issuer_keys: IssuerKeys  # CI providers' signing keys, for federation trusts
    keys_signalled: int | None = None  # the change signal when the keys were last loaded

    @classmethod
    def build(cls, settings: Settings, database: Database | None = None) -> Services:
        database = database or Database(settings.database_url, change_signal=settings.change_signal)
        state_cache = StateCache(settings.auth_cache_ttl, signal=database.signal)
        # Changes through this process apply here at once; others follow the change feed.
        parts = UseCases.parts(
            settings, database, on_change=state_cache.forget, on_revoked=state_cache.add_revoked
        )
        store, hasher = parts["store"], parts["hasher"]
        metrics = Metrics()
        hasher.on_lookup = metrics.secret_cache_lookup
        keyring = KeyRing()
        last_used = LastUsedRecorder(
            store.credentials,
            interval=settings.last_used_flush_interval,
            journal=settings.last_used_journal,
        )
        server = Server(
            settings,
            keyring,
            on_issued=lambda client, when: last_used.touch(client.state.id, when, client.source),
            extra_grants=(TokenExchangeGrant,),
        )
        server.register_endpoint(
            DeviceAuthorizationEndpointImpl(
                server, parts["devices"], settings.endpoint(device_flow.VERIFICATION_PATH)
            )
        )
        return cls(
            **parts,
            keyring=keyring,
            last_used=last_used,
            authenticator=ClientAuthenticator(
                settings,
                store,
                hasher,
                state_cache,
                parts["replay"],
                SharedThrottle(
                    store,
                    "client-auth",
                    limit=settings.auth_failure_limit,
                    window=settings.auth_failure_window,
                ),
            ),
            server=server,
            metrics=metrics,
            state_cache=state_cache,
            device_starts=SharedThrottle(
                store, "device-starts", limit=DEVICE_STARTS_PER_MINUTE, window=60
            ),
            device_code_guesses=SharedThrottle(
                store, "device-codes", limit=USER_CODE_GUESSES, window=600
            ),
            leak_reports=SharedThrottle(
                store, "leak-reports", limit=LEAK_REPORTS_PER_MINUTE, window=60
            ),
            relying_party=RelyingParty(settings.login_oidc),  # metadata read at first use
            issuer_keys=IssuerKeys(
                ttl=settings.federation_jwks_ttl,
                refetch_interval=settings.federation_jwks_refetch_interval,
            ),
        )

    async def refresh_keys(self, limiter: anyio.CapacityLimiter | None = None) -> None:
        """Load signing keys from the database (another process may have rotated them)."""
        signal = self.database.signal
        signalled = signal.read() if signal is not None else None
        records = await anyio.to_thread.run_sync(self.store.keys.all, limiter=limiter)
        self.keyring.load(records, alg=self.settings.signing_alg, now=datetime.now(UTC))
        self.keys_signalled = signalled

    async def catch_up_keys(self) -> None:
        """Reload the keys first when another process on this machine has signalled a
        change since they were loaded (a rotation through another worker or the CLI)."""
        signal = self.database.signal
        if signal is not None and signal.read() != self.keys_signalled:
            await self.refresh_keys()

    async def active_token(self, token: str) -> ActiveToken | None:
        """``access_tokens.active_token`` with this instance's keys, settings, store and cache."""
        return await active_token(
            token,
            keyring=self.keyring,
            settings=self.settings,
            credentials=self.store.credentials,
            users=self.store.users,
            cache=self.state_cache,
        )
