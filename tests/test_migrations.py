"""Upgrades of a database that already holds records."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

from authserver.store.database import MIGRATIONS, Database, migrate


def upgrade_to(database: Database, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@pytest.fixture
def empty_database(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Database]:
    """A database with no schema at all, on each backend."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/old.db"
    else:
        url = request.getfixturevalue("postgres").create_database(f"old_{secrets.token_hex(4)}")
    database = Database(url)
    yield database
    database.dispose()


def test_existing_credentials_keep_the_secret_domain_of_their_issuer(
    empty_database: Database,
) -> None:
    """Before revision 0004 every secret was issued under the issuer host its client_id names."""
    database = empty_database
    upgrade_to(database, "0003")
    with database.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, email, display_name, roles, disabled, created_at,"
                " updated_at) VALUES ('u1', 'a@example.com', '', '[]', false,"
                " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO personal_clients (id, client_id, user_id, display_name,"
                " allow_source_cidr, scoped_roles, created_at, updated_at, secret_hash,"
                " public_jwk) VALUES ('c1', 'brave-otter-12345@auth.example.com/pcc', 'u1',"
                " '', '[]', '[]', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 'h', '{}')"
            )
        )
    migrate(database)
    with database.engine.connect() as conn:
        domain = conn.execute(
            text("SELECT secret_domain FROM personal_clients WHERE id = 'c1'")
        ).scalar_one()
    assert domain == "auth.example.com"


def downgrade_to(database: Database, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_a_downgrade_of_0016_soft_deletes_the_trusts(
    empty_database: Database,
) -> None:
    """0016 adds the trusts' columns; undone, it soft-deletes the trusts (no data lost)."""
    from authserver.config import Settings
    from authserver.domain.credentials import Caller
    from authserver.domain.federation import NewTrust
    from authserver.store import Store
    from authserver.usecases.federation import TrustService
    from authserver.usecases.users import UserService
    from tests.support.helpers import now

    database = empty_database
    migrate(database)
    store = Store(database)
    owner = UserService(store).create(
        email="t@example.com", display_name="", role_names=[], now=now()
    )
    trust = TrustService(store, Settings()).create(
        caller=Caller.operator(),
        owner_id=owner.id,
        new=NewTrust(issuer="https://gitlab.com", condition='claims.ref == "main"'),
        now=now(),
    )
    downgrade_to(database, "0015")
    with database.engine.connect() as conn:
        deleted = conn.execute(
            text("SELECT deleted_at FROM personal_clients WHERE id = :id"), {"id": trust.id}
        ).scalar_one()
    assert deleted is not None
    migrate(database)  # the row stays, deleted: never listed as a personal client
    assert store.credentials.all(user_id=owner.id) == []


def test_this_rounds_migrations_go_down_to_0013_and_up_again(empty_database: Database) -> None:
    """0014 to 0017 (outbox and notices, usage, trusts, the audit trail) each undo cleanly."""
    database = empty_database
    migrate(database)
    new_tables = {"outbox", "expiry_notices", "credential_addresses", "token_counts"}
    new_tables |= {"audit_events"}
    downgrade_to(database, "0013")
    assert not new_tables & set(inspect(database.engine).get_table_names())
    columns = {c["name"] for c in inspect(database.engine).get_columns("personal_clients")}
    assert "federation_issuer" not in columns
    migrate(database)
    assert new_tables <= set(inspect(database.engine).get_table_names())
