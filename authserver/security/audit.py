"""The audit trail: one JSON log line per security event, on the ``authserver.audit`` logger.

Events: ``token_issued``, ``auth_failed`` (with the precise internal reason),
``credential_created``, ``credential_updated``, ``credential_deleted``,
``client_registered``, ``token_revoked``; for people ``signed_in``,
``sign_in_failed`` (with a reason; through an OpenID Connect provider also its
``method`` and a ``detail``), ``signed_out``, ``session_expired``,
``signed_out_everywhere``, ``password_set``, ``invite_created``, ``user_created``
(at a first sign-in through a provider). Lines carry ids (credential,
client_id, user, jti), the source address and the request id — never a
secret, a token, an assertion, a password, a session id or a hash.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

log = logging.getLogger("authserver.audit")
# Made once: ``json.dumps(..., default=str)`` builds a new encoder on every call.
_encode = json.JSONEncoder(default=str).encode


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
    if logging_on:
        log.info(_encode(record))
