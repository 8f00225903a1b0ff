"""The management API's errors as ``{"code", "message"}`` with the matching HTTP status.

Domain errors carry their gRPC code (``errors.py``); Starlette's own 404 and 405
under ``/api/`` become codes 5 and 12; anything unforeseen is code 13, logged.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from authserver.api.bodies import FIELD_NAMES
from authserver.errors import AuthserverError, Unauthenticated
from authserver.security.logsafe import loggable_path

log = logging.getLogger("authserver")
PREFIX = "/api/"
_HTTP_CODES = {404: 5, 405: 12}


def claims(path: str) -> bool:
    """True for the paths whose errors this module renders."""
    return path.startswith(PREFIX)


def domain_error(request: Request, exc: AuthserverError) -> Response:
    headers = None
    if isinstance(exc, Unauthenticated):
        headers = {"WWW-Authenticate": exc.challenge}
    return JSONResponse(
        {"code": exc.code, "message": exc.describe(FIELD_NAMES)},
        status_code=exc.http_status,
        headers=headers,
    )


def http_error(request: Request, exc: HTTPException) -> Response:
    return JSONResponse(
        {"code": _HTTP_CODES.get(exc.status_code, 3), "message": exc.detail},
        status_code=exc.status_code,
        headers=exc.headers,
    )


def unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, loggable_path(request.url.path))
    return JSONResponse({"code": 13, "message": "internal error"}, status_code=500)
