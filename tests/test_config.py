"""Settings: file, environment overrides and validation."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from authserver import config
from authserver.config import Settings, load_settings, unknown_variables
from authserver.errors import ConfigError
from tests.support.postgres import PostgresCluster

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "authserver.example.toml"
NOT_FILE_KEYS = (
    "trusted_networks",
    "metrics_bearer",
    "allow_weak_hashing",
    "given",
    "mail_password",
)


def test_shipped_config_documents_every_key_with_its_default() -> None:
    shipped = load_settings(EXAMPLE, environ={})
    assert shipped == Settings()
    text = EXAMPLE.read_text()
    for name in Settings.__dataclass_fields__:
        table, _, key = name.partition("_")
        if name in NOT_FILE_KEYS:
            continue
        if name in ("login_oidc", "device_clients", "webhooks"):  # arrays of tables, commented
            assert f"\n# [[{name.replace('_oidc', '.oidc')}]]\n" in text
        elif table in config.TABLES:  # [login] password = … is login_password, commented out
            assert f"\n# [{table}]\n" in text
            assert f"\n# {key} = " in "\n" + text.split(f"\n# [{table}]\n")[1]
        elif name == "issuer":  # unset: serve follows its address (shown commented out)
            assert f'\n# issuer = "{Settings().issuer}"\n' in text
        elif name not in NOT_FILE_KEYS:
            assert f"\n{name} = " in text


def test_example_config_leaves_the_issuer_to_serve() -> None:
    assert "issuer" not in load_settings(EXAMPLE, environ={}).given


def test_issuer_from_the_environment_is_given() -> None:
    settings = load_settings(environ={"AUTHSERVER_ISSUER": "https://auth.example.com"})
    assert "issuer" in settings.given


def test_operators_config_file_is_ignored_by_git() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", "config/authserver.toml"], cwd=ROOT
    )
    assert ignored.returncode == 0


def test_example_config_alone_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "config")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(config, "SYSTEM_CONFIG_PATH", tmp_path / "absent.toml")
    assert config.config_file({}) is None


def test_login_table_sets_the_login_settings(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[login]\npassword = false\n")
    assert load_settings(path, environ={}).login_password is False


def test_login_password_from_environment() -> None:
    settings = load_settings(environ={"AUTHSERVER_LOGIN_PASSWORD": "false"})
    assert settings.login_password is False


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[login]\npasswords = true\n", id="unknown-key-in-table"),
        pytest.param("login_password = true\n", id="table-key-at-top-level"),
        pytest.param('[[login.oidc]]\nname = "corp"\n', id="oidc-without-issuer"),
    ],
)
def test_login_table_refuses_what_it_does_not_know(tmp_path: Path, text: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_settings(path, environ={})


def test_password_min_length_below_eight_is_refused() -> None:
    with pytest.raises(ConfigError, match="password_min_length"):
        Settings(password_min_length=7)


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('issuer = "https://auth.example.com"\naccess_token_ttl = 300\n')
    settings = load_settings(path, environ={"AUTHSERVER_ACCESS_TOKEN_TTL": "120"})
    assert settings.issuer == "https://auth.example.com"
    assert settings.access_token_ttl == 120


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('signing_alg = "EdDSA"\n')
    assert load_settings(environ={"AUTHSERVER_CONFIG": str(path)}).signing_alg == "EdDSA"


def test_trusted_proxies_from_environment_are_comma_separated() -> None:
    settings = load_settings(environ={"AUTHSERVER_TRUSTED_PROXIES": "10.0.0.0/8, ::1"})
    assert settings.trusted_proxies == ("10.0.0.0/8", "::1")
    assert len(settings.trusted_networks) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("bogus = 1\n", "unknown key", id="unknown-key"),
        pytest.param('access_token_ttl = "600"\n', "access_token_ttl", id="wrong-type"),
        pytest.param('signing_alg = "HS256"\n', "signing_alg", id="bad-alg"),
        pytest.param('issuer = "ftp://x"\n', "issuer", id="bad-issuer"),
        pytest.param("argon2_memory_cost = 1024\n", "argon2", id="weak-argon2"),
        pytest.param('trusted_proxies = ["nope"]\n', "trusted_proxies", id="bad-proxy"),
        pytest.param("issuer = \n", "c.toml", id="not-toml"),
    ],
)
def test_bad_config_is_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings(path, environ={})


def test_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.toml", environ={})


def test_issuer_host_drops_port() -> None:
    assert Settings(issuer="http://127.0.0.1:8000").issuer_host == "127.0.0.1"


def test_plain_http_public_issuer_is_refused() -> None:
    with pytest.raises(ConfigError, match="https"):
        Settings(issuer="http://auth.example.com")


@pytest.mark.parametrize(
    "issuer",
    [
        "http://127.0.0.1:8000",
        "http://localhost:8000",
        "http://[::1]:8000",
        "https://auth.example.com",
    ],
)
def test_loopback_or_https_issuer_is_accepted(issuer: str) -> None:
    assert Settings(issuer=issuer).issuer == issuer


def test_insecure_issuer_can_be_allowed_explicitly() -> None:
    settings = load_settings(
        environ={
            "AUTHSERVER_ISSUER": "http://auth.internal",
            "AUTHSERVER_ALLOW_INSECURE_ISSUER": "true",
        }
    )
    assert settings.issuer == "http://auth.internal"


def test_bad_boolean_is_refused() -> None:
    with pytest.raises(ConfigError, match="allow_insecure_issuer"):
        load_settings(environ={"AUTHSERVER_ALLOW_INSECURE_ISSUER": "maybe"})


def test_postgresql_url_without_its_driver_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from authserver.store.database import Database

    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ConfigError, match=r"authserver\[postgresql\]"):
        Database("postgresql://user@127.0.0.1:1/db")


def test_documented_postgresql_url_with_a_password_connects(postgres: PostgresCluster) -> None:
    from authserver.store.database import Database

    database = Database(postgres.url())  # postgresql://user:password@host/db, as documented
    try:
        assert database.ping()
    finally:
        database.dispose()
    wrong = Database(postgres.url().replace(postgres.password, "not-the-password"))
    try:
        assert not wrong.ping()  # the test cluster checks passwords, as a deployment does
    finally:
        wrong.dispose()


@pytest.fixture
def config_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A working folder and a stand-in for /etc/authserver, each with its own config file."""
    work = tmp_path / "work"
    (work / "config").mkdir(parents=True)
    monkeypatch.chdir(work)
    system = tmp_path / "etc" / "authserver.toml"
    system.parent.mkdir()
    monkeypatch.setattr(config, "SYSTEM_CONFIG_PATH", system)
    places = {
        "env": tmp_path / "env.toml",
        "cwd": work / "config" / "authserver.toml",
        "system": system,
    }
    for ttl, path in enumerate(places.values(), start=100):
        path.write_text(f"access_token_ttl = {ttl}\n")
    return places


