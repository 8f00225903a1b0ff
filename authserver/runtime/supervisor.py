"""Running uvicorn for ``authserver serve``: one process, or a supervisor and its workers.

``uvicorn.run`` stops accepting the moment SIGTERM arrives and closes idle
keep-alive connections under their clients' next request, and its workers
outlive a supervisor killed with SIGKILL (holding the port). Here instead:

- on SIGTERM (or SIGINT) a process *drains*: ``/readyz`` answers 503 at once,
  the listener keeps accepting and every response says ``Connection: close``
  for ``shutdown_drain`` seconds; then uvicorn's own graceful shutdown closes the
  listener, lets in-flight requests finish and runs the lifespan's end (which
  writes pending ``lastUsedAt`` updates). A second SIGINT ends the drain early.
- with several workers, the supervisor forwards the signal to each worker and
  closes its own copy of the listening socket, so the port closes when the
  last worker stops accepting; a worker that dies is replaced.
- every worker asks the kernel for SIGTERM when its supervisor dies
  (``PR_SET_PDEATHSIG``, Linux), and checks right after that it still has it.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
import os
import resource
import signal
import socket
import sys
import threading
import time
from dataclasses import asdict
from multiprocessing.context import SpawnProcess
from types import FrameType

import uvicorn
from uvicorn._subprocess import get_subprocess
from uvicorn.config import STARTUP_FAILURE

from authserver.runtime import connections
from authserver.runtime.connections import DeadlineProtocol, Limits

log = logging.getLogger("authserver")
PR_SET_PDEATHSIG = 1
# File descriptors kept free of connections: the database, log files, the listener.
RESERVED_FILES = 64
# After the listener closes: at most this long for the requests (headers) of connections
# accepted just before.
LAST_REQUESTS_SECONDS = 2.0


def raise_open_file_limit() -> int:
    """Raise ``RLIMIT_NOFILE``'s soft limit to its hard limit; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        target = 1 << 20  # fs.nr_open by default: an infinite hard limit cannot be the soft one
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft if soft != resource.RLIM_INFINITY else target
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target


def connection_cap(max_connections: int, open_files: int) -> int:
    """``max_connections``, kept below the open-file limit so that accepting never fails."""
    return max(1, min(max_connections, open_files - RESERVED_FILES))


