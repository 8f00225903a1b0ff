"""A full or read-only database: clear errors, nothing half-written, recovery without restart."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import event
from starlette.testclient import TestClient

from authserver.store import Store
from authserver.store.database import Database
from tests.support.types import MakeCaller


@pytest.mark.parametrize("backend", ["sqlite"])
def test_full_database_gives_clear_503_and_recovers(
    client: TestClient, caller: MakeCaller, database: Database, store: Store
) -> None:
    _, _, _, token = caller()
    bearer = {"authorization": f"Bearer {token}"}
    with database.engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
    limit = {"pages": pages}

    @event.listens_for(database.engine, "connect")
    def cap(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {limit['pages']}")

    database.engine.dispose()  # reconnect with the cap
    created = 0
    full = None
    for _ in range(200):
        response = client.post(
            "/api/v1/iam/personal_clients", json={"displayName": "x" * 190}, headers=bearer
        )
        if response.status_code != 200:
            full = response
            break
        created += 1
    assert full is not None, "the capped database never filled up"
    assert full.status_code == 503
    assert full.json() == {
        "code": 14,
        "message": "database unavailable: the database or disk is full",
    }
    assert "clientSecret" not in full.text

    limit["pages"] = 1_000_000
    database.engine.dispose()
    assert client.post("/api/v1/iam/personal_clients", json={}, headers=bearer).status_code == 200
    # Every answered create is stored, nothing else is, and the file is sound.
    assert len(store.credentials.all()) == 1 + created + 1
    with database.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_read_only_database_gives_clear_503_and_recovers(
    client: TestClient, caller: MakeCaller, database: Database, store: Store
) -> None:
    _, _, _, token = caller()
    bearer = {"authorization": f"Bearer {token}"}
    read_only = {"on": True}

    @event.listens_for(database.engine, "connect")
    def lock(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        if read_only["on"]:
            dbapi_connection.execute("PRAGMA query_only = ON")

    database.engine.dispose()
    before = len(store.credentials.all())
    response = client.post("/api/v1/iam/personal_clients", json={}, headers=bearer)
    assert response.status_code == 503
    assert response.json() == {
        "code": 14,
        "message": "database unavailable: the database is read-only",
    }
    read_only["on"] = False
    database.engine.dispose()
    assert len(store.credentials.all()) == before
    assert client.post("/api/v1/iam/personal_clients", json={}, headers=bearer).status_code == 200
