"""The authserver command line: outputs, errors, and that bad input writes nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner, Result

from authserver.cli import main
from authserver.domain.secrets import token_hash
from authserver.store import Store
from authserver.store.database import Database

CLIENT_ID = re.compile(r"[a-z]+-[a-z]+-[0-9]{5}@127\.0\.0\.1/pcc")


@pytest.fixture
def db_url(database_url: str) -> str:
    return database_url


class Run(Protocol):
    """``run(*args)``: the authserver command line with those arguments, on the test database."""

    def __call__(self, *args: str) -> Result: ...


@pytest.fixture
def run(db_url: str) -> Run:
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args), env={"AUTHSERVER_DATABASE_URL": db_url})

    return invoke


@pytest.fixture
def cli_store(db_url: str, run: Run) -> Iterator[Store]:
    run("migrate")
    database = Database(db_url)
    yield Store(database)
    database.dispose()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_migrate_creates_the_database(run: Run, tmp_path: Path) -> None:
    result = run("migrate")
    assert result.exit_code == 0
    assert (tmp_path / "authserver.db").exists()


def test_users_create_json_prints_the_user(run: Run) -> None:
    result = run(
        "users",
        "create",
        "Alice@Example.com",
        "--name",
        "Alice",
        "--role",
        "b",
        "--role",
        "a",
        "--json",
    )
    assert result.exit_code == 0, result.output
    user = json.loads(result.stdout)
    assert user["email"] == "alice@example.com"
    assert user["displayName"] == "Alice"
    assert user["roles"] == ["a", "b"]
    assert user["disabled"] is False
    assert user["createdAt"].endswith("Z")


def test_duplicate_email_exits_1_and_writes_nothing(run: Run, cli_store: Store) -> None:
    run("users", "create", "a@example.com", "--role", "x")
    result = run("users", "create", "a@example.com", "--role", "y")
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "already exists" in result.stderr
    assert [u.roles for u in cli_store.users.all()] == [("x",)]


def test_invalid_role_name_exits_1(run: Run, cli_store: Store) -> None:
    result = run("users", "create", "a@example.com", "--role", "has space")
    assert result.exit_code == 1
    assert "invalid role name" in result.stderr
    assert cli_store.users.all() == []


def test_invalid_email_exits_1(run: Run) -> None:
    result = run("users", "create", "not-an-email")
    assert result.exit_code == 1
    assert "invalid e-mail" in result.stderr


def test_users_update_replaces_roles(run: Run) -> None:
    run("users", "create", "a@example.com", "--role", "x", "--role", "y")
    result = run("users", "update", "a@example.com", "--role", "z", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["roles"] == ["z"]


def test_users_update_disables_and_keeps_roles(run: Run) -> None:
    run("users", "create", "a@example.com", "--role", "x")
    result = run("users", "update", "a@example.com", "--disable", "--json")
    user = json.loads(result.stdout)
    assert user["disabled"] is True
    assert user["roles"] == ["x"]


def test_users_update_unknown_user_exits_1(run: Run) -> None:
    result = run("users", "update", "ghost@example.com", "--disable")
    assert result.exit_code == 1
    assert "no user" in result.stderr


def test_users_list_json(run: Run) -> None:
    run("users", "create", "a@example.com")
    run("users", "create", "b@example.com")
    result = run("users", "list", "--json")
    assert [u["email"] for u in json.loads(result.stdout)] == ["a@example.com", "b@example.com"]


def test_clients_create_json_has_api_shape(run: Run) -> None:
    run("users", "create", "a@example.com", "--role", "x", "--role", "y")
    result = run(
        "clients",
        "create",
        "--user",
        "a@example.com",
        "--name",
        "ci",
        "--scoped-role",
        "x",
        "--allow-cidr",
        "10.0.0.0/8",
        "--allow-cidr",
        "2001:db8::1",
        "--expires",
        "30d",
        "--json",
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert set(body) == {"client", "clientSecret"}
    client = body["client"]
    assert CLIENT_ID.fullmatch(client["clientId"])
    assert client["displayName"] == "ci"
    assert client["scopedRoles"] == ["x"]
    assert client["allowSourceCidr"] == ["10.0.0.0/8", "2001:db8::1/128"]
    assert client["expiresTime"].endswith("Z")
    assert body["clientSecret"].startswith("secret-token:127.0.0.1:v1:")


def test_secret_is_stored_only_as_argon2id_hash(
    run: Run, cli_store: Store, tmp_path: Path, backend: str
) -> None:
    run("users", "create", "a@example.com")
    secret = json.loads(run("clients", "create", "--user", "a@example.com", "--json").stdout)[
        "clientSecret"
    ]
    with cli_store.database.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT secret_hash FROM personal_clients").scalar_one()
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PasswordHasher().verify(stored, secret)
    if backend == "sqlite":
        assert secret.encode() not in (tmp_path / "authserver.db").read_bytes()


def test_clients_create_unknown_user_exits_1(run: Run, cli_store: Store) -> None:
    result = run("clients", "create", "--user", "ghost@example.com")
    assert result.exit_code == 1
    assert cli_store.credentials.all() == []


def test_clients_create_malformed_cidr_writes_nothing(run: Run, cli_store: Store) -> None:
    run("users", "create", "a@example.com")
    result = run("clients", "create", "--user", "a@example.com", "--allow-cidr", "10.0.0.1/8")
    assert result.exit_code == 1
    assert "invalid CIDR" in result.stderr
    assert cli_store.credentials.all() == []


def test_clients_create_bad_duration_writes_nothing(run: Run, cli_store: Store) -> None:
    run("users", "create", "a@example.com")
    result = run("clients", "create", "--user", "a@example.com", "--expires", "3 weeks")
    assert result.exit_code == 1
    assert "invalid duration" in result.stderr
    assert cli_store.credentials.all() == []


def test_clients_create_scoped_role_owner_lacks_exits_1(run: Run, cli_store: Store) -> None:
    run("users", "create", "a@example.com", "--role", "x")
    result = run("clients", "create", "--user", "a@example.com", "--scoped-role", "admin")
    assert result.exit_code == 1
    assert cli_store.credentials.all() == []


def test_clients_list_filters_by_user(run: Run) -> None:
    run("users", "create", "a@example.com")
    run("users", "create", "b@example.com")
    run("clients", "create", "--user", "a@example.com")
    run("clients", "create", "--user", "b@example.com")
    listed = json.loads(run("clients", "list", "--user", "b@example.com", "--json").stdout)
    assert len(listed) == 1
    assert "clientSecret" not in listed[0]


def test_clients_delete_soft_deletes(run: Run, cli_store: Store) -> None:
    run("users", "create", "a@example.com")
    client = json.loads(run("clients", "create", "--user", "a@example.com", "--json").stdout)[
        "client"
    ]
    result = run("clients", "delete", client["id"])
    assert result.exit_code == 0
    assert cli_store.credentials.get(id=client["id"]).deleted_at is not None
    assert json.loads(run("clients", "list", "--json").stdout) == []


def test_clients_delete_unknown_exits_1(run: Run) -> None:
    result = run("clients", "delete", "nope")
    assert result.exit_code == 1


def _new_client(run: Run, *extra: str) -> dict[str, Any]:
    run("users", "create", "a@example.com", "--role", "deploy", "--role", "read")
    created = run("clients", "create", "--user", "a@example.com", "--json", *extra)
    assert created.exit_code == 0, created.stderr
    client: dict[str, Any] = json.loads(created.stdout)["client"]
    return client


def test_clients_delete_accepts_the_client_id(run: Run, cli_store: Store) -> None:
    client = _new_client(run)
    result = run("clients", "delete", client["clientId"])
    assert result.exit_code == 0, result.stderr
    assert cli_store.credentials.get(id=client["id"]).deleted_at is not None


@pytest.mark.parametrize("ref", ["id", "clientId"])
def test_clients_get_shows_one_client(run: Run, ref: str) -> None:
    client = _new_client(run, "--name", "laptop")
    result = run("clients", "get", client[ref], "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["client"] == client


def test_clients_get_unknown_exits_1(run: Run) -> None:
    result = run("clients", "get", "nobody-home-12345@127.0.0.1/pcc")
    assert result.exit_code == 1
    assert "no personal client" in result.stderr


def test_clients_update_changes_name_roles_and_networks(run: Run, cli_store: Store) -> None:
    client = _new_client(run)
    result = run(
        "clients", "update", client["id"], "--name", "ci", "--scoped-role", "read",
        "--allow-cidr", "10.0.0.0/8", "--allow-cidr", "192.0.2.1",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    stored = cli_store.credentials.get(id=client["id"])
    assert stored.display_name == "ci"
    assert stored.scoped_roles == ("read",)
    assert stored.allow_source_cidr == ("10.0.0.0/8", "192.0.2.1/32")


def test_clients_update_can_lift_reduction_and_lock(run: Run, cli_store: Store) -> None:
    client = _new_client(run, "--scoped-role", "read", "--allow-cidr", "10.0.0.0/8")
    result = run("clients", "update", client["clientId"], "--all-roles", "--any-network")
    assert result.exit_code == 0, result.stderr
    stored = cli_store.credentials.get(id=client["id"])
    assert (stored.scoped_roles, stored.allow_source_cidr) == ((), ())


def test_clients_update_moves_expiry_earlier(run: Run, cli_store: Store) -> None:
    client = _new_client(run, "--expires", "30d")
    assert run("clients", "update", client["id"], "--expires", "1d").exit_code == 0
    stored = cli_store.credentials.get(id=client["id"])
    assert stored.expires_time is not None
    assert stored.expires_time - stored.created_at < timedelta(days=2)


def test_clients_update_cannot_extend_expiry(run: Run, cli_store: Store) -> None:
    client = _new_client(run, "--expires", "1d")
    result = run("clients", "update", client["id"], "--expires", "30d")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: --expires: may only move earlier"
    stored = cli_store.credentials.get(id=client["id"])
    assert stored.expires_time is not None
    assert stored.expires_time - stored.created_at < timedelta(days=2)


def test_clients_update_refuses_a_role_the_owner_lacks(run: Run, cli_store: Store) -> None:
    client = _new_client(run)
    result = run("clients", "update", client["id"], "--scoped-role", "admin")
    assert result.exit_code == 1
    assert "--scoped-role: the owner does not hold admin" in result.stderr
    assert cli_store.credentials.get(id=client["id"]).scoped_roles == ()


def test_clients_update_without_a_change_is_a_usage_error(run: Run) -> None:
    client = _new_client(run)
    result = run("clients", "update", client["id"])
    assert result.exit_code == 2


def test_keys_rotate_adds_active_key_and_retires_old(run: Run) -> None:
    run("keys", "rotate")
    run("keys", "rotate")
    keys = json.loads(run("keys", "list", "--json").stdout)
    assert [k["active"] for k in keys] == [False, True]
    assert keys[0]["publishUntil"].endswith("Z")


def test_usage_error_exits_2(run: Run) -> None:
    assert run("clients", "create").exit_code == 2


def test_bad_config_value_exits_1(db_url: str) -> None:
    result = CliRunner().invoke(
        main,
        ["users", "list"],
        env={"AUTHSERVER_DATABASE_URL": db_url, "AUTHSERVER_ACCESS_TOKEN_TTL": "soon"},
    )
    assert result.exit_code == 1
    assert "access_token_ttl" in result.stderr


def test_users_update_no_roles_clears_roles(run: Run) -> None:
    run("users", "create", "a@example.com", "--role", "x")
    result = run("users", "update", "a@example.com", "--no-roles", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["roles"] == []


def test_users_set_password_reads_the_password_from_stdin(run: Run, db_url: str) -> None:
    from tests.support.helpers import PASSWORD

    run("users", "create", "pat@example.com")
    result = CliRunner().invoke(
        main,
        ["users", "set-password", "pat@example.com"],
        input=PASSWORD + "\n",
        env={"AUTHSERVER_DATABASE_URL": db_url},
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    database = Database(db_url)
    try:
        store = Store(database)
        user = store.users.find(ref="pat@example.com")
        stored = store.passwords.hash_of(user_id=user.id)
    finally:
        database.dispose()
    assert stored is not None and PasswordHasher().verify(stored, PASSWORD)


def test_users_set_password_refuses_a_short_password(run: Run, db_url: str) -> None:
    run("users", "create", "pat@example.com")
    result = CliRunner().invoke(
        main,
        ["users", "set-password", "pat@example.com"],
        input="kettle\n",
        env={"AUTHSERVER_DATABASE_URL": db_url},
    )
    assert result.exit_code == 1
    assert "password: use at least 15 characters" in result.output


def test_users_invite_prints_a_one_time_link(run: Run) -> None:
    run("users", "create", "pat@example.com")
    result = run("users", "invite", "pat@example.com", "--ttl", "2h")
    assert result.exit_code == 0, result.output
    assert re.search(
        r"^http://127\.0\.0\.1:8000/ui/invite\?token=inv_[\w-]{43}$", result.output, re.M
    )


def test_users_sign_out_ends_the_users_sessions(run: Run) -> None:
    run("users", "create", "pat@example.com")
    result = run("users", "sign-out", "pat@example.com")
    assert result.exit_code == 0
    assert "ended 0 sessions of pat@example.com" in result.output


def test_with_passwords_off_invite_is_refused_and_set_password_says_so(
    run: Run, db_url: str
) -> None:
    from tests.support.helpers import PASSWORD

    run("users", "create", "pat@example.com")
    off = {"AUTHSERVER_DATABASE_URL": db_url, "AUTHSERVER_LOGIN_PASSWORD": "false"}
    invite = CliRunner().invoke(main, ["users", "invite", "pat@example.com"], env=off)
    assert invite.exit_code == 1
    assert "turned off ([login] password = false)" in invite.stderr
    result = CliRunner().invoke(
        main, ["users", "set-password", "pat@example.com"], input=PASSWORD + "\n", env=off
    )
    assert result.exit_code == 0
    assert "sign-in with a password is turned off" in result.stderr


def test_clients_list_shows_the_owners_email(run: Callable[..., Result]) -> None:
    run("users", "create", "owner@example.com", "--role", "deploy")
    created = run("clients", "create", "--user", "owner@example.com", "--name", "ci", "--json")
    client_id = json.loads(created.stdout)["client"]["clientId"]
    result = run("clients", "list")
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    assert f"  {client_id}  user=owner@example.com  expires=never  ci" in line


def test_clients_list_says_when_there_are_none(run: Callable[..., Result]) -> None:
    run("users", "create", "nobody@example.com")
    result = run("clients", "list", "--user", "nobody@example.com")
    assert result.exit_code == 0, result.output
    assert result.stdout == "no personal clients\n"


def _invite_token(run: Any) -> str:
    result = run("users", "invite", "pat@example.com")
    assert result.exit_code == 0, result.output
    return str(result.stdout.strip().split("token=")[1])


def test_users_invite_revoke_spends_every_open_invitation(run: Any, cli_store: Store) -> None:
    run("users", "create", "pat@example.com")
    tokens = [_invite_token(run), _invite_token(run)]
    result = run("users", "invite", "--revoke", "pat@example.com")
    assert result.exit_code == 0, result.output
    assert result.stdout == "revoked 2 invitations of pat@example.com\n"
    assert cli_store.invites.open(user_id=None, now=datetime.now(UTC)) == []
    assert all(
        cli_store.invites.usable(token_hash=token_hash(t), now=datetime.now(UTC)) is None
        for t in tokens
    )


def test_users_invitations_lists_the_open_ones(run: Any) -> None:
    run("users", "create", "pat@example.com")
    _invite_token(run)
    listed = run("users", "invitations")
    assert listed.exit_code == 0, listed.output
    assert re.fullmatch(
        r"[0-9a-f]{12}  pat@example\.com  created \S+  expires \S+\n", listed.stdout
    )
    assert run("users", "invite", "--list", "pat@example.com").stdout == listed.stdout


def test_registration_tokens_are_listed_and_revoked_by_id(run: Any, cli_store: Store) -> None:
    run("users", "create", "pat@example.com")
    token = json.loads(
        run("registration-tokens", "create", "--user", "pat@example.com", "--json").stdout
    )["token"]
    listed = run("registration-tokens", "list")
    token_id = listed.stdout.split()[0]
    assert token_id == token_hash(token)[:12]
    result = run("registration-tokens", "revoke", token_id)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"revoked registration token {token_id}\n"
    assert (
        cli_store.registration_tokens.usable(token_hash=token_hash(token), now=datetime.now(UTC))
        is None
    )
    assert run("registration-tokens", "list").stdout == ""


def test_revoking_an_unknown_registration_token_exits_1(run: Any) -> None:
    run("migrate")
    result = run("registration-tokens", "revoke", "0123456789ab")
    assert result.exit_code == 1
    assert "no open registration token" in result.stderr


def test_users_delete_takes_credentials_and_sessions_with_it(run: Any, cli_store: Store) -> None:
    run("users", "create", "pat@example.com")
    created = json.loads(run("clients", "create", "--user", "pat@example.com", "--json").stdout)
    result = run("users", "delete", "pat@example.com")
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        r"deleted user \w+ pat@example\.com: 1 credential stopped authenticating, "
        r"0 sessions ended\n",
        result.stdout,
    )
    found = cli_store.credentials.find(client_id=created["client"]["clientId"])
    assert found is not None and found[0].deleted_at is not None
    assert "pat@example.com" not in run("users", "list").stdout
    assert run("users", "create", "pat@example.com").exit_code == 0  # the address is free again


def test_users_delete_of_an_unknown_user_exits_1(run: Any) -> None:
    run("migrate")
    result = run("users", "delete", "nobody@example.com")
    assert result.exit_code == 1
    assert "no user" in result.stderr


def test_users_create_refuses_an_email_with_an_escape_sequence(run: Any, cli_store: Store) -> None:
    result = run("users", "create", "esc\x1b[31mred@example.com")
    assert result.exit_code == 1
    assert "\x1b" not in result.stderr and "invalid e-mail address" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert cli_store.users.all() == []


def test_users_list_escapes_control_characters_of_stored_emails(run: Any, cli_store: Store) -> None:
    """An address stored before the rule (or by another version) is printed escaped."""
    cli_store.users.create(
        email="esc\x1b[31mred@example.com", display_name="", roles=(), now=datetime.now(UTC)
    )
    listed = run("users", "list")
    assert listed.exit_code == 0
    assert "\x1b" not in listed.stdout and "esc\\x1b[31mred@example.com" in listed.stdout


def test_users_link_provider_links_and_unlink_provider_unlinks(
    run: Any, cli_store: Store, db_url: str
) -> None:
    providers = json.dumps(
        [
            {
                "name": "corp",
                "issuer": "https://sso.example.com",
                "client_id": "c",
                "client_secret": "s",
            }
        ]
    )
    env = {"AUTHSERVER_DATABASE_URL": db_url, "AUTHSERVER_LOGIN_OIDC": providers}
    run("users", "create", "pat@example.com")
    linked = CliRunner().invoke(
        main, ["users", "link-provider", "pat@example.com", "corp", "sub-1"], env=env
    )
    assert linked.exit_code == 0, linked.output
    assert linked.stdout == "linked sub-1 at corp to pat@example.com\n"
    user = cli_store.users.find(ref="pat@example.com")
    assert cli_store.provider_links.of_user(user_id=user.id) == [
        ("https://sso.example.com", "sub-1")
    ]
    unlinked = CliRunner().invoke(
        main, ["users", "unlink-provider", "pat@example.com", "corp", "sub-1"], env=env
    )
    assert unlinked.exit_code == 0, unlinked.output
    assert cli_store.provider_links.of_user(user_id=user.id) == []
    unknown = CliRunner().invoke(
        main, ["users", "link-provider", "pat@example.com", "nope", "sub-1"], env=env
    )
    assert unknown.exit_code == 2 and "no provider 'nope'" in unknown.stderr
