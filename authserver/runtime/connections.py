"""The HTTP connections of one serving process: read deadline, connection cap, draining.

uvicorn (``uvicorn[standard]``: its httptools protocol) closes idle keep-alive
connections after ``timeout_keep_alive`` but has no deadline for reading a
request: a client sending one header byte every few seconds holds its
connection, and its file descriptor, for ever. ``DeadlineProtocol`` arms a
timer when a connection opens and when a request's first byte arrives, disarms
it when the headers are complete, arms it again for the body and disarms it when
the message is complete; when it fires, the connection is closed. It also closes
at once any connection beyond ``max_connections``, and while the process drains
(after SIGTERM) it answers every request with ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

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
            log.info("closed a connection whose request did not arrive in time")
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= limits.max_connections:
            # Not added to the connections: closed before it costs anything but the accept.
            self.refused = True
            self.transport = transport
            transport.close()
            return
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
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

    def on_headers_complete(self) -> None:
        self._disarm()
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
