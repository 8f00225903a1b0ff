"""Settings: defaults, overlaid by the TOML file, overlaid by ``AUTHSERVER_*`` variables."""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from authserver.errors import ConfigError

# Looked for in this order when AUTHSERVER_CONFIG is not set (SPEC section 6).
DEFAULT_CONFIG_PATH = Path("config/authserver.toml")
SYSTEM_CONFIG_PATH = Path("/etc/authserver/authserver.toml")
# AUTHSERVER_* variables that are not settings: the config file, the tests' weak-hashing
# switch, and the fuzzing budget of scripts/fuzz.
OTHER_VARIABLES = ("AUTHSERVER_CONFIG", "AUTHSERVER_ALLOW_WEAK_HASHING", "AUTHSERVER_FUZZ_EXAMPLES")
MAX_WORKERS = 64
SIGNING_ALGS = ("ES256", "EdDSA", "RS256")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


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
    def token_audience(self) -> str:
        return self.audience or self.issuer

    def endpoint(self, path: str) -> str:
        return self.issuer + path


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "trusted_networks"}
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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _coerce(name: str, value: Any, *, from_env: bool) -> Any:
    default = _FIELDS[name].default
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
        for key, value in raw.items():
            if key not in _FIELDS:
                raise ConfigError(f"{config_path}: unknown key {key!r}")
            values[key] = _coerce(key, value, from_env=False)
    elif explicit:
        raise ConfigError(f"config file {config_path} does not exist")
    for key in _FIELDS:
        env_value = env.get(f"AUTHSERVER_{key.upper()}")
        if env_value is not None:
            values[key] = _coerce(key, env_value, from_env=True)
    values.update(overrides)
    return Settings(**values)
