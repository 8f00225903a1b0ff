"""Errors raised by authserver's own code.

    AuthserverError                 base; ``code`` is the gRPC status number
    ├── ConfigError                 the configuration cannot be used
    ├── InvalidArgument (3)         bad input: a field, a CIDR, a duration, a role name
    ├── NotFound (5)                no such user or credential (or not yours)
    ├── AlreadyExists (6)           unique value taken (e.g. a user's e-mail)
    ├── PermissionDenied (7)        the caller may not do this (no escalation)
    ├── ResourceExhausted (8)       too many attempts; ``retry_after`` seconds to wait
    │   ├── SignInThrottled         too many failed sign-ins for an e-mail or a source
    │   └── SignInBusy              too many password checks queued in this process
    ├── Unavailable (14)            the database cannot be reached
    └── Unauthenticated (16)        missing or inactive bearer token
        ├── InvalidDpopToken        a DPoP-bound token sent without its proof (RFC 9449)
        ├── SignInFailed            wrong e-mail or password (one answer, whatever the reason)
        └── SignInRefused           a provider vouched for someone this server does not let in

OAuth endpoints speak RFC 6749 errors (Authlib's ``OAuth2Error`` classes, ours in
``oauth/errors.py``); the management API renders these as ``{"code", "message"}``
(``api/errors.py``); the pages as error pages (``ui/render.py``); the CLI prints
the message and exits 1. Each mapping happens once, at that boundary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self


class AuthserverError(Exception):
    """Base class; ``code`` is the gRPC status code, ``http_status`` its HTTP twin.

    ``field`` names the input the error is about by its domain name
    (``scoped_roles``, ``display_name``, ...); ``describe`` renders it in a front
    door's own vocabulary (``scopedRoles`` for the API, ``scope`` for RFC 7591).
    """

    code = 2
    http_status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def describe(self, names: Mapping[str, str] | None = None) -> str:
        """``"<field>: <message>"`` with the field named as ``names`` says, or the message."""
        if self.field is None:
            return self.message
        return f"{(names or {}).get(self.field, self.field)}: {self.message}"

    def about(self, field: str) -> Self:
        """The same error, about ``field`` (kept if it names one already)."""
        return type(self)(self.message, field=self.field or field)

    def __str__(self) -> str:
        return self.describe()


class ConfigError(AuthserverError):
    """The configuration file or environment holds an unusable value."""


class InvalidArgument(AuthserverError):
    """The input is malformed or out of bounds."""

    code = 3
    http_status = 400


class NotFound(AuthserverError):
    """The record does not exist or is not visible to the caller."""

    code = 5
    http_status = 404


class AlreadyExists(AuthserverError):
    """A unique value is already taken."""

    code = 6
    http_status = 409


class PermissionDenied(AuthserverError):
    """The caller is authenticated but may not do this."""

    code = 7
    http_status = 403


class ResourceExhausted(AuthserverError):
    """Too many attempts; ``retry_after`` says how many seconds to wait."""

    code = 8
    http_status = 429

    def __init__(self, message: str, *, retry_after: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after

    def about(self, field: str) -> Self:
        return type(self)(self.message, retry_after=self.retry_after, field=self.field or field)


class SignInThrottled(ResourceExhausted):
    """Too many failed sign-ins for this e-mail address or from this address."""

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, (retry_after + 59) // 60)
        super().__init__(
            f"too many failed attempts; try again in {minutes} minute{'s' * (minutes > 1)}",
            retry_after=retry_after,
        )


class SignInBusy(ResourceExhausted):
    """Too many password checks already wait in this process: answered without argon2."""

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__(
            "too many sign-ins are being checked right now; try again in a moment",
            retry_after=retry_after,
        )


class Unavailable(AuthserverError):
    """A dependency (the database) is unreachable; retrying later may succeed."""

    code = 14
    http_status = 503


class Unauthenticated(AuthserverError):
    """No valid credentials were presented; ``challenge`` is the ``WWW-Authenticate`` answer."""

    code = 16
    http_status = 401
    challenge = 'Bearer realm="authserver"'


class InvalidDpopToken(Unauthenticated):
    """A DPoP-bound access token without a valid proof of its key (RFC 9449 section 7.1)."""

    challenge = 'DPoP error="invalid_token"'


class SignInFailed(Unauthenticated):
    """Wrong e-mail or password: one answer, whatever the reason."""

    def __init__(self) -> None:
        super().__init__("the e-mail address or the password is not right")


class SignInRefused(Unauthenticated):
    """A provider signed the person in, but that does not let them in here.

    ``reason`` goes to the audit trail; the message is for the person.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
