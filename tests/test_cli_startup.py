"""What every command says at start: configuration found, new databases, misspelled variables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from authserver.cli import main
from tests.support.ports import free_port
from tests.support.servers import assert_one_line_error, run_authserver

pytestmark = pytest.mark.slow


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder without a config/ folder, as when the CLI runs from the wrong place."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def cli(*args: str, **env: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


@pytest.mark.parametrize("command", [["migrate"], ["users", "list"], ["keys", "rotate"]])
def test_command_says_when_it_creates_a_new_empty_database(
    elsewhere: Path, command: list[str]
) -> None:
    result = cli(*command)
    assert result.exit_code == 0, result.output
    path = elsewhere / "var" / "authserver.db"
    assert result.stderr == f"note: created a new, empty database {path}\n"


def test_command_on_an_existing_database_says_nothing_about_it(elsewhere: Path) -> None:
    cli("migrate")
    result = cli("users", "list")
    assert result.exit_code == 0
    assert result.stderr == ""


def test_command_from_another_folder_uses_the_database_of_authserver_config(
    tmp_path: Path, elsewhere: Path
) -> None:
    database = tmp_path / "shared.db"
    config = tmp_path / "authserver.toml"
    config.write_text(f'database_url = "sqlite:///{database}"\n')
    cli("users", "create", "a@example.com", AUTHSERVER_CONFIG=str(config))
    result = cli("users", "list", "--json", AUTHSERVER_CONFIG=str(config))
    assert [u["email"] for u in json.loads(result.stdout)] == ["a@example.com"]
    assert result.stderr == ""
    assert not (elsewhere / "var").exists()


@pytest.mark.parametrize("command", [["migrate"], ["users", "list"], ["keys", "list"]])
def test_every_command_warns_about_a_misspelled_variable(
    tmp_path: Path, command: list[str]
) -> None:
    result = cli(
        *command,
        AUTHSERVER_DATABASE_URL=f"sqlite:///{tmp_path}/a.db",
        AUTHSERVER_ISSUR="https://auth.example.com",
    )
    assert result.exit_code == 0, result.output
    assert (
        "warning: unknown environment variable AUTHSERVER_ISSUR "
        "(ignored; did you mean AUTHSERVER_ISSUER?)\n"
    ) in result.stderr


@pytest.mark.parametrize(
    "command",
    [["users", "list"], ["migrate"], ["serve", "--port", "0"]],
    ids=["users-list", "migrate", "serve"],
)
def test_unreachable_postgresql_is_one_line_naming_it(tmp_path: Path, command: list[str]) -> None:
    url = f"postgresql://authserver:hunter2@127.0.0.1:{free_port()}/authserver"
    result = run_authserver(*command, cwd=tmp_path, AUTHSERVER_DATABASE_URL=url)
    assert_one_line_error(
        result,
        "cannot use the database postgresql://authserver:***@127.0.0.1:",
        "Connection refused",
    )
    assert "hunter2" not in result.stderr


def test_sqlite_folder_that_cannot_be_created_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("")
    folder = tmp_path / "plain-file" / "var"
    result = run_authserver(
        "users", "list", cwd=tmp_path, AUTHSERVER_DATABASE_URL=f"sqlite:///{folder}/a.db"
    )
    assert_one_line_error(result, f"cannot create the folder {folder}")


def test_sqlite_file_that_cannot_be_opened_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "a.db").mkdir()
    result = run_authserver(
        "users", "list", cwd=tmp_path, AUTHSERVER_DATABASE_URL=f"sqlite:///{tmp_path}/a.db"
    )
    assert_one_line_error(result, f"cannot use the database sqlite:///{tmp_path}/a.db")
