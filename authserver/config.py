"""Settings: defaults, overlaid by the TOML file, overlaid by ``AUTHSERVER_*`` variables."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import difflib
import ipaddress
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from authserver.domain.algorithms import TOKEN_ALGS
from authserver.domain.durations import parse_duration
from authserver.domain.lifecycle import EVENT_TYPES
from authserver.domain.urls import issuer_problem
from authserver.errors import AuthserverError, ConfigError
from authserver.sso.providers import OidcProvider, check_providers, parse_providers

# Looked for in this order when AUTHSERVER_CONFIG is not set (the documented search order).
DEFAULT_CONFIG_PATH = Path("config/authserver.toml")
SYSTEM_CONFIG_PATH = Path("/etc/authserver/authserver.toml")
# AUTHSERVER_* variables that are not settings: the config file, the tests' weak-hashing
# switch, and the fuzzing budget of scripts/fuzz.
OTHER_VARIABLES = ("AUTHSERVER_CONFIG", "AUTHSERVER_ALLOW_WEAK_HASHING", "AUTHSERVER_FUZZ_EXAMPLES")
MAX_WORKERS = 64
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class DeviceClient:
    """A public client allowed to start the device flow (RFC 8628), e.g. a CLI."""

    id: str
    name: str


@dataclass(frozen=True)
class Webhook:
    """A receiver of credential events (``[[webhooks]]``), signed per Standard Webhooks."""

    url: str
    secret: str = field(repr=False)  # whsec_<base64>: from ``secret`` or ``secret_file``
    events: tuple[str, ...] = ()  # empty: every event

    def wants(self, event: str) -> bool:
        return not self.events or event in self.events

    @property
    def key(self) -> bytes:
        """The signing key: the bytes behind ``whsec_``."""
        return base64.b64decode(self.secret.removeprefix("whsec_"))


@dataclass(frozen=True)
class Settings:
    """Every tunable of the server; see ``config/authserver.example.toml`` for the documentation."""

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
    dpop_nonce: bool = False  # DPoP proofs must carry a server nonce (RFC 9449 section 8)
    argon2_memory_cost: int = 19456  # KiB
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    argon2_max_concurrency: int = 1
    auth_failure_limit: int = 10
    auth_failure_window: int = 60
    max_body_bytes: int = 65536
    # Workload identity federation (SPEC section 12): subject tokens and issuers' keys.
    federation_max_token_age: int = 600  # seconds since the job's token was issued
    federation_jwks_ttl: int = 900  # seconds an issuer's key set is used before a refresh
    federation_jwks_refetch_interval: float = 60  # at most one refetch for an unknown kid
    last_used_flush_interval: float = 0.5
    last_used_journal_dir: str = ""  # empty: beside the SQLite file, else ./var/last-used
    auth_cache_ttl: float = 0.5
    change_signal: bool = True  # share a change signal with this machine's other processes
    log_level: str = "info"
    # /metrics behind a bearer token: the token, or a file holding it; empty: open.
    metrics_token: str = field(default="", repr=False)
    metrics_token_file: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int | str = "auto"  # one per CPU, or a number
    # HTTP connections (serve): idle keep-alive, read deadline, connection cap, drain on SIGTERM.
    keep_alive_timeout: int = 75
    request_read_timeout: float = 10.0
    max_connections: int = 4096
    shutdown_drain: float = 5.0
    # People's sign-in and the pages: password and [[login.oidc]] providers, sessions.
    login_password: bool = True  # TOML: [login] password = true
    login_oidc: tuple[OidcProvider, ...] = ()  # TOML: [[login.oidc]] tables; none by default
    password_min_length: int = 15
    session_idle_timeout: int = 1800
    session_max_age: int = 43200
    sign_in_failure_limit: int = 10
    sign_in_failure_window: int = 300
    # Credential lifetime policy (TOML: [policy]); empty: off.
    policy_max_lifetime: str = ""  # a DURATION: new credentials expire at most this far ahead
    policy_max_idle: str = ""  # a DURATION: unused this long, a credential stops working
    max_rotation_grace: str = "7d"  # a DURATION: the longest a rotated secret keeps working
    audit_retention: str = "90d"  # a DURATION: how long the database keeps audit events
    max_queued_password_checks: int = 16  # per process; beyond it sign-in answers 429
    # E-mail (TOML: [mail]); without smtp_url, e-mail is off.
    mail_smtp_url: str = ""  # smtp://host:port, smtp+starttls://host:port, smtps://host:port
    mail_from: str = ""
    mail_username: str = ""
    mail_password_file: str = ""
    webhooks: tuple[Webhook, ...] = ()  # TOML: [[webhooks]] tables; none by default
    expiry_notice_days: tuple[int, ...] = (30, 7, 1)  # notices this many days before expiry
    lifecycle_check_interval: float = 3600.0  # seconds between expiry checks
    # Set from AUTHSERVER_ALLOW_WEAK_HASHING by load_settings (tests only); not a file key.
    allow_weak_hashing: bool = field(default=False, compare=False, repr=False)
    # The keys the file or the environment set (load_settings), so that `serve` can tell
    # a default issuer, which follows its address, from a chosen one; not a file key.
    given: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    # Derived in __post_init__; not configurable.
    trusted_networks: tuple[Network, ...] = field(default=(), compare=False, repr=False)
    metrics_bearer: str = field(default="", compare=False, repr=False)
    mail_password: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        problem = issuer_problem(self.issuer, allow_insecure=self.allow_insecure_issuer)
        if problem is not None:
            hint = (
                " (TLS at a reverse proxy), or set allow_insecure_issuer = true"
                if problem.endswith("https")
                else ""
            )
            raise ConfigError(f"issuer {problem}{hint}")
        if self.issuer.endswith("/"):
            object.__setattr__(self, "issuer", self.issuer.rstrip("/"))
        if self.signing_alg not in TOKEN_ALGS:
            raise ConfigError(f"signing_alg must be one of {', '.join(TOKEN_ALGS)}")
        if self.access_token_ttl < 1:
            raise ConfigError("access_token_ttl must be at least 1 second")
        if self.argon2_memory_cost < 19456 or self.argon2_time_cost < 2:
            # Below OWASP's argon2id floor the hash stops protecting a leaked database.
            if not self.allow_weak_hashing:
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
        if not 1 <= self.federation_max_token_age <= 86400:
            raise ConfigError("federation_max_token_age must be 1 to 86400 seconds")
        if not 60 <= self.federation_jwks_ttl <= 86400:
            raise ConfigError("federation_jwks_ttl must be 60 to 86400 seconds")
        if not 0 <= self.federation_jwks_refetch_interval <= 3600:
            raise ConfigError("federation_jwks_refetch_interval must be 0 to 3600 seconds")
        if self.max_body_bytes < 1024:
            raise ConfigError("max_body_bytes must be at least 1024")
        if not 0 <= self.auth_cache_ttl <= 1:
            raise ConfigError(
                "auth_cache_ttl must be in [0, 1] seconds: changes must apply within 1 s"
            )
        if not 0 < self.last_used_flush_interval <= 1:
            raise ConfigError("last_used_flush_interval must be in (0, 1] seconds")
        worker_count(self.workers)
        if not 1 <= self.keep_alive_timeout <= 3600:
            raise ConfigError("keep_alive_timeout must be 1 to 3600 seconds")
        if not 0 < self.request_read_timeout <= 300:
            raise ConfigError("request_read_timeout must be in (0, 300] seconds")
        if self.max_connections < 16:
            raise ConfigError("max_connections must be at least 16")
        if not 0 <= self.shutdown_drain <= 60:
            raise ConfigError("shutdown_drain must be 0 to 60 seconds")
        _check_device_clients(self.device_clients)
        check_providers(self.login_oidc)
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
        for key in (
            "policy_max_lifetime",
            "policy_max_idle",
            "max_rotation_grace",
            "audit_retention",
        ):
            value = getattr(self, key)
            if value:
                try:
                    parse_duration(value)
                except AuthserverError as exc:
                    where = f"[policy] {key[7:]}" if key.startswith("policy_") else key
                    raise ConfigError(f"{where}: {exc}") from None
        if self.max_queued_password_checks < 1:
            raise ConfigError("max_queued_password_checks must be at least 1")
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
        object.__setattr__(self, "metrics_bearer", self._metrics_bearer())
        object.__setattr__(self, "mail_password", self._check_mail())
        _check_webhooks(self.webhooks)
        days = self.expiry_notice_days
        if any(isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 365 for d in days):
            raise ConfigError("expiry_notice_days: each must be a whole number of days, 1 to 365")
        if len(set(days)) != len(days):
            raise ConfigError("expiry_notice_days: every number must be different")
        if not 1 <= self.lifecycle_check_interval <= 86400:
            raise ConfigError("lifecycle_check_interval must be 1 to 86400 seconds")

    def _check_mail(self) -> str:
        """``[mail]`` checked; the password read from ``password_file`` (empty: none)."""
        if not self.mail_smtp_url:
            if self.mail_from or self.mail_username or self.mail_password_file:
                raise ConfigError("[mail] needs smtp_url")
            return ""
        parts = urlsplit(self.mail_smtp_url)
        if parts.scheme not in MAIL_SCHEMES or not parts.hostname:
            raise ConfigError(
                "[mail] smtp_url must be smtp://host:port, smtp+starttls://host:port "
                f"or smtps://host:port, got {self.mail_smtp_url!r}"
            )
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise ConfigError(f"[mail] smtp_url has a bad port: {self.mail_smtp_url!r}") from None
        if parts.username or parts.password or parts.path not in ("", "/"):
            raise ConfigError(
                "[mail] smtp_url is scheme://host:port (username and password_file apart)"
            )
        if "@" not in self.mail_from or any(c in self.mail_from for c in "\r\n"):
            raise ConfigError("[mail] from must be an e-mail address")
        if self.mail_password_file and not self.mail_username:
            raise ConfigError("[mail] password_file needs username")
        if not self.mail_password_file:
            return ""
        path = self.mail_password_file
        try:
            password = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise ConfigError(f"cannot read [mail] password_file {path}: {reason}") from exc
        if not password:
            raise ConfigError(f"[mail] password_file {path} is empty")
        return password

    @property
    def mail_enabled(self) -> bool:
        return bool(self.mail_smtp_url)

    def _metrics_bearer(self) -> str:
        """The token /metrics asks for: ``metrics_token`` or the content of its file."""
        if self.metrics_token and self.metrics_token_file:
            raise ConfigError("set metrics_token or metrics_token_file, not both")
        token = self.metrics_token
        if self.metrics_token_file:
            path = self.metrics_token_file
            try:
                token = Path(path).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or exc
                raise ConfigError(f"cannot read metrics_token_file {path}: {reason}") from exc
            if not token:
                raise ConfigError(f"metrics_token_file {path} is empty")
        if token and (len(token) < 16 or not token.isascii() or not token.isprintable()):
            raise ConfigError("metrics_token must be at least 16 printable ASCII characters")
        return token

    @property
    def max_lifetime(self) -> timedelta | None:
        """``[policy] max_lifetime``, or None when there is none."""
        return parse_duration(self.policy_max_lifetime) if self.policy_max_lifetime else None

    @property
    def rotation_grace_limit(self) -> timedelta:
        """``max_rotation_grace``: the longest grace period a rotation may give."""
        return parse_duration(self.max_rotation_grace)

    @property
    def audit_retention_period(self) -> timedelta:
        """``audit_retention``: audit events older than this are purged."""
        return parse_duration(self.audit_retention)

    @property
    def max_idle(self) -> timedelta | None:
        """``[policy] max_idle``, or None when there is none."""
        return parse_duration(self.policy_max_idle) if self.policy_max_idle else None

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
    def last_used_journal(self) -> Path:
        """Where each process journals uses not yet written (replayed after a kill)."""
        if self.last_used_journal_dir:
            return Path(self.last_used_journal_dir)
        if self.database_url.startswith("sqlite:///") and ":memory:" not in self.database_url:
            return Path(self.database_url.removeprefix("sqlite:///")).parent / "last-used"
        return Path("var/last-used")

    @property
    def token_audience(self) -> str:
        return self.audience or self.issuer

    def endpoint(self, path: str) -> str:
        return self.issuer + path


_FIELDS = {
    f.name: f
    for f in dataclasses.fields(Settings)
    if f.name
    not in ("trusted_networks", "metrics_bearer", "allow_weak_hashing", "given", "mail_password")
}
# TOML tables whose keys are settings named "<table>_<key>" (``[login] password`` is
# ``login_password``, its variable AUTHSERVER_LOGIN_PASSWORD).
TABLES = ("login", "policy", "mail")
MAIL_SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}  # and their default ports
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


def _check_webhooks(webhooks: tuple[Webhook, ...]) -> None:
    urls = [w.url for w in webhooks]
    if len(set(urls)) != len(urls):
        raise ConfigError("webhooks: every url must be different")
    for webhook in webhooks:
        problem = outbound_url_problem(webhook.url)
        if problem:
            raise ConfigError(f"webhooks: {webhook.url!r} {problem}")
        try:
            key = base64.b64decode(webhook.secret.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if not webhook.secret.startswith("whsec_") or not 24 <= len(key) <= 64:
            raise ConfigError(
                f"webhooks: the secret of {webhook.url} must be whsec_ and the base64 of "
                "24 to 64 random bytes"
            )
        unknown = [e for e in webhook.events if e not in EVENT_TYPES]
        if unknown:
            raise ConfigError(
                f"webhooks: unknown event {unknown[0]!r} for {webhook.url} "
                f"(known: {', '.join(EVENT_TYPES)})"
            )


def outbound_url_problem(url: str) -> str | None:
    """Why the server must not send to ``url`` (https, or http to loopback only), or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return "is not a URL"
    if not parts.hostname or parts.username or parts.password:
        return "must be https://host/… (no user name or password in it)"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        return None
    return "must be https (plain http only to a loopback address)"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _webhooks(value: Any, *, from_env: bool) -> tuple[Webhook, ...]:
    """``[[webhooks]]`` tables: ``url``, ``secret`` or ``secret_file``, optional ``events``."""
    if from_env:
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(
                'webhooks: expected JSON like [{"url": "…", "secret_file": "…"}]'
            ) from None
    if not isinstance(value, list):
        raise ConfigError("webhooks: expected a list of tables with url and secret")
    webhooks = []
    for entry in value:
        allowed = {"url", "secret", "secret_file", "events"}
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise ConfigError("webhooks: every table needs a url")
        extra = sorted(set(entry) - allowed)
        if extra:
            raise ConfigError(f"webhooks: unknown key {extra[0]!r} for {entry['url']}")
        if ("secret" in entry) == ("secret_file" in entry):
            raise ConfigError(f"webhooks: set secret or secret_file for {entry['url']}")
        secret = entry.get("secret")
        if "secret_file" in entry:
            path = entry["secret_file"]
            try:
                secret = Path(str(path)).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or exc
                raise ConfigError(f"webhooks: cannot read secret_file {path}: {reason}") from exc
        events = entry.get("events", [])
        if not isinstance(secret, str) or not (
            isinstance(events, list) and all(isinstance(e, str) for e in events)
        ):
            raise ConfigError(f"webhooks: secret is a string, events a list for {entry['url']}")
        webhooks.append(Webhook(url=entry["url"], secret=secret, events=tuple(events)))
    return tuple(webhooks)


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


