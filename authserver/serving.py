"""What ``authserver serve`` checks before uvicorn starts.

Each check turns a failure uvicorn would report late, or as a traceback, into
one line naming the cause: the listening address (uvicorn binds only after
the application has started).
"""

from __future__ import annotations

import socket

from authserver.errors import ConfigError


def check_listen(host: str, port: int) -> None:
    """Fail now if ``host:port`` cannot be listened on (in use, not an address of this host)."""
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
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