class DrainingServer(uvicorn.Server):
    """uvicorn's server, which on its first SIGTERM or SIGINT drains before it shuts down."""

    def __init__(self, config: uvicorn.Config, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.drain_until: float | None = None
        self.drain_announced = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.started or self.should_exit:
            super().handle_exit(sig, frame)
        elif self.drain_until is None:
            # Only flags here (a signal handler): the event loop does the rest in on_tick.
            self._captured_signals.append(sig)
            connections.drain.active = True
            self.drain_until = time.monotonic() + self.drain_seconds
        elif sig == signal.SIGINT:  # a second Ctrl+C: stop draining
            super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self.drain_until is not None and not self.should_exit:
            if not self.drain_announced:
                self.drain_announced = True
                log.info(
                    "draining: /readyz answers 503, the listener closes in %gs", self.drain_seconds
                )
                for connection in list(self.server_state.connections):
                    if isinstance(connection, DeadlineProtocol):
                        connection.start_draining()
            if time.monotonic() >= self.drain_until:
                self.should_exit = True
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown, after the listener closed without resetting anyone.

        Closing a listening socket resets the connections still in its accept
        queue (the kernel completed their handshake; the client sends its request
        and reads "connection reset"). So the queue is emptied into connections
        first, in the same step that closes the listener. Then, until every
        connection's headers have arrived (at most ``LAST_REQUESTS_SECONDS``),
        uvicorn waits to close the connections that have no request in progress:
        a client that connected just before has its request on the way.
        """
        queued = []
        for server in self.servers:
            listeners = [os.dup(listener.fileno()) for listener in server.sockets or ()]
            server.close()
            for fd in listeners:
                with socket.socket(fileno=fd) as listener:
                    listener.setblocking(False)
                    while True:
                        try:
                            queued.append(listener.accept()[0])
                        except OSError:  # BlockingIOError: the queue is empty
                            break
        loop = asyncio.get_running_loop()
        for sock in queued:
            sock.setblocking(False)
        # Side by side, not one after the other: a TLS handshake may take its time.
        handshakes = [
            loop.create_task(
                loop.connect_accepted_socket(self._protocol, sock, ssl=self.config.ssl)
            )
            for sock in queued
        ]
        # uvicorn closes connections that have no request yet: give those accepted just
        # before the listener closed time for their request (a loaded client may be slow).
        deadline = loop.time() + LAST_REQUESTS_SECONDS
        await asyncio.sleep(0.05)
        while connections.awaiting_headers and loop.time() < deadline:
            await asyncio.sleep(0.05)
        await super().shutdown(sockets)
        for handshake in handshakes:
            handshake.cancel()

    def _protocol(self) -> asyncio.Protocol:
        return self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )


def die_with_parent(parent: int) -> None:
    """Have the kernel send SIGTERM to this process when ``parent`` exits, however it exits."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            log.warning("cannot follow the supervisor: prctl: %s", os.strerror(ctypes.get_errno()))
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _apply(limits: Limits) -> None:
    for name, value in asdict(limits).items():
        setattr(connections.limits, name, value)


def _worker(
    config: uvicorn.Config, limits: Limits, parent: int, sockets: list[socket.socket]
) -> None:
    """A worker process: follow the supervisor, then serve on the inherited sockets."""
    die_with_parent(parent)
    _apply(limits)
    DrainingServer(config, limits.shutdown_drain).run(sockets)


def serve(config: uvicorn.Config, limits: Limits) -> None:
    """Run ``config`` (its ``workers`` processes) until SIGTERM; exits 3 if it cannot start."""
    config.http = DeadlineProtocol
    if config.workers <= 1:
        _apply(limits)
        server = DrainingServer(config, limits.shutdown_drain)
        server.run()
        if not server.started:
            sys.exit(STARTUP_FAILURE)
        return
    if Supervisor(config, [config.bind_socket()], limits).run() == STARTUP_FAILURE:
        sys.exit(STARTUP_FAILURE)


class Supervisor:
    """Starts ``config.workers`` worker processes, replaces dead ones, forwards SIGTERM."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], limits: Limits):
        self.config = config
        self.sockets = sockets
        self.limits = limits
        self.workers: list[SpawnProcess] = []
        self.stopping = threading.Event()

    def _start(self) -> SpawnProcess:
        target = functools.partial(_worker, self.config, self.limits, os.getpid())
        process = get_subprocess(self.config, target, self.sockets)
        process.start()
        return process

    def _signalled(self, sig: int, frame: FrameType | None) -> None:
        self.stopping.set()
        for process in self.workers:
            if process.pid is not None and process.exitcode is None:
                try:
                    os.kill(process.pid, signal.SIGTERM if sig != signal.SIGINT else sig)
                except ProcessLookupError:
                    pass

    def run(self) -> int:
        """Serve until a signal; STARTUP_FAILURE if a worker could not start, else 0."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._signalled)
        result = 0
        self.workers = [self._start() for _ in range(self.config.workers)]
        while not self.stopping.wait(0.1):
            for index, process in enumerate(self.workers):
                if process.is_alive():
                    continue
                process.join()
                if process.exitcode == STARTUP_FAILURE:
                    log.error("worker [%s] failed to start; stopping", process.pid)
                    result = STARTUP_FAILURE
                    self._signalled(signal.SIGTERM, None)
                    break
                if not self.stopping.is_set():
                    log.warning("worker [%s] exited (%s); starting another", process.pid,
                                process.exitcode)  # fmt: skip
                    self.workers[index] = self._start()
        # The workers hold their own copies: the port closes when the last one stops accepting.
        for sock in self.sockets:
            sock.close()
        for process in self.workers:
            process.join()
        return result
