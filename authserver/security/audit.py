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
