"""Token signing keys: list, add (retiring the active one), purge."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import delete, select

from authserver.records import KeyRecord
from authserver.store.changes import announce
from authserver.store.database import Database, writes
from authserver.store.models import SigningKey


def key_record(row: SigningKey) -> KeyRecord:
    return KeyRecord(
        kid=row.kid,
        alg=row.alg,
        private_pem=row.private_pem,
        public_jwk=dict(row.public_jwk),
        created_at=row.created_at,
        retired_at=row.retired_at,
        publish_until=row.publish_until,
    )


class KeyStore:
    """Reads and writes signing keys."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def all(self) -> list[KeyRecord]:
        with self.database.session() as session:
            rows = session.scalars(select(SigningKey).order_by(SigningKey.created_at))
            return [key_record(row) for row in rows]

    @writes
    def add_active(
        self,
        *,
        kid: str,
        alg: str,
        private_pem: str,
        public_jwk: Mapping[str, str],
        now: datetime,
        publish_until: datetime,
        only_if_none_active: bool = False,
    ) -> KeyRecord | None:
        """Retire the active key (published until ``publish_until``) and add a new one.

        With ``only_if_none_active`` nothing happens when an active key of ``alg``
        exists already (first start of several instances at once).
        """
        with self.database.session() as session:
            announce(session)  # every process reloads its keys once this commits
            active = list(
                session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None)))
            )
            if only_if_none_active and any(k.alg == alg for k in active):
                return None
            for old in active:
                old.retired_at = now
                old.publish_until = publish_until
            row = SigningKey(
                kid=kid,
                alg=alg,
                private_pem=private_pem,
                public_jwk=dict(public_jwk),
                created_at=now,
                retired_at=None,
                publish_until=None,
            )
            session.add(row)
            return key_record(row)

    @writes
    def purge(self, *, now: datetime) -> int:
        """Drop retired keys no token can need any more."""
        with self.database.session() as session:
            result = session.execute(
                delete(SigningKey).where(
                    SigningKey.retired_at.is_not(None), SigningKey.publish_until < now
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)