@pytest.mark.parametrize(
    ("present", "ttl"),
    [
        pytest.param(("env", "cwd", "system"), 100, id="AUTHSERVER_CONFIG-first"),
        pytest.param(("cwd", "system"), 101, id="then-./config"),
        pytest.param(("system",), 102, id="then-/etc/authserver"),
        pytest.param((), 600, id="else-defaults"),
    ],
)
def test_config_file_is_looked_for_in_order(
    config_places: dict[str, Path], present: tuple[str, ...], ttl: int
) -> None:
    for place, path in config_places.items():
        if place not in present:
            path.unlink()
    environ = {"AUTHSERVER_CONFIG": str(config_places["env"])} if "env" in present else {}
    assert load_settings(environ=environ).access_token_ttl == ttl


@pytest.mark.parametrize(
    ("environ", "content", "workers"),
    [
        pytest.param({}, 'workers = "auto"\n', "auto", id="file-auto"),
        pytest.param({"AUTHSERVER_WORKERS": "auto"}, "", "auto", id="env-auto"),
        pytest.param({"AUTHSERVER_WORKERS": "3"}, "", 3, id="env-number"),
        pytest.param({}, "workers = 64\n", 64, id="file-number"),
    ],
)
def test_workers_is_a_number_or_auto(
    tmp_path: Path, environ: dict[str, str], content: str, workers: int | str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(content)
    assert load_settings(path, environ=environ).workers == workers


def test_auto_workers_is_one_per_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("authserver.config.os.cpu_count", lambda: 6)
    assert config.worker_count("auto") == 6


@pytest.mark.parametrize("value", ["0", "65", "many"])
def test_workers_outside_1_to_64_or_auto_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="workers"):
        load_settings(environ={"AUTHSERVER_WORKERS": value})


