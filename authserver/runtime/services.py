"""The objects one app instance is made of, built once by ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass

from authserver.config import Settings
from authserver.oauth import device_flow
from authserver.oauth.client_auth import ClientAuthenticator
from authserver.oauth.device_flow import DeviceAuthorizationEndpointImpl
from authserver.oauth.server import Server
from authserver.runtime.metrics import Metrics
from authserver.security.access_tokens import ActiveToken, active_token
from authserver.security.argon2 import PasswordHasher, SecretHasher
from authserver.security.keys import KeyRing
from authserver.security.throttle import FailureThrottle
from authserver.store import Database, Store
from authserver.store.last_used import LastUsedRecorder
from authserver.store.state_cache import StateCache
from authserver.usecases.credentials import CredentialService
from authserver.usecases.devices import DeviceFlowService
from authserver.usecases.people import PeopleService
from authserver.usecases.provider_sign_in import ProviderSignInService
from authserver.usecases.users import UserService

# A source may start this many device authorizations a minute: every start stores a row.
DEVICE_STARTS_PER_MINUTE = 20
# User codes a session, or a source address, may look up in vain per 10 minutes (34-bit codes).
USER_CODE_GUESSES = 10


@dataclass
class Services:
    """Settings, storage, the use cases and the long-lived helpers handlers use."""

    settings: Settings
    database: Database
    store: Store
    hasher: SecretHasher
    keyring: KeyRing
    last_used: LastUsedRecorder
    authenticator: ClientAuthenticator
    server: Server
    metrics: Metrics
    state_cache: StateCache
    credentials: CredentialService
    users: UserService
    devices: DeviceFlowService
    device_starts: FailureThrottle  # device authorizations started, per source
    device_code_guesses: FailureThrottle  # user codes looked up in vain, per session and source
    people: PeopleService
    provider_sign_in: ProviderSignInService  # sign-in through OpenID Connect providers

    @classmethod
    def build(cls, settings: Settings, database: Database | None = None) -> Services:
        database = database or Database(settings.database_url)
        store = Store(database)
        hasher = SecretHasher(settings)
        keyring = KeyRing()
        state_cache = StateCache(settings.auth_cache_ttl)
        last_used = LastUsedRecorder(store.credentials, interval=settings.last_used_flush_interval)
        server = Server(
            settings,
            keyring,
            on_issued=lambda client, when: last_used.touch(client.state.id, when),
        )
        devices = DeviceFlowService(store, settings)
        server.register_endpoint(
            DeviceAuthorizationEndpointImpl(
                server, devices, settings.endpoint(device_flow.VERIFICATION_PATH)
            )
        )
        users = UserService(store)
        # Passwords share the secret hasher's bounded argon2 threads.
        people = PeopleService(store, PasswordHasher(settings), settings)
        return cls(
            settings=settings,
            database=database,
            store=store,
            hasher=hasher,
            keyring=keyring,
            last_used=last_used,
            authenticator=ClientAuthenticator(settings, store, hasher, state_cache),
            server=server,
            metrics=Metrics(lambda: (hasher.cache_hits, hasher.cache_misses)),
            state_cache=state_cache,
            # Changes through this process apply here at once; others follow the change feed.
            credentials=CredentialService(store, hasher, settings, on_change=state_cache.forget),
            users=users,
            devices=devices,
            device_starts=FailureThrottle(limit=DEVICE_STARTS_PER_MINUTE, window=60),
            device_code_guesses=FailureThrottle(limit=USER_CODE_GUESSES, window=600),
            people=people,
            provider_sign_in=ProviderSignInService(store, people, users),
        )

    async def active_token(self, token: str) -> ActiveToken | None:
        """``tokens.active_token`` with this instance's keys, settings, store and cache."""
        return await active_token(
            token,
            keyring=self.keyring,
            settings=self.settings,
            credentials=self.store.credentials,
            users=self.store.users,
            cache=self.state_cache,
        )
