"""The audit trail: one JSON log line per security event, on the ``authserver.audit`` logger.

Events: ``token_issued``, ``auth_failed`` (with the precise internal reason),
``credential_created``, ``credential_updated``, ``credential_deleted``,
``client_registered``, ``token_revoked``; for people ``signed_in``,
``sign_in_failed`` (with a reason; through an OpenID Connect provider also its
``method`` and a ``detail``), ``signed_out``, ``session_expired``,
``signed_out_everywhere``, ``password_set``, ``invite_created``, ``user_created``
and ``user_updated`` (with the acting person as ``actor``: an admin from the pages,
``operator`` at the command line, the provider at a first sign-in through one).
Lines carry ids (credential, client_id, user, jti), the source address and the
request id — never a secret, a token, an assertion, a password, a session id or
a hash. Hooks (``add_hook``) get every event too: the trail in the database
(``usecases/audit.py``) is one.

Every event passes through ``audit``. In a serving worker (``app_factory``) the
lines of the audit trail and of the access log go to a ``LineWriter`` instead of
through ``logging``: the same text the log handler would write, without a
``LogRecord`` per line, and written in batches (once per turn of the event loop).
Elsewhere (the CLI, tests, an app built with ``create_app``), and whenever a
handler is attached to one of the two loggers itself, they are log records of
the ``authserver.audit`` and ``authserver.access`` loggers, as before.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TextIO

from authserver.security.logsafe import escaped, log_time

log = logging.getLogger("authserver.audit")
# Made once: ``json.dumps(..., default=str)`` builds a new encoder on every call. The json
# module rather than orjson (3.1 against 0.3 us a line): the line's text (``", "`` and
# ``": "`` separators, non-ASCII escaped) is what readers of the trail match on.
_encode = json.JSONEncoder(default=str).encode


#: Every event name above (and ``user_updated``), for the audit page's choices.
EVENTS = (
    "auth_failed",
    "client_registered",
    "credential_created",
    "credential_deleted",
    "credential_rotated",
    "credential_updated",
    "device_authorization_started",
    "device_denied",
    "dpop_refused",
    "invite_created",
    "invites_revoked",
    "password_set",
    "provider_linked",
    "provider_unlinked",
    "registration_token_revoked",
    "session_expired",
    "sign_in_failed",
    "signed_in",
    "signed_out",
    "signed_out_everywhere",
    "signing_key_rotated",
    "token_revoked",
    "user_created",
    "user_deleted",
    "user_updated",
)


#: Set by the request-log middleware for the duration of each request.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


#: Called with every event (the dict the log line is made of), whatever the log level:
#: the database trail (``usecases/audit.py``) adds itself here. A hook must not block.
Hook = Callable[[dict[str, Any]], None]
hooks: list[Hook] = []


def add_hook(hook: Hook) -> None:
    hooks.append(hook)


def remove_hook(hook: Hook) -> None:
    if hook in hooks:
        hooks.remove(hook)


class LineWriter:
    """Log lines written to ``stream`` in batches, in the log format of ``configure_logging``.

    On the event loop's thread a line waits for the end of the loop's current turn
    (one ``write`` for every line of the turn, at most ``MAX_LINES``); from any other
    thread it is written at once, with those waiting. ``lock`` is the log handler's:
    lines never interleave with the other log records on the same stream.
    """

    MAX_LINES = 256

    def __init__(self, stream: TextIO, lock: threading.RLock | None) -> None:
        self.stream = stream
        self.lock = lock or threading.RLock()
        self._lines: list[str] = []
        self._guard = threading.Lock()

    def line(self, level: str, logger: str, message: str) -> None:
        text = f"{log_time()} {level} {logger} {escaped(message)}\n"
        with self._guard:
            self._lines.append(text)
            waiting = len(self._lines)
        if waiting < self.MAX_LINES:
            loop = asyncio._get_running_loop()
            if loop is not None:
                if waiting == 1:
                    loop.call_soon(self.flush)
                return
        self.flush()

    def flush(self) -> None:
        with self._guard:
            lines, self._lines = self._lines, []
        if not lines:
            return
        with self.lock:
            try:
                self.stream.write("".join(lines))
                self.stream.flush()
            except (OSError, ValueError):  # as logging does: a closed stream loses the line
                pass


_writer: LineWriter | None = None
#: The access log's line (``runtime.ops``) goes the same way as the audit trail's.
access_writer: Callable[[str], None] | None = None


def use_writer(writer: LineWriter | None) -> None:
    """Send audit (and access) lines to ``writer``; ``None``: back to the loggers."""
    global _writer, access_writer
    if _writer is not None:
        _writer.flush()
    _writer = writer
    access_writer = None if writer is None else _access_line(writer)


def _access_line(writer: LineWriter) -> Callable[[str], None]:
    def write(message: str) -> None:
        writer.line("INFO", "authserver.access", message)

    return write


def flush() -> None:
    """Write the lines still waiting (at shutdown)."""
    if _writer is not None:
        _writer.flush()


def audit(event: str, **fields: Any) -> None:
    """Log one security event; ``None`` fields are left out."""
    logging_on = log.isEnabledFor(logging.INFO)
    if not logging_on and not hooks:
        return
    record = {"event": event}
    rid = request_id.get()
    if rid is not None:
        record["request_id"] = rid
    for name, value in fields.items():
        if value is not None:
            record[name] = value
    for hook in hooks:
        hook(record)
    if not logging_on:
        return
    if _writer is not None and not log.handlers:
        _writer.line("INFO", "authserver.audit", _encode(record))
    else:  # also when a handler of its own listens on the audit logger
        log.info(_encode(record))
