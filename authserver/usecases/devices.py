"""Device authorization (RFC 8628): a CLI starts, a person approves in the browser, the CLI polls.

The person's decision is stored with the roles it grants (the person's roles at
approval, narrowed to the requested scope); each token issued from it is
checked against the person's current roles on every use, like any token.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from authserver.config import DeviceClient, Settings
from authserver.domain import roles
from authserver.domain.credentials import Caller
from authserver.domain.secrets import token_hash
from authserver.errors import InvalidArgument, NotFound
from authserver.records import DeviceAuthorization
from authserver.security.audit import audit
from authserver.store import Store
from authserver.store.device_codes import PollOutcome

USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels (no words), no look-alikes
USER_CODE_LENGTH = 8
DEVICE_CODE_TTL = timedelta(seconds=600)


def normalize_user_code(text: str) -> str | None:
    """``wxyz-bcdf`` → ``WXYZBCDF``: case, dashes and spaces do not matter; None if it cannot
    be a user code."""
    code = "".join(ch for ch in text.upper() if ch not in "- \t")
    if len(code) != USER_CODE_LENGTH or any(ch not in USER_CODE_ALPHABET for ch in code):
        return None
    return code


def display_user_code(code: str) -> str:
    """``WXYZBCDF`` → ``WXYZ-BCDF``."""
    return f"{code[:4]}-{code[4:]}"


def new_user_code() -> str:
    """Eight letters from ``USER_CODE_ALPHABET`` (about 34 bits), shown ``XXXX-XXXX``."""
    code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
    return display_user_code(code)


def new_device_code() -> str:
    """256 random bits."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class PendingDevice:
    """A device authorization awaiting the person's decision, as the approval page shows it."""

    user_code: str
    client: DeviceClient
    scope: tuple[str, ...] | None
    expires_at: datetime


class DeviceFlowService:
    """Starts, decides and polls device authorizations."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.clients = {client.id: client for client in settings.device_clients}

    def client(self, client_id: str | None) -> DeviceClient | None:
        """The configured device client ``client_id``, if any."""
        return self.clients.get(client_id or "")

    def start(
        self,
        *,
        client: DeviceClient,
        device_code: str,
        user_code: str,
        scope: str | None,
        now: datetime,
    ) -> None:
        """Store a new authorization, both codes hashed (RFC 8628 section 3.2)."""
        requested: tuple[str, ...] | None = None
        if scope:
            parsed = roles.parse_scope(scope)
            if parsed is None:
                raise InvalidArgument("scope must be space-separated role names", field="scope")
            requested = tuple(sorted(parsed))
        code = normalize_user_code(user_code)
        assert code is not None
        self.store.device_codes.create(
            device_code_hash=token_hash(device_code),
            user_code_hash=token_hash(code),
            client_id=client.id,
            scope=requested,
            now=now,
            expires_at=now + DEVICE_CODE_TTL,
            interval=self.settings.device_poll_interval,
        )
        audit("device_authorization_started", client_id=client.id)

    def pending(self, *, user_code: str, now: datetime) -> PendingDevice:
        """The authorization a typed user code names; NotFound when it names none pending."""
        code = normalize_user_code(user_code)
        found = (
            self.store.device_codes.pending(user_code_hash=token_hash(code), now=now)
            if code is not None
            else None
        )
        client = self.client(found.client_id) if found is not None else None
        if found is None or code is None or client is None:
            raise NotFound("no pending request has this code: check it, or start again")
        return PendingDevice(
            user_code=display_user_code(code),
            client=client,
            scope=found.scope,
            expires_at=found.expires_at,
        )

    def granted_roles(self, pending: PendingDevice, user_roles: tuple[str, ...]) -> tuple[str, ...]:
        """What approving gives the tool: the person's roles, narrowed to the scope it asked.

        The admin role only when the tool named it in its scope (the approval page then
        says plainly that it grants administrator rights); never by default.
        """
        if pending.scope is None:
            return tuple(sorted(set(user_roles) - {self.settings.admin_role}))
        return tuple(sorted(set(user_roles) & set(pending.scope)))

    def grants_admin(self, granted: tuple[str, ...]) -> bool:
        """True when approving hands the tool administrator rights."""
        return self.settings.admin_role in granted

    def decide(
        self, *, user_code: str, caller: Caller, approve: bool, now: datetime
    ) -> DeviceAuthorization:
        """Approve or deny, as the signed-in person ``caller``; NotFound when not pending."""
        pending = self.pending(user_code=user_code, now=now)
        assert caller.user_id is not None
        user = self.store.users.find(ref=caller.user_id)
        granted = self.granted_roles(pending, user.roles) if approve else None
        code = normalize_user_code(user_code)
        assert code is not None
        decided = self.store.device_codes.decide(
            user_code_hash=token_hash(code), user_id=user.id, roles=granted, now=now
        )
        if decided is None:
            raise NotFound("this request was decided meanwhile, or it expired")
        audit(
            "device_approved" if approve else "device_denied",
            client_id=pending.client.id,
            user_id=user.id,
            roles=" ".join(granted or ()),
            actor=caller.actor,
            via=caller.via,
        )
        return decided

    def poll(
        self, *, device_code: str, client_id: str, now: datetime
    ) -> tuple[PollOutcome, DeviceAuthorization | None]:
        """What the polling client gets now (see ``DeviceCodeStore.poll``).

        An approval is honoured as the person is *now*: not when they were disabled
        (or deleted) since, and with only the approved roles they still hold.
        """
        outcome, record = self.store.device_codes.poll(
            device_code_hash=token_hash(device_code), client_id=client_id, now=now
        )
        if outcome != "approved" or record is None or record.user_id is None:
            return outcome, record
        try:
            user = self.store.users.find(ref=record.user_id)
        except NotFound:
            return "refused", record
        if user.disabled:
            return "refused", record
        still_held = tuple(role for role in record.roles or () if role in user.roles)
        return outcome, replace(record, roles=still_held)
