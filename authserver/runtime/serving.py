"""What ``authserver serve`` checks and says before uvicorn starts.

Each check turns a failure uvicorn would report late, or as a traceback, into
one line naming the cause: the listening address (uvicorn binds only after
the application has started), the TLS files, and issuers whose client ids
ConductorOne's clients cannot route (they call ``https://<host>/auth/v1/token`` on port
443, the host taken from the client id). Then one line says
what the server runs with.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from authserver.domain.urls import is_loopback_host
from authserver.errors import ConfigError
from authserver.records import KeyRecord
from authserver.store.database import Database


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def startup_line(
    *, url: str, workers: int, config: Path | None, database: Database, issuer: str, key: KeyRecord
) -> str:
    """What this server runs with, in one line (the database's password hidden)."""
    return (
        f"serving {url} with {workers} worker{'s' if workers > 1 else ''}: "
        f"config {config.resolve() if config else 'defaults'}, database {database.display_url}, "
        f"issuer {issuer}, signing key {key.kid} ({key.alg})"
    )


def check_listen(host: str, port: int) -> None:
    """Fail now if ``host:port`` cannot be listened on (in use, not an address of this host)."""
    shown = host_port(host, port)
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {shown}: {exc.strerror}") from exc
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            # As uvicorn's own socket: a port in TIME_WAIT is free, one with a listener is not.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise ConfigError(f"cannot listen on {shown}: {exc.strerror or exc}") from exc


def check_tls(cert: str, key: str) -> None:
    """Fail now if ``cert`` and ``key`` are not a PEM certificate (chain) and its private key."""
    contents = {}
    for option, path in (("--tls-cert", cert), ("--tls-key", key)):
        try:
            contents[option] = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {option} {path}: {exc.strerror or exc}") from exc
    try:
        x509.load_pem_x509_certificates(contents["--tls-cert"])
    except ValueError as exc:
        raise ConfigError(f"--tls-cert {cert} holds no PEM certificate") from exc
    try:
        serialization.load_pem_private_key(contents["--tls-key"], password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"--tls-key {key} holds no unencrypted PEM private key") from exc
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise ConfigError(
            f"--tls-key {key} does not fit the certificate in --tls-cert {cert} ({exc.reason})"
        ) from exc


def conductorone_routing(issuer: str) -> str | None:
    """Why ConductorOne's Go SDK and ``cone`` cannot reach this issuer, or None if they can.

    They take the host after ``@`` in the client id (our issuer host), read a
    host without a dot as ``<host>.conductor.one``, and call
    ``https://<host>/auth/v1/token`` on port 443.
    """
    parts = urlsplit(issuer)
    host = parts.hostname or ""
    reasons = []
    if parts.scheme != "https":
        reasons.append("is plain http")
    if parts.port is not None and parts.port != 443:
        reasons.append(f"has port {parts.port}")
    if parts.path.strip("/"):
        reasons.append(f"has the path {parts.path}")
    try:
        ipaddress.ip_address(host)
        reasons.append("has an IP address as host")
        if ":" in host:
            host = f"[{host}]"
    except ValueError:
        if "." not in host:
            reasons.append(f"has a host without a dot ({host})")
            host = f"{host}.conductor.one"
    called = f"https://{host}/auth/v1/token"
    if not reasons:
        return None
    return (
        f"ConductorOne clients (cone, the Go SDK) cannot reach this server from its client ids: "
        f"they call {called} on port 443, and the issuer {issuer} {', '.join(reasons)}; "
        f"use an https issuer with a DNS name, no port and no path"
    )


def _is_wildcard(host: str) -> bool:
    return host in ("", "0.0.0.0", "::")


def _origin(url: str) -> tuple[str, bool, int | None]:
    """Scheme, "is loopback" and port of ``url`` (the port its scheme implies if none)."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, is_loopback_host(parts.hostname or ""), port


def serve_issuer(
    *, issuer: str, given: bool, allow_insecure: bool, host: str, port: int, tls: bool
) -> tuple[str, list[str]]:
    """The issuer ``serve`` runs with, and warnings (one line each) about it.

    Not set in the file or the environment (``given`` false), the issuer is the
    address ``serve`` listens on: ``http(s)://HOST:PORT``, with 127.0.0.1 for a
    wildcard address, and for a plain-http non-loopback address (which is no
    issuer unless ``allow_insecure``). Set, it is kept, and said to differ when
    it names another loopback address than the one listened on.
    """
    scheme = "https" if tls else "http"
    listening = f"{scheme}://{host_port(host, port)}"
    local = f"{scheme}://{host_port('127.0.0.1', port)}"
    warnings = []
    if not given:
        if is_loopback_host(host) or (not _is_wildcard(host) and (tls or allow_insecure)):
            issuer = listening
        else:
            issuer = local
    elif is_loopback_host(host) and _origin(issuer) != (scheme, True, port):
        warnings.append(
            f"the issuer {issuer} is not the address serve listens on ({listening}): "
            "tokens and metadata name the issuer; set issuer (or AUTHSERVER_ISSUER) to match"
        )
    if tls and issuer.startswith("http://"):
        warnings.append(
            f"--tls-cert serves https but the issuer {issuer} is plain http: "
            "set issuer to the https URL"
        )
    if not is_loopback_host(host) and is_loopback_host(urlsplit(issuer).hostname or ""):
        warnings.append(
            f"serve listens on {host_port(host, port)} but the issuer {issuer} is a loopback "
            "address that other machines cannot reach: set issuer to the URL clients use"
        )
    return issuer, warnings


#: ConductorOne's ``cone`` as a device client (its client id, SPEC §9).
CONE_CLIENT_ID = "2RGdOS94VDferT9e80mdgntl36K"


def conductorone_notice(issuer: str, device_client_ids: Iterable[str]) -> str | None:
    """What ``serve`` says at start about ConductorOne's clients, or None (they can route).

    A ``warning:`` only when ``cone`` is a configured device client, the one case
    where the operator asked for them; otherwise a short ``note:``, since the
    default issuer is fine for every other client.
    """
    reason = conductorone_routing(issuer)
    if reason is None:
        return None
    if CONE_CLIENT_ID in device_client_ids:
        return f"warning: cone is a device client, but {reason}"
    return (
        f"note: the issuer {issuer} suits OAuth clients in general; ConductorOne's cone and Go "
        "SDK need an https issuer with a DNS name, no port and no path (README: Reaching the "
        "server as ConductorOne clients do)"
    )
