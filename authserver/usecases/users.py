"""User use cases: create and update (roles, disabled); the users a caller may see."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from authserver.config import Settings
from authserver.domain import roles
from authserver.domain.credentials import Caller, validate_display_name
from authserver.domain.lifecycle import DELETED
from authserver.domain.users import may_see_user, normalize_email, visible_ids
from authserver.errors import InvalidArgument, NotFound, PermissionDenied
from authserver.records import UserRecord
from authserver.security.audit import audit
from authserver.store import Store
from authserver.store.users import Deleted
from authserver.usecases.lifecycle import Lifecycle


def acting(caller: Caller | None) -> tuple[str, str]:
    """Who made a change and how, for the audit trail: a person from the pages, or the
    operator at the command line (``caller`` None)."""
    if caller is None:
        return "operator", "cli"
    return caller.actor, caller.via or "session"


def _roles(names: Iterable[str]) -> tuple[str, ...]:
    try:
        return roles.normalize_roles(names)
    except InvalidArgument as exc:
        raise exc.about("roles") from None


class UserService:
    """Every change to a user goes through here. With ``lifecycle``, deleting a user sends
    ``credential.deleted`` for each of their credentials."""

    def __init__(self, store: Store, lifecycle: Lifecycle | None = None) -> None:
        self.store = store
        self.lifecycle = lifecycle

    def create(
        self,
        *,
        email: str,
        display_name: str | None,
        role_names: Iterable[str],
        now: datetime,
        caller: Caller | None = None,
        method: str | None = None,
    ) -> UserRecord:
        """A new user. ``caller``: who creates it from the pages (None: the operator, or,
        with ``method``, the person's own first sign-in through that provider)."""
        user = self.store.users.create(
            email=normalize_email(email),
            display_name=validate_display_name(display_name),
            roles=_roles(role_names),
            now=now,
        )
        actor, via = acting(caller)
        audit(
            "user_created",
            user_id=user.id,
            roles=list(user.roles),
            actor=method or actor,
            via="session" if method else via,
        )
        return user

    def update(
        self,
        *,
        ref: str,
        role_names: Iterable[str] | None,
        disabled: bool | None,
        now: datetime,
        caller: Caller | None = None,
    ) -> UserRecord:
        """Replace the roles (when given) and/or disable or enable the user.

        Disabling ends the user's browser sessions: enabling again must not bring them back.
        ``caller``: who does it from the pages; None: the operator at the command line.
        """
        user = self.store.users.find(ref=ref)
        if disabled and caller is not None and caller.user_id == user.id:
            # From the pages: nobody locks themselves out (the operator's CLI still can).
            raise PermissionDenied("you cannot disable yourself")
        new_roles = _roles(role_names) if role_names is not None else None
        updated = self.store.users.update(
            user_id=user.id, roles=new_roles, disabled=disabled, now=now
        )
        ended = self.store.sessions.delete_for_user(user_id=user.id) if disabled else None
        actor, via = acting(caller)
        audit(
            "user_updated",
            user_id=user.id,
            roles=list(updated.roles) if new_roles is not None else None,
            disabled=disabled,
            sessions_ended=ended,
            actor=actor,
            via=via,
        )
        return updated

    def delete(self, *, ref: str, now: datetime) -> Deleted:
        """Delete a user and everything of theirs (see ``UserStore.delete``): their
        credentials stop authenticating and their sessions end at once."""
        user = self.store.users.find(ref=ref)
        notify = self.lifecycle.notify(DELETED, now=now) if self.lifecycle else None
        deleted = self.store.users.delete(user_id=user.id, now=now, notify=notify)
        audit(
            "user_deleted",
            user_id=user.id,
            credentials_deleted=len(deleted.client_ids),
            sessions_ended=deleted.sessions,
            actor="operator",
            via="cli",
        )
        return deleted


class UserDirectory:
    """Reading users as ConductorOne's users API does: a caller sees itself, the admin
    role sees everyone, and anyone else is not found."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def visible(self, *, caller: Caller, user_id: str) -> UserRecord:
        user = self.store.users.get(id=user_id)
        if user is None or not may_see_user(caller, user.id, admin_role=self.settings.admin_role):
            raise NotFound(f"no user {user_id!r}")
        return user

    def page(
        self,
        *,
        caller: Caller,
        ids: Sequence[str] | None = None,
        email: str | None = None,
        query: str | None = None,
        after_id: str | None,
        limit: int,
    ) -> tuple[list[UserRecord], bool]:
        """The users the caller may see, in id order, ``limit`` after ``after_id``."""
        allowed = visible_ids(caller, ids, admin_role=self.settings.admin_role)
        if allowed is not None and not allowed:
            return [], False
        return self.store.users.page(
            ids=allowed,
            email=email.strip().lower() if email is not None else None,
            query=query,
            after_id=after_id,
            limit=limit,
        )
