"""Settings: defaults, overlaid by the TOML file, overlaid by ``AUTHSERVER_*`` variables."""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from authserver.domain.roles import normalize_roles
from authserver.errors import AuthserverError, ConfigError

# Looked for in this order when AUTHSERVER_CONFIG is not set (SPEC section 6).
DEFAULT_CONFIG_PATH = Path("config/authserver.toml")
SYSTEM_CONFIG_PATH = Path("/etc/authserver/authserver.toml")
# AUTHSERVER_* variables that are not settings: the config file, the tests' weak-hashing
# switch, and the fuzzing budget of scripts/fuzz.
OTHER_VARIABLES = ("AUTHSERVER_CONFIG", "AUTHSERVER_ALLOW_WEAK_HASHING", "AUTHSERVER_FUZZ_EXAMPLES")
MAX_WORKERS = 64
SIGNING_ALGS = ("ES256", "EdDSA", "RS256")
DEFAULT_OIDC_SCOPES = ("openid", "email", "profile")
# Provider names go into URLs and into a session's recorded method ("oidc:<name>", 32 at most).
OIDC_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?")
OIDC_KEYS = frozenset(
    {
        "name",
        "issuer",
        "client_id",
        "client_secret",
        "client_secret_file",
        "scopes",
        "allowed_domains",
        "auto_create_users",
        "default_roles",
    }
)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class DeviceClient:
    """A public client allowed to start the device flow (RFC 8628), e.g. a CLI."""

    id: str
    name: str


@dataclass(frozen=True)
class OidcProvider:
    """An OpenID Connect provider people sign in through (``[[login.oidc]]``, SPEC section 8).

    The redirect URI to register at the provider is
    ``<issuer of authserver>/ui/login/oidc/<name>/callback``.
    """

    name: str  # on the sign-in button and in the redirect URI
    issuer: str  # discovery at <issuer>/.well-known/openid-configuration
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...] = DEFAULT_OIDC_SCOPES
    allowed_domains: tuple[str, ...] = ()  # empty: any e-mail domain
    auto_create_users: bool = False
    default_roles: tuple[str, ...] = ()  # the roles of a user created at first sign-in

    @property
    def method(self) -> str:
        """How a session started through this provider is recorded (``oidc:<name>``)."""
        return f"oidc:{self.name}"

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