def _coerce(name: str, value: Any, *, from_env: bool) -> Any:
    default = _FIELDS[name].default
    if name == "device_clients":
        return _device_clients(value, from_env=from_env)
    if name == "login_oidc":
        return parse_providers(value, from_env=from_env)
    if name == "webhooks":
        return _webhooks(value, from_env=from_env)
    if name == "expiry_notice_days":
        try:
            days = json.loads(f"[{value}]") if from_env else value
        except ValueError:
            days = None
        if not isinstance(days, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) for d in days
        ):
            raise ConfigError(f"expiry_notice_days: expected a list of days, got {value!r}")
        return tuple(days)
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
    prefixes = tuple(f"{t}_" for t in TABLES)
    top_level = [name for name in _FIELDS if not name.startswith(prefixes)] + list(TABLES)
    for key, value in raw.items():
        if key in TABLES and isinstance(value, dict):
            inner_keys = [n.removeprefix(f"{key}_") for n in _FIELDS if n.startswith(f"{key}_")]
            for inner, inner_value in value.items():
                if f"{key}_{inner}" not in _FIELDS:
                    hint = _did_you_mean(inner, inner_keys)
                    raise ConfigError(f"{config_path}: unknown key {inner!r} in [{key}]{hint}")
                flat[f"{key}_{inner}"] = inner_value
        elif key not in _FIELDS or key.startswith(prefixes):
            if key in ALIASES:
                hint = f" (did you mean {ALIASES[key]}?)"
            else:
                hint = _did_you_mean(key, top_level)
            raise ConfigError(f"{config_path}: unknown key {key!r}{hint}")
        else:
            flat[key] = value
    return flat


def _did_you_mean(key: str, known: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest known key, as for environment variables."""
    close = difflib.get_close_matches(key, known, 1, 0.8)
    return f" (did you mean {close[0]!r}?)" if close else ""


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
    values["given"] = frozenset(values)
    if env.get("AUTHSERVER_ALLOW_WEAK_HASHING"):
        values["allow_weak_hashing"] = True
    values.update(overrides)
    return Settings(**values)
