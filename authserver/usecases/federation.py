"""The trust service: create, read, update and delete federation trusts (SPEC section 12).

A trust is a credential of its owner, so it passes the very rules of personal
clients (``domain/credentials.py``: ownership, no escalation, networks, expiry, the
``[policy]`` lifetime) before its own (``domain/federation.py``: issuer, audience,
condition). Changes are audited as credential changes with ``kind`` ``federation_trust``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from authserver.config import Settings
from authserver.domain import lifecycle as events
from authserver.domain.credentials import (
    Caller,
    check_may_manage,
    check_new_credential,
    check_update,
    has_control_characters,
    is_admin,
    new_client_id,
)
from authserver.domain.federation import (
    NewTrust,
    TrustPatch,
    check_audience,
    check_condition,
    check_issuer,
    check_trust_patch,
)
from authserver.errors import InvalidArgument, NotFound
from authserver.records import TrustRecord, UserRecord
from authserver.security.audit import audit
from authserver.store import Store
from authserver.store.ids import is_record_id
from authserver.usecases.lifecycle import Lifecycle

TRUST_KIND = "wfe"  # the client id's suffix: ConductorOne's workload federation


class TrustService:
    """Every change to a federation trust goes through here.

    ``on_change`` is told the ``client_id`` of each changed trust, so that this
    process's caches drop it at once (other processes follow the change feed).
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        on_change: Callable[[str], None] | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        # Trusts are credentials to the webhooks too: created, updated, deleted events.
        self.lifecycle = lifecycle or Lifecycle(store, settings)
        self._on_change = on_change or (lambda client_id: None)

    def is_admin(self, caller: Caller) -> bool:
        return is_admin(caller, self.settings.admin_role)

    def create(self, *, caller: Caller, owner_id: str, new: NewTrust, now: datetime) -> TrustRecord:
        """Validate under the credential rules and the trust's own, then store."""
        owner = self.store.users.find(ref=owner_id)
        # Its own fields first: a wrong condition is named even when the roles are wrong too.
        issuer = check_issuer(new.issuer)
        audience = check_audience(new.audience, self.settings.issuer)
        condition = check_condition(new.condition)
        spec = check_new_credential(
            caller=caller,
            owner_roles=owner.roles,
            new=new.credential,
            now=now,
            caller_limits=not self.is_admin(caller),
            max_lifetime=self.settings.max_lifetime,
            admin_role=self.settings.admin_role,
        )
        record = self.store.trusts.create(
            user_id=owner.id,
            spec=spec,
            issuer=issuer,
            audience=audience,
            condition=condition,
            new_client_id=lambda: new_client_id(self.settings.issuer_host, TRUST_KIND),
            now=now,
            notify=self.lifecycle.notify(events.CREATED, now=now),
        )
        self._on_change(record.client_id)  # this process may remember the id as unknown
        _audit("credential_created", record, caller)
        return record

    def visible(self, *, caller: Caller, ref: str) -> TrustRecord:
        """The live trust ``ref`` (record id, or client_id for the operator) if the caller
        owns it, holds the admin role, or is the operator; NotFound otherwise."""
        missing = NotFound(f"no federation trust {ref!r}")
        record: TrustRecord | None = None
        if is_record_id(ref):
            try:
                record = self.store.trusts.get(id=ref)
            except NotFound:
                raise missing from None
        elif caller.is_operator and not has_control_characters(ref) and len(ref) <= 255:
            record = self.store.trusts.find(client_id=ref)
        if record is None or record.deleted_at is not None or not self._may_see(caller, record):
            raise missing
        return record

    def _may_see(self, caller: Caller, record: TrustRecord) -> bool:
        return caller.is_operator or record.user_id == caller.user_id or self.is_admin(caller)

    def page(
        self, *, caller: Caller, after_id: str | None, limit: int
    ) -> tuple[list[TrustRecord], bool]:
        """The caller's own live trusts (the management API's list)."""
        if caller.user_id is None:
            return [], False
        return self.store.trusts.page(user_ids=[caller.user_id], after_id=after_id, limit=limit)

    def listed(
        self, *, user_ref: str | None, caller: Caller, limit: int = 500
    ) -> list[tuple[TrustRecord, UserRecord]]:
        """Trusts with their owners: one user's, or (operator, admin) everyone's."""
        user_id: str | None = None
        if user_ref is not None:
            user_id = self.store.users.find(ref=user_ref).id
        if not (caller.is_operator or self.is_admin(caller)):
            if user_id is not None and user_id != caller.user_id:
                raise NotFound(f"no user {user_ref!r}")
            user_id = caller.user_id
        return self.store.trusts.with_owners(user_id=user_id, limit=limit)

    def update(self, *, caller: Caller, ref: str, patch: TrustPatch, now: datetime) -> TrustRecord:
        """The personal clients' update rules, plus a new issuer, audience or condition
        checked as at creation."""
        if patch.is_empty:
            raise InvalidArgument("nothing to update")
        record = self.visible(caller=caller, ref=ref)
        owner = self.store.users.find(ref=record.user_id)
        check_may_manage(caller, record)
        own = check_trust_patch(patch, default_audience=self.settings.issuer)
        checked = check_update(
            caller=caller,
            owner_roles=owner.roles,
            current=record,
            patch=patch.credential,
            caller_limits=not self.is_admin(caller),
        )
        updated = self.store.trusts.update(
            id=record.id,
            patch=checked,
            own=own,
            now=now,
            notify=self.lifecycle.notify(events.UPDATED, now=now),
        )
        _audit("credential_updated", updated, caller)
        self._on_change(updated.client_id)
        return updated

    def delete(self, *, caller: Caller, ref: str, now: datetime) -> TrustRecord:
        """Soft delete; the trust exchanges no token from now on."""
        record = self.visible(caller=caller, ref=ref)
        check_may_manage(caller, record)
        deleted = self.store.trusts.delete(
            id=record.id, now=now, notify=self.lifecycle.notify(events.DELETED, now=now)
        )
        _audit("credential_deleted", deleted, caller)
        self._on_change(deleted.client_id)
        return deleted


def _audit(event: str, record: TrustRecord, caller: Caller) -> None:
    audit(
        event,
        kind="federation_trust",
        credential_id=record.id,
        client_id=record.client_id,
        user_id=record.user_id,
        issuer=record.issuer,
        actor=caller.actor,
        via=caller.via,
    )
