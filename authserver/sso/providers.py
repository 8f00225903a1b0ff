"""``[[login.oidc]]`` tables: the OpenID Connect providers people sign in through.

Read by ``config.load_settings`` (from the file, or JSON in
``AUTHSERVER_LOGIN_OIDC``) and checked there, so that a bad provider stops the
server at start with one line; used by the relying party (``sso/relying_party.py``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authserver.domain.roles import normalize_roles
from authserver.domain.urls import issuer_problem
from authserver.errors import AuthserverError, ConfigError

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


@dataclass(frozen=True)
class OidcProvider:
    """An OpenID Connect provider people sign in through (a ``[[login.oidc]]`` table).

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


def check_providers(providers: tuple[OidcProvider, ...]) -> None:
    names = [provider.name for provider in providers]
    if len(set(names)) != len(names):
        raise ConfigError("login.oidc: every provider needs a name of its own")
    if len(providers) > 1:
        # Each provider vouches for the addresses it signs in: with several, each must say
        # for which domains, or any of them could sign in as anyone's address.
        for provider in providers:
            if not provider.allowed_domains:
                raise ConfigError(
                    f"login.oidc {provider.name!r}: with more than one provider, each must "
                    "set allowed_domains"
                )
    for provider in providers:
        where = f"login.oidc {provider.name!r}"
        if not isinstance(provider.name, str) or not OIDC_NAME.fullmatch(provider.name):
            raise ConfigError(
                f"login.oidc: invalid name {provider.name!r}: 1 to 24 lowercase letters, digits "
                "and '-' (it is part of the redirect URI), not starting or ending with '-'"
            )
        # The ID token's keys and the client secret travel over this connection.
        problem = issuer_problem(provider.issuer)
        if problem is not None:
            raise ConfigError(f"{where}: issuer {problem} (plain http only on loopback)")
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


def parse_providers(value: Any, *, from_env: bool) -> tuple[OidcProvider, ...]:
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
