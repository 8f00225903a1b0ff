"""The outbox: webhook deliveries and e-mails, written with the change they tell of.

Every instance's senders claim due rows with a lease (PostgreSQL skips rows another
instance holds locked; SQLite runs the one claiming statement under its write
lock), so two instances never send the same row at once; a sender that dies
leaves its rows to be claimed again when the lease runs out (at least once).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from authserver.records import ClientRecord, TrustRecord
from authserver.store.database import Database, writes
from authserver.store.ids import new_record_id
from authserver.store.models import OutboxMessage

WEBHOOK = "webhook"
MAIL = "mail"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True)
class Message:
    """A message to write to the outbox: a webhook body for a URL, or an e-mail."""

    channel: str
    target: str
    type: str
    body: str
    subject: str | None = None
    id: str = ""  # empty: a fresh msg_… id


@dataclass(frozen=True)
class OutboxRecord:
    """A row of the outbox as senders and ``webhooks list`` see it."""

    id: str
    channel: str
    target: str
    type: str
    subject: str | None
    body: str
    created_at: datetime
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None
    claim: str | None = None  # the claim a sender settles it under


# What a change sends, told the record as the change left it (in the same transaction).
Notify = Callable[[ClientRecord | TrustRecord], Sequence[Message]]


def new_message_id() -> str:
    return f"msg_{new_record_id()}"


def enqueue(session: Session, messages: Sequence[Message], *, now: datetime) -> None:
    """Add ``messages`` to the outbox in the caller's transaction."""
    session.add_all(
        OutboxMessage(
            id=message.id or new_message_id(),
            channel=message.channel,
            target=message.target,
            type=message.type,
            subject=message.subject,
            body=message.body,
            created_at=now,
            state=PENDING,
            attempts=0,
            next_attempt_at=now,
            lease_until=None,
            claimed_by=None,
            last_error=None,
            delivered_at=None,
        )
        for message in messages
    )


def _record(row: OutboxMessage) -> OutboxRecord:
    return OutboxRecord(
        id=row.id,
        channel=row.channel,
        target=row.target,
        type=row.type,
        subject=row.subject,
        body=row.body,
        created_at=row.created_at,
        state=row.state,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
        claim=row.claimed_by,
    )


class OutboxStore:
    """Claims, settles and lists outbox rows."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @writes
    def add(self, *, messages: Sequence[Message], now: datetime) -> None:
        with self.database.session() as session:
            enqueue(session, messages, now=now)

    @writes
    def claim(
        self, *, channel: str, now: datetime, lease: timedelta, limit: int
    ) -> list[OutboxRecord]:
        """Up to ``limit`` due rows of ``channel``, leased to the caller until ``now + lease``
        (their attempt counted); rows another sender holds are skipped."""
        due = (
            select(OutboxMessage.id)
            .where(
                OutboxMessage.channel == channel,
                OutboxMessage.state == PENDING,
                OutboxMessage.next_attempt_at <= now,
                or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until <= now),
            )
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        )
        with self.database.session() as session:
            if session.scalar(due.limit(1)) is None:
                return []  # a read alone: an idle sender takes no write lock every round
        if not self.database.is_sqlite:
            due = due.with_for_update(skip_locked=True)
        token = new_record_id()
        with self.database.session() as session:
            # One statement: SQLite runs it under its write lock; PostgreSQL's subquery
            # skips the rows another instance is claiming.
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(due.limit(limit)))
                .values(
                    lease_until=now + lease,
                    claimed_by=token,
                    attempts=OutboxMessage.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            rows = session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.claimed_by == token)
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            )
            return [_record(row) for row in rows]

    @writes
    def settle(
        self,
        *,
        id: str,
        claim: str,
        now: datetime,
        error: str | None,
        retry_at: datetime | None,
    ) -> None:
        """After an attempt under ``claim``: delivered (no ``error``), due again at
        ``retry_at``, or failed (an error and no ``retry_at``). A sender whose lease ran
        out and was claimed again by another changes nothing."""
        values: dict[str, object] = {"lease_until": None, "last_error": error}
        if error is None:
            values.update(state=DELIVERED, delivered_at=now)
        elif retry_at is not None:
            values.update(next_attempt_at=retry_at)
        else:
            values.update(state=FAILED)
        with self.database.session() as session:
            session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == id,
                    OutboxMessage.state == PENDING,
                    OutboxMessage.claimed_by == claim,
                )
                .values(values)
            )

    def recent(self, *, channel: str | None = None, limit: int = 50) -> list[OutboxRecord]:
        """The newest rows first (``webhooks list``)."""
        query = select(OutboxMessage).order_by(
            OutboxMessage.created_at.desc(), OutboxMessage.id.desc()
        )
        if channel is not None:
            query = query.where(OutboxMessage.channel == channel)
        with self.database.session() as session:
            return [_record(row) for row in session.scalars(query.limit(limit))]

    @writes
    def purge(self, *, before: datetime) -> None:
        """Forget delivered and failed rows created before ``before``."""
        with self.database.session() as session:
            session.execute(
                delete(OutboxMessage).where(
                    OutboxMessage.created_at < before, OutboxMessage.state != PENDING
                )
            )
