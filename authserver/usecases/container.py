"""``UseCases``: the storage and the use cases over it, wired once for the server and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from authserver.config import Settings
from authserver.security.argon2 import PasswordHasher, SecretHasher
from authserver.store import Database, Store
from authserver.usecases.audit import AuditTrail
from authserver.usecases.credentials import CredentialService
from authserver.usecases.devices import DeviceFlowService
from authserver.usecases.federation import TrustService
from authserver.usecases.inventory import Inventory
from authserver.usecases.keys import KeyService
from authserver.usecases.leaks import LeakReports
from authserver.usecases.lifecycle import Lifecycle
from authserver.usecases.maintenance import Maintenance
from authserver.usecases.people import PeopleService
from authserver.usecases.provider_sign_in import ProviderSignInService
from authserver.usecases.replay import ReplayGuard
from authserver.usecases.revocation import RevocationService
from authserver.usecases.users import UserDirectory, UserService


@dataclass
class UseCases:
    """Settings, storage, the argon2 hashers and every use case."""

    settings: Settings
    database: Database
    store: Store
    hasher: SecretHasher  # client secrets
    passwords: PasswordHasher  # people's passwords, in threads of their own
    credentials: CredentialService
    users: UserService
    directory: UserDirectory  # the users a caller may see (management API)
    people: PeopleService
    devices: DeviceFlowService
    provider_sign_in: ProviderSignInService  # sign-in through OpenID Connect providers
    keys: KeyService
    revocation: RevocationService
    replay: ReplayGuard
    maintenance: Maintenance
    leaks: LeakReports  # reported leaked secrets, revoked without argon2
    trusts: TrustService  # federation trusts (SPEC section 12)
    lifecycle: Lifecycle  # webhook events, expiry notices, the outbox's retries
    audit: AuditTrail  # the audit trail in the database (started by serve and the CLI)
    inventory: Inventory  # everyone's credentials, for admins

    @staticmethod
    def parts(
        settings: Settings,
        database: Database | None = None,
        *,
        on_change: Callable[[str], None] | None = None,
        on_revoked: Callable[[str, datetime], None] | None = None,
    ) -> dict[str, Any]:
        """The fields of a ``UseCases`` (a subclass adds its own to them).

        ``on_change`` and ``on_revoked`` tell this process's caches of a change made
        here at once; other processes follow the change feed.
        """
        database = database or Database(settings.database_url, change_signal=settings.change_signal)
        store = Store(database)
        hasher = SecretHasher(settings)
        passwords = PasswordHasher(settings)
        lifecycle = Lifecycle(store, settings)
        users = UserService(store, lifecycle)
        people = PeopleService(store, passwords, settings)
        provider_sign_in = ProviderSignInService(store, people, users)
        credentials = CredentialService(
            store, hasher, settings, on_change=on_change, lifecycle=lifecycle
        )
        trail = AuditTrail(store, settings, credentials)
        trusts = TrustService(store, settings, on_change=on_change, lifecycle=lifecycle)
        return dict(
            settings=settings,
            database=database,
            store=store,
            hasher=hasher,
            passwords=passwords,
            credentials=credentials,
            users=users,
            directory=UserDirectory(store, settings),
            people=people,
            devices=DeviceFlowService(store, settings),
            provider_sign_in=provider_sign_in,
            keys=KeyService(store, settings),
            revocation=RevocationService(store, on_revoked=on_revoked),
            replay=ReplayGuard(store),
            maintenance=Maintenance(store, people, provider_sign_in, trail),
            leaks=LeakReports(store, lifecycle, on_change=on_change),
            trusts=trusts,
            lifecycle=lifecycle,
            audit=trail,
            inventory=Inventory(store, settings, credentials, trusts),
        )

    @classmethod
    def build(cls, settings: Settings, database: Database | None = None) -> UseCases:
        """The use cases alone, as the command line uses them (no caches to tell)."""
        return cls(**cls.parts(settings, database))