def test_misspelled_variable_is_named_with_the_likely_key() -> None:
    assert unknown_variables({"AUTHSERVER_ISSUR": "https://auth.example.com"}) == [
        "unknown environment variable AUTHSERVER_ISSUR (ignored; did you mean AUTHSERVER_ISSUER?)"
    ]


def test_misspelled_file_key_is_named_with_the_likely_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('isuer = "https://auth.example.com"\n')
    with pytest.raises(ConfigError, match=r"unknown key 'isuer' \(did you mean 'issuer'\?\)$"):
        load_settings(path, environ={})


def test_misspelled_key_in_a_table_is_named_with_the_likely_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[login]\npasswords = true\n")
    with pytest.raises(
        ConfigError, match=r"'passwords' in \[login\] \(did you mean 'password'\?\)"
    ):
        load_settings(path, environ={})


def test_unknown_file_key_without_a_close_key_has_no_guess(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('colour = "blue"\n')
    with pytest.raises(ConfigError, match=r"unknown key 'colour'$"):
        load_settings(path, environ={})


def test_unknown_variable_without_a_close_key_is_named() -> None:
    assert unknown_variables({"AUTHSERVER_COLOUR": "blue"}) == [
        "unknown environment variable AUTHSERVER_COLOUR (ignored)"
    ]


def test_documented_variables_are_not_warned_about() -> None:
    environ = {
        "AUTHSERVER_CONFIG": "/x.toml",
        "AUTHSERVER_ALLOW_WEAK_HASHING": "1",
        "AUTHSERVER_FUZZ_EXAMPLES": "10",
        "AUTHSERVER_DATABASE_URL": "sqlite:///x.db",
        "AUTHSERVER_WORKERS": "auto",
        "PATH": "/bin",
    }
    assert unknown_variables(environ) == []


OIDC = """
[login]
password = false

[[login.oidc]]
name = "okta"
issuer = "https://example.okta.com"
client_id = "0oa1"
client_secret = "okta-client-secret-value"
allowed_domains = ["example.org"]

[[login.oidc]]
name = "keycloak"
issuer = "https://sso.example.com/realms/staff"
client_id = "authserver"
client_secret_file = "{secret_file}"
scopes = ["openid", "email"]
allowed_domains = ["Example.com"]
auto_create_users = true
default_roles = ["deploy"]
"""


def _oidc_config(tmp_path: Path, text: str = OIDC) -> Path:
    secret_file = tmp_path / "keycloak-secret"
    secret_file.write_text("keycloak-client-secret-value\n")
    path = tmp_path / "c.toml"
    path.write_text(text.replace("{secret_file}", str(secret_file)))
    return path


def test_oidc_providers_are_read_from_login_oidc_tables(tmp_path: Path) -> None:
    settings = load_settings(_oidc_config(tmp_path), environ={})
    okta, keycloak = settings.login_oidc
    assert settings.login_password is False
    assert (okta.name, okta.issuer, okta.client_id) == ("okta", "https://example.okta.com", "0oa1")
    assert okta.client_secret == "okta-client-secret-value"
    assert okta.scopes == ("openid", "email", "profile")
    assert (okta.allowed_domains, okta.auto_create_users, okta.default_roles) == (
        ("example.org",),
        False,
        (),
    )
    assert okta.method == "oidc:okta"
    assert okta.discovery_url == "https://example.okta.com/.well-known/openid-configuration"
    # client_secret_file: read at load time, without the trailing newline.
    assert keycloak.client_secret == "keycloak-client-secret-value"
    assert keycloak.scopes == ("openid", "email")
    assert keycloak.allowed_domains == ("example.com",)
    assert (keycloak.auto_create_users, keycloak.default_roles) == (True, ("deploy",))


def test_oidc_client_secrets_never_show_in_repr(tmp_path: Path) -> None:
    settings = load_settings(_oidc_config(tmp_path), environ={})
    assert "client-secret-value" not in repr(settings)
    assert "okta" in repr(settings)


def test_oidc_providers_from_environment_json(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("s3cret-from-file")
    value = (
        '[{"name": "corp", "issuer": "http://127.0.0.1:9000", "client_id": "c",'
        f' "client_secret_file": "{secret_file}", "auto_create_users": true}}]'
    )
    (provider,) = load_settings(environ={"AUTHSERVER_LOGIN_OIDC": value}).login_oidc
    assert (provider.name, provider.client_secret, provider.auto_create_users) == (
        "corp",
        "s3cret-from-file",
        True,
    )


def test_unreadable_client_secret_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[[login.oidc]]\nname = "corp"\nissuer = "https://sso.example.com"\nclient_id = "c"\n'
        f'client_secret_file = "{tmp_path}/missing"\n'
    )
    with pytest.raises(ConfigError, match=f"cannot read client_secret_file {tmp_path}/missing"):
        load_settings(path, environ={})


PROVIDER = '[[login.oidc]]\nname = "corp"\nissuer = "https://sso.example.com"\nclient_id = "c"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(PROVIDER, "exactly one of client_secret", id="no-secret"),
        pytest.param(
            PROVIDER + f'client_secret = "x"\nclient_secret_file = "{ROOT}/README.md"\n',
            "exactly one of client_secret",
            id="secret-twice",
        ),
        pytest.param(
            PROVIDER.replace('"corp"', '"Corp"') + 'client_secret = "x"\n',
            "invalid name",
            id="upper-case-name",
        ),
        pytest.param(
            PROVIDER.replace('"corp"', '"a/b"') + 'client_secret = "x"\n',
            "invalid name",
            id="slash-in-name",
        ),
        pytest.param(
            PROVIDER.replace('"corp"', '"' + "x" * 25 + '"') + 'client_secret = "x"\n',
            "invalid name",
            id="long-name",
        ),
        pytest.param(
            PROVIDER.replace("https://sso", "http://sso") + 'client_secret = "x"\n',
            "must be https",
            id="plain-http-issuer",
        ),
        pytest.param(
            PROVIDER + 'client_secret = "x"\nscopes = ["email"]\n',
            "must include openid",
            id="no-openid-scope",
        ),
        pytest.param(
            PROVIDER + 'client_secret = "x"\ndefault_roles = ["a b"]\n',
            "default_roles",
            id="bad-role",
        ),
        pytest.param(
            PROVIDER + 'client_secret = "x"\nclient_secrets = "y"\n',
            "unknown key 'client_secrets'",
            id="unknown-key",
        ),
        pytest.param(
            PROVIDER + 'client_secret = "x"\n' + PROVIDER + 'client_secret = "y"\n',
            "name of its own",
            id="same-name-twice",
        ),
        pytest.param(
            "password_login = false\n",
            r"did you mean password = false in the \[login\] table",
            id="password-login-at-top-level",
        ),
    ],
)
def test_bad_oidc_provider_is_refused_with_its_reason(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(path, environ={})


def test_plain_http_provider_on_loopback_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        PROVIDER.replace("https://sso.example.com", "http://127.0.0.1:9000")
        + 'client_secret = "x"\n'
    )
    (provider,) = load_settings(path, environ={}).login_oidc
    assert provider.issuer == "http://127.0.0.1:9000"


def test_several_providers_each_need_allowed_domains(tmp_path: Path) -> None:
    """M2: with two providers, one without allowed_domains could sign in anyone's address."""
    text = OIDC.replace('allowed_domains = ["example.org"]\n', "", 1)
    with pytest.raises(ConfigError, match="'okta': with more than one provider, each must set"):
        load_settings(_oidc_config(tmp_path, text), environ={})
