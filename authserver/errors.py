"""Errors raised by authserver's own code.

    AuthserverError                 base; ``code`` is the gRPC status number
    ├── ConfigError                 the configuration cannot be used
    ├── InvalidArgument (3)         bad input: a field, a CIDR, a duration, a role name
    ├── NotFound (5)                no such user or credential (or not yours)
    ├── AlreadyExists (6)           unique value taken (e.g. a user's e-mail)
    ├── PermissionDenied (7)        the caller may not do this (no escalation)
    ├── Unauthenticated (16)        missing or inactive bearer token
    └── Unavailable (14)            the database cannot be reached

OAuth endpoints speak RFC 6749 errors (Authlib's ``OAuth2Error`` classes); the
management API renders these as ``{"code", "message"}``; the CLI prints the
message and exits 1. Each mapping happens once, at that boundary.
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


class Unavailable(AuthserverError):
    """A dependency (the database) is unreachable; retrying later may succeed."""

    code = 14
    http_status = 503


class Unauthenticated(AuthserverError):
    """No valid credentials were presented."""

    code = 16
    http_status = 401
