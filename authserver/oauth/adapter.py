"""Starlette ↔ Authlib glue: strict form parsing in, Authlib's (status, body, headers) out.

Authlib ships no Starlette integration; this is ours, kept as small as the
Flask one. It reads the body without blocking, rejects malformed forms with
RFC 6749 section 5.2 errors, and builds the ``OAuth2Request`` Authlib's
grants work on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from authlib.oauth2.rfc6749 import OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from starlette.requests import Request
from starlette.responses import Response

from authserver.web.body import read_body

_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# Made once: ``json.dumps`` with ``separators`` builds a new encoder on every call.
_compact_json = json.JSONEncoder(separators=(",", ":")).encode


class PayloadTooLarge(InvalidRequestError):
    """The request body exceeds ``max_body_bytes``."""

    status_code = 413


class MethodNotAllowed(InvalidRequestError):
    """Only POST is defined on this endpoint."""

    status_code = 405

    def get_headers(self) -> list[tuple[str, str]]:
        return [*super().get_headers(), ("Allow", "POST")]


class TemporarilyUnavailable(OAuth2Error):
    """The database cannot be reached; the client should retry shortly."""

    error = "temporarily_unavailable"
    status_code = 503

    def __init__(self) -> None:
        super().__init__(description="the credential store is unreachable; retry shortly")

    def get_headers(self) -> list[tuple[str, str]]:
        return [*super().get_headers(), ("Retry-After", "1")]


async def read_form(request: Request, *, max_bytes: int) -> dict[str, str]:
    """The ``application/x-www-form-urlencoded`` body as a dict; any irregularity is an error.

    Refused: other methods than POST, other content types or charsets, bodies over
    ``max_bytes``, invalid percent-encoding or UTF-8, and repeated parameters
    (RFC 6749 section 3.2).
    """
    if request.method != "POST":
        raise MethodNotAllowed(f"{request.method} is not allowed; use POST")
    media_type, _, params = request.headers.get("content-type", "").partition(";")
    if media_type.strip().lower() != "application/x-www-form-urlencoded":
        raise InvalidRequestError("Content-Type must be application/x-www-form-urlencoded")
    charset = params.strip().lower()
    if charset and charset.replace(" ", "") not in ("charset=utf-8", 'charset="utf-8"'):
        raise InvalidRequestError("the form must be encoded in UTF-8")
    body = await read_body(request, limit=max_bytes)
    if body is None:
        raise PayloadTooLarge(f"request body larger than {max_bytes} bytes")
    return parse_form(body)


def parse_form(body: bytes) -> dict[str, str]:
    """``application/x-www-form-urlencoded`` as ``urllib.parse.parse_qsl`` strictly parses it.

    Written out because every OAuth request parses one: fields without ``%`` or
    ``+`` (most of them) need no unquoting.
    """
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidRequestError("the form body must be percent-encoded ASCII") from None
    form: dict[str, str] = {}
    if not text:
        return form
    if "%" in text and _BAD_PERCENT.search(text):
        raise InvalidRequestError("malformed percent-encoding in the form body")
    for field in text.split("&"):
        key, sep, value = field.partition("=")
        if not sep:
            raise InvalidRequestError("malformed form body")
        if "%" in field or "+" in field:
            try:
                key = unquote(key.replace("+", " "), errors="strict")
                value = unquote(value.replace("+", " "), errors="strict")
            except UnicodeDecodeError:
                raise InvalidRequestError("malformed form body") from None
        if key in form:
            raise InvalidRequestError(f"parameter {printable(key)!r} is repeated")
        if "\x00" in value or "\x00" in key:
            raise InvalidRequestError("NUL characters are not allowed")
        form[key] = value
    return form


def printable(text: str, *, limit: int = 64) -> str:
    """Restrict echoed input to the characters RFC 6749 allows in ``error_description``."""
    cleaned = "".join(ch if 0x20 <= ord(ch) <= 0x7E and ch not in '"\\' else "?" for ch in text)
    return cleaned[:limit]


class FormRequest(OAuth2Request):
    """An ``OAuth2Request`` over an already parsed form; carries the pre-authenticated client."""

    def __init__(self, *, method: str, uri: str, headers: Mapping[str, str], form: dict[str, str]):
        # OAuth2Request.__init__ insists on https; TLS terminates in front of us (README).
        self.method = method
        self.uri = uri
        self.headers = headers
        self._body = None
        self._form = form
        self.payload = BasicOAuth2Payload(form)
        self.client: Any = None
        self.auth_method = None
        self.user = None
        self.authorization_code = None
        self.refresh_token = None
        self.credential = None
        self._scope = None
        self.authenticated: Any = None
        self.error: str | None = None  # the OAuth error code Authlib answered with, if any
        self.device_poll: Any = None  # RFC 8628: what the poll found (device_flow.py)

    @property
    def args(self) -> dict[str, str]:
        return {}

    @property
    def form(self) -> dict[str, str]:
        return self._form


class JSONBytesResponse(Response):
    """A JSON response whose body and raw headers are ready: no per-response rendering.

    Starlette's ``Response.__init__`` re-encodes and re-checks every header of every
    answer; the OAuth endpoints answer every client call, with a few fixed headers.
    """

    media_type = "application/json"

    def __init__(self, content: bytes, status: int, raw_headers: list[tuple[bytes, bytes]]):
        self.status_code = status
        self.body = content
        self.background = None
        self.raw_headers = [
            (b"content-length", str(len(content)).encode()),
            (b"content-type", b"application/json"),
            *raw_headers,
        ]


def json_response(
    status: int, body: Any, headers: list[tuple[str, str]] | Mapping[str, str] | None = None
) -> Response:
    content = body if isinstance(body, bytes) else _compact_json(body).encode()
    items = headers.items() if isinstance(headers, Mapping) else headers or []
    raw = [
        (key.lower().encode("latin-1"), value.encode("latin-1"))
        for key, value in items
        if key.lower() != "content-type"
    ]
    return JSONBytesResponse(content, status, raw)


def error_response(error: OAuth2Error) -> Response:
    status, body, headers = error()
    return json_response(status, body, headers)