@dataclass(frozen=True)
class Settings:
    """Every tunable of the server; see ``config/authserver.toml`` for the documentation."""

    database_url: str = "sqlite:///./var/authserver.db"
    issuer: str = "http://127.0.0.1:8000"
    allow_insecure_issuer: bool = False
    access_token_ttl: int = 600
    audience: str = ""  # empty means "the issuer URL"
    signing_alg: str = "ES256"
    trusted_proxies: tuple[str, ...] = ()
    admin_role: str = "system:owner"
    introspection_role: str = "system:token-introspector"
    secret_token_domain: str = ""  # empty means "the issuer host"
    scopes_supported: tuple[str, ...] = ()  # published in the metadata; none by default
    device_clients: tuple[DeviceClient, ...] = ()  # RFC 8628 public clients; none by default
    device_poll_interval: int = 5  # seconds between a device client's polls
    argon2_memory_cost: int = 19456  # KiB
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    argon2_max_concurrency: int = 1
    auth_failure_limit: int = 10
    auth_failure_window: int = 60
    max_body_bytes: int = 65536
    last_used_flush_interval: float = 0.5
    auth_cache_ttl: float = 0.5
    log_level: str = "info"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int | str = "auto"  # one per CPU, or a number
    # People's sign-in and the pages (SPEC section 8).
    login_password: bool = True  # TOML: [login] password = true
    login_oidc: tuple[OidcProvider, ...] = ()  # TOML: [[login.oidc]] tables; none by default
    password_min_length: int = 15
    session_idle_timeout: int = 1800
    session_max_age: int = 43200
    sign_in_failure_limit: int = 10
    sign_in_failure_window: int = 300
    # Derived in __post_init__; not configurable.
    trusted_networks: tuple[Network, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.issuer)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"issuer must be an absolute http(s) URL, got {self.issuer!r}")
        if parts.query or parts.fragment:
            raise ConfigError("issuer must not have a query or fragment (RFC 8414 section 2)")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            if not self.allow_insecure_issuer:
                raise ConfigError(
                    f"issuer {self.issuer} is plain http on a non-loopback host: use https "
                    "(TLS at a reverse proxy), or set allow_insecure_issuer = true"
                )
        if self.issuer.endswith("/"):
            object.__setattr__(self, "issuer", self.issuer.rstrip("/"))
        if self.signing_alg not in SIGNING_ALGS:
            raise ConfigError(f"signing_alg must be one of {', '.join(SIGNING_ALGS)}")
        if self.access_token_ttl < 1:
            raise ConfigError("access_token_ttl must be at least 1 second")
        if self.argon2_memory_cost < 19456 or self.argon2_time_cost < 2:
            # Below OWASP's argon2id floor the hash stops protecting a leaked database.
            if not os.environ.get("AUTHSERVER_ALLOW_WEAK_HASHING"):
                raise ConfigError(
                    "argon2 parameters below m=19456 KiB, t=2 are refused "
                    "(set AUTHSERVER_ALLOW_WEAK_HASHING=1 for tests only)"
                )
        if self.argon2_parallelism < 1:
            raise ConfigError("argon2_parallelism must be at least 1")
        if self.argon2_max_concurrency < 1:
            raise ConfigError("argon2_max_concurrency must be at least 1")
        if self.auth_failure_limit < 0 or self.auth_failure_window < 1:
            raise ConfigError("auth_failure_limit must be >= 0 and auth_failure_window >= 1")
        if self.max_body_bytes < 1024:
            raise ConfigError("max_body_bytes must be at least 1024")
        if not 0 <= self.auth_cache_ttl <= 1:
            raise ConfigError(
                "auth_cache_ttl must be in [0, 1] seconds: changes must apply within 1 s"
            )
        if not 0 < self.last_used_flush_interval <= 1:
            raise ConfigError("last_used_flush_interval must be in (0, 1] seconds")
        worker_count(self.workers)
        _check_device_clients(self.device_clients)
        _check_oidc_providers(self.login_oidc)
        if not 1 <= self.device_poll_interval <= 60:
            raise ConfigError("device_poll_interval must be 1 to 60 seconds")
        if not 8 <= self.password_min_length <= 64:
            # SP 800-63B: never fewer than 8; more than 64 would refuse what it says to accept.
            raise ConfigError("password_min_length must be 8 to 64")
        if not 60 <= self.session_idle_timeout <= self.session_max_age:
            raise ConfigError("session_idle_timeout must be 60 s to session_max_age")
        if self.session_max_age > 30 * 86400:
            raise ConfigError("session_max_age must be at most 30 days (2592000 s)")
        if self.sign_in_failure_limit < 0 or self.sign_in_failure_window < 1:
            raise ConfigError("sign_in_failure_limit must be >= 0 and sign_in_failure_window >= 1")
        domain = self.secret_token_domain
        if domain and (
            len(domain) > 253 or not all(c.isascii() and (c.isalnum() or c in ".-") for c in domain)
        ):
            # The secret is split on ":" by ConductorOne's Python SDK: a domain is a host name.
            raise ConfigError(f"secret_token_domain must be a host name, got {domain!r}")
        networks = []
        for cidr in self.trusted_proxies:
            try:
                networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
            except ValueError as exc:
                raise ConfigError(f"trusted_proxies: {cidr!r} is not a CIDR") from exc
        object.__setattr__(self, "trusted_networks", tuple(networks))

    @property
    def issuer_host(self) -> str:
        """Host name of the issuer, used in client ids and secrets."""
        host = urlsplit(self.issuer).hostname
        assert host is not None
        return host

    @property
    def secret_domain(self) -> str:
        """The <domain> of new secrets: ``secret_token_domain``, else the issuer host."""
        return self.secret_token_domain or self.issuer_host

    @property
    def is_https(self) -> bool:
        """True when the issuer is https: session cookies are then ``Secure`` and ``__Host-``."""
        return self.issuer.startswith("https://")

    @property
    def token_audience(self) -> str:
        return self.audience or self.issuer

    def endpoint(self, path: str) -> str:
        return self.issuer + path


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "trusted_networks"}
# TOML tables whose keys are settings named "<table>_<key>" (``[login] password`` is
# ``login_password``, its variable AUTHSERVER_LOGIN_PASSWORD).
TABLES = ("login",)
# Names people may reach for that are spelled otherwise here.
ALIASES = {
    "password_login": "password = false in the [login] table",
    "login_password": "password in the [login] table",
    "login_oidc": "[[login.oidc]] tables",
    "oidc": "[[login.oidc]] tables",
}
KNOWN_VARIABLES = frozenset({f"AUTHSERVER_{n.upper()}" for n in _FIELDS} | set(OTHER_VARIABLES))


