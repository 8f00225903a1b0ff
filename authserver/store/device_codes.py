"""RFC 8628 device codes: started, decided by a person, claimed once by the polling client."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from authserver.errors import AlreadyExists
from authserver.records import DeviceAuthorization
from authserver.store.database import Database, writes
from authserver.store.models import DeviceCode

PollOutcome = Literal[
    "invalid", "used", "expired", "pending", "slow_down", "approved", "denied", "refused"
]
# A poll this much sooner than the interval asks is "too fast": clients that wait the interval
# before each poll (as cone does) arrive a little early or late, never this early.
EARLY_TOLERANCE = 0.8
SLOW_DOWN_STEP = 5  # seconds added to the interval after each slow_down (RFC 8628 section 3.5)
KEPT_AFTER_EXPIRY = timedelta(hours=1)  # so a late poll still gets expired_token


def device_authorization(row: DeviceCode) -> DeviceAuthorization:
    return DeviceAuthorization(
        client_id=row.client_id,
        scope=tuple(row.scope) if row.scope is not None else None,
        created_at=row.created_at,
        expires_at=row.expires_at,
        interval=row.poll_interval,
        status=row.status,
        user_id=row.user_id,
        roles=tuple(row.roles) if row.roles is not None else None,
        used_at=row.used_at,
    )


class DeviceCodeStore:
    """Reads and writes device codes (by the SHA-256 of each code)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @writes
    def create(
        self,
        *,
        device_code_hash: str,
        user_code_hash: str,
        client_id: str,
        scope: tuple[str, ...] | None,
        now: datetime,
        expires_at: datetime,
        interval: int,
    ) -> None:
        """Store a pending authorization (AlreadyExists if its user code is taken, which
        34 random bits make as good as impossible)."""
        try:
            with self.database.session() as session:
                session.add(
                    DeviceCode(
                        device_code_hash=device_code_hash,
                        user_code_hash=user_code_hash,
                        client_id=client_id,
                        scope=list(scope) if scope is not None else None,
                        created_at=now,
                        expires_at=expires_at,
                        poll_interval=interval,
                        last_polled_at=None,
                        status="pending",
                    )
                )
        except IntegrityError:
            raise AlreadyExists("this user code is taken; start again") from None

    def pending(self, *, user_code_hash: str, now: datetime) -> DeviceAuthorization | None:
        """The authorization a user code names, while it awaits a decision."""
        with self.database.session() as session:
            row = session.scalar(
                select(DeviceCode).where(
                    DeviceCode.user_code_hash == user_code_hash,
                    DeviceCode.status == "pending",
                    DeviceCode.expires_at > now,
                )
            )
            return device_authorization(row) if row is not None else None

    @writes
    def decide(
        self,
        *,
        user_code_hash: str,
        user_id: str,
        roles: tuple[str, ...] | None,
        now: datetime,
    ) -> DeviceAuthorization | None:
        """Approve (``roles`` given) or deny (None) a pending authorization; None if it is not
        pending any more (decided, expired, unknown)."""
        with self.database.session() as session:
            result = session.execute(
                update(DeviceCode)
                .where(
                    DeviceCode.user_code_hash == user_code_hash,
                    DeviceCode.status == "pending",
                    DeviceCode.expires_at > now,
                )
                .values(
                    status="approved" if roles is not None else "denied",
                    user_id=user_id,
                    roles=list(roles) if roles is not None else None,
                    decided_at=now,
                )
            )
            if getattr(result, "rowcount", 0) != 1:
                return None
            row = session.scalar(
                select(DeviceCode).where(DeviceCode.user_code_hash == user_code_hash)
            )
            assert row is not None
            return device_authorization(row)

    @writes
    def poll(
        self, *, device_code_hash: str, client_id: str, now: datetime
    ) -> tuple[PollOutcome, DeviceAuthorization | None]:
        """One poll of the token endpoint (RFC 8628 section 3.4/3.5).

        A decided code is claimed by an atomic update, so it yields a token (or
        ``access_denied``) exactly once, whichever instance is polled; a pending
        code records the poll and, when it came much sooner than the interval,
        answers ``slow_down`` and lengthens the interval.
        """
        with self.database.session() as session:
            claimed = session.execute(
                update(DeviceCode)
                .where(
                    DeviceCode.device_code_hash == device_code_hash,
                    DeviceCode.client_id == client_id,
                    DeviceCode.used_at.is_(None),
                    DeviceCode.status != "pending",
                    DeviceCode.expires_at > now,
                )
                .values(used_at=now)
            )
            row = session.get(DeviceCode, device_code_hash)
            if row is None or row.client_id != client_id:
                return "invalid", None
            record = device_authorization(row)
            if getattr(claimed, "rowcount", 0) == 1:
                return ("approved" if row.status == "approved" else "denied"), record
            if row.used_at is not None:
                return "used", record
            if row.expires_at <= now:
                return "expired", record
            early = (
                row.last_polled_at is not None
                and (now - row.last_polled_at).total_seconds() < row.poll_interval * EARLY_TOLERANCE
            )
            row.last_polled_at = now
            if early:
                row.poll_interval += SLOW_DOWN_STEP
                return "slow_down", record
            return "pending", record

    @writes
    def purge(self, *, now: datetime) -> int:
        with self.database.session() as session:
            result = session.execute(
                delete(DeviceCode).where(DeviceCode.expires_at < now - KEPT_AFTER_EXPIRY)
            )
            return int(getattr(result, "rowcount", 0) or 0)
