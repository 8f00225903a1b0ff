"""``authserver trusts create|list|get|delete``: SPEC section 12's command line."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Protocol

import pytest
from click.testing import CliRunner, Result

from authserver.cli import main
from authserver.store import Store
from authserver.store.database import Database

TRUST_ID = re.compile(r"[a-z]+-[a-z]+-[0-9]{5}@127\.0\.0\.1/wfe")
GITHUB = "https://token.actions.githubusercontent.com"
CONDITION = 'claims.repository == "acme/deploy"'


class Run(Protocol):
    def __call__(self, *args: str) -> Result: ...


@pytest.fixture
def run(database_url: str) -> Run:
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args), env={"AUTHSERVER_DATABASE_URL": database_url})

    return invoke


@pytest.fixture
def cli_store(database_url: str, run: Run) -> Iterator[Store]:
    assert run("migrate").exit_code == 0
    assert run("users", "create", "ci@example.com", "--role", "deploy").exit_code == 0
    database = Database(database_url)
    yield Store(database)
    database.dispose()


def _create(run: Run, *extra: str) -> Result:
    return run(
        "trusts",
        "create",
        "--user",
        "ci@example.com",
        "--name",
        "deploy",
        "--issuer",
        GITHUB,
        "--condition",
        CONDITION,
        *extra,
    )


@pytest.mark.parametrize("backend", ["sqlite"])
def test_create_json_prints_the_trust(run: Run, cli_store: Store) -> None:
    result = _create(run, "--json", "--scoped-role", "deploy", "--expires", "30d")
    assert result.exit_code == 0, result.output
    trust = json.loads(result.stdout)["trust"]
    assert TRUST_ID.fullmatch(trust["clientId"])
    assert trust["issuer"] == GITHUB
    assert trust["condition"] == CONDITION
    assert trust["scopedRoles"] == ["deploy"]
    assert "expiresTime" in trust


@pytest.mark.parametrize("backend", ["sqlite"])
def test_invalid_condition_exits_1_naming_it_and_writes_nothing(run: Run, cli_store: Store) -> None:
    result = run(
        "trusts", "create", "--user", "ci@example.com", "--name", "x",
        "--issuer", GITHUB, "--condition", "claims.ref ==",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "condition" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert cli_store.trusts.page(user_ids=None, after_id=None, limit=10) == ([], False)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_plain_http_issuer_exits_1(run: Run, cli_store: Store) -> None:
    result = run(
        "trusts", "create", "--user", "ci@example.com", "--name", "x",
        "--issuer", "http://ci.example.com", "--condition", CONDITION,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "https" in result.stderr


@pytest.mark.parametrize("backend", ["sqlite"])
def test_list_get_and_delete_by_client_id(run: Run, cli_store: Store) -> None:
    trust = json.loads(_create(run, "--json").stdout)["trust"]
    listed = json.loads(run("trusts", "list", "--json").stdout)
    assert [t["id"] for t in listed] == [trust["id"]]
    assert trust["clientId"] in run("trusts", "list").stdout
    got = run("trusts", "get", trust["clientId"], "--json")
    assert json.loads(got.stdout) == {"trust": trust}
    assert "condition:" in run("trusts", "get", trust["id"]).stdout
    deleted = run("trusts", "delete", trust["clientId"])
    assert deleted.exit_code == 0 and trust["id"] in deleted.stdout
    assert run("trusts", "get", trust["id"]).exit_code == 1
    assert json.loads(run("trusts", "list", "--json").stdout) == []


@pytest.mark.parametrize("backend", ["sqlite"])
def test_list_by_user(run: Run, cli_store: Store) -> None:
    _create(run)
    assert run("users", "create", "other@example.com").exit_code == 0
    assert json.loads(run("trusts", "list", "--user", "other@example.com", "--json").stdout) == []
    assert len(json.loads(run("trusts", "list", "--user", "ci@example.com", "--json").stdout)) == 1


@pytest.mark.parametrize("backend", ["sqlite"])
def test_trusts_are_not_listed_as_clients(run: Run, cli_store: Store) -> None:
    _create(run)
    assert json.loads(run("clients", "list", "--json").stdout) == []