def worker_count(workers: int | str) -> int:
    """``workers`` as a number of processes: 1 to 64, or "auto" for one per CPU."""
    if workers == "auto":
        return max(1, min(os.cpu_count() or 1, MAX_WORKERS))
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f'workers must be 1 to {MAX_WORKERS} or "auto", got {workers!r}')
    return workers


def config_file(environ: Mapping[str, str] | None = None) -> Path | None:
    """The configuration file in use: ``AUTHSERVER_CONFIG``, else ``./config/authserver.toml``,
    else ``/etc/authserver/authserver.toml``; None when there is none (built-in defaults)."""
    env = os.environ if environ is None else environ
    if env.get("AUTHSERVER_CONFIG"):
        return Path(env["AUTHSERVER_CONFIG"])
    for candidate in (DEFAULT_CONFIG_PATH, SYSTEM_CONFIG_PATH):
        if candidate.is_file():
            return candidate
    return None


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """Warnings for ``AUTHSERVER_*`` variables that name no setting (a misspelling is ignored)."""
    env = os.environ if environ is None else environ
    warnings = []
    for name in sorted(env):
        if not name.startswith("AUTHSERVER_") or name in KNOWN_VARIABLES:
            continue
        # Compared without the shared prefix, which would make every name look close.
        suffixes = {known.removeprefix("AUTHSERVER_"): known for known in KNOWN_VARIABLES}
        close = difflib.get_close_matches(name.removeprefix("AUTHSERVER_"), suffixes, 1, 0.8)
        hint = f"; did you mean {suffixes[close[0]]}?" if close else ""
        warnings.append(f"unknown environment variable {name} (ignored{hint})")
    return warnings


def _check_device_clients(clients: tuple[DeviceClient, ...]) -> None:
    ids = [client.id for client in clients]
    if len(set(ids)) != len(ids):
        raise ConfigError("device_clients: every id must be different")
    for client in clients:
        if not (0 < len(client.id) <= 255 and client.id.isprintable() and " " not in client.id):
            raise ConfigError(f"device_clients: invalid id {client.id!r}")
        if client.id.endswith("/pcc"):
            raise ConfigError(f"device_clients: {client.id!r} looks like a personal client's id")
        if not (0 < len(client.name) <= 100 and client.name.isprintable()):
            raise ConfigError(f"device_clients: invalid name {client.name!r} for {client.id}")


def _device_clients(value: Any, *, from_env: bool) -> tuple[DeviceClient, ...]:
    """``[[device_clients]]`` tables with ``id`` and ``name`` (in the environment: JSON)."""
    if from_env:
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(
                'device_clients: expected JSON like [{"id": "…", "name": "…"}]'
            ) from None
    if not isinstance(value, list):
        raise ConfigError("device_clients: expected a list of tables with id and name")
    clients = []
    for entry in value:
        if (
            not isinstance(entry, dict)
            or set(entry) != {"id", "name"}
            or not all(isinstance(v, str) for v in entry.values())
        ):
            raise ConfigError(f"device_clients: expected id and name (strings), got {entry!r}")
        clients.append(DeviceClient(id=entry["id"], name=entry["name"]))
    return tuple(clients)


