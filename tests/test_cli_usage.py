"""The command line's own flags and help."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from click.testing import CliRunner, Result

from authserver.cli import main


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_version_comes_from_the_package_metadata() -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout == f"authserver {version('authserver')}\n"


@pytest.mark.parametrize(
    ("command", "option"),
    [
        pytest.param(["users", "create"], "--role", id="users-create-role"),
        pytest.param(["users", "update"], "--role", id="users-update-role"),
        pytest.param(["clients", "create"], "--scoped-role", id="scoped-role"),
        pytest.param(["clients", "create"], "--allow-cidr", id="allow-cidr"),
    ],
)
def test_help_says_which_options_repeat(command: list[str], option: str) -> None:
    help_text = " ".join(cli(*command, "--help").stdout.split())
    [described] = [part for part in help_text.split(" --") if part.startswith(option[2:] + " ")]
    assert "(repeatable)" in described


def test_serve_help_shows_the_workers_default() -> None:
    help_text = " ".join(cli("serve", "--help").stdout.split())
    assert (
        '--workers N|auto Worker processes, 1 to 64 or "auto" for one per CPU (default: config workers, auto).'
        in help_text
    )


@pytest.mark.parametrize("value", ["0", "65", "many"])
def test_serve_refuses_workers_outside_1_to_64_or_auto(value: str) -> None:
    result = cli("serve", "--workers", value)
    assert result.exit_code == 2
    assert "Invalid value for '--workers'" in result.stderr
