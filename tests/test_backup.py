"""``authserver backup FILE``: SQLite's online backup, restored into a fresh server."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import httpx

from tests.support.servers import ServerProcess, assert_one_line_error, run_authserver


def test_backup_taken_while_serving_restores_into_a_server_that_honours_old_credentials(
    tmp_path: Path,
) -> None:
    old = tmp_path / "old"
    old.mkdir()
    database = {"AUTHSERVER_DATABASE_URL": f"sqlite:///{old}/authserver.db"}
    assert (
        run_authserver("users", "create", "alice@example.com", cwd=old, **database).returncode == 0
    )
    created = run_authserver(
        "clients", "create", "--user", "alice@example.com", "--json", cwd=old, **database
    )
    document = json.loads(created.stdout)
    client_id, secret = document["client"]["clientId"], document["clientSecret"]
    backup = tmp_path / "authserver-backup.db"
    with ServerProcess(database["AUTHSERVER_DATABASE_URL"], old):  # online: while it serves
        result = run_authserver("backup", str(backup), cwd=old, **database)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"backed up {old}/authserver.db to {backup}\n"
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600  # it holds the signing keys
    new = tmp_path / "new"
    (new / "var").mkdir(parents=True)
    shutil.copy(backup, new / "var" / "authserver.db")  # the restore steps of deployment.md
    with ServerProcess(f"sqlite:///{new}/var/authserver.db", new) as server:
        response = httpx.post(
            f"{server.url}/auth/v1/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
        )
    assert response.status_code == 200, response.text


def test_backup_of_postgresql_says_to_use_pg_dump(tmp_path: Path) -> None:
    result = run_authserver(
        "backup",
        str(tmp_path / "b.db"),
        cwd=tmp_path,
        AUTHSERVER_DATABASE_URL="postgresql://authserver:hunter2@127.0.0.1:1/authserver",
    )
    assert_one_line_error(result, "use pg_dump")
    assert "hunter2" not in result.stderr


def test_backup_never_overwrites_a_file(tmp_path: Path) -> None:
    database = {"AUTHSERVER_DATABASE_URL": f"sqlite:///{tmp_path}/a.db"}
    run_authserver("migrate", cwd=tmp_path, **database)
    existing = tmp_path / "b.db"
    existing.write_text("keep me")
    assert_one_line_error(
        run_authserver("backup", str(existing), cwd=tmp_path, **database), "already exists"
    )
    assert existing.read_text() == "keep me"


def test_backup_without_a_database_creates_none(tmp_path: Path) -> None:
    result = run_authserver("backup", str(tmp_path / "b.db"), cwd=tmp_path)
    assert_one_line_error(result, "there is no SQLite database at", "var/authserver.db")
    assert not (tmp_path / "var" / "authserver.db").exists()