def _check_oidc_providers(providers: tuple[OidcProvider, ...]) -> None:
    names = [provider.name for provider in providers]
    if len(set(names)) != len(names):
        raise ConfigError("login.oidc: every provider needs a name of its own")
    for provider in providers:
        where = f"login.oidc {provider.name!r}"
        if not isinstance(provider.name, str) or not OIDC_NAME.fullmatch(provider.name):
            raise ConfigError(
                f"login.oidc: invalid name {provider.name!r}: 1 to 24 lowercase letters, digits "
                "and '-' (it is part of the redirect URI), not starting or ending with '-'"
            )
        parts = urlsplit(provider.issuer)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{where}: issuer must be an https URL, got {provider.issuer!r}")
        if parts.query or parts.fragment:
            raise ConfigError(f"{where}: issuer must not have a query or fragment")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            # The ID token's keys and the client secret travel over this connection.
            raise ConfigError(f"{where}: issuer must be https (plain http only on loopback)")
        if not (0 < len(provider.client_id) <= 255 and provider.client_id.isprintable()):
            raise ConfigError(f"{where}: client_id must be 1 to 255 printable characters")
        if not provider.client_secret or not provider.client_secret.isprintable():
            raise ConfigError(f"{where}: client_secret (or client_secret_file) is required")
        if "openid" not in provider.scopes:
            raise ConfigError(f"{where}: scopes must include openid")
        if not all(scope and scope.isprintable() and " " not in scope for scope in provider.scopes):
            raise ConfigError(f"{where}: invalid scopes {' '.join(provider.scopes)!r}")
        for domain in provider.allowed_domains:
            if not domain or domain != domain.lower() or "@" in domain or " " in domain:
                raise ConfigError(f"{where}: invalid allowed_domains entry {domain!r}")
        try:
            normalize_roles(provider.default_roles)
        except AuthserverError as exc:
            raise ConfigError(f"{where}: default_roles: {exc}") from None


def _oidc_providers(value: Any, *, from_env: bool) -> tuple[OidcProvider, ...]:
    """``[[login.oidc]]`` tables (in the environment: JSON, a list of objects)."""
    if from_env:
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(
                'login.oidc: expected JSON like [{"name": "…", "issuer": "…", '
                '"client_id": "…", "client_secret_file": "…"}]'
            ) from None
    if not isinstance(value, list):
        raise ConfigError("login.oidc: expected [[login.oidc]] tables")
    return tuple(_oidc_provider(entry) for entry in value)


