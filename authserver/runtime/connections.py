"""The HTTP connections of one serving process: read deadline, connection cap, draining.

uvicorn (``uvicorn[standard]``: its httptools protocol) closes idle keep-alive
connections after ``timeout_keep_alive`` but has no deadline for reading a
request: a client sending one header byte every few seconds holds its
connection, and its file descriptor, for ever. ``DeadlineProtocol`` arms a
timer when a connection opens and when a request's first byte arrives, disarms
it when the headers are complete, arms it again for the body and disarms it when
the message is complete; when it fires, the connection is closed. At
``max_connections`` a new connection closes the one that has waited longest for
its headers (a slow client, most likely; a real request's headers take
milliseconds), or, when none waits, is itself closed at once. While the process
drains (after SIGTERM) it answers every request with ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from authserver.security.logsafe import Repeated

log = logging.getLogger("authserver")


@dataclass
class Limits:
    """What every connection of this process obeys; set once by ``serve`` in each worker."""

    request_read_timeout: float = 10.0
    max_connections: int = 4096
    shutdown_drain: float = 5.0


class Drain:
    """Whether this process is draining: SIGTERM received, /readyz answers 503."""

    active = False


limits = Limits()
drain = Drain()
# Connections waiting for a request's headers (new ones included), oldest first: at the cap,
# the oldest of them makes room for a new connection (a slow client, most likely).
awaiting_headers: dict[DeadlineProtocol, None] = {}
_cut_off = Repeated(log, "closed connections whose request did not arrive in time")
_evicted = Repeated(log, "at max_connections: closed the connection waiting longest for headers")


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a read deadline, a connection cap and draining."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.read_deadline: asyncio.TimerHandle | None = None
        self.refused = False

    def _arm(self) -> None:
        self._disarm()
        self.read_deadline = self.loop.call_later(
            limits.request_read_timeout, self._read_deadline_passed
        )

    def _disarm(self) -> None:
        if self.read_deadline is not None:
            self.read_deadline.cancel()
            self.read_deadline = None

    def _read_deadline_passed(self) -> None:
        self.read_deadline = None
        if not self.transport.is_closing():
            _cut_off.happened(f"after {limits.request_read_timeout:g}s")
            self._close()

    def _close(self) -> None:
        awaiting_headers.pop(self, None)
        self.transport.close()

    def _await_headers(self) -> None:
        awaiting_headers.pop(self, None)
        awaiting_headers[self] = None  # the newest

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= limits.max_connections:
            if awaiting_headers:
                oldest = next(iter(awaiting_headers))
                _evicted.happened(f"{limits.max_connections} connections")
                oldest._close()
            else:
                # Not added to the connections: closed before it costs anything but the accept.
                self.refused = True
                self.transport = transport
                transport.close()
                return
        super().connection_made(transport)
        self._arm()
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        awaiting_headers.pop(self, None)
        if self.refused:  # never set up
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()
        self._await_headers()

    def on_headers_complete(self) -> None:
        self._disarm()
        awaiting_headers.pop(self, None)
        super().on_headers_complete()
        if drain.active and self.cycle is not None:
            self.cycle.keep_alive = False
        self._arm()  # the body; disarmed when the message is complete

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def start_draining(self) -> None:
        """Close after the current response, unless it has started (it said keep-alive)."""
        if self.cycle is not None and not self.cycle.response_started:
            self.cycle.keep_alive = False
