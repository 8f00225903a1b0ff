"""Operations: health, readiness, metrics, and the per-request log line."""

from __future__ import annotations

import atexit
import hmac
import logging
import re
import secrets
import time
from typing import Any

import anyio.to_thread
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authserver.config import Settings
from authserver.runtime.connections import drain
from authserver.security import audit
from authserver.security.logsafe import escaped, log_time, loggable_path, quiet_authlib
from authserver.web.bearer import bearer_token
from authserver.web.context import services_of
from authserver.web.source import source_address

access_log = logging.getLogger("authserver.access")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
CLIENT_CLOSED_REQUEST = 499  # nginx's status for it, in the access line only


async def root(request: Request) -> Response:
    """``GET /``: people who type the server's address land on the sign-in page."""
    return RedirectResponse("/ui/", status_code=302)


def configure_logging(level: str) -> None:
    """Log lines to stderr at ``level``; called by ``serve`` and in each worker process.

    Every request writes an access line and usually an audit line, so the record
    fields the format never shows (caller's file and line, thread, process) are
    not collected: the logging module's documented optimisations.
    """
    global _handler
    handler = _handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    logging.getLogger("alembic").setLevel(logging.WARNING)
    quiet_authlib()
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


_handler: logging.StreamHandler[Any] | None = None


def write_lines_in_batches() -> None:
    """In a serving worker: audit and access lines through ``audit.LineWriter`` to the stream
    ``configure_logging`` set up (same text, no ``LogRecord``, written once per loop turn)."""
    if _handler is None:
        return
    writer = audit.LineWriter(_handler.stream, _handler.lock)
    audit.use_writer(writer)
    atexit.register(writer.flush)


class OneLineFormatter(logging.Formatter):
    """Every message on one line, whatever a library put in it; tracebacks stay readable.

    A second line of defence: request input is escaped where it is logged, but a
    message from anywhere (a driver's error text, say) must not start a line either.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escaped(record.message)
        return super().formatMessage(record)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The default ``asctime`` (local time, milliseconds), its date part made once a second.

        Every request logs two lines; ``time.strftime`` for each cost more than the rest
        of the formatting.
        """
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return log_time(record.created)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    if drain.active:  # SIGTERM: a load balancer must stop sending before the listener closes
        return JSONResponse({"status": "draining"}, status_code=503)
    services = services_of(request)
    ok = await anyio.to_thread.run_sync(services.database.ping)
    if ok and services.keyring.active is not None:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "unavailable"}, status_code=503)


async def metrics(request: Request) -> Response:
    """The Prometheus text (every worker's, summed); behind ``metrics_token`` when it is set."""
    services = services_of(request)
    expected = services.settings.metrics_bearer
    if expected:
        given = bearer_token(request.headers) or ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return Response(
                "a bearer token is needed for /metrics\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                media_type="text/plain",
            )
    body = await anyio.to_thread.run_sync(services.metrics.exposition)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


class RequestLogMiddleware:
    """One log line per request (method, path, status, duration, source address, request id)
    and common headers.

    The source address follows the one rule (``web.source``: the TCP peer, or behind a
    trusted proxy its ``X-Forwarded-For``). The request id is taken from a well-formed
    ``X-Request-Id`` or generated, and echoed back. Never logs headers, bodies or query
    strings: they carry credentials.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _REQUEST_ID.fullmatch(candidate):
                    request_id = candidate
                break
        request_id = request_id or secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        audit.request_id.set(request_id)
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers: list[Any] = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"x-frame-options", b"DENY"))
                headers.append((b"referrer-policy", b"no-referrer"))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except ClientDisconnect:
            # The client left before its request was read: nobody to answer, nothing wrong.
            status = CLIENT_CLOSED_REQUEST
        finally:
            if access_log.isEnabledFor(logging.INFO):
                source = source_address(Request(scope), self.settings)
                message = (
                    f"{scope['method']} {loggable_path(scope['path'])} {status} "
                    f"{(time.perf_counter() - started) * 1000:.1f}ms "
                    f"source={source if source is not None else '-'} request_id={request_id}"
                )
                write = audit.access_writer
                if write is not None and not access_log.handlers:
                    write(message)
                else:
                    access_log.info(message)