def _oidc_provider(entry: Any) -> OidcProvider:
    if not isinstance(entry, dict):
        raise ConfigError(f"login.oidc: expected a table, got {entry!r}")
    name = entry.get("name")
    where = f"login.oidc {name!r}" if isinstance(name, str) else "login.oidc"
    unknown = sorted(set(entry) - OIDC_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}")
    missing = [key for key in ("name", "issuer", "client_id") if key not in entry]
    if missing:
        raise ConfigError(f"{where}: {missing[0]} is required")
    for key in ("name", "issuer", "client_id", "client_secret", "client_secret_file"):
        if key in entry and not isinstance(entry[key], str):
            raise ConfigError(f"{where}: {key} must be a string")
    for key in ("auto_create_users",):
        if key in entry and not isinstance(entry[key], bool):
            raise ConfigError(f"{where}: {key} must be true or false")
    if ("client_secret" in entry) == ("client_secret_file" in entry):
        raise ConfigError(f"{where}: give exactly one of client_secret and client_secret_file")
    if "client_secret_file" in entry:
        path = Path(entry["client_secret_file"])
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise ConfigError(f"{where}: cannot read client_secret_file {path}: {reason}") from None
        if not secret:
            raise ConfigError(f"{where}: client_secret_file {path} is empty")
    else:
        secret = entry["client_secret"]

    def words(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        raw = entry.get(key, default)
        if isinstance(raw, str):
            return tuple(raw.split())
        if isinstance(raw, list | tuple) and all(isinstance(item, str) for item in raw):
            return tuple(item.strip() for item in raw)
        raise ConfigError(f"{where}: {key} must be a list of strings")

    return OidcProvider(
        name=entry["name"],
        issuer=entry["issuer"],
        client_id=entry["client_id"],
        client_secret=secret,
        scopes=words("scopes", DEFAULT_OIDC_SCOPES),
        allowed_domains=tuple(d.lower().lstrip("@") for d in words("allowed_domains", ())),
        auto_create_users=entry.get("auto_create_users", False),
        default_roles=words("default_roles", ()),
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _coerce(name: str, value: Any, *, from_env: bool) -> Any:
    default = _FIELDS[name].default
    if name == "device_clients":
        return _device_clients(value, from_env=from_env)
    if name == "login_oidc":
        return _oidc_providers(value, from_env=from_env)
    if name == "workers":
        if from_env and value.strip() != "auto":
            try:
                return int(value)
            except ValueError:
                pass  # Settings names the accepted values
        return value.strip() if from_env else value
    try:
        if isinstance(default, tuple):
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return tuple(value)
            raise TypeError
        if isinstance(default, bool):
            if from_env:
                lowered = str(value).strip().lower()
                if lowered not in ("1", "true", "yes", "0", "false", "no"):
                    raise ValueError
                return lowered in ("1", "true", "yes")
            if not isinstance(value, bool):
                raise TypeError
            return value
        if isinstance(default, int):
            if from_env:
                return int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError
            return value
        if isinstance(default, float):
            if from_env:
                return float(value)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError
            return float(value)
        if not isinstance(value, str):
            raise TypeError
        return value
    except (TypeError, ValueError) as exc:
        kind = type(default).__name__ if not isinstance(default, tuple) else "list of strings"
        raise ConfigError(f"{name}: expected {kind}, got {value!r}") from exc


def _flatten(raw: dict[str, Any], config_path: Path) -> dict[str, Any]:
    """Top-level keys, and the keys of ``TABLES`` as ``<table>_<key>``; others are refused."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if key in TABLES and isinstance(value, dict):
            for inner, inner_value in value.items():
                if f"{key}_{inner}" not in _FIELDS:
                    raise ConfigError(f"{config_path}: unknown key {inner!r} in [{key}]")
                flat[f"{key}_{inner}"] = inner_value
        elif key not in _FIELDS or key.startswith(tuple(f"{t}_" for t in TABLES)):
            hint = f" (did you mean {ALIASES[key]}?)" if key in ALIASES else ""
            raise ConfigError(f"{config_path}: unknown key {key!r}{hint}")
        else:
            flat[key] = value
    return flat


def load_settings(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Read the config file (``path``, else ``config_file()``), then environment overrides,
    then ``overrides``."""
    env = os.environ if environ is None else environ
    explicit = path is not None or bool(env.get("AUTHSERVER_CONFIG"))
    config_path = Path(path) if path is not None else config_file(env)
    values: dict[str, Any] = {}
    if config_path is not None and config_path.exists():
        try:
            raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{config_path}: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"cannot read {config_path}: {exc.strerror or exc}") from exc
        for key, value in _flatten(raw, config_path).items():
            values[key] = _coerce(key, value, from_env=False)
    elif explicit:
        raise ConfigError(f"config file {config_path} does not exist")
    for key in _FIELDS:
        env_value = env.get(f"AUTHSERVER_{key.upper()}")
        if env_value is not None:
            values[key] = _coerce(key, env_value, from_env=True)
    values.update(overrides)
    return Settings(**values)
