"""Starlette ↔ Authlib glue: strict form parsing in, Authlib's (status, body, headers) out.

Authlib ships no Starlette integration; this is ours, kept as small as the
Flask one. It reads the body without blocking, rejects malformed forms with
RFC 6749 section 5.2 errors, and builds the ``OAuth2Request`` Authlib's
grants work on; answers go out through ``responses.json_response``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from starlette.requests import Request

from authserver.oauth.errors import MethodNotAllowed, PayloadTooLarge, printable
from authserver.web.body import read_body

_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


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
