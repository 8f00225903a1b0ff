"""Users: create, find, update, list."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from authserver.domain.credentials import AuthState
from authserver.errors import AlreadyExists, NotFound
from authserver.records import UserRecord
from authserver.store.changes import next_version
from authserver.store.database import Database, writes
from authserver.store.ids import new_record_id
from authserver.store.models import (
    BrowserSession,
    DeviceCode,
    Invite,
    PersonalClient,
    ProviderLink,
    RegistrationToken,
    RevokedToken,
    User,
    UserPassword,
)
from authserver.store.outbox import Notify, enqueue


@dataclass(frozen=True)
class Deleted:
    """What deleting a user took with it."""

    user: UserRecord
    client_ids: tuple[str, ...]  # of the credentials that were live
    sessions: int


def user_record(row: User) -> UserRecord:
    return UserRecord(
        id=row.id,
        email=row.email,
        display_name=row.display_name,
        roles=tuple(row.roles),
        disabled=row.disabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def person_state(row: User, client_id: str) -> AuthState:
    """A person acting through a device client: their roles, with no credential of their own."""
    return AuthState(
        id="",
        client_id=client_id,
        user_id=row.id,
        secret_hash="",
        owner_roles=frozenset(row.roles),
        owner_disabled=row.disabled,
        tokens_not_before=row.device_tokens_not_before,
    )


class UserStore:
    """Reads and writes users."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @writes
    def create(
        self, *, email: str, display_name: str, roles: Iterable[str], now: datetime
    ) -> UserRecord:
        row = User(
            id=new_record_id(),
            email=email,
            display_name=display_name,
            roles=list(roles),
            disabled=False,
            created_at=now,
            updated_at=now,
        )
        try:
            with self.database.session() as session:
                session.add(row)
        except IntegrityError:
            raise AlreadyExists(f"a user with e-mail {email} already exists") from None
        return user_record(row)

    def find(self, *, ref: str) -> UserRecord:
        """A user by id or e-mail."""
        with self.database.session() as session:
            row = session.get(User, ref) or session.scalar(
                select(User).where(User.email == ref.strip().lower())
            )
            if row is None:
                raise NotFound(f"no user {ref!r}")
            return user_record(row)

    @writes
    def update(
        self,
        *,
        user_id: str,
        roles: Iterable[str] | None = None,
        disabled: bool | None = None,
        now: datetime,
    ) -> UserRecord:
        with self.database.session() as session:
            version = next_version(session)
            row = session.get(User, user_id)
            if row is None:
                raise NotFound(f"no user {user_id!r}")
            if roles is not None:
                row.roles = list(roles)
            if disabled is not None:
                row.disabled = disabled
            row.updated_at = now
            row.version = version
            return user_record(row)

    @writes
    def delete(self, *, user_id: str, now: datetime, notify: Notify | None = None) -> Deleted:
        """Delete a user: their live credentials are soft-deleted, their sessions, password,
        invitations, registration tokens, device logins and provider links go, and the row
        stays behind as a disabled tombstone without roles whose e-mail address is freed
        (``deleted-<id>@deleted.invalid``).

        One transaction on the change feed: every instance drops what it cached of the
        user and the credentials within a second. (Removing the rows instead would leave
        nothing for the feed to report, and a cached credential would live on.)
        ``notify``'s messages for each deleted credential go to the outbox with it.
        """
        from authserver.store.credentials import client_record  # it reads users too

        with self.database.session() as session:
            version = next_version(session)
            row = session.get(User, user_id)
            if row is None:
                raise NotFound(f"no user {user_id!r}")
            user = user_record(row)
            live = PersonalClient.user_id == user_id, PersonalClient.deleted_at.is_(None)
            clients = list(session.scalars(select(PersonalClient).where(*live)))
            client_ids = tuple(c.client_id for c in clients)
            session.execute(
                update(PersonalClient)
                .where(*live)
                .values(deleted_at=now, updated_at=now, version=version)
                .execution_options(synchronize_session=False)
            )
            if notify is not None:
                for client in clients:
                    record = replace(client_record(client), deleted_at=now, updated_at=now)
                    enqueue(session, notify(record), now=now)
            ended = session.execute(delete(BrowserSession).where(BrowserSession.user_id == user_id))
            for model in (Invite, RegistrationToken, DeviceCode, UserPassword, ProviderLink):
                session.execute(delete(model).where(model.user_id == user_id))
            row.email = f"deleted-{row.id}@deleted.invalid"
            row.display_name = ""
            row.roles = []
            row.disabled = True
            row.updated_at = now
            row.version = version
        return Deleted(user, client_ids, int(getattr(ended, "rowcount", 0) or 0))

    @writes
    def end_device_tokens(self, *, user_id: str, now: datetime) -> None:
        """Device tokens of the user issued until ``now`` are inactive (on the change feed)."""
        with self.database.session() as session:
            version = next_version(session)
            row = session.get(User, user_id)
            if row is None:
                raise NotFound(f"no user {user_id!r}")
            row.device_tokens_not_before = now
            row.updated_at = now
            row.version = version

    def token_state(
        self, *, user_id: str, client_id: str, jti: str
    ) -> tuple[AuthState | None, bool]:
        """For a token a device client got for ``user_id`` (RFC 8628): the person as
        authentication sees them, and whether the token's ``jti`` is revoked."""
        with self.database.session() as session:
            revoked = session.get(RevokedToken, jti) is not None
            row = session.get(User, user_id)
            if row is None:
                return None, revoked
            return person_state(row, client_id), revoked

    def get(self, *, id: str) -> UserRecord | None:
        """A user by record id alone (the management API's ``{id}``), or None."""
        with self.database.session() as session:
            row = session.get(User, id)
            return user_record(row) if row is not None else None

    def page(
        self,
        *,
        ids: Sequence[str] | None,
        email: str | None = None,
        query: str | None = None,
        after_id: str | None,
        limit: int,
    ) -> tuple[list[UserRecord], bool]:
        """Users in id order (ids are time-ordered), ``limit`` after ``after_id``.

        ``ids`` None means everyone; ``email`` matches exactly (normalised form);
        ``query`` matches the e-mail or display name, case-insensitively, anywhere.
        Returns the page and whether more follow.
        """
        statement = select(User)
        if ids is not None:
            statement = statement.where(User.id.in_(list(ids)))
        if email is not None:
            statement = statement.where(User.email == email)
        if query:
            escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{escaped.lower()}%"
            statement = statement.where(
                or_(
                    func.lower(User.email).like(pattern, escape="\\"),
                    func.lower(User.display_name).like(pattern, escape="\\"),
                )
            )
        if after_id is not None:
            statement = statement.where(User.id > after_id)
        statement = statement.order_by(User.id).limit(limit + 1)
        with self.database.session() as session:
            rows = [user_record(row) for row in session.scalars(statement)]
        return rows[:limit], len(rows) > limit

    def all(self) -> list[UserRecord]:
        with self.database.session() as session:
            rows = session.scalars(select(User).order_by(User.created_at, User.id))
            return [user_record(row) for row in rows]
