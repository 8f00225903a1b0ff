"""Settings: file, environment overrides and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from authserver.config import Settings, load_settings
from authserver.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_config_documents_every_key_with_its_default() -> None:
    shipped = load_settings(ROOT / "config" / "authserver.toml", environ={})
    assert shipped == Settings()
    text = (ROOT / "config" / "authserver.toml").read_text()
    for name in Settings.__dataclass_fields__:
        if name != "trusted_networks":
            assert f"\n{name} = " in text


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
